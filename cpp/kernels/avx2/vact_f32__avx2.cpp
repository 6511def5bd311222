// AVX2+FMA SiLU and sigmoid. exp: magic-bias rounding, Cody-Waite range
// reduction with a two-part ln 2 and Cephes' degree-5 minimax polynomial
// (about 1 ulp). NaN inputs give NaN; silu(-inf) = -inf * 0 = NaN like torch's
// x * sigmoid(x).
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

// sigmoid(x), one vector: the same steps as sigmoid_x4_avx2 below (which
// explains them), so that tails and full blocks give bit-identical results.
// A true division: on this target rcp + Newton-Raphson measured no faster
// (the sequence is bound by its dependency chain, not the divider) and is
// less accurate.
__m256 sigmoid_avx2(__m256 x) {
  const __m256 magic = _mm256_set1_ps(12583039.0f);
  const __m256 z = _mm256_or_ps(x, _mm256_set1_ps(-0.0f));
  __m256 n = _mm256_fmadd_ps(z, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));
  n = _mm256_sub_ps(n, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), z);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  p = _mm256_mul_ps(p, s);
  p = _mm256_div_ps(p, _mm256_add_ps(p, _mm256_set1_ps(1.0f)));
  p = _mm256_andnot_ps(_mm256_cmp_ps(z, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ), p);
  return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), p), p, x);
}

__m256 silu_avx2(__m256 x) {
  // x * sigmoid(x): NaN stays NaN, silu(-inf) = -inf * 0 = NaN like torch.
  return _mm256_mul_ps(x, sigmoid_avx2(x));
}

__m256i tail_mask(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Four vectors in lockstep (four independent dependency chains in flight for
// Zen 2's small FP scheduler), about 21 operations per vector:
//   z = -|x|, so e = exp(z) lies in (0, 1] and 1 + e never overflows;
//   n = round(z / ln 2) by the magic-bias trick: adding 1.5 * 2^23 + 127 rounds
//   to an integer and leaves n + 127 in the low mantissa bits, which shifted
//   left by 23 are 2^n (no round, convert or two-part scaling; n >= -126 for
//   z >= -87.33, below which sigmoid(z) < 1.2e-38 is flushed to 0);
//   the same Cody-Waite reduction and Cephes polynomial as exp_avx2;
//   f = e / (1 + e) = sigmoid(-|x|), and sigmoid(x) = f for x < 0, 1 - f else.
// NaN stays NaN through every step; x = +-inf gives 1 and 0 (silu(-inf) =
// -inf * 0 = NaN, like torch). Division: see sigmoid_avx2.
// Always inlined: as a call, the four vectors went through the stack with a
// vzeroupper on every iteration, which cost more than the arithmetic.
#if defined(__GNUC__)
#define PFV_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PFV_ALWAYS_INLINE inline
#endif
#define PFV_X4 _Pragma("GCC unroll 4") for (int j = 0; j < 4; ++j)
PFV_ALWAYS_INLINE void sigmoid_x4_avx2(const __m256* x, __m256* out) {
  const __m256 magic = _mm256_set1_ps(12583039.0f);  // 0x1.8000FEp23 = 1.5 * 2^23 + 127
  __m256 z[4], n[4], s[4], r[4], p[4];
  PFV_X4 z[j] = _mm256_or_ps(x[j], _mm256_set1_ps(-0.0f));
  PFV_X4 n[j] = _mm256_fmadd_ps(z[j], _mm256_set1_ps(1.44269504088896341f), magic);
  PFV_X4 s[j] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n[j]), 23));
  PFV_X4 n[j] = _mm256_sub_ps(n[j], magic);
  PFV_X4 r[j] = _mm256_fnmadd_ps(n[j], _mm256_set1_ps(0.693359375f), z[j]);
  PFV_X4 r[j] = _mm256_fnmadd_ps(n[j], _mm256_set1_ps(-2.12194440e-4f), r[j]);
  PFV_X4 p[j] = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r[j], _mm256_set1_ps(1.3981999507e-3f));
  PFV_X4 p[j] = _mm256_fmadd_ps(p[j], r[j], _mm256_set1_ps(8.3334519073e-3f));
  PFV_X4 p[j] = _mm256_fmadd_ps(p[j], r[j], _mm256_set1_ps(4.1665795894e-2f));
  PFV_X4 p[j] = _mm256_fmadd_ps(p[j], r[j], _mm256_set1_ps(1.6666665459e-1f));
  PFV_X4 p[j] = _mm256_fmadd_ps(p[j], r[j], _mm256_set1_ps(5.0000001201e-1f));
  PFV_X4 p[j] = _mm256_fmadd_ps(p[j], _mm256_mul_ps(r[j], r[j]), _mm256_add_ps(r[j], _mm256_set1_ps(1.0f)));
  PFV_X4 p[j] = _mm256_mul_ps(p[j], s[j]);  // e = exp(z)
  PFV_X4 p[j] = _mm256_div_ps(p[j], _mm256_add_ps(p[j], _mm256_set1_ps(1.0f)));
  PFV_X4 p[j] = _mm256_andnot_ps(_mm256_cmp_ps(z[j], _mm256_set1_ps(-87.33654f), _CMP_LT_OQ), p[j]);
  PFV_X4 out[j] = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), p[j]), p[j], x[j]);
}

}  // namespace

void vsilu_f32__avx2(size_t n, float* x) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 v[4], s[4];
    PFV_X4 v[j] = _mm256_loadu_ps(x + i + 8 * j);
    sigmoid_x4_avx2(v, s);
    PFV_X4 _mm256_storeu_ps(x + i + 8 * j, _mm256_mul_ps(v[j], s[j]));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, silu_avx2(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(x + i, m, silu_avx2(_mm256_maskload_ps(x + i, m)));
  }
}

void vsigmoid_f32__avx2(size_t n, float* x) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 v[4], s[4];
    PFV_X4 v[j] = _mm256_loadu_ps(x + i + 8 * j);
    sigmoid_x4_avx2(v, s);
    PFV_X4 _mm256_storeu_ps(x + i + 8 * j, s[j]);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, sigmoid_avx2(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(x + i, m, sigmoid_avx2(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
