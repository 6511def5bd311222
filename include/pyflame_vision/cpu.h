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
// the number of CPUs this process may run on (an invalid environment value
// makes get_num_threads() throw InvalidArgument naming it). Results never depend on the
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

/// Threads used by compute (>= 1).
int get_num_threads();
/// Sets the pool size; throws InvalidArgument if n < 1 (message gives n).
void set_num_threads(int n);

}  // namespace pyflame_vision
