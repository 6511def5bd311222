#include "kernels/eltwise.h"

#include <algorithm>

#include "kernels/parallel.h"

namespace pyflame_vision {
namespace kernels {

void activation(const UkernelSet& uk, int64_t n, const float* x, float* y, Epilogue act) {
  const int a = ukernel_act(act);
  parallel_flat(n, [&](size_t b, size_t len) { uk.vact(len, x + b, y + b, a); });
}

void add(const UkernelSet& uk, int64_t n, const float* a, const float* b, float* y, Epilogue act) {
  const int code = ukernel_act(act);
  parallel_flat(n, [&](size_t o, size_t len) { uk.vadd(len, a + o, b + o, y + o, code); });
}

void mul(const UkernelSet& uk, int64_t n, const float* a, const float* b, float* y) {
  parallel_flat(n, [&](size_t o, size_t len) { uk.vmul(len, a + o, b + o, y + o); });
}

void channel_scale(const UkernelSet& uk, int64_t batch, int64_t hw, int64_t c, const float* x, const float* s,
                   float* y) {
  parallel_rows(batch * hw, c, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1;) {  // runs of rows of one image share its scales
      const int64_t end = std::min(r1, (r / hw + 1) * hw);
      uk.vmulc(static_cast<size_t>(end - r), static_cast<size_t>(c), x + r * c, s + (r / hw) * c, y + r * c);
      r = end;
    }
  });
}

void scale_shift(int64_t rows, int64_t c, const float* x, const float* scale, const float* shift, float* y) {
  parallel_rows(rows, c, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < c; ++j) y[r * c + j] = x[r * c + j] * scale[j] + shift[j];
  });
}

void nchw_to_nhwc(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const int64_t strides[4], float* y) {
  const int64_t s0 = strides[0], s1 = strides[1], s2 = strides[2], s3 = strides[3];
  parallel_rows(n * h, w * c, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / h, yy = r % h;
      float* d = y + r * w * c;
      const float* s = x + b * s0 + yy * s2;
      for (int64_t xx = 0; xx < w; ++xx)
        for (int64_t ch = 0; ch < c; ++ch) d[xx * c + ch] = s[xx * s3 + ch * s1];
    }
  });
}

void nhwc_to_nchw(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y) {
  const int64_t hw = h * w;
  parallel_rows(n * c, hw, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / c, ch = r % c;
      for (int64_t p = 0; p < hw; ++p) y[r * hw + p] = x[(b * hw + p) * c + ch];
    }
  });
}

}  // namespace kernels
}  // namespace pyflame_vision
