// AVX2+FMA indirect-GEMM microkernel for grouped convolutions with 4 input
// and 4 output channels per group (ResNeXt 32x4d / 64x4d layer1): a 6x16
// tile covering four adjacent groups. Each A row pointer addresses the 16
// input channels (4 groups x 4) of one pixel; vpermilps broadcasts channel k
// of each group within its 128-bit half, so columns 4q..4q+3 (group q) see
// only group q's inputs. kc must be 4. Padding taps point at >= 16 zeros.
// Otherwise as igemm_f32_6x16__avx2 (see microkernels.h).
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

__m256i tail_mask(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

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

#define PFV_G4C4_STEP(K)                                                        \
  {                                                                             \
    const __m256 b0 = _mm256_loadu_ps(w);                                       \
    const __m256 b1 = _mm256_loadu_ps(w + 8);                                   \
    w += 16;                                                                    \
    c00 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a0), K), b0, c00);     \
    c01 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a0 + 8), K), b1, c01); \
    c10 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a1), K), b0, c10);     \
    c11 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a1 + 8), K), b1, c11); \
    c20 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a2), K), b0, c20);     \
    c21 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a2 + 8), K), b1, c21); \
    c30 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a3), K), b0, c30);     \
    c31 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a3 + 8), K), b1, c31); \
    c40 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a4), K), b0, c40);     \
    c41 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a4 + 8), K), b1, c41); \
    c50 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a5), K), b0, c50);     \
    c51 = _mm256_fmadd_ps(_mm256_permute_ps(_mm256_loadu_ps(a5 + 8), K), b1, c51); \
  }

void igemm_f32_6x16g4c4__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                              float* c, size_t ldc, const float* res, size_t ldr, int relu) {
  (void)kc;  // always 4
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
    PFV_G4C4_STEP(0x00)
    PFV_G4C4_STEP(0x55)
    PFV_G4C4_STEP(0xAA)
    PFV_G4C4_STEP(0xFF)
  }
  const size_t ldr_ = res ? ldr : 0;
  store_row(c, res, nc, c00, c01, relu);
  if (mr > 1) store_row(c + ldc, res ? res + ldr_ : nullptr, nc, c10, c11, relu);
  if (mr > 2) store_row(c + 2 * ldc, res ? res + 2 * ldr_ : nullptr, nc, c20, c21, relu);
  if (mr > 3) store_row(c + 3 * ldc, res ? res + 3 * ldr_ : nullptr, nc, c30, c31, relu);
  if (mr > 4) store_row(c + 4 * ldc, res ? res + 4 * ldr_ : nullptr, nc, c40, c41, relu);
  if (mr > 5) store_row(c + 5 * ldc, res ? res + 5 * ldr_ : nullptr, nc, c50, c51, relu);
}

#undef PFV_G4C4_STEP

}  // namespace kernels
}  // namespace pyflame_vision
