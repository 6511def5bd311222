// pyflame_vision/cancel.h - cancelling a running forward().
//
// A forward of a large model on a large batch runs for seconds. To stop one
// early, give the calling thread a cancel flag for the duration of the call:
//
//   std::atomic<bool> stop{false};            // set from any thread or a signal handler
//   {
//     pyflame_vision::CancelScope scope(stop);
//     try {
//       y = model.forward(x);
//     } catch (const pyflame_vision::Cancelled&) {
//       // stop was set: y was not written; the model is unchanged and usable
//     }
//   }
//
// While a CancelScope is alive on a thread, the forward(), forward_features()
// and image-transform calls that thread makes check the flag between the
// steps of the compiled model and between the tiles of each step (on every
// worker thread of the pool), so a set flag is seen within one tile's work
// (well under a millisecond for the built-in models), not at the end of the
// call. The call then throws Cancelled; nothing it computed is returned and no
// state is left behind (the pool, the model's caches and weights are as
// before). Setting the flag is a plain atomic store: safe from any thread and
// from a signal handler (std::atomic<bool> is lock-free on every supported
// platform). The flag is only read; reset it yourself before reusing it.
//
// Scopes nest (the innermost one applies) and are per thread: a scope on one
// thread never affects calls made on other threads. The flag must outlive the
// scope.
//
// From Python, a forward() called on the main thread is cancelled this way by
// Ctrl-C (SIGINT): it raises KeyboardInterrupt within milliseconds (see
// README, "Reliability").
#pragma once

#include <atomic>

namespace pyflame_vision {

/// Makes calls on this thread cancellable through `flag` while it is alive
/// (see the file comment). Not copyable or movable; destroy it on the thread
/// that created it.
class CancelScope {
 public:
  explicit CancelScope(const std::atomic<bool>& flag) noexcept;
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const std::atomic<bool>* previous_;
};

/// Throws Cancelled (naming `where`) if the flag of this thread's innermost
/// CancelScope is set; does nothing without a scope. For callers' own loops
/// around forward() that should stop at the same signal.
void throw_if_cancelled(const char* where);

}  // namespace pyflame_vision
