#include "kernels/eltwise.h"

#include <algorithm>
#include <limits>

#include <vector>

#include "core/thread_pool.h"
#include "kernels/indirection.h"

namespace pyflame_vision {
namespace kernels {

namespace {

// Rows of `cols` floats in tasks of whole rows, about 32K floats each: large
// enough to amortise dispatch, and a function of the shape only.
template <typename F>
void parallel_rows(int64_t rows, int64_t cols, F&& f) {
  if (rows <= 0) return;
  const int64_t per = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(cols, 1));
  const int64_t tasks = (rows + per - 1) / per;
  auto body = [&](size_t t) {
    const int64_t r0 = static_cast<int64_t>(t) * per, r1 = std::min(rows, r0 + per);
    f(r0, r1);
  };
  detail::parallel_for(static_cast<size_t>(tasks), detail::TaskFn(body));
}

// A flat range in chunks of 32K floats (a multiple of every vector width).
template <typename F>
void parallel_flat(int64_t n, F&& f) {
  constexpr int64_t kChunk = int64_t{1} << 15;
  parallel_rows((n + kChunk - 1) / kChunk, kChunk, [&](int64_t r0, int64_t r1) {
    const int64_t b = r0 * kChunk, e = std::min(n, r1 * kChunk);
    f(static_cast<size_t>(b), static_cast<size_t>(e - b));
  });
}

}  // namespace

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

void max_pool(const UkernelSet& uk, const PoolShape& s, const float* x, float* y) {
  const size_t C = static_cast<size_t>(s.c);
  Window win;
  win.H = static_cast<size_t>(s.ih), win.W = static_cast<size_t>(s.iw), win.C = C;
  win.OH = static_cast<size_t>(s.oh), win.OW = static_cast<size_t>(s.ow);
  win.KH = static_cast<size_t>(s.kh), win.KW = static_cast<size_t>(s.kw);
  win.SH = s.sh, win.SW = s.sw, win.PH = s.ph, win.PW = s.pw, win.DH = s.dh, win.DW = s.dw;
  // Padding taps read -inf: they never win (torch pads max pooling with -inf).
  const std::vector<float> low(C, -std::numeric_limits<float>::infinity());
  parallel_rows(s.n * s.oh, s.ow * s.c, [&](int64_t r0, int64_t r1) {
    Indirection ind(win, low.data());
    std::vector<const float*> taps(win.taps());
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / s.oh, oy = r % s.oh;
      ind.set_row(x + b * s.ih * s.iw * s.c, static_cast<size_t>(oy));
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        float* o = y + ((b * s.oh + oy) * s.ow + ox) * s.c;
        std::copy(low.begin(), low.end(), o);
        ind.taps(static_cast<size_t>(ox), taps.data(), 1);
        for (const float* t : taps) uk.vmax(C, t, o);
      }
    }
  });
}

void adaptive_avg_pool(const UkernelSet& uk, const PoolShape& s, const float* x, float* y) {
  if (s.oh == 1 && s.ow == 1) {
    // Global pooling (EfficientNet's squeeze-excitation and every head): one
    // task per image and 64-channel chunk, so that the threads share it.
    constexpr int64_t kChunk = 64;
    const int64_t chunks = (s.c + kChunk - 1) / kChunk;
    parallel_rows(s.n * chunks, s.ih * s.iw * kChunk, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / chunks, c0 = (r % chunks) * kChunk, cn = std::min(kChunk, s.c - c0);
        uk.gavgpool(static_cast<size_t>(s.ih * s.iw), static_cast<size_t>(cn), x + b * s.ih * s.iw * s.c + c0,
                    static_cast<size_t>(s.c), y + b * s.c + c0);
      }
    });
    return;
  }
  parallel_rows(s.n * s.oh * s.ow, s.c, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (s.oh * s.ow), oy = (r / s.ow) % s.oh, ox = r % s.ow;
      const int64_t y0 = (oy * s.ih) / s.oh, y1 = ((oy + 1) * s.ih + s.oh - 1) / s.oh;
      const int64_t x0 = (ox * s.iw) / s.ow, x1 = ((ox + 1) * s.iw + s.ow - 1) / s.ow;
      float* o = y + r * s.c;
      std::fill(o, o + s.c, 0.0f);
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) {
          const float* p = x + ((b * s.ih + iy) * s.iw + ix) * s.c;
          for (int64_t j = 0; j < s.c; ++j) o[j] += p[j];
        }
      const float count = static_cast<float>((y1 - y0) * (x1 - x0));
      for (int64_t j = 0; j < s.c; ++j) o[j] /= count;
    }
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
