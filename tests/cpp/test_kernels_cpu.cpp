// pyflame_vision/cpu.h (instruction-set tiers, caps, thread count) and the
// process-wide pool in cpp/core/thread_pool.h.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../../cpp/core/thread_pool.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
using pfv::Isa;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

using pfv_test::CpuStateGuard;

/// Aborts the process with a message if the guarded scope takes longer than
/// `seconds` (a deadlocked pool would otherwise hang the test run).
class Watchdog {
 public:
  Watchdog(const char* what, int seconds) : thread_([this, what, seconds] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
        std::fprintf(stderr, "\nWATCHDOG: %s did not finish within %d s (deadlock?)\n", what, seconds);
        std::fflush(stderr);
        std::abort();
      }
    }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// ================================================================== ISA

TEST(CpuIsa, NamesRoundTrip) {
  EXPECT_STREQ(pfv::isa_name(Isa::scalar), "scalar");
  EXPECT_STREQ(pfv::isa_name(Isa::avx2), "avx2");
  EXPECT_STREQ(pfv::isa_name(Isa::avx512), "avx512");
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) EXPECT_EQ(pfv::parse_isa(pfv::isa_name(isa)), isa);
  EXPECT_LT(Isa::scalar, Isa::avx2);
  EXPECT_LT(Isa::avx2, Isa::avx512);
}

TEST(CpuIsa, ParseIsCaseInsensitive) {
  EXPECT_EQ(pfv::parse_isa("SCALAR"), Isa::scalar);
  EXPECT_EQ(pfv::parse_isa("AVX2"), Isa::avx2);
  EXPECT_EQ(pfv::parse_isa("Avx512"), Isa::avx512);
  EXPECT_EQ(pfv::parse_isa("aVx512"), Isa::avx512);
}

TEST(CpuIsa, ParseRejectsUnknownNamesListingValidOnes) {
  for (const char* bad : {"", "sse", "sse4", "avx", "avx-512", "avx512f", "avx5120", "avx2 ", " avx2", "neon",
                          "native", "0", "2"}) {
    const std::string m = message_of<pfv::InvalidArgument>([&] { pfv::parse_isa(bad); });
    EXPECT_TRUE(Contains(m, "scalar")) << "for \"" << bad << "\"";
    EXPECT_TRUE(Contains(m, "avx2")) << "for \"" << bad << "\"";
    EXPECT_TRUE(Contains(m, "avx512")) << "for \"" << bad << "\"";
    if (*bad != '\0') {
      EXPECT_TRUE(Contains(m, std::string("\"") + bad + "\"")) << "message should quote the input";
    }
  }
}

TEST(CpuIsa, DetectedMatchesCompilerCpuFeatures) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  // libgcc's checks include the OS (XGETBV) state, like the contract.
  __builtin_cpu_init();
  Isa expected = Isa::scalar;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) expected = Isa::avx2;
  if (expected == Isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    expected = Isa::avx512;
  EXPECT_EQ(pfv::detected_isa(), expected) << "detected " << pfv::isa_name(pfv::detected_isa()) << ", CPU has "
                                           << pfv::isa_name(expected);
#else
  GTEST_SKIP() << "no compiler CPU-feature builtins to cross-check on this platform";
#endif
  std::printf("[ cpu ] detected %s, active %s, %d threads\n", pfv::isa_name(pfv::detected_isa()),
              pfv::isa_name(pfv::active_isa()), pfv::get_num_threads());
}

/// The environment cap, as the process saw it (tests may run under PYFLAME_VISION_MAX_ISA).
Isa env_cap() {
  const char* v = std::getenv("PYFLAME_VISION_MAX_ISA");
  if (v == nullptr || *v == '\0') return Isa::avx512;
  return pfv::parse_isa(v);
}

TEST(CpuIsa, SetMaxIsaCapsActiveNeverRaisesAboveDetected) {
  CpuStateGuard restore;
  const Isa detected = pfv::detected_isa();
  for (Isa cap : {Isa::avx512, Isa::scalar, Isa::avx2, Isa::avx512, Isa::scalar}) {
    pfv::set_max_isa(cap);
    const Isa want = std::min({cap, detected, env_cap()});
    EXPECT_EQ(pfv::active_isa(), want) << "cap " << pfv::isa_name(cap);
    EXPECT_LE(pfv::active_isa(), detected);
    EXPECT_EQ(pfv::detected_isa(), detected) << "set_max_isa must not change detection";
  }
}

