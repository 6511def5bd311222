// AVX-512F FMA peak loop (pyflame_vision::bench::measure_peak_gflops); only
// called after runtime detection (cpp/bench/bench.cpp).
//
// 24 independent accumulators: covers 4-cycle latency x 2 pipes on Intel and
// Zen 4/5 (which double-pump 512-bit FMAs) with margin; 24 + 2 constants fit
// the 32 zmm registers.
#include <immintrin.h>

#include <cstddef>

#include "../microkernels.h"

#define PFV_CHAIN(i) __m512 c##i = _mm512_set1_ps(0.05f * (i));
#define PFV_STEP(i) c##i = _mm512_fmadd_ps(c##i, a, b);
#define PFV_ALL(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) \
      X(21) X(22) X(23)

namespace pyflame_vision {
namespace kernels {

float peak_fma_f32__avx512(size_t iters) {
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-6f);
  PFV_ALL(PFV_CHAIN)
  for (size_t i = 0; i < iters; ++i) {
    PFV_ALL(PFV_STEP)
  }
  __m512 s = _mm512_setzero_ps();
#define PFV_SUM(i) s = _mm512_add_ps(s, c##i);
  PFV_ALL(PFV_SUM)
#undef PFV_SUM
  // Not _mm512_reduce_add_ps: GCC 12 warns about its internals (-Wuninitialized).
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  float sum = 0.0f;
  for (float x : lanes) sum += x;
  return sum;
}

}  // namespace kernels
}  // namespace pyflame_vision
