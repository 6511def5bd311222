// Force-included (-include) when cpp/kernels/avx512/ukernels_f32__avx512.cpp
// is compiled for the emulated test: the AVX-512 intrinsics become SIMDe's
// portable implementations (SIMD Everywhere, Debian's libsimde-dev), so the
// AVX-512 microkernels run on any x86-64 CPU. The real <immintrin.h> comes
// first (its include guard then makes the kernel's own include a no-op), and
// SIMDe's native aliases rename the AVX-512 names the kernel uses.
//
// SIMDe 0.7.4 lacks four intrinsics the kernels use; they are written here
// from Intel's definitions (masked lanes are neither read nor written).
#pragma once

#include <immintrin.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

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
