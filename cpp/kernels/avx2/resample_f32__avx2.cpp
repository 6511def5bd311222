// AVX2+FMA resampling microkernels (see kernels/resample.h).
//
// Vertical: 64 outputs per block in 8 accumulators, the taps loop inside, so
// each input row segment is loaded once per block and the 8 FMA chains hide
// the FMA latency; uint8 rows are widened 8 bytes at a time (vpmovzxbd) and
// converted exactly. Horizontal: planar rows are one dot product per output
// pixel (whole vectors, a masked load for the tail, weights zero-padded);
// 3- and 4-channel pixels accumulate a 4-lane vector per tap (a masked load
// for 3, so nothing past the last pixel is read).
#include <immintrin.h>

#include "kernels/resample.h"

namespace pyflame_vision {
namespace kernels {

namespace {

__m256i tail_mask8(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__m256 load_u8x8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

void resample_v_f32__avx2(size_t n, size_t taps, const float* const* rows, const float* w, float* out) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
    for (size_t k = 0; k < taps; ++k) {
      const __m256 wk = _mm256_broadcast_ss(w + k);
      const float* r = rows[k] + i;
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r), wk, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 8), wk, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 16), wk, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 24), wk, a3);
      a4 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 32), wk, a4);
      a5 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 40), wk, a5);
      a6 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 48), wk, a6);
      a7 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 56), wk, a7);
    }
    _mm256_storeu_ps(out + i, a0);
    _mm256_storeu_ps(out + i + 8, a1);
    _mm256_storeu_ps(out + i + 16, a2);
    _mm256_storeu_ps(out + i + 24, a3);
    _mm256_storeu_ps(out + i + 32, a4);
    _mm256_storeu_ps(out + i + 40, a5);
    _mm256_storeu_ps(out + i + 48, a6);
    _mm256_storeu_ps(out + i + 56, a7);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a = _mm256_setzero_ps();
    for (size_t k = 0; k < taps; ++k) a = _mm256_fmadd_ps(_mm256_loadu_ps(rows[k] + i), _mm256_broadcast_ss(w + k), a);
    _mm256_storeu_ps(out + i, a);
  }
  if (i < n) {
    const __m256i m = tail_mask8(n - i);
    __m256 a = _mm256_setzero_ps();
    for (size_t k = 0; k < taps; ++k)
      a = _mm256_fmadd_ps(_mm256_maskload_ps(rows[k] + i, m), _mm256_broadcast_ss(w + k), a);
    _mm256_maskstore_ps(out + i, m, a);
  }
}

void resample_v_u8__avx2(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
    for (size_t k = 0; k < taps; ++k) {
      const __m256 wk = _mm256_broadcast_ss(w + k);
      const uint8_t* r = rows[k] + i;
      a0 = _mm256_fmadd_ps(load_u8x8(r), wk, a0);
      a1 = _mm256_fmadd_ps(load_u8x8(r + 8), wk, a1);
      a2 = _mm256_fmadd_ps(load_u8x8(r + 16), wk, a2);
      a3 = _mm256_fmadd_ps(load_u8x8(r + 24), wk, a3);
      a4 = _mm256_fmadd_ps(load_u8x8(r + 32), wk, a4);
      a5 = _mm256_fmadd_ps(load_u8x8(r + 40), wk, a5);
      a6 = _mm256_fmadd_ps(load_u8x8(r + 48), wk, a6);
      a7 = _mm256_fmadd_ps(load_u8x8(r + 56), wk, a7);
    }
    _mm256_storeu_ps(out + i, a0);
    _mm256_storeu_ps(out + i + 8, a1);
    _mm256_storeu_ps(out + i + 16, a2);
    _mm256_storeu_ps(out + i + 24, a3);
    _mm256_storeu_ps(out + i + 32, a4);
    _mm256_storeu_ps(out + i + 40, a5);
    _mm256_storeu_ps(out + i + 48, a6);
    _mm256_storeu_ps(out + i + 56, a7);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a = _mm256_setzero_ps();
    for (size_t k = 0; k < taps; ++k) a = _mm256_fmadd_ps(load_u8x8(rows[k] + i), _mm256_broadcast_ss(w + k), a);
    _mm256_storeu_ps(out + i, a);
  }
  // Fewer than 8 left: an 8-byte load could run past the row, so one at a time
  // (the same single-rounding FMA as the vector lanes).
  for (; i < n; ++i) {
    __m128 a = _mm_setzero_ps();
    for (size_t k = 0; k < taps; ++k)
      a = _mm_fmadd_ss(_mm_set_ss(static_cast<float>(rows[k][i])), _mm_load_ss(w + k), a);
    out[i] = _mm_cvtss_f32(a);
  }
}

