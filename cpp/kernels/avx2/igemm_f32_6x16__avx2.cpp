// AVX2+FMA indirect-GEMM microkernel, 6x16 tile: 12 ymm accumulators hide the
// FMA latency on both pipes; per k step 2 loads of packed B and 6 broadcasts
// of A (see microkernels.h for the contract).
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

// Lanes [0, n) set, n in [0, 8].
__m256i tail_mask(size_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

// Adds the residual row, applies relu and stores nc (<= 16) floats.
inline void store_row(float* c, const float* r, size_t nc, __m256 v0, __m256 v1, int relu) {
  const __m256 zero = _mm256_setzero_ps();
  if (nc == 16) {
    if (r) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(r));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(r + 8));
    }
    if (relu) {
      v0 = _mm256_max_ps(zero, v0);  // operand order: NaN in v0 is returned
      v1 = _mm256_max_ps(zero, v1);
    }
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
    return;
  }
  if (nc >= 8) {
    const __m256i m = tail_mask(nc - 8);
    if (r) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(r));
      v1 = _mm256_add_ps(v1, _mm256_maskload_ps(r + 8, m));
    }
    if (relu) {
      v0 = _mm256_max_ps(zero, v0);
      v1 = _mm256_max_ps(zero, v1);
    }
    _mm256_storeu_ps(c, v0);
    _mm256_maskstore_ps(c + 8, m, v1);
  } else {
    const __m256i m = tail_mask(nc);
    if (r) v0 = _mm256_add_ps(v0, _mm256_maskload_ps(r, m));
    if (relu) v0 = _mm256_max_ps(zero, v0);
    _mm256_maskstore_ps(c, m, v0);
  }
}

}  // namespace

void igemm_f32_6x16__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                          float* c, size_t ldc, const float* res, size_t ldr, int relu) {
  __m256 c00 = _mm256_loadu_ps(w);
  __m256 c01 = _mm256_loadu_ps(w + 8);
  __m256 c10 = c00, c11 = c01;
  __m256 c20 = c00, c21 = c01;
  __m256 c30 = c00, c31 = c01;
  __m256 c40 = c00, c41 = c01;
  __m256 c50 = c00, c51 = c01;
  w += 16;
  for (size_t t = 0; t < ks; ++t) {
    const float* a0 = a[0];
    const float* a1 = a[1];
    const float* a2 = a[2];
    const float* a3 = a[3];
    const float* a4 = a[4];
    const float* a5 = a[5];
    a += 6;
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_loadu_ps(w);
      const __m256 b1 = _mm256_loadu_ps(w + 8);
      w += 16;
      __m256 v = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(v, b0, c00);
      c01 = _mm256_fmadd_ps(v, b1, c01);
      v = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(v, b0, c10);
      c11 = _mm256_fmadd_ps(v, b1, c11);
      v = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(v, b0, c20);
      c21 = _mm256_fmadd_ps(v, b1, c21);
      v = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(v, b0, c30);
      c31 = _mm256_fmadd_ps(v, b1, c31);
      v = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(v, b0, c40);
      c41 = _mm256_fmadd_ps(v, b1, c41);
      v = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(v, b0, c50);
      c51 = _mm256_fmadd_ps(v, b1, c51);
    }
  }
  const size_t ldr_ = res ? ldr : 0;
  store_row(c, res, nc, c00, c01, relu);
  if (mr > 1) store_row(c + ldc, res ? res + ldr_ : nullptr, nc, c10, c11, relu);
  if (mr > 2) store_row(c + 2 * ldc, res ? res + 2 * ldr_ : nullptr, nc, c20, c21, relu);
  if (mr > 3) store_row(c + 3 * ldc, res ? res + 3 * ldr_ : nullptr, nc, c30, c31, relu);
  if (mr > 4) store_row(c + 4 * ldc, res ? res + 4 * ldr_ : nullptr, nc, c40, c41, relu);
  if (mr > 5) store_row(c + 5 * ldc, res ? res + 5 * ldr_ : nullptr, nc, c50, c51, relu);
}

}  // namespace kernels
}  // namespace pyflame_vision
