// AVX2+FMA depthwise microkernel: 8 channels per ymm. Output pixels are taken
// three at a time with four channel blocks each (12 accumulators), so every
// weight vector loaded serves three pixels and every tap pointer loaded
// serves 32 channels; leftovers run one pixel and one block at a time
// (see microkernels.h).
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

__m256i tail_mask(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline __m256 finish(__m256 acc, const float* r, int relu) {
  if (r) acc = _mm256_add_ps(acc, _mm256_loadu_ps(r));
  if (relu) acc = _mm256_max_ps(_mm256_setzero_ps(), acc);  // operand order keeps NaN
  return acc;
}

// One pixel, channels [c, channels).
void dw_one_pixel(size_t c, size_t channels, size_t ks, const float* const* ip, const float* wb, float* o,
                  const float* r, int relu) {
  const size_t wstride = 8 * (ks + 1);
  for (; c + 8 <= channels; c += 8) {
    __m256 acc = _mm256_loadu_ps(wb);
    const float* wt = wb + 8;
    for (size_t t = 0; t < ks; ++t) acc = _mm256_fmadd_ps(_mm256_loadu_ps(ip[t] + c), _mm256_loadu_ps(wt + 8 * t), acc);
    _mm256_storeu_ps(o + c, finish(acc, r ? r + c : nullptr, relu));
    wb += wstride;
  }
  if (c < channels) {
    const __m256i m = tail_mask(channels - c);
    __m256 acc = _mm256_loadu_ps(wb);
    const float* wt = wb + 8;
    for (size_t t = 0; t < ks; ++t)
      acc = _mm256_fmadd_ps(_mm256_maskload_ps(ip[t] + c, m), _mm256_loadu_ps(wt + 8 * t), acc);
    if (r) acc = _mm256_add_ps(acc, _mm256_maskload_ps(r + c, m));
    if (relu) acc = _mm256_max_ps(_mm256_setzero_ps(), acc);
    _mm256_maskstore_ps(o + c, m, acc);
  }
}

}  // namespace

void dwconv_f32_up8__avx2(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                          float* out, size_t out_stride, const float* res, int relu) {
  const size_t wstride = 8 * (ks + 1);
  size_t p = 0;
  for (; p + 3 <= npix; p += 3) {
    const float* const* ip0 = in + p * ks;
    const float* const* ip1 = ip0 + ks;
    const float* const* ip2 = ip1 + ks;
    float* o0 = out + p * out_stride;
    float* o1 = o0 + out_stride;
    float* o2 = o1 + out_stride;
    const float* r0 = res ? res + p * out_stride : nullptr;
    const float* r1 = res ? r0 + out_stride : nullptr;
    const float* r2 = res ? r1 + out_stride : nullptr;
    const float* wb = w;
    size_t c = 0;
    for (; c + 32 <= channels; c += 32) {
      __m256 a00 = _mm256_loadu_ps(wb), a01 = _mm256_loadu_ps(wb + wstride);
      __m256 a02 = _mm256_loadu_ps(wb + 2 * wstride), a03 = _mm256_loadu_ps(wb + 3 * wstride);
      __m256 a10 = a00, a11 = a01, a12 = a02, a13 = a03;
      __m256 a20 = a00, a21 = a01, a22 = a02, a23 = a03;
      const float* wt = wb + 8;
      for (size_t t = 0; t < ks; ++t) {
        const float* x0 = ip0[t] + c;
        const float* x1 = ip1[t] + c;
        const float* x2 = ip2[t] + c;
        __m256 wv = _mm256_loadu_ps(wt);
        a00 = _mm256_fmadd_ps(_mm256_loadu_ps(x0), wv, a00);
        a10 = _mm256_fmadd_ps(_mm256_loadu_ps(x1), wv, a10);
        a20 = _mm256_fmadd_ps(_mm256_loadu_ps(x2), wv, a20);
        wv = _mm256_loadu_ps(wt + wstride);
        a01 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + 8), wv, a01);
        a11 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + 8), wv, a11);
        a21 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + 8), wv, a21);
        wv = _mm256_loadu_ps(wt + 2 * wstride);
        a02 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + 16), wv, a02);
        a12 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + 16), wv, a12);
        a22 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + 16), wv, a22);
        wv = _mm256_loadu_ps(wt + 3 * wstride);
        a03 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + 24), wv, a03);
        a13 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + 24), wv, a13);
        a23 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + 24), wv, a23);
        wt += 8;
      }
      _mm256_storeu_ps(o0 + c, finish(a00, r0 ? r0 + c : nullptr, relu));
      _mm256_storeu_ps(o0 + c + 8, finish(a01, r0 ? r0 + c + 8 : nullptr, relu));
      _mm256_storeu_ps(o0 + c + 16, finish(a02, r0 ? r0 + c + 16 : nullptr, relu));
      _mm256_storeu_ps(o0 + c + 24, finish(a03, r0 ? r0 + c + 24 : nullptr, relu));
      _mm256_storeu_ps(o1 + c, finish(a10, r1 ? r1 + c : nullptr, relu));
      _mm256_storeu_ps(o1 + c + 8, finish(a11, r1 ? r1 + c + 8 : nullptr, relu));
      _mm256_storeu_ps(o1 + c + 16, finish(a12, r1 ? r1 + c + 16 : nullptr, relu));
      _mm256_storeu_ps(o1 + c + 24, finish(a13, r1 ? r1 + c + 24 : nullptr, relu));
      _mm256_storeu_ps(o2 + c, finish(a20, r2 ? r2 + c : nullptr, relu));
      _mm256_storeu_ps(o2 + c + 8, finish(a21, r2 ? r2 + c + 8 : nullptr, relu));
      _mm256_storeu_ps(o2 + c + 16, finish(a22, r2 ? r2 + c + 16 : nullptr, relu));
      _mm256_storeu_ps(o2 + c + 24, finish(a23, r2 ? r2 + c + 24 : nullptr, relu));
      wb += 4 * wstride;
    }
    for (; c + 8 <= channels; c += 8) {
      __m256 a0 = _mm256_loadu_ps(wb);
      __m256 a1 = a0, a2 = a0;
      const float* wt = wb + 8;
      for (size_t t = 0; t < ks; ++t) {
        const __m256 wv = _mm256_loadu_ps(wt + 8 * t);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(ip0[t] + c), wv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(ip1[t] + c), wv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(ip2[t] + c), wv, a2);
      }
      _mm256_storeu_ps(o0 + c, finish(a0, r0 ? r0 + c : nullptr, relu));
      _mm256_storeu_ps(o1 + c, finish(a1, r1 ? r1 + c : nullptr, relu));
      _mm256_storeu_ps(o2 + c, finish(a2, r2 ? r2 + c : nullptr, relu));
      wb += wstride;
    }
    if (c < channels) {
      dw_one_pixel(c, channels, ks, ip0, wb, o0, r0, relu);
      dw_one_pixel(c, channels, ks, ip1, wb, o1, r1, relu);
      dw_one_pixel(c, channels, ks, ip2, wb, o2, r2, relu);
    }
  }
  for (; p < npix; ++p) {
    dw_one_pixel(0, channels, ks, in + p * ks, w, out + p * out_stride, res ? res + p * out_stride : nullptr, relu);
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
