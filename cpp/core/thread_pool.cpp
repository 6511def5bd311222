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
//
// Fork: only the forking thread exists in the child, while the parent's pool
// still counts its workers (and its mutex or condition variable may be in the
// middle of an operation by a thread that is gone): resizing it hung in
// pthread_cond_broadcast, and a job was silently run by the caller alone. A
// pthread_atfork child handler abandons that pool (leaked, never touched again)
// and clears the busy flag; the child's first parallel_for starts a new pool.
//
// Failures never leave the pool busy or half-built: the busy flag is released
// by a guard, an exception in a task stops the job and is rethrown on the
// caller, and a worker that cannot be started stops the ones already started.
#include "core/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "pyflame_vision/cancel.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace detail {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

thread_local bool t_inside_task = false;
thread_local const std::atomic<bool>* t_cancel = nullptr;  // the innermost CancelScope's flag

bool is_set(const std::atomic<bool>* flag) { return flag != nullptr && flag->load(std::memory_order_relaxed); }

// Marks the thread as running tasks (nested parallel_for runs inline) until
// destroyed, also when a task throws.
class InsideTask {
 public:
  InsideTask() : was_(t_inside_task) { t_inside_task = true; }
  ~InsideTask() { t_inside_task = was_; }

 private:
  bool was_;
};

constexpr uint64_t kActiveMask = 0xFFFFu;
constexpr uint64_t kOpen = uint64_t{1} << 16;
constexpr int kGenShift = 17;
constexpr auto kSpinTime = std::chrono::microseconds(50);

class Pool {
 public:
  // Runs the job; rethrows the first exception a task threw (on any thread).
  // Tasks not started when a task failed or `cancel` was set are skipped.
  void run(size_t n, TaskFn fn, int threads, const std::atomic<bool>* cancel) {
    if (static_cast<int>(workers_.size()) != threads - 1) resize(threads - 1);
    if (workers_.empty()) {
      run_inline(n, fn, cancel);
      return;
    }
    fn_ = &fn;
    n_ = n;
    cancel_ = cancel;
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
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
    cancel_ = nullptr;
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

  static void run_inline(size_t n, TaskFn fn, const std::atomic<bool>* cancel) {
    InsideTask inside;
    for (size_t i = 0; i < n && !is_set(cancel); ++i) fn(i);
  }

  int workers() const { return workers_count_.load(std::memory_order_relaxed); }

 private:
  void work() {
    InsideTask inside;
    const size_t n = n_;
    TaskFn& fn = *fn_;
    const std::atomic<bool>* cancel = cancel_;
    for (size_t i = next_.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next_.fetch_add(1, std::memory_order_relaxed)) {
      if (failed_.load(std::memory_order_relaxed) || is_set(cancel)) break;
      try {
        fn(i);
      } catch (...) {
        // The first failure wins; the owner rethrows it once every worker has left.
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
        break;
      }
    }
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
    // Named so that tools (top -H, ps -L, /proc/PID/task/*/comm) and tests can tell the pool's threads apart.
    pthread_setname_np(pthread_self(), "pyflame_vision");
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

  // Stops every worker (they are all asleep or spinning between jobs: only the
  // owner publishes jobs, and it is here).
  void stop_all() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto* s : stops_) s->flag.store(true);
      cv_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    workers_count_.store(0, std::memory_order_relaxed);
    for (auto* s : stops_) delete s;
    stops_.clear();
  }

  void resize(int workers) {
    workers = std::max(0, workers);
    // Stop everyone, then start the new set (rare: only when the size changes).
    stop_all();
    workers_.reserve(static_cast<size_t>(workers));
    stops_.reserve(static_cast<size_t>(workers));
    for (int i = 0; i < workers; ++i) stops_.push_back(new StopFlag());
    for (int i = 0; i < workers; ++i) {
      try {
        workers_.emplace_back([this, i] { worker_main(static_cast<size_t>(i)); });
      } catch (const std::system_error& e) {
        stop_all();  // no half-built pool: the next call starts from scratch
        throw Error("[threads] could not start worker thread " + std::to_string(i + 1) + " of " +
                    std::to_string(workers) + " (" + e.what() +
                    "): the system's limit on threads, or on memory for their stacks, is lower; set_num_threads() "
                    "or PYFLAME_VISION_NUM_THREADS with a smaller count (the threads already started were stopped)");
      }
      workers_count_.store(i + 1, std::memory_order_relaxed);
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<size_t> next_{0};
  TaskFn* fn_ = nullptr;
  size_t n_ = 0;
  const std::atomic<bool>* cancel_ = nullptr;
  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::atomic<int> workers_count_{0};
  std::vector<std::thread> workers_;
  std::vector<StopFlag*> stops_;
};

std::atomic<bool> g_busy{false};
std::atomic<Pool*> g_pool{nullptr};

void abandon_pool_in_child() {
  g_pool.store(nullptr, std::memory_order_relaxed);
  g_busy.store(false, std::memory_order_relaxed);
}

// Only called by the owner of g_busy.
Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p != nullptr) return *p;
  static const int registered = pthread_atfork(nullptr, nullptr, &abandon_pool_in_child);
  (void)registered;
  p = new Pool();  // leaked on purpose (see above)
  g_pool.store(p, std::memory_order_release);
  return *p;
}

// Releases the pool when the owner leaves parallel_for, also by an exception.
class BusyGuard {
 public:
  ~BusyGuard() { g_busy.store(false, std::memory_order_release); }
};

}  // namespace

void parallel_for(size_t n, TaskFn fn) {
  if (n == 0) return;
  const std::atomic<bool>* cancel = t_cancel;
  if (t_inside_task || n == 1) {
    Pool::run_inline(n, fn, cancel);
  } else {
    const int threads = get_num_threads();
    bool expected = false;
    if (!g_busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      Pool::run_inline(n, fn, cancel);
    } else {
      BusyGuard release;
      pool().run(n, fn, threads, cancel);
    }
  }
  // Tasks may have been skipped: the results are incomplete.
  if (is_set(cancel)) throw Cancelled("[compute] cancelled: the calling thread's cancel flag (CancelScope) was set");
}

const std::atomic<bool>* current_cancel_flag() { return t_cancel; }

int pool_workers() {
  const Pool* p = g_pool.load(std::memory_order_acquire);
  return p != nullptr ? p->workers() : 0;
}

}  // namespace detail

CancelScope::CancelScope(const std::atomic<bool>& flag) noexcept : previous_(detail::t_cancel) {
  detail::t_cancel = &flag;
}

CancelScope::~CancelScope() { detail::t_cancel = previous_; }

void throw_if_cancelled(const char* where) {
  if (detail::is_set(detail::t_cancel)) {
    throw Cancelled(std::string("[") + where + "] cancelled: the calling thread's cancel flag (CancelScope) was set");
  }
}

}  // namespace pyflame_vision
