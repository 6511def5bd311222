// AVX-512 depthwise microkernel: 16 channels per zmm, one output pixel at a
// time (mirrors dwconv_f32_up8__avx2; tails use opmask loads/stores).
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 headers
// (_mm512_undefined_* in inlined intrinsics; GCC bug 105593): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

void dwconv_f32_up16__avx512(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                             float* out, size_t out_stride, const float* res, int relu) {
  const __m512 zero = _mm512_setzero_ps();
  const size_t tail = channels & 15u;
  const __mmask16 tmask = static_cast<__mmask16>((1u << tail) - 1u);
  const size_t wstride = 16 * (ks + 1);
  for (size_t p = 0; p < npix; ++p) {
    const float* const* ip = in + p * ks;
    float* o = out + p * out_stride;
    const float* r = res ? res + p * out_stride : nullptr;
    const float* wb = w;
    size_t c = 0;
    for (; c + 16 <= channels; c += 16) {
      __m512 acc = _mm512_loadu_ps(wb);
      const float* wt = wb + 16;
      for (size_t t = 0; t < ks; ++t)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(ip[t] + c), _mm512_loadu_ps(wt + 16 * t), acc);
      if (r) acc = _mm512_add_ps(acc, _mm512_loadu_ps(r + c));
      if (relu) acc = _mm512_max_ps(zero, acc);
      _mm512_storeu_ps(o + c, acc);
      wb += wstride;
    }
    if (tail != 0) {
      __m512 acc = _mm512_loadu_ps(wb);
      const float* wt = wb + 16;
      for (size_t t = 0; t < ks; ++t)
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tmask, ip[t] + c), _mm512_loadu_ps(wt + 16 * t), acc);
      if (r) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tmask, r + c));
      if (relu) acc = _mm512_max_ps(zero, acc);
      _mm512_mask_storeu_ps(o + c, tmask, acc);
    }
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
