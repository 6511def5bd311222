// Shared helpers for the pyflame_vision C++ tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>
#include <utility>

#include "pyflame_vision/cpu.h"

namespace pfv_test {

/// Restores the thread count and ISA cap a test changes.
class CpuStateGuard {
 public:
  CpuStateGuard() : threads_(pyflame_vision::get_num_threads()), isa_(pyflame_vision::active_isa()) {}
  ~CpuStateGuard() {
    pyflame_vision::set_num_threads(threads_);
    pyflame_vision::set_max_isa(isa_);
  }
  CpuStateGuard(const CpuStateGuard&) = delete;
  CpuStateGuard& operator=(const CpuStateGuard&) = delete;

 private:
  int threads_;
  pyflame_vision::Isa isa_;
};

/// The tier PYFLAME_VISION_REQUIRE_ISA names ("scalar", "avx2", "avx512"), or
/// scalar when unset. CI sets it to the tier the CPU reports, so that a test
/// of a tier the machine has can never be skipped there.
inline pyflame_vision::Isa required_isa() {
  const char* v = std::getenv("PYFLAME_VISION_REQUIRE_ISA");
  return (v == nullptr || *v == '\0') ? pyflame_vision::Isa::scalar : pyflame_vision::parse_isa(v);
}

/// Skips (visibly) when this CPU cannot run `isa`, or fails when
/// PYFLAME_VISION_REQUIRE_ISA requires that tier. Use as the first statement.
#define PFV_REQUIRE_TIER(isa)                                                                                \
  do {                                                                                                       \
    if ((isa) > ::pyflame_vision::detected_isa()) {                                                          \
      if ((isa) <= ::pfv_test::required_isa())                                                               \
        FAIL() << "PYFLAME_VISION_REQUIRE_ISA=" << ::pyflame_vision::isa_name(::pfv_test::required_isa())    \
               << " but this CPU lacks the " << ::pyflame_vision::isa_name(isa) << " tier (detected "        \
               << ::pyflame_vision::isa_name(::pyflame_vision::detected_isa()) << ")";                       \
      GTEST_SKIP() << "CPU lacks the " << ::pyflame_vision::isa_name(isa) << " tier (detected "              \
                   << ::pyflame_vision::isa_name(::pyflame_vision::detected_isa())                           \
                   << "); not tested (PYFLAME_VISION_REQUIRE_ISA makes this a failure)";                     \
    }                                                                                                        \
  } while (0)

/// Runs `f`, expecting it to throw an exception of type E (or a subclass).
/// Returns the message; records a failure (and returns "") if nothing or
/// something of an unrelated type is thrown.
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << typeid(E).name() << ", got " << typeid(e).name() << ": " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected " << typeid(E).name() << ", but nothing was thrown";
  return {};
}

inline ::testing::AssertionResult Contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << haystack << "\" does not contain \"" << needle << "\"";
}

inline ::testing::AssertionResult StartsWith(const std::string& s, const std::string& prefix) {
  if (s.compare(0, prefix.size(), prefix) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << s << "\" does not start with \"" << prefix << "\"";
}

inline ::testing::AssertionResult EndsWith(const std::string& s, const std::string& suffix) {
  if (s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << s << "\" does not end with \"" << suffix << "\"";
}

/// 64-bit FNV-1a of the bytes of `s` (the same function the expected values
/// were computed with in Python from torchvision's repr()/state_dict()).
inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace pfv_test
