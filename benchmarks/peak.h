// Measured fp32 FMA peak of this machine (the denominator of "% of peak" in
// kernel_bench). Only peak_avx2.cpp / peak_avx512.cpp are compiled with ISA
// flags; callers must check pyflame_vision::detected_isa() first (peak.cpp
// does).
#pragma once

#include <cstdint>

#include "pyflame_vision/cpu.h"

namespace pfv_bench {

/// GFLOP/s (one FMA = 2 flops) of `threads` threads each running independent
/// FMA chains at `tier` (avx2 or avx512; scalar is measured with the avx2 loop
/// when available, since "peak" means the machine's). Best of `trials`
/// runs of about `seconds` each. Throws std::runtime_error if the CPU lacks
/// the tier or no SIMD peak loop was compiled.
double fma_peak_gflops(pyflame_vision::Isa tier, int threads, double seconds = 0.25, int trials = 3);

/// The tier whose loop fma_peak_gflops uses for `tier`.
pyflame_vision::Isa peak_tier(pyflame_vision::Isa tier);

}  // namespace pfv_bench

// The ISA-specific loops (plain C functions; no STL or inline code shared
// with baseline files). Each performs `iters` iterations of ACC independent
// FMA chains on full vectors and returns a checksum so nothing is elided.
extern "C" float pfv_peak_loop_avx2(uint64_t iters);    // 12 ymm chains: 12*8*2 flops per iteration
extern "C" float pfv_peak_loop_avx512(uint64_t iters);  // 24 zmm chains: 24*16*2 flops per iteration
