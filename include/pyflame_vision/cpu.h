// pyflame_vision/cpu.h - CPU features, instruction-set tiers and threads.
//
// Kernels are compiled for several instruction-set tiers and chosen at run
// time. The tier in use is the lowest of:
//   - what the CPU and the operating system support (CPUID + XGETBV),
//   - the cap in the environment variable PYFLAME_VISION_MAX_ISA
//     ("scalar", "avx2" or "avx512"; read once, at first use; an invalid
//     value makes active_isa() and every compile throw InvalidArgument naming
//     the variable and the value),
//   - the cap set by set_max_isa() (for tests and benchmarks).
//
// Threads: one process-wide pool. Its size is, in order of precedence,
// set_num_threads(n), the environment variable PYFLAME_VISION_NUM_THREADS, or
// the number of CPUs this process may run on. Both settings take 1 ..
// kMaxThreads; anything else (a value out of range, not an integer) is
// refused with InvalidArgument naming the setting and the value - by
// set_num_threads() at once, by get_num_threads() (so every forward) for the
// environment variable - never clamped silently. If the system cannot start
// that many threads, the forward throws Error saying so and the pool stops the
// threads it had started. A child process forked after the pool ran starts its
// own pool of get_num_threads() threads at its first forward. The pool's
// get_num_threads() - 1 worker threads are named "pyflame_vision" (top -H,
// /proc/PID/task/*/comm); the calling thread is the last one. Results never depend on the
// number of threads: work is split into a fixed grid of tiles, each computed
// by exactly one thread in a fixed order.
//
// All functions are thread-safe.
#pragma once

#include <string>

namespace pyflame_vision {

/// Instruction-set tiers, lowest first.
enum class Isa : int {
  scalar = 0,  ///< portable C++, no SIMD intrinsics
  avx2 = 1,    ///< AVX2 + FMA3 (Haswell, Zen 1 and later)
  avx512 = 2,  ///< AVX-512 F/BW/DQ/VL (Skylake-SP, Zen 4 and later)
};

/// "scalar", "avx2", "avx512".
const char* isa_name(Isa isa);
/// Parses an ISA name (case-insensitive); throws InvalidArgument listing the valid names.
Isa parse_isa(const std::string& name);
/// The best tier this CPU and OS support (ignores every cap).
Isa detected_isa();
/// The tier kernels use now: min(detected, environment cap, set_max_isa cap).
Isa active_isa();
/// Caps the tier (never raises it above detected_isa()). Throws InvalidArgument
/// on an out-of-range value. Executables compiled earlier keep their tier.
void set_max_isa(Isa isa);

/// The largest thread count set_num_threads and PYFLAME_VISION_NUM_THREADS accept.
constexpr int kMaxThreads = 4096;

/// Threads used by compute (1 .. kMaxThreads). Throws InvalidArgument if
/// PYFLAME_VISION_NUM_THREADS decides and holds an invalid value.
int get_num_threads();
/// Sets the pool size; throws InvalidArgument unless 1 <= n <= kMaxThreads
/// (the message gives n).
void set_num_threads(int n);

}  // namespace pyflame_vision
