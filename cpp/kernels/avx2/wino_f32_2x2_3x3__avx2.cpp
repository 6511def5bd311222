// Winograd F(2x2, 3x3) input and output transforms, 8 channels per ymm (see
// microkernels.h for the contract, conv.cpp for the matrices). The same
// additions in the same order as the scalar version, so results match it
// bit for bit.
#include <immintrin.h>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

namespace {

__m256i tail_mask(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline void in8(const float* const* d, size_t c, float* v, size_t vs, bool masked, __m256i mask) {
  __m256 t[4][4];
  for (int r = 0; r < 4; ++r) {
    __m256 x[4];
    for (int k = 0; k < 4; ++k)
      x[k] = masked ? _mm256_maskload_ps(d[r * 4 + k] + c, mask) : _mm256_loadu_ps(d[r * 4 + k] + c);
    t[r][0] = _mm256_sub_ps(x[0], x[2]);
    t[r][1] = _mm256_add_ps(x[1], x[2]);
    t[r][2] = _mm256_sub_ps(x[2], x[1]);
    t[r][3] = _mm256_sub_ps(x[1], x[3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m256 y[4] = {_mm256_sub_ps(t[0][j], t[2][j]), _mm256_add_ps(t[1][j], t[2][j]),
                         _mm256_sub_ps(t[2][j], t[1][j]), _mm256_sub_ps(t[1][j], t[3][j])};
    for (int i = 0; i < 4; ++i) {
      float* dst = v + static_cast<size_t>(i * 4 + j) * vs + c;
      if (masked) {
        _mm256_maskstore_ps(dst, mask, y[i]);
      } else {
        _mm256_storeu_ps(dst, y[i]);
      }
    }
  }
}

inline void out8(const float* m, size_t ms, const float* bias, float* const* o, const float* const* r, int relu,
                 size_t c, bool masked, __m256i mask) {
  auto load = [&](const float* p) { return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p); };
  __m256 s[4], t[4];
  for (int i = 0; i < 4; ++i) {
    const __m256 m0 = load(m + static_cast<size_t>(i * 4 + 0) * ms + c);
    const __m256 m1 = load(m + static_cast<size_t>(i * 4 + 1) * ms + c);
    const __m256 m2 = load(m + static_cast<size_t>(i * 4 + 2) * ms + c);
    const __m256 m3 = load(m + static_cast<size_t>(i * 4 + 3) * ms + c);
    s[i] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
    t[i] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
  }
  __m256 y[4] = {_mm256_add_ps(_mm256_add_ps(s[0], s[1]), s[2]), _mm256_add_ps(_mm256_add_ps(t[0], t[1]), t[2]),
                 _mm256_sub_ps(_mm256_sub_ps(s[1], s[2]), s[3]), _mm256_sub_ps(_mm256_sub_ps(t[1], t[2]), t[3])};
  const __m256 b = load(bias + c);
  const __m256 zero = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    y[k] = _mm256_add_ps(y[k], b);
    if (r[k] != nullptr) y[k] = _mm256_add_ps(y[k], load(r[k] + c));
    if (relu) y[k] = _mm256_max_ps(zero, y[k]);  // operand order: NaN in y is returned
  }
  for (int k = 0; k < 4; ++k) {
    if (o[k] == nullptr) continue;
    if (masked) {
      _mm256_maskstore_ps(o[k] + c, mask, y[k]);
    } else {
      _mm256_storeu_ps(o[k] + c, y[k]);
    }
  }
}

}  // namespace

void wino_in_f32_2x2_3x3__avx2(size_t channels, const float* const* d, float* v, size_t vs) {
  const __m256i none = _mm256_setzero_si256();
  size_t c = 0;
  for (; c + 8 <= channels; c += 8) in8(d, c, v, vs, false, none);
  if (c < channels) in8(d, c, v, vs, true, tail_mask(channels - c));
}

void wino_out_f32_2x2_3x3__avx2(size_t channels, const float* m, size_t ms, const float* bias, float* const* o,
                                const float* const* r, int relu) {
  const __m256i none = _mm256_setzero_si256();
  size_t c = 0;
  for (; c + 8 <= channels; c += 8) out8(m, ms, bias, o, r, relu, c, false, none);
  if (c < channels) out8(m, ms, bias, o, r, relu, c, true, tail_mask(channels - c));
}

}  // namespace kernels
}  // namespace pyflame_vision