TEST(CpuIsa, SetMaxIsaRejectsOutOfRangeValues) {
  CpuStateGuard restore;
  const Isa before = pfv::active_isa();
  for (int v : {-1, 3, 7, INT_MAX, INT_MIN}) {
    const std::string m = message_of<pfv::InvalidArgument>([&] { pfv::set_max_isa(static_cast<Isa>(v)); });
    EXPECT_TRUE(Contains(m, std::to_string(v))) << "message should give the value";
    EXPECT_EQ(pfv::active_isa(), before) << "a rejected cap must not change the state";
  }
}

// ================================================================== threads

TEST(CpuThreads, SetAndGet) {
  CpuStateGuard restore;
  EXPECT_GE(pfv::get_num_threads(), 1);
  for (int n : {1, 2, 3, 7, 1}) {
    pfv::set_num_threads(n);
    EXPECT_EQ(pfv::get_num_threads(), n);
  }
}

TEST(CpuThreads, NonPositiveCountsThrowInvalidArgumentNamingN) {
  CpuStateGuard restore;
  pfv::set_num_threads(2);
  for (int n : {0, -1, -64, INT_MIN}) {
    const std::string m = message_of<pfv::InvalidArgument>([&] { pfv::set_num_threads(n); });
    EXPECT_TRUE(Contains(m, std::to_string(n)));
    EXPECT_EQ(pfv::get_num_threads(), 2) << "a rejected count must not change the setting";
  }
}

// The environment is read once, at first use, so these run in a fresh
// process: gtest's "threadsafe" death-test style re-executes this binary,
// which inherits the variable set here.
class CpuEnvironment : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  void TearDown() override {
    unsetenv("PYFLAME_VISION_MAX_ISA");
    unsetenv("PYFLAME_VISION_NUM_THREADS");
  }
};

[[noreturn]] void exit_with_state() {
  int code = 0;
  try {
    std::fprintf(stderr, "active=%s threads=%d\n", pfv::isa_name(pfv::active_isa()), pfv::get_num_threads());
  } catch (const pfv::InvalidArgument& e) {
    std::fprintf(stderr, "InvalidArgument: %s\n", e.what());
    code = 3;
  }
  std::fflush(stderr);
  std::_Exit(code);
}

TEST_F(CpuEnvironment, MaxIsaCapsTheActiveTier) {
  setenv("PYFLAME_VISION_MAX_ISA", "scalar", 1);
  EXPECT_EXIT(exit_with_state(), ::testing::ExitedWithCode(0), "active=scalar ");
  setenv("PYFLAME_VISION_MAX_ISA", "AVX2", 1);
  const std::string want = std::string("active=") + pfv::isa_name(std::min(Isa::avx2, pfv::detected_isa())) + " ";
  EXPECT_EXIT(exit_with_state(), ::testing::ExitedWithCode(0), want);
  setenv("PYFLAME_VISION_MAX_ISA", "avx512", 1);  // never above detected
  EXPECT_EXIT(exit_with_state(), ::testing::ExitedWithCode(0),
              std::string("active=") + pfv::isa_name(pfv::detected_isa()) + " ");
}

TEST_F(CpuEnvironment, InvalidMaxIsaIsReportedNotIgnored) {
  setenv("PYFLAME_VISION_MAX_ISA", "avx9000", 1);
  EXPECT_EXIT(exit_with_state(), ::testing::ExitedWithCode(3), "PYFLAME_VISION_MAX_ISA.*avx9000");
}

TEST_F(CpuEnvironment, NumThreadsSetsThePoolSizeAndSetNumThreadsOverridesIt) {
  setenv("PYFLAME_VISION_NUM_THREADS", "3", 1);
  EXPECT_EXIT(exit_with_state(), ::testing::ExitedWithCode(0), "threads=3\n");
  EXPECT_EXIT(
      {
        pfv::set_num_threads(5);
        exit_with_state();
      },
      ::testing::ExitedWithCode(0), "threads=5\n");
}

// ================================================================== pool

using pfv::detail::parallel_for;

