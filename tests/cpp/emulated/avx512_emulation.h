// Force-included (-include) when cpp/kernels/avx512/ukernels_f32__avx512.cpp
// or resample_f32__avx512.cpp is compiled for the emulated test: the AVX-512 intrinsics become SIMDe's
// portable implementations (SIMD Everywhere, Debian's libsimde-dev), so the
// AVX-512 microkernels run on any x86-64 CPU. The real <immintrin.h> comes
// first (its include guard then makes the kernel's own include a no-op), and
// SIMDe's native aliases rename the AVX-512 names the kernel uses.
//
// SIMDe 0.7.4 lacks some intrinsics the kernels use; they are written here
// from Intel's definitions (masked lanes are neither read nor written; masked
// conversions give 0 in masked-off lanes).
#pragma once

#include <immintrin.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cmath>
#include <cstdint>

inline simde__m512 pfv_emul_maskz_loadu_ps(simde__mmask16 k, const void* p) {
  simde__m512_private r;
  const float* f = static_cast<const float*>(p);
  for (int i = 0; i < 16; ++i) r.f32[i] = ((k >> i) & 1) ? f[i] : 0.0f;
  return simde__m512_from_private(r);
}

inline void pfv_emul_mask_storeu_ps(void* p, simde__mmask16 k, simde__m512 v) {
  const simde__m512_private a = simde__m512_to_private(v);
  float* f = static_cast<float*>(p);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) f[i] = a.f32[i];
}

// Within each 128-bit lane, element j takes the lane's element imm[2j+1:2j].
inline simde__m512 pfv_emul_permute_ps(simde__m512 v, int imm) {
  const simde__m512_private a = simde__m512_to_private(v);
  simde__m512_private r;
  for (int lane = 0; lane < 4; ++lane)
    for (int j = 0; j < 4; ++j) r.f32[lane * 4 + j] = a.f32[lane * 4 + ((imm >> (2 * j)) & 3)];
  return simde__m512_from_private(r);
}

// dst lanes 0, 1 from a's lanes imm[1:0], imm[3:2]; lanes 2, 3 from b's imm[5:4], imm[7:6].
inline simde__m512 pfv_emul_shuffle_f32x4(simde__m512 a, simde__m512 b, int imm) {
  const simde__m512_private x = simde__m512_to_private(a), y = simde__m512_to_private(b);
  simde__m512_private r;
  for (int lane = 0; lane < 4; ++lane) {
    const int src = (imm >> (2 * lane)) & 3;
    for (int j = 0; j < 4; ++j) r.f32[lane * 4 + j] = (lane < 2 ? x : y).f32[src * 4 + j];
  }
  return simde__m512_from_private(r);
}

#undef _mm512_shuffle_f32x4
#define _mm512_shuffle_f32x4(a, b, imm) pfv_emul_shuffle_f32x4((a), (b), (imm))
#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm512_permute_ps
#define _mm512_maskz_loadu_ps(k, p) pfv_emul_maskz_loadu_ps((k), (p))
#define _mm512_mask_storeu_ps(p, k, v) pfv_emul_mask_storeu_ps((p), (k), (v))
#define _mm512_permute_ps(v, imm) pfv_emul_permute_ps((v), (imm))

// ---- used by the resampling kernels (resample_f32__avx512.cpp)

inline simde__m512 pfv_emul_maskz_cvtepi32_ps(simde__mmask16 k, simde__m512i a) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  simde__m512_private r;
  for (int i = 0; i < 16; ++i) r.f32[i] = ((k >> i) & 1) ? static_cast<float>(x.i32[i]) : 0.0f;
  return simde__m512_from_private(r);
}

inline simde__m512i pfv_emul_maskz_cvtepu8_epi32(simde__mmask16 k, simde__m128i a) {
  const simde__m128i_private x = simde__m128i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 16; ++i) r.i32[i] = ((k >> i) & 1) ? static_cast<int32_t>(x.u8[i]) : 0;
  return simde__m512i_from_private(r);
}

