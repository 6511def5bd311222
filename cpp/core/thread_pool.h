// Internal: the process-wide compute pool (see pyflame_vision/cpu.h).
#pragma once

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
/// threads (the caller is one of them) and returns when all are done. Tasks
/// must not throw. If the pool is already busy with another caller's work
/// (concurrent forwards from several user threads), runs the tasks on the
/// calling thread instead, so concurrent callers never oversubscribe the
/// machine or deadlock. Nested calls from inside a task run inline.
void parallel_for(size_t n, TaskFn fn);

}  // namespace detail
}  // namespace pyflame_vision
