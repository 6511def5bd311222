// Shared declarations of the pybind11 bindings (one init_* per area).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <utility>

#include "pyflame_vision/cancel.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/models/model.h"
#include "pyflame_vision/tensor.h"
#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {
namespace bindings {

namespace py = pybind11;

void init_errors(py::module_& m);
void init_tensor(py::module_& m);
void init_nn(py::module_& m);
void init_models(py::module_& m);
void init_transforms(py::module_& m);
void init_engine(py::module_& m);
void init_bench(py::module_& m);
void init_pretrained(py::module_& m);
void init_io(py::module_& m);

/// True if `obj` is data to run on (a NumPy array or anything with
/// __array__/__array_interface__), false if it is a shape or TensorSpec. A 1-D
/// integer NumPy array counts as a shape.
bool is_array_input(py::handle obj);
/// A float32 [N, C, H, W] input array (any strides, read-only allowed) as a
/// view; `keep` receives the array that must stay alive while the view is
/// used. Raises DTypeError (TypeError) with a conversion hint for other dtypes;
/// never casts.
models::InputView input_view(py::handle obj, py::object& keep);
/// A NumPy array sharing the tensor's storage (no copy).
py::array to_numpy(const Tensor& t);
/// A tensor copied from a numeric array-like (for load_state_dict); `what`
/// names it in errors as it is (pass the key's repr).
Tensor tensor_from_python(py::handle obj, const std::string& what);

/// Converts a Python shape (list/tuple of ints, numpy integer array, or a
/// TensorSpec) to a Shape. Raises TypeError for non-integers (bool and float
/// included), ShapeError (ValueError) for negative dimensions,
/// ShapeOverflowError for values outside int64.
Shape shape_from_python(py::handle obj, const char* what = "shape");
/// A float32 TensorSpec from a shape or a TensorSpec (whose dtype is kept).
TensorSpec spec_from_python(py::handle obj, const char* what = "input");
/// A Python list of ints.
py::list shape_to_python(const Shape& s);
/// repr(obj) cut to about `max_chars` characters (on a UTF-8 boundary, with
/// the full length noted), for messages that must stay short.
std::string short_repr(py::handle obj, size_t max_chars = 60);

/// While alive on Python's main thread (with a Python-level SIGINT handler in
/// place, the default one raising KeyboardInterrupt), a SIGINT also sets
/// fired(); the Python handler still runs as before. Elsewhere (other threads,
/// SIGINT ignored or left to the default action) it does nothing. Construct and
/// destroy it with the GIL held.
class SigintWatch {
 public:
  SigintWatch();
  ~SigintWatch();
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;
  /// The flag a SIGINT sets (never set when the watch is inactive).
  const std::atomic<bool>& flag() const;
  bool fired() const { return flag().load(std::memory_order_acquire); }

 private:
  bool active_ = false;
};

/// Runs f() with the GIL released, cancellable by Ctrl-C: on the main thread
/// a SIGINT cancels it between steps and tiles (CancelScope), then Python's
/// handler runs here and its exception (KeyboardInterrupt) is raised within
/// milliseconds of the signal, instead of after the call. A handler that does
/// not raise means "carry on": f() runs again from the start.
template <typename F>
auto run_interruptible(F&& f) -> decltype(f()) {
  for (;;) {
    {
      SigintWatch watch;
      try {
        const CancelScope scope(watch.flag());
        py::gil_scoped_release release;
        return f();
      } catch (const Cancelled&) {
        if (!watch.fired()) throw;  // another cancel flag: not ours to handle
      }
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

}  // namespace bindings
}  // namespace pyflame_vision
