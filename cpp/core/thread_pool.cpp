// The process-wide compute pool.
//
// One caller at a time owns the pool (an atomic flag); others run their tasks
// inline. The owner publishes a job (fn, n, next-task counter) and bumps a
// state word that packs {generation, open flag, workers inside}. Workers join
// a job by CAS on that word while it is open, take tasks with fetch_add on the
// shared counter, and leave by decrementing it. When the owner has run out of
// tasks it closes the job (no late joiners) and waits for the workers inside.
//
// Workers spin for a short while after a job (the next layer usually follows
// within microseconds), then sleep on a condition variable, so an idle pool
// costs nothing next to PyTorch's or the application's own threads.
//
// The pool object is intentionally leaked: at process exit (e.g. Python
// shutting down) sleeping workers stay blocked on a mutex and condition
// variable that are never destroyed, and the process ends without joining.
#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "pyflame_vision/cpu.h"

namespace pyflame_vision {
namespace detail {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

thread_local bool t_inside_task = false;

constexpr uint64_t kActiveMask = 0xFFFFu;
constexpr uint64_t kOpen = uint64_t{1} << 16;
constexpr int kGenShift = 17;
constexpr auto kSpinTime = std::chrono::microseconds(50);

class Pool {
 public:
  void run(size_t n, TaskFn fn, int threads) {
    if (static_cast<int>(workers_.size()) != threads - 1) resize(threads - 1);
    if (workers_.empty()) {
      run_inline(n, fn);
      return;
    }
    fn_ = &fn;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    const uint64_t gen = (state_.load(std::memory_order_relaxed) >> kGenShift) + 1;
    state_.store((gen << kGenShift) | kOpen, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      cv_.notify_all();
    }
    work();
    state_.fetch_and(~kOpen, std::memory_order_acq_rel);
    // Workers still inside are finishing their last task.
    for (unsigned spins = 0; (state_.load(std::memory_order_acquire) & kActiveMask) != 0; ++spins) {
      if (spins < 4096) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
    fn_ = nullptr;
  }

  static void run_inline(size_t n, TaskFn fn) {
    const bool was = t_inside_task;
    t_inside_task = true;
    for (size_t i = 0; i < n; ++i) fn(i);
    t_inside_task = was;
  }

 private:
  void work() {
    t_inside_task = true;
    const size_t n = n_;
    TaskFn& fn = *fn_;
    for (size_t i = next_.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next_.fetch_add(1, std::memory_order_relaxed)) {
      fn(i);
    }
    t_inside_task = false;
  }

  // Returns true if a job was joined (and run), false on stop.
  bool wait_and_join(uint64_t& seen_gen, const std::atomic<bool>& stop) {
    for (;;) {
      // Spin briefly.
      auto start = std::chrono::steady_clock::now();
      for (unsigned spins = 0;; ++spins) {
        if (stop.load(std::memory_order_relaxed)) return false;
        uint64_t s = state_.load(std::memory_order_acquire);
        if ((s >> kGenShift) != seen_gen) {
          if (try_join(s, seen_gen)) return true;
          continue;
        }
        cpu_relax();
        if ((spins & 63u) == 63u && std::chrono::steady_clock::now() - start > kSpinTime) break;
      }
      // Sleep until a new generation is published.
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lock, [&] {
        return stop.load(std::memory_order_relaxed) || (state_.load(std::memory_order_seq_cst) >> kGenShift) != seen_gen;
      });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      if (stop.load(std::memory_order_relaxed)) return false;
    }
  }

  bool try_join(uint64_t s, uint64_t& seen_gen) {
    for (;;) {
      const uint64_t gen = s >> kGenShift;
      if ((s & kOpen) == 0) {
        seen_gen = gen;  // missed it: the owner already closed this job
        return false;
      }
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        seen_gen = gen;
        return true;
      }
      if ((s >> kGenShift) != gen) return false;  // a newer job; the caller loops
    }
  }

  void worker_main(size_t index) {
    uint64_t seen = state_.load(std::memory_order_acquire) >> kGenShift;
    const std::atomic<bool>& stop = stops_[index]->flag;
    while (wait_and_join(seen, stop)) {
      work();
      state_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  struct StopFlag {
    alignas(64) std::atomic<bool> flag{false};  // written under mutex_
  };

  void resize(int workers) {
    workers = std::max(0, workers);
    // Stop everyone, then start the new set (rare: only when the size changes).
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto* s : stops_) s->flag.store(true);
      cv_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    for (auto* s : stops_) delete s;
    stops_.clear();
    for (int i = 0; i < workers; ++i) stops_.push_back(new StopFlag());
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_main(static_cast<size_t>(i)); });
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<size_t> next_{0};
  TaskFn* fn_ = nullptr;
  size_t n_ = 0;
  std::vector<std::thread> workers_;
  std::vector<StopFlag*> stops_;
};

std::atomic<bool> g_busy{false};

Pool& pool() {
  static Pool* p = new Pool();  // leaked on purpose (see above)
  return *p;
}

}  // namespace

void parallel_for(size_t n, TaskFn fn) {
  if (n == 0) return;
  if (t_inside_task || n == 1) {
    Pool::run_inline(n, fn);
    return;
  }
  const int threads = get_num_threads();
  bool expected = false;
  if (!g_busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
    Pool::run_inline(n, fn);
    return;
  }
  pool().run(n, fn, threads);
  g_busy.store(false, std::memory_order_release);
}

}  // namespace detail
}  // namespace pyflame_vision