void resample_h_f32__avx2(size_t out_w, size_t channels, const float* in, const size_t* start, const size_t* count,
                          const float* w, size_t wstride, float* out, size_t out_xs, size_t out_cs) {
  if (channels == 1) {
    for (size_t x = 0; x < out_w; ++x) {
      const float* p = in + start[x];
      const float* wx = w + x * wstride;
      const size_t cnt = count[x];
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      size_t k = 0;
      for (; k + 16 <= cnt; k += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + k), _mm256_loadu_ps(wx + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + k + 8), _mm256_loadu_ps(wx + k + 8), a1);
      }
      for (; k + 8 <= cnt; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + k), _mm256_loadu_ps(wx + k), a0);
      if (k < cnt) a1 = _mm256_fmadd_ps(_mm256_maskload_ps(p + k, tail_mask8(cnt - k)), _mm256_loadu_ps(wx + k), a1);
      out[x * out_xs] = hsum(_mm256_add_ps(a0, a1));
    }
    return;
  }
  if (channels == 3 || channels == 4) {
    const __m128i m = channels == 4 ? _mm_set1_epi32(-1) : _mm_setr_epi32(-1, -1, -1, 0);
    alignas(16) float lanes[4];
    for (size_t x = 0; x < out_w; ++x) {
      const float* p = in + start[x] * channels;
      const float* wx = w + x * wstride;
      const size_t cnt = count[x];
      __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();
      size_t k = 0;
      for (; k + 2 <= cnt; k += 2) {
        a0 = _mm_fmadd_ps(_mm_maskload_ps(p + k * channels, m), _mm_broadcast_ss(wx + k), a0);
        a1 = _mm_fmadd_ps(_mm_maskload_ps(p + (k + 1) * channels, m), _mm_broadcast_ss(wx + k + 1), a1);
      }
      if (k < cnt) a0 = _mm_fmadd_ps(_mm_maskload_ps(p + k * channels, m), _mm_broadcast_ss(wx + k), a0);
      _mm_store_ps(lanes, _mm_add_ps(a0, a1));
      float* o = out + x * out_xs;
      for (size_t ch = 0; ch < channels; ++ch) o[ch * out_cs] = lanes[ch];
    }
    return;
  }
  for (size_t x = 0; x < out_w; ++x) {
    const float* wx = w + x * wstride;
    const size_t cnt = count[x];
    for (size_t ch = 0; ch < channels; ++ch) {
      const float* p = in + start[x] * channels + ch;
      __m128 a = _mm_setzero_ps();
      for (size_t k = 0; k < cnt; ++k) a = _mm_fmadd_ss(_mm_load_ss(p + k * channels), _mm_load_ss(wx + k), a);
      out[ch * out_cs + x * out_xs] = _mm_cvtss_f32(a);
    }
  }
}

void resample_quant_u8__avx2(size_t n, const float* in, uint8_t* out) {
  // Clamp first (max_ps returns its second operand for NaN, so NaN -> 0),
  // then cvtps rounds half to even (the default MXCSR mode, like torch.round).
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i q0 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(in + i), lo), hi));
    const __m256i q1 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(in + i + 8), lo), hi));
    const __m256i q2 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(in + i + 16), lo), hi));
    const __m256i q3 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(in + i + 24), lo), hi));
    // The packs work per 128-bit lane, so the 4-byte groups come out as
    // q0lo q1lo q2lo q3lo q0hi q1hi q2hi q3hi; the permute restores the order.
    const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permutevar8x32_epi32(b, order));
  }
  for (; i < n; ++i) {
    const __m128 v = _mm_min_ss(_mm_max_ss(_mm_load_ss(in + i), _mm_setzero_ps()), _mm_set_ss(255.0f));
    out[i] = static_cast<uint8_t>(_mm_cvtss_si32(v));
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
