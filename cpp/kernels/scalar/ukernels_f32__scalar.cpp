// Portable microkernels (the scalar tier; see microkernels.h for the
// contracts). Written by hand: the baseline build has no FMA, so products and
// sums stay separate operations, and the compiler may vectorise the loops
// over columns with the baseline's SIMD (SSE2 on x86-64).
#include <cmath>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// relu keeps NaN (NaN < 0 is false).
float activate(float v, int act) {
  switch (act) {
    case kActRelu: return v < 0.0f ? 0.0f : v;
    case kActSilu: return v * sigmoid(v);
    case kActSigmoid: return sigmoid(v);
    default: return v;
  }
}

}  // namespace

void igemm_f32_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_off,
                           const float* w, float* c, size_t ldc, const float* res, size_t ldr, int act) {
  (void)a_off;
  constexpr size_t MR = 4, NR = 8;
  float acc[MR][NR];
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j) acc[i][j] = w[j];
  w += NR;
  for (size_t t = 0; t < ks; ++t) {
    const float* a0 = a[t * MR + 0];
    const float* a1 = a[t * MR + 1];
    const float* a2 = a[t * MR + 2];
    const float* a3 = a[t * MR + 3];
    for (size_t k = 0; k < kc; ++k) {
      const float v0 = a0[k], v1 = a1[k], v2 = a2[k], v3 = a3[k];
      for (size_t j = 0; j < NR; ++j) {
        const float b = w[j];
        acc[0][j] += v0 * b;
        acc[1][j] += v1 * b;
        acc[2][j] += v2 * b;
        acc[3][j] += v3 * b;
      }
      w += NR;
    }
  }
  for (size_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    const float* ri = res ? res + i * ldr : nullptr;
    for (size_t j = 0; j < nc; ++j) ci[j] = activate(ri ? acc[i][j] + ri[j] : acc[i][j], act);
  }
}

void dwconv_f32_up4__scalar(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                            float* out, size_t out_stride, const float* res, int act) {
  constexpr size_t CB = 4;
  for (size_t p = 0; p < npix; ++p) {
    const float* const* ip = in + p * ks;
    float* o = out + p * out_stride;
    const float* r = res ? res + p * out_stride : nullptr;
    const float* wb = w;
    for (size_t c0 = 0; c0 < channels; c0 += CB) {
      const size_t cn = channels - c0 < CB ? channels - c0 : CB;
      float acc[CB];
      for (size_t j = 0; j < CB; ++j) acc[j] = wb[j];
      const float* wt = wb + CB;
      for (size_t t = 0; t < ks; ++t) {
        const float* x = ip[t] + c0;
        for (size_t j = 0; j < cn; ++j) acc[j] += x[j] * wt[j];
        wt += CB;
      }
      for (size_t j = 0; j < cn; ++j) o[c0 + j] = activate(r ? acc[j] + r[c0 + j] : acc[j], act);
      wb += CB * (ks + 1);
    }
  }
}

void wino_in_f32_2x2_3x3__scalar(size_t channels, const float* const* d, float* v, size_t vs) {
  for (size_t c = 0; c < channels; ++c) {
    float t[4][4];
    for (int r = 0; r < 4; ++r) {
      const float d0 = d[r * 4 + 0][c], d1 = d[r * 4 + 1][c], d2 = d[r * 4 + 2][c], d3 = d[r * 4 + 3][c];
      t[r][0] = d0 - d2;
      t[r][1] = d1 + d2;
      t[r][2] = d2 - d1;
      t[r][3] = d1 - d3;
    }
    for (int j = 0; j < 4; ++j) {
      v[(0 * 4 + j) * vs + c] = t[0][j] - t[2][j];
      v[(1 * 4 + j) * vs + c] = t[1][j] + t[2][j];
      v[(2 * 4 + j) * vs + c] = t[2][j] - t[1][j];
      v[(3 * 4 + j) * vs + c] = t[1][j] - t[3][j];
    }
  }
}

void wino_out_f32_2x2_3x3__scalar(size_t channels, const float* m, size_t ms, const float* bias, float* const* o,
                                  const float* const* r, int act) {
  for (size_t c = 0; c < channels; ++c) {
    float s[4], t[4];
    for (int i = 0; i < 4; ++i) {
      const float m0 = m[(i * 4 + 0) * ms + c], m1 = m[(i * 4 + 1) * ms + c];
      const float m2 = m[(i * 4 + 2) * ms + c], m3 = m[(i * 4 + 3) * ms + c];
      s[i] = m0 + m1 + m2;
      t[i] = m1 - m2 - m3;
    }
    float y[4] = {s[0] + s[1] + s[2], t[0] + t[1] + t[2], s[1] - s[2] - s[3], t[1] - t[2] - t[3]};
    for (int k = 0; k < 4; ++k) {
      y[k] += bias[c];
      if (r[k] != nullptr) y[k] += r[k][c];
      y[k] = activate(y[k], act);
    }
    for (int k = 0; k < 4; ++k)
      if (o[k] != nullptr) o[k][c] = y[k];
  }
}

void vact_f32__scalar(size_t n, const float* x, float* y, int act) {
  for (size_t i = 0; i < n; ++i) y[i] = activate(x[i], act);
}

void vadd_f32__scalar(size_t n, const float* a, const float* b, float* y, int act) {
  for (size_t i = 0; i < n; ++i) y[i] = activate(a[i] + b[i], act);
}

void vmul_f32__scalar(size_t n, const float* a, const float* b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void vmulc_f32__scalar(size_t rows, size_t c, const float* x, const float* s, float* y) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < c; ++j) y[r * c + j] = x[r * c + j] * s[j];
}

void vmax_f32__scalar(size_t n, const float* x, float* y) {
  // Branch-free (v != v is the NaN test), so the compiler vectorises it.
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i], m = y[i];
    y[i] = (v > m || v != v) ? v : m;
  }
}

void gavgpool_f32__scalar(size_t rows, size_t channels, const float* x, size_t stride, float* y) {
  for (size_t c = 0; c < channels; ++c) y[c] = 0.0f;
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < channels; ++c) y[c] += x[r * stride + c];
  const float count = static_cast<float>(rows);
  for (size_t c = 0; c < channels; ++c) y[c] /= count;
}

}  // namespace kernels
}  // namespace pyflame_vision
