// The fault catalogue, engine side (C++): the thread pool under task
// failures, cancellation and fork; the thread-count limits; a forward
// cancelled through CancelScope. tests/python/test_faults.py has the Python
// side (Ctrl-C, os.fork and multiprocessing, PYFLAME_VISION_NUM_THREADS,
// thread-creation failure).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <mutex>
#include <new>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "pyflame_vision/cancel.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/models/registry.h"
#include "test_helpers.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PFV_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PFV_SANITIZED 1
#endif

namespace {

namespace pfv = pyflame_vision;
namespace models = pyflame_vision::models;
using pfv::detail::parallel_for;
using pfv::detail::TaskFn;
using pfv_test::Contains;
using pfv_test::message_of;

pfv::Tensor input(pfv::Shape shape, unsigned seed) {
  pfv::Tensor t{pfv::TensorSpec(shape)};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_f32()[i] = d(rng);
  return t;
}

bool same(const pfv::Tensor& a, const pfv::Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data_f32(), b.data_f32(), static_cast<size_t>(a.numel()) * 4) == 0;
}

int threads_in_process() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// Restores the thread count a test changed.
struct KeepThreads {
  int n = pfv::get_num_threads();
  ~KeepThreads() { pfv::set_num_threads(n); }
};

// Runs n tasks; returns how many distinct threads ran at least one (the pool is in use if > 1).
int threads_used(size_t n) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::vector<std::atomic<int>> runs(n);
  auto task = [&](size_t i) {
    runs[i].fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  };
  parallel_for(n, TaskFn(task));
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(runs[i].load(), 1) << "task " << i;
  return static_cast<int>(ids.size());
}

TEST(FaultThreads, ThreadCountsOutsideOneTo4096AreRefused) {
  KeepThreads keep;
  for (int n : {0, -1, pfv::kMaxThreads + 1, 100000}) {
    const std::string msg = message_of<pfv::InvalidArgument>([&] { pfv::set_num_threads(n); });
    EXPECT_TRUE(Contains(msg, "expected a thread count from 1 to 4096, got " + std::to_string(n)));
    EXPECT_THROW(pfv::set_num_threads(n), pfv::InvalidArgument);
  }
  EXPECT_EQ(pfv::get_num_threads(), keep.n);  // refused values change nothing
}

TEST(FaultThreads, AnExceptionInAWorkerTaskReachesTheCallerAndThePoolStaysUsable) {
  KeepThreads keep;
  pfv::set_num_threads(3);
  const std::thread::id caller = std::this_thread::get_id();
  // Tasks run by a worker fail as a worker's scratch allocation would; retried
  // until a worker took one (on a loaded machine the caller may run them all).
  bool worker_failed = false;
  for (int attempt = 0; attempt < 50 && !worker_failed; ++attempt) {
    std::atomic<int> started{0};
    auto task = [&](size_t) {
      started.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (std::this_thread::get_id() != caller) throw std::bad_alloc();
    };
    try {
      parallel_for(64, TaskFn(task));
    } catch (const std::bad_alloc&) {
      worker_failed = true;
      EXPECT_LT(started.load(), 64);  // no new tasks once one failed (3 threads in flight at most)
    }
  }
  ASSERT_TRUE(worker_failed);
  // Not left busy, not left half-built: the next call uses the workers again.
  int used = 0;
  for (int attempt = 0; attempt < 20 && used < 2; ++attempt) used = threads_used(64);
  EXPECT_GE(used, 2);
  // An exception on the calling thread (inline, nested) is rethrown as well.
  auto nested = [&](size_t) {
    auto inner = [](size_t i) {
      if (i == 3) throw pfv::ShapeError("inner");
    };
    parallel_for(8, TaskFn(inner));
  };
  EXPECT_THROW(parallel_for(16, TaskFn(nested)), pfv::ShapeError);
  EXPECT_GE(threads_used(64), 1);
}

