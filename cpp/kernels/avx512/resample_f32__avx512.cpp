// AVX-512 resampling microkernels (see kernels/resample.h): the AVX2 scheme
// with 16-float vectors and mask registers for every tail.
//
// Vertical: 128 outputs per block in 8 zmm accumulators (taps inside);
// uint8 rows widen 16 bytes at a time (vpmovzxbd). Horizontal: planar rows
// are a dot product per output pixel (masked loads, zero-padded weights);
// 3- and 4-channel pixels accumulate a 4-lane vector per tap with a masked
// load (AVX-512VL), so nothing past the last pixel is read.
#include <immintrin.h>

#include "kernels/resample.h"

namespace pyflame_vision {
namespace kernels {

namespace {

// The zero-masking forms with a full mask throughout: GCC 12 reports its own
// _mm512_undefined_*() placeholders (used by the unmasked conversion
// intrinsics) as "may be used uninitialized" under -Wall.
constexpr __mmask16 kAll = 0xFFFF;

__mmask16 tail_mask16(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n < 16

__m512 load_u8x16(const uint8_t* p) {
  return _mm512_maskz_cvtepi32_ps(
      kAll, _mm512_maskz_cvtepu8_epi32(kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

__m512 maskz_load_u8x16(__mmask16 m, const uint8_t* p) {
  return _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, _mm_maskz_loadu_epi8(m, p)));
}

}  // namespace

void resample_v_f32__avx512(size_t n, size_t taps, const float* const* rows, const float* w, float* out) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 a4 = _mm512_setzero_ps(), a5 = _mm512_setzero_ps(), a6 = _mm512_setzero_ps(), a7 = _mm512_setzero_ps();
    for (size_t k = 0; k < taps; ++k) {
      const __m512 wk = _mm512_set1_ps(w[k]);
      const float* r = rows[k] + i;
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r), wk, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 16), wk, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 32), wk, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 48), wk, a3);
      a4 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 64), wk, a4);
      a5 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 80), wk, a5);
      a6 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 96), wk, a6);
      a7 = _mm512_fmadd_ps(_mm512_loadu_ps(r + 112), wk, a7);
    }
    _mm512_storeu_ps(out + i, a0);
    _mm512_storeu_ps(out + i + 16, a1);
    _mm512_storeu_ps(out + i + 32, a2);
    _mm512_storeu_ps(out + i + 48, a3);
    _mm512_storeu_ps(out + i + 64, a4);
    _mm512_storeu_ps(out + i + 80, a5);
    _mm512_storeu_ps(out + i + 96, a6);
    _mm512_storeu_ps(out + i + 112, a7);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 a = _mm512_setzero_ps();
    for (size_t k = 0; k < taps; ++k) a = _mm512_fmadd_ps(_mm512_loadu_ps(rows[k] + i), _mm512_set1_ps(w[k]), a);
    _mm512_storeu_ps(out + i, a);
  }
  if (i < n) {
    const __mmask16 m = tail_mask16(n - i);
    __m512 a = _mm512_setzero_ps();
    for (size_t k = 0; k < taps; ++k)
      a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, rows[k] + i), _mm512_set1_ps(w[k]), a);
    _mm512_mask_storeu_ps(out + i, m, a);
  }
}

