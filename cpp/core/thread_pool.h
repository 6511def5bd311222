// Internal: the process-wide compute pool (see pyflame_vision/cpu.h).
#pragma once

#include <atomic>
#include <cstddef>

namespace pyflame_vision {
namespace detail {

/// A non-owning reference to a callable `void(size_t task)`.
class TaskFn {
 public:
  template <typename F>
  TaskFn(F& f) : obj_(&f), call_([](void* o, size_t t) { (*static_cast<F*>(o))(t); }) {}  // NOLINT
  void operator()(size_t t) const { call_(obj_, t); }

 private:
  void* obj_;
  void (*call_)(void*, size_t);
};

/// Runs fn(0) ... fn(n - 1), each exactly once, on up to get_num_threads()
/// threads (the caller is one of them) and returns when all are done. If the
/// pool is already busy with another caller's work (concurrent forwards from
/// several user threads), runs the tasks on the calling thread instead, so
/// concurrent callers never oversubscribe the machine or deadlock. Nested calls
/// from inside a task run inline.
///
/// Failures: if a task throws (e.g. std::bad_alloc for a worker's scratch
/// memory), no further tasks start, the running ones finish, and the first
/// exception is rethrown on the caller. If the caller's CancelScope flag
/// (pyflame_vision/cancel.h) is set, no further tasks start and Cancelled is
/// thrown. If the pool cannot start its worker threads, throws Error (the
/// workers started so far are stopped again). In every case the pool is left
/// idle and usable.
///
/// Fork: a child process forked while the pool had workers starts a new pool
/// (of get_num_threads() threads) at its first parallel_for; the parent's
/// workers do not exist there.
void parallel_for(size_t n, TaskFn fn);

/// The calling thread's innermost CancelScope flag, or nullptr.
const std::atomic<bool>* current_cancel_flag();
/// Worker threads the pool has now (for tests: 0 before the first parallel_for).
int pool_workers();

}  // namespace detail
}  // namespace pyflame_vision