TEST(FaultThreads, ASetCancelFlagStopsParallelForOnEveryThread) {
  KeepThreads keep;
  pfv::set_num_threads(2);
  std::atomic<bool> stop{false};
  std::atomic<int> ran{0};
  auto task = [&](size_t i) {
    if (i == 10) stop.store(true);
    ran.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  };
  {
    pfv::CancelScope scope(stop);
    EXPECT_THROW(parallel_for(1000, TaskFn(task)), pfv::Cancelled);
  }
  EXPECT_LT(ran.load(), 1000);
  // Outside the scope the same (still set) flag is not looked at.
  ran = 0;
  parallel_for(100, TaskFn(task));
  EXPECT_EQ(ran.load(), 100);
  EXPECT_NO_THROW(pfv::throw_if_cancelled("test"));
  {
    pfv::CancelScope scope(stop);
    const std::string msg = message_of<pfv::Cancelled>([] { pfv::throw_if_cancelled("my loop"); });
    EXPECT_TRUE(Contains(msg, "[my loop] cancelled"));
    std::atomic<bool> inner{false};
    pfv::CancelScope nested(inner);  // the innermost scope applies
    EXPECT_NO_THROW(pfv::throw_if_cancelled("test"));
  }
}

TEST(FaultCancel, AForwardStopsSoonAfterItsFlagIsSetAndTheModelStaysUsable) {
  KeepThreads keep;
  pfv::set_num_threads(2);
  auto model = models::resnet50();
  model->init_weights(3);
  const pfv::Tensor small = input({1, 3, 64, 64}, 1);
  const pfv::Tensor want = model->forward(small);
  const pfv::Tensor big = input({8, 3, 224, 224}, 2);
  (void)model->executed_macs(big.spec());  // compile and pack first: the run is what is timed

  std::atomic<bool> stop{false};
  {  // already set: nothing runs
    stop = true;
    pfv::CancelScope scope(stop);
    const std::string msg = message_of<pfv::Cancelled>([&] { model->forward(big); });
    EXPECT_TRUE(Contains(msg, "cancelled"));
    EXPECT_THROW(model->forward(big), pfv::Cancelled);
  }
  stop = false;
  std::chrono::steady_clock::time_point set_at;
  std::thread setter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    set_at = std::chrono::steady_clock::now();
    stop.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  bool cancelled = false;
  {
    pfv::CancelScope scope(stop);
    try {
      model->forward(big);
    } catch (const pfv::Cancelled&) {
      cancelled = true;
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  setter.join();
  ASSERT_TRUE(cancelled) << "the forward ended before the flag was set (" <<
      std::chrono::duration<double>(t1 - t0).count() << " s)";
  const double latency_ms = std::chrono::duration<double, std::milli>(t1 - set_at).count();
  std::printf("cancel latency: %.1f ms (flag set 150 ms into a resnet50 batch-8 forward)\n", latency_ms);
#ifndef PFV_SANITIZED
  EXPECT_LT(latency_ms, 100.0);
#endif
  EXPECT_TRUE(same(model->forward(small), want));  // usable, same result
}

// fork() after the pool ran: the child's forwards must neither hang nor run on
// one thread. A child that hangs is killed by alarm() and fails the test.
TEST(FaultFork, TheChildOfAForkRunsOnItsOwnPool) {
#ifdef PFV_SANITIZED
  GTEST_SKIP() << "fork with sanitizer runtimes' threads: covered by the plain build";
#endif
  KeepThreads keep;
  pfv::set_num_threads(2);
  auto model = models::resnet18();
  model->init_weights(5);
  const pfv::Tensor x = input({2, 3, 48, 48}, 4);
  const pfv::Tensor want = model->forward(x);
  ASSERT_EQ(pfv::detail::pool_workers(), 1);
  for (int child_threads : {2, 3, 1}) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(60);
      int code = 0;
      if (child_threads != 2) pfv::set_num_threads(child_threads);
      if (!same(model->forward(x), want)) code |= 1;
      if (pfv::detail::pool_workers() != child_threads - 1) code |= 2;
      if (threads_in_process() != child_threads) code |= 4;
      _exit(code);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child with " << child_threads << " threads: killed by signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << " (SIGALRM = hung)";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child with " << child_threads
                                      << " threads: 1 = wrong output, 2 = pool size, 4 = thread count";
  }
  EXPECT_TRUE(same(model->forward(x), want));  // the parent's pool is untouched
}

}  // namespace