void resample_v_u8__avx512(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 a4 = _mm512_setzero_ps(), a5 = _mm512_setzero_ps(), a6 = _mm512_setzero_ps(), a7 = _mm512_setzero_ps();
    for (size_t k = 0; k < taps; ++k) {
      const __m512 wk = _mm512_set1_ps(w[k]);
      const uint8_t* r = rows[k] + i;
      a0 = _mm512_fmadd_ps(load_u8x16(r), wk, a0);
      a1 = _mm512_fmadd_ps(load_u8x16(r + 16), wk, a1);
      a2 = _mm512_fmadd_ps(load_u8x16(r + 32), wk, a2);
      a3 = _mm512_fmadd_ps(load_u8x16(r + 48), wk, a3);
      a4 = _mm512_fmadd_ps(load_u8x16(r + 64), wk, a4);
      a5 = _mm512_fmadd_ps(load_u8x16(r + 80), wk, a5);
      a6 = _mm512_fmadd_ps(load_u8x16(r + 96), wk, a6);
      a7 = _mm512_fmadd_ps(load_u8x16(r + 112), wk, a7);
    }
    _mm512_storeu_ps(out + i, a0);
    _mm512_storeu_ps(out + i + 16, a1);
    _mm512_storeu_ps(out + i + 32, a2);
    _mm512_storeu_ps(out + i + 48, a3);
    _mm512_storeu_ps(out + i + 64, a4);
    _mm512_storeu_ps(out + i + 80, a5);
    _mm512_storeu_ps(out + i + 96, a6);
    _mm512_storeu_ps(out + i + 112, a7);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 a = _mm512_setzero_ps();
    for (size_t k = 0; k < taps; ++k) a = _mm512_fmadd_ps(load_u8x16(rows[k] + i), _mm512_set1_ps(w[k]), a);
    _mm512_storeu_ps(out + i, a);
  }
  if (i < n) {
    // Masked byte loads (AVX-512BW) read nothing past the row.
    const __mmask16 m = tail_mask16(n - i);
    __m512 a = _mm512_setzero_ps();
    for (size_t k = 0; k < taps; ++k) a = _mm512_fmadd_ps(maskz_load_u8x16(m, rows[k] + i), _mm512_set1_ps(w[k]), a);
    _mm512_mask_storeu_ps(out + i, m, a);
  }
}

void resample_h_f32__avx512(size_t out_w, size_t channels, const float* in, const size_t* start, const size_t* count,
                            const float* w, size_t wstride, float* out, size_t out_xs, size_t out_cs) {
  if (channels == 1) {
    for (size_t x = 0; x < out_w; ++x) {
      const float* p = in + start[x];
      const float* wx = w + x * wstride;
      const size_t cnt = count[x];
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
      size_t k = 0;
      for (; k + 32 <= cnt; k += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p + k), _mm512_loadu_ps(wx + k), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(p + k + 16), _mm512_loadu_ps(wx + k + 16), a1);
      }
      for (; k + 16 <= cnt; k += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p + k), _mm512_loadu_ps(wx + k), a0);
      if (k < cnt)
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask16(cnt - k), p + k), _mm512_loadu_ps(wx + k), a1);
      const __m512 a = _mm512_add_ps(a0, a1);
      const __m256 h =
          _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, a, 0), _mm512_maskz_extractf32x8_ps(0xFF, a, 1));
      __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
      q = _mm_add_ps(q, _mm_movehl_ps(q, q));
      q = _mm_add_ss(q, _mm_movehdup_ps(q));
      out[x * out_xs] = _mm_cvtss_f32(q);
    }
    return;
  }
  if (channels == 3 || channels == 4) {
    const __mmask8 m = channels == 4 ? 0xF : 0x7;
    alignas(16) float lanes[4];
    for (size_t x = 0; x < out_w; ++x) {
      const float* p = in + start[x] * channels;
      const float* wx = w + x * wstride;
      const size_t cnt = count[x];
      __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();
      size_t k = 0;
      for (; k + 2 <= cnt; k += 2) {
        a0 = _mm_fmadd_ps(_mm_maskz_loadu_ps(m, p + k * channels), _mm_set1_ps(wx[k]), a0);
        a1 = _mm_fmadd_ps(_mm_maskz_loadu_ps(m, p + (k + 1) * channels), _mm_set1_ps(wx[k + 1]), a1);
      }
      if (k < cnt) a0 = _mm_fmadd_ps(_mm_maskz_loadu_ps(m, p + k * channels), _mm_set1_ps(wx[k]), a0);
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

void resample_quant_u8__avx512(size_t n, const float* in, uint8_t* out) {
  // Clamp first (max_ps returns its second operand for NaN, so NaN -> 0), then
  // round half to even (the default MXCSR mode) and narrow (vpmovusdb; the
  // values are already in [0, 255]).
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i q = _mm512_maskz_cvtps_epi32(
        kAll, _mm512_maskz_min_ps(kAll, _mm512_maskz_max_ps(kAll, _mm512_loadu_ps(in + i), lo), hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_maskz_cvtusepi32_epi8(kAll, q));
  }
  if (i < n) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512i q = _mm512_maskz_cvtps_epi32(
        kAll, _mm512_maskz_min_ps(kAll, _mm512_maskz_max_ps(kAll, _mm512_maskz_loadu_ps(m, in + i), lo), hi));
    _mm512_mask_cvtusepi32_storeu_epi8(out + i, m, q);
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
