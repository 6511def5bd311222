// AVX-512 indirect-GEMM microkernel, 12x32 tile (ONNX Runtime MLAS's fp32
// tile): 24 zmm accumulators, 2 loads of packed B and 12 broadcasts of A per
// k step. Mirrors igemm_f32_6x16__avx2; tails use opmask loads/stores.
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 headers
// (_mm512_undefined_* in inlined intrinsics; GCC bug 105593): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

__mmask16 mask_first(size_t n) {  // n in [0, 16]
  return static_cast<__mmask16>((1u << n) - 1u);
}

}  // namespace

void igemm_f32_12x32__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                             float* c, size_t ldc, const float* res, size_t ldr, int relu) {
  enum { MR = 12 };
  __m512 acc0[MR];
  __m512 acc1[MR];
  {
    const __m512 b0 = _mm512_loadu_ps(w);
    const __m512 b1 = _mm512_loadu_ps(w + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      acc0[i] = b0;
      acc1[i] = b1;
    }
  }
  w += 32;
  for (size_t t = 0; t < ks; ++t) {
    const float* ap[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) ap[i] = a[i];
    a += MR;
    for (size_t k = 0; k < kc; ++k) {
      const __m512 b0 = _mm512_loadu_ps(w);
      const __m512 b1 = _mm512_loadu_ps(w + 16);
      w += 32;
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const __m512 v = _mm512_set1_ps(ap[i][k]);
        acc0[i] = _mm512_fmadd_ps(v, b0, acc0[i]);
        acc1[i] = _mm512_fmadd_ps(v, b1, acc1[i]);
      }
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  const __mmask16 m0 = nc >= 16 ? static_cast<__mmask16>(0xFFFF) : mask_first(nc);
  const __mmask16 m1 = nc >= 32 ? static_cast<__mmask16>(0xFFFF) : (nc > 16 ? mask_first(nc - 16) : 0);
  for (size_t i = 0; i < mr && i < static_cast<size_t>(MR); ++i) {
    __m512 v0 = acc0[i];
    __m512 v1 = acc1[i];
    if (res) {
      const float* r = res + i * ldr;
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, r));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, r + 16));
    }
    if (relu) {
      v0 = _mm512_max_ps(zero, v0);  // operand order: NaN in v0 is returned
      v1 = _mm512_max_ps(zero, v1);
    }
    float* ci = c + i * ldc;
    _mm512_mask_storeu_ps(ci, m0, v0);
    _mm512_mask_storeu_ps(ci + 16, m1, v1);
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