TEST(ThreadPool, EachTaskRunsExactlyOnce) {
  CpuStateGuard restore;
  Watchdog dog("EachTaskRunsExactlyOnce", 120);
  for (int threads : {1, 2, 3, 4}) {
    pfv::set_num_threads(threads);
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}, size_t{1000}, size_t{100003}}) {
      std::vector<std::atomic<int>> count(n);
      std::vector<size_t> value(n, 0);  // plain writes: must be visible to the caller after return
      std::mutex ids_mutex;
      std::set<std::thread::id> ids;
      auto task = [&](size_t t) {
        count[t].fetch_add(1, std::memory_order_relaxed);
        value[t] = t * 3 + 1;
        if (t % 97 == 0) {
          std::lock_guard<std::mutex> lock(ids_mutex);
          ids.insert(std::this_thread::get_id());
        }
      };
      parallel_for(n, task);
      size_t wrong = 0;
      for (size_t t = 0; t < n; ++t) wrong += count[t].load() != 1 || value[t] != t * 3 + 1;
      EXPECT_EQ(wrong, 0u) << n << " tasks on " << threads << " threads";
      EXPECT_LE(ids.size(), static_cast<size_t>(threads)) << "more threads than get_num_threads()";
      if (threads == 1) {
        ASSERT_EQ(ids.size(), 1u);
        EXPECT_EQ(*ids.begin(), std::this_thread::get_id()) << "one thread: the caller runs every task";
      }
    }
  }
}

TEST(ThreadPool, ZeroTasksCallNothing) {
  int calls = 0;
  auto task = [&](size_t) { ++calls; };
  parallel_for(0, task);
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, NestedCallsRunInlineOnTheTaskThread) {
  CpuStateGuard restore;
  Watchdog dog("NestedCallsRunInline", 60);
  pfv::set_num_threads(2);
  constexpr size_t kOuter = 16, kInner = 33;
  std::vector<std::atomic<int>> count(kOuter * kInner);
  std::atomic<int> foreign{0};
  auto outer = [&](size_t o) {
    const auto me = std::this_thread::get_id();
    auto inner = [&](size_t i) {
      count[o * kInner + i].fetch_add(1);
      if (std::this_thread::get_id() != me) foreign.fetch_add(1);
    };
    parallel_for(kInner, inner);
  };
  parallel_for(kOuter, outer);
  for (size_t i = 0; i < count.size(); ++i) ASSERT_EQ(count[i].load(), 1) << "task " << i;
  EXPECT_EQ(foreign.load(), 0) << "nested tasks ran on another thread";
}

TEST(ThreadPool, ConcurrentCallersAllComplete) {
  CpuStateGuard restore;
  Watchdog dog("ConcurrentCallersAllComplete", 120);
  pfv::set_num_threads(2);
  constexpr int kCallers = 4, kRounds = 300;
  std::atomic<int> errors{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        const size_t n = 1 + static_cast<size_t>((c * 131 + r * 17) % 257);
        std::vector<std::atomic<int>> count(n);
        auto task = [&](size_t t) { count[t].fetch_add(1, std::memory_order_relaxed); };
        parallel_for(n, task);
        for (size_t t = 0; t < n; ++t)
          if (count[t].load() != 1) errors.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(errors.load(), 0);
}

TEST(ThreadPool, ManyTinyJobsInARow) {
  // Short jobs back to back stress the hand-over between jobs (lost wake-ups,
  // a worker still inside the previous job).
  CpuStateGuard restore;
  Watchdog dog("ManyTinyJobsInARow", 120);
  pfv::set_num_threads(2);
  size_t bad = 0;
  for (int r = 0; r < 20000; ++r) {
    std::atomic<int> a{0}, b{0};
    auto task = [&](size_t t) { (t == 0 ? a : b).fetch_add(1, std::memory_order_relaxed); };
    parallel_for(2, task);
    bad += a.load() != 1 || b.load() != 1;
  }
  EXPECT_EQ(bad, 0u);
}

TEST(ThreadPool, ThreadCountChangesWhileOthersRun) {
  // All cpu.h functions are thread-safe: resizing between jobs while other
  // threads submit work must neither lose tasks nor hang.
  CpuStateGuard restore;
  Watchdog dog("ThreadCountChangesWhileOthersRun", 120);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 2; ++c) {
    callers.emplace_back([&] {
      while (!stop.load()) {
        std::vector<std::atomic<int>> count(50);
        auto task = [&](size_t t) { count[t].fetch_add(1, std::memory_order_relaxed); };
        parallel_for(count.size(), task);
        for (auto& x : count)
          if (x.load() != 1) errors.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    pfv::set_num_threads(1 + i % 3);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop.store(true);
  for (auto& t : callers) t.join();
  EXPECT_EQ(errors.load(), 0);
}

}  // namespace