// vcvtps2dq with the default rounding (nearest, ties to even); NaN and out-of-range give INT32_MIN.
inline simde__m512i pfv_emul_maskz_cvtps_epi32(simde__mmask16 k, simde__m512 a) {
  const simde__m512_private x = simde__m512_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 16; ++i) {
    const float f = x.f32[i];
    int32_t v = INT32_MIN;
    if (f >= -2147483648.0f && f < 2147483648.0f) v = static_cast<int32_t>(std::nearbyint(f));
    r.i32[i] = ((k >> i) & 1) ? v : 0;
  }
  return simde__m512i_from_private(r);
}

inline uint8_t pfv_emul_usat_u8(uint32_t v) { return static_cast<uint8_t>(v > 255u ? 255u : v); }

inline simde__m128i pfv_emul_maskz_cvtusepi32_epi8(simde__mmask16 k, simde__m512i a) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  simde__m128i_private r;
  for (int i = 0; i < 16; ++i) r.u8[i] = ((k >> i) & 1) ? pfv_emul_usat_u8(x.u32[i]) : 0;
  return simde__m128i_from_private(r);
}

inline void pfv_emul_mask_cvtusepi32_storeu_epi8(void* p, simde__mmask16 k, simde__m512i a) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  uint8_t* out = static_cast<uint8_t*>(p);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) out[i] = pfv_emul_usat_u8(x.u32[i]);
}

inline simde__m256 pfv_emul_maskz_extractf32x8_ps(simde__mmask8 k, simde__m512 a, int imm) {
  const simde__m512_private x = simde__m512_to_private(a);
  simde__m256_private r;
  for (int i = 0; i < 8; ++i) r.f32[i] = ((k >> i) & 1) ? x.f32[(imm & 1) * 8 + i] : 0.0f;
  return simde__m256_from_private(r);
}

inline simde__m128i pfv_emul_maskz_loadu_epi8(simde__mmask16 k, const void* p) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  simde__m128i_private r;
  for (int i = 0; i < 16; ++i) r.u8[i] = ((k >> i) & 1) ? b[i] : 0;
  return simde__m128i_from_private(r);
}

inline simde__m128 pfv_emul_maskz_loadu_ps_128(simde__mmask8 k, const void* p) {
  const float* f = static_cast<const float*>(p);
  simde__m128_private r;
  for (int i = 0; i < 4; ++i) r.f32[i] = ((k >> i) & 1) ? f[i] : 0.0f;
  return simde__m128_from_private(r);
}

#undef _mm512_maskz_cvtepi32_ps
#undef _mm512_maskz_cvtepu8_epi32
#undef _mm512_maskz_cvtps_epi32
#undef _mm512_maskz_cvtusepi32_epi8
#undef _mm512_mask_cvtusepi32_storeu_epi8
#undef _mm512_maskz_extractf32x8_ps
#undef _mm_maskz_loadu_epi8
#undef _mm_maskz_loadu_ps
#define _mm512_maskz_cvtepi32_ps(k, a) pfv_emul_maskz_cvtepi32_ps((k), (a))
#define _mm512_maskz_cvtepu8_epi32(k, a) pfv_emul_maskz_cvtepu8_epi32((k), (a))
#define _mm512_maskz_cvtps_epi32(k, a) pfv_emul_maskz_cvtps_epi32((k), (a))
#define _mm512_maskz_cvtusepi32_epi8(k, a) pfv_emul_maskz_cvtusepi32_epi8((k), (a))
#define _mm512_mask_cvtusepi32_storeu_epi8(p, k, a) pfv_emul_mask_cvtusepi32_storeu_epi8((p), (k), (a))
#define _mm512_maskz_extractf32x8_ps(k, a, imm) pfv_emul_maskz_extractf32x8_ps((k), (a), (imm))
#define _mm_maskz_loadu_epi8(k, p) pfv_emul_maskz_loadu_epi8((k), (p))
#define _mm_maskz_loadu_ps(k, p) pfv_emul_maskz_loadu_ps_128((k), (p))
