// Internal: memory requests checked against what the system can give, so a
// request that cannot succeed raises OutOfMemory (with what and how much)
// before anything is allocated, instead of being overcommitted by the kernel
// and killed by the OOM killer when the pages are touched.
#pragma once

#include <cstdint>
#include <string>

namespace pyflame_vision {
namespace detail {

/// Bytes this process can still obtain: the smallest of MemAvailable +
/// SwapFree (/proc/meminfo), the cgroup's memory.max minus memory.current
/// (cgroup v2) and RLIMIT_AS / RLIMIT_DATA. UINT64_MAX if none is known.
/// PYFLAME_VISION_MEMORY_LIMIT (bytes; for tests) caps it further. Reads a few
/// small files; thread-safe.
uint64_t available_memory();

/// "2.00 GiB (2147483648 bytes)": a byte count for messages.
std::string format_bytes(uint64_t bytes);

/// Throws OutOfMemory("cannot allocate <bytes> for <what>: only <available> are available")
/// if `bytes` exceed available_memory().
void check_memory(uint64_t bytes, const std::string& what);

/// OutOfMemory("cannot allocate <bytes> for <what>") with the available
/// memory: for an allocation that failed (std::bad_alloc).
[[noreturn]] void throw_out_of_memory(uint64_t bytes, const std::string& what);

}  // namespace detail
}  // namespace pyflame_vision
