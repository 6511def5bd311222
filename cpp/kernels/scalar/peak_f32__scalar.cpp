// Multiply-add peak loop of the baseline build (the scalar tier): what code
// compiled without ISA flags can reach. On x86-64 the baseline is SSE2, so the
// loop runs 12 independent 4-float chains of a multiply then an add (no FMA in
// the baseline): 12 chains cover latency (mul + add ~ 6-8 cycles) x 2 pipes
// and, with the two constants, fit the 16 xmm registers.
#include <cstddef>

#include "../microkernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pyflame_vision {
namespace kernels {

#if defined(__SSE2__)

#define PFV_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

float peak_muladd_f32__scalar(size_t iters) {
  // acc = acc * a + b converges to b / (1 - a) = 1e-3: no overflow, no denormals.
  const __m128 a = _mm_set1_ps(0.999f), b = _mm_set1_ps(1e-6f);
#define PFV_CHAIN(i) __m128 c##i = _mm_set1_ps(0.05f * (i));
  PFV_ALL(PFV_CHAIN)
#undef PFV_CHAIN
  for (size_t i = 0; i < iters; ++i) {
#define PFV_STEP(i) c##i = _mm_add_ps(_mm_mul_ps(c##i, a), b);
    PFV_ALL(PFV_STEP)
#undef PFV_STEP
  }
  __m128 s = _mm_setzero_ps();
#define PFV_SUM(i) s = _mm_add_ps(s, c##i);
  PFV_ALL(PFV_SUM)
#undef PFV_SUM
  float lanes[4];
  _mm_storeu_ps(lanes, s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

size_t peak_muladd_f32__scalar_flops() { return 12 * 4 * 2; }

#undef PFV_ALL

#else

float peak_muladd_f32__scalar(size_t iters) {
  float c[16];
  for (int j = 0; j < 16; ++j) c[j] = 0.05f * static_cast<float>(j);
  for (size_t i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) c[j] = c[j] * 0.999f + 1e-6f;
  float s = 0.0f;
  for (int j = 0; j < 16; ++j) s += c[j];
  return s;
}

size_t peak_muladd_f32__scalar_flops() { return 16 * 2; }

#endif

}  // namespace kernels
}  // namespace pyflame_vision
