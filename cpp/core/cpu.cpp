// CPU feature detection, instruction-set caps and the thread-count setting.
#include "pyflame_vision/cpu.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace {

constexpr const char* kValidIsaNames = "\"scalar\", \"avx2\", \"avx512\"";

#if defined(__x86_64__) || defined(__i386__)
// XGETBV via inline assembly: the baseline build has no -mxsave, so the
// _xgetbv intrinsic is not available here.
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

Isa detect() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return Isa::scalar;
  const bool osxsave = (ecx >> 27) & 1u;
  const bool avx = (ecx >> 28) & 1u;
  const bool fma = (ecx >> 12) & 1u;
  if (!osxsave || !avx || !fma) return Isa::scalar;
  const uint64_t xcr0 = read_xcr0();
  // XMM (bit 1) and YMM (bit 2) state enabled by the OS.
  if ((xcr0 & 0x6u) != 0x6u) return Isa::scalar;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return Isa::scalar;
  const bool avx2 = (ebx >> 5) & 1u;
  if (!avx2) return Isa::scalar;
  const bool f = (ebx >> 16) & 1u;
  const bool dq = (ebx >> 17) & 1u;
  const bool bw = (ebx >> 30) & 1u;
  const bool vl = (ebx >> 31) & 1u;
  // Opmask (bit 5), upper halves of ZMM0-15 (bit 6), ZMM16-31 (bit 7).
  const bool os_zmm = (xcr0 & 0xE0u) == 0xE0u;
  if (f && dq && bw && vl && os_zmm) return Isa::avx512;
  return Isa::avx2;
}
#else
Isa detect() { return Isa::scalar; }
#endif

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// The environment is read once; an invalid value is remembered and reported
// (as InvalidArgument) at every use, so it cannot be silently ignored.
struct EnvIsa {
  bool set = false;
  Isa cap = Isa::avx512;
  std::string error;
};

const EnvIsa& env_isa() {
  static const EnvIsa value = [] {
    EnvIsa r;
    const char* v = std::getenv("PYFLAME_VISION_MAX_ISA");
    if (v == nullptr || trim(v).empty()) return r;
    try {
      r.cap = parse_isa(trim(v));
      r.set = true;
    } catch (const InvalidArgument&) {
      r.error = std::string("[cpu] environment variable PYFLAME_VISION_MAX_ISA: expected one of ") +
                kValidIsaNames + ", got \"" + v + "\"";
    }
    return r;
  }();
  return value;
}

std::atomic<int> g_max_isa{static_cast<int>(Isa::avx512)};

struct EnvThreads {
  int n = 0;  // 0: not set
  std::string error;
};

const EnvThreads& env_threads() {
  static const EnvThreads value = [] {
    EnvThreads r;
    const char* v = std::getenv("PYFLAME_VISION_NUM_THREADS");
    if (v == nullptr) return r;
    const std::string s = trim(v);
    if (s.empty()) return r;
    bool ok = !s.empty() && s.size() <= 9;
    for (char c : s) ok = ok && std::isdigit(static_cast<unsigned char>(c));
    const long n = ok ? std::strtol(s.c_str(), nullptr, 10) : 0;
    if (!ok || n < 1 || n > kMaxThreads) {
      r.error = std::string("[cpu] environment variable PYFLAME_VISION_NUM_THREADS: expected an integer from 1 to ") +
                std::to_string(kMaxThreads) + ", got \"" + v + "\"";
      return r;
    }
    r.n = static_cast<int>(n);
    return r;
  }();
  return value;
}

int affinity_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

std::atomic<int> g_num_threads{0};  // 0: not set by set_num_threads()

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  const std::string n = lower(name);
  if (n == "scalar") return Isa::scalar;
  if (n == "avx2") return Isa::avx2;
  if (n == "avx512") return Isa::avx512;
  throw InvalidArgument(std::string("[cpu] unknown instruction set \"") + name + "\": expected one of " +
                        kValidIsaNames);
}

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() {
  const EnvIsa& env = env_isa();
  if (!env.error.empty()) throw InvalidArgument(env.error);
  int isa = static_cast<int>(detected_isa());
  isa = std::min(isa, static_cast<int>(env.cap));
  isa = std::min(isa, g_max_isa.load(std::memory_order_relaxed));
  return static_cast<Isa>(isa);
}

void set_max_isa(Isa isa) {
  const int v = static_cast<int>(isa);
  if (v < static_cast<int>(Isa::scalar) || v > static_cast<int>(Isa::avx512)) {
    throw InvalidArgument("[cpu] set_max_isa: expected one of " + std::string(kValidIsaNames) +
                          " (0..2), got value " + std::to_string(v));
  }
  g_max_isa.store(v, std::memory_order_relaxed);
}

int get_num_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  const EnvThreads& env = env_threads();
  if (!env.error.empty()) throw InvalidArgument(env.error);
  if (env.n > 0) return env.n;
  static const int cpus = affinity_cpu_count();
  return cpus;
}

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads) {
    throw InvalidArgument("[cpu] set_num_threads: expected a thread count from 1 to " + std::to_string(kMaxThreads) +
                          ", got " + std::to_string(n));
  }
  g_num_threads.store(n, std::memory_order_relaxed);
}

}  // namespace pyflame_vision
