// pyflame_vision/bench.h - measuring this machine and our kernels.
//
// The denominators and numerators of every "% of peak" figure the benchmark
// suite reports (python -m benchmarks, benchmarks/kernel_bench.cpp). They live
// in the library so that the Python package, the C++ tools and C++
// applications measure the same way.
//
// Units: GFLOP/s counts one multiply-add as 2 floating-point operations;
// times are seconds of wall-clock time (std::chrono::steady_clock).
//
// Thread safety: these functions run work on their own threads (peak) or on
// the library's thread pool at the requested thread count, which they set
// with set_num_threads() and restore before returning. Do not call them
// while other threads use the library: they would compete for the cores and
// see the thread count change.
#pragma once

#include <cstdint>
#include <string>

#include "pyflame_vision/cpu.h"

namespace pyflame_vision {
namespace bench {

/// The FP32 multiply-add peak of `threads` threads at instruction-set tier
/// `tier`, in GFLOP/s: each thread runs independent multiply-add chains on
/// full vectors of the tier for about `seconds` (avx512: 24 zmm FMA chains;
/// avx2: 12 ymm FMA chains; scalar: the baseline build's separate multiply
/// and add on 4-float SSE2 vectors where the target has SSE2, otherwise 16
/// plain float chains). The threads start together; the result is the best
/// of `trials` runs, so momentary contention from other processes lowers it
/// as little as possible.
/// Throws Unsupported if this CPU lacks `tier`; InvalidArgument if threads < 1,
/// trials < 1 or seconds is not in (0, 60].
double measure_peak_gflops(Isa tier, int threads, double seconds = 0.2, int trials = 3);

/// The shape of one convolution (NHWC activations internally; the same
/// fields as a line of benchmarks/shapes/*.txt).
struct ConvCase {
  int64_t batch = 1, in_h = 0, in_w = 0, in_c = 0, out_c = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1, groups = 1;
};

/// Result of timing one kernel.
struct KernelTiming {
  double median_seconds = 0.0;  ///< median over samples of the time per run
  double min_seconds = 0.0;     ///< fastest sample's time per run
  int samples = 0;              ///< samples taken (the `repeats` argument)
  int runs_per_sample = 0;      ///< back-to-back runs timed together in one sample
  int64_t macs = 0;             ///< multiply-accumulates of one run (the direct convolution's)
  int64_t macs_executed = 0;    ///< those the implementation executes (fewer for Winograd)
  std::string algorithm;        ///< the kernel's algorithm and microkernel
};

/// Times the convolution kernel the execution engine would use for `c`
/// (weights packed once, bias, epilogue "none", "relu", "silu" or "sigmoid")
/// on deterministic pseudo-random data at `tier` with `threads` threads:
/// two untimed runs, then `repeats` samples of k back-to-back runs, k chosen
/// so that a sample lasts at least `min_ms` milliseconds.
/// Throws ShapeError/InvalidArgument for an inconsistent case (channels not
/// divisible by groups, empty output, ...), Unsupported if this CPU lacks
/// `tier`, InvalidArgument for threads < 1, repeats < 1 or an unknown epilogue.
KernelTiming time_conv2d(const ConvCase& c, Isa tier, int threads, int repeats = 7, double min_ms = 2.0,
                         const std::string& epilogue = "none");

/// Times the packed GEMM y[m, n] = x[m, k] * W[n, k]^T + b[n] (the Linear
/// kernel, which also carries every 1x1 convolution) like time_conv2d.
KernelTiming time_gemm(int64_t m, int64_t n, int64_t k, Isa tier, int threads, int repeats = 7,
                       double min_ms = 2.0);

}  // namespace bench
}  // namespace pyflame_vision
