// Memory requests checked against the system (see memory.h).
#include "core/memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace detail {
namespace {

uint64_t meminfo_available() {
  std::ifstream in("/proc/meminfo");
  if (!in) return UINT64_MAX;
  std::string line;
  uint64_t avail = UINT64_MAX, swap = 0;
  while (std::getline(in, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) avail = kb * 1024ull;
    if (std::sscanf(line.c_str(), "SwapFree: %llu kB", &kb) == 1) swap = kb * 1024ull;
  }
  return avail == UINT64_MAX ? avail : avail + swap;
}

// A cgroup v2 file holding a number (or "max"); UINT64_MAX if absent or "max".
uint64_t cgroup_value(const char* name) {
  std::ifstream in(std::string("/sys/fs/cgroup/") + name);
  std::string v;
  if (!in || !(in >> v) || v == "max") return UINT64_MAX;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  return end && *end == '\0' ? static_cast<uint64_t>(x) : UINT64_MAX;
}

uint64_t rlimit_bytes(int resource) {
  struct rlimit r;
  if (::getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return static_cast<uint64_t>(r.rlim_cur);
}

}  // namespace

uint64_t available_memory() {
  uint64_t m = meminfo_available();
  const uint64_t max = cgroup_value("memory.max"), cur = cgroup_value("memory.current");
  if (max != UINT64_MAX && cur != UINT64_MAX) m = std::min<uint64_t>(m, max > cur ? max - cur : 0);
  m = std::min(m, rlimit_bytes(RLIMIT_AS));
  m = std::min(m, rlimit_bytes(RLIMIT_DATA));
  if (const char* env = std::getenv("PYFLAME_VISION_MEMORY_LIMIT")) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0') m = std::min<uint64_t>(m, static_cast<uint64_t>(v));
  }
  return m;
}

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) v /= 1024.0, ++u;
  char buf[96];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " bytes", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s (%" PRIu64 " bytes)", v, units[u], bytes);
  }
  return buf;
}

namespace {
std::string available_text(uint64_t avail) {
  return avail == UINT64_MAX ? std::string("the system refused it") : "only " + format_bytes(avail) + " are available";
}
}  // namespace

void check_memory(uint64_t bytes, const std::string& what) {
  const uint64_t avail = available_memory();
  if (bytes > avail)
    throw OutOfMemory("cannot allocate " + format_bytes(bytes) + " for " + what + ": " + available_text(avail), bytes);
}

void throw_out_of_memory(uint64_t bytes, const std::string& what) {
  const uint64_t avail = available_memory();
  throw OutOfMemory("cannot allocate " + format_bytes(bytes) + " for " + what + ": the allocation failed" +
                        (avail == UINT64_MAX ? std::string() : " (" + available_text(avail) + ")"),
                    bytes);
}

}  // namespace detail
}  // namespace pyflame_vision
