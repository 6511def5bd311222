// Python exception classes for the C++ exceptions; each also subclasses the
// matching builtin so `except ValueError` keeps working.
#include <cstring>
#include <new>

#include "bindings.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace bindings {

namespace {
PyObject* g_error = nullptr;
PyObject* g_shape = nullptr;
PyObject* g_overflow = nullptr;
PyObject* g_invalid = nullptr;
PyObject* g_type = nullptr;
PyObject* g_unsupported = nullptr;
PyObject* g_weights = nullptr;
PyObject* g_memory = nullptr;
PyObject* g_cancelled = nullptr;

PyObject* make(py::module_& m, const char* name, py::tuple bases, const char* doc) {
  const std::string full = std::string("pyflame_vision.") + name;
  PyObject* t = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases.ptr(), nullptr);
  if (!t) throw py::error_already_set();
  m.add_object(name, py::handle(t));  // the module keeps a reference; ours lives for the process
  return t;
}

// PyErr_SetString decodes strictly: a message holding bytes that are not
// UTF-8 (a name copied from a malformed file) would turn the error into a
// UnicodeDecodeError. Undecodable bytes become \xNN escapes instead.
void set_error(PyObject* type, const char* what) {
  PyObject* msg = PyUnicode_DecodeUTF8(what, static_cast<Py_ssize_t>(std::strlen(what)), "backslashreplace");
  if (!msg) {
    PyErr_Clear();
    msg = PyUnicode_FromString("(the error message could not be decoded)");
  }
  PyErr_SetObject(type, msg);
  Py_XDECREF(msg);
}
}  // namespace

void init_errors(py::module_& m) {
  auto h = [](PyObject* o) { return py::handle(o); };
  g_error = make(m, "PyflameVisionError", py::make_tuple(h(PyExc_Exception)),
                 "Base class of every error raised by pyflame_vision.");
  g_shape = make(m, "ShapeError", py::make_tuple(h(g_error), h(PyExc_ValueError)),
                 "A tensor shape does not fit what a layer or transform accepts.");
  g_overflow = make(m, "ShapeOverflowError", py::make_tuple(h(g_shape), h(PyExc_OverflowError)),
                    "A shape computation would overflow int64.");
  g_invalid = make(m, "InvalidArgumentError", py::make_tuple(h(g_error), h(PyExc_ValueError)),
                   "An argument has an invalid value.");
  g_type = make(m, "DTypeError", py::make_tuple(h(g_error), h(PyExc_TypeError)),
                "A value has the wrong type or dtype.");
  g_unsupported = make(m, "UnsupportedError", py::make_tuple(h(g_error), h(PyExc_NotImplementedError)),
                       "A valid request that pyflame_vision does not support.");
  // RuntimeError as torch raises for a state dict that does not fit; ValueError for a
  // malformed or unsafe weight file (what the error is about is a bad input value).
  g_weights = make(m, "WeightsError", py::make_tuple(h(g_error), h(PyExc_RuntimeError), h(PyExc_ValueError)),
                   "Weights are missing, a state dict does not fit the model, or a weight file is malformed "
                   "or unsafe.");
  g_memory = make(m, "OutOfMemoryError", py::make_tuple(h(g_error), h(PyExc_MemoryError)),
                  "Memory for a tensor, a forward's activations or a weight file could not be allocated (the message "
                  "says what and how many bytes); nothing was changed.");
  g_cancelled = make(m, "CancelledError", py::make_tuple(h(g_error), h(PyExc_RuntimeError)),
                     "A running call was cancelled on request; its partial results were discarded.");

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ShapeOverflowError& e) {
      set_error(g_overflow, e.what());
    } catch (const ShapeError& e) {
      set_error(g_shape, e.what());
    } catch (const InvalidArgument& e) {
      set_error(g_invalid, e.what());
    } catch (const TypeError& e) {
      set_error(g_type, e.what());
    } catch (const Unsupported& e) {
      set_error(g_unsupported, e.what());
    } catch (const WeightsError& e) {
      set_error(g_weights, e.what());
    } catch (const OutOfMemory& e) {
      set_error(g_memory, e.what());
    } catch (const Cancelled& e) {
      set_error(g_cancelled, e.what());
    } catch (const Error& e) {
      set_error(g_error, e.what());
    } catch (const std::bad_alloc&) {
      // An allocation without its own OutOfMemory (a small one: tensors, arenas
      // and packed weights say what and how much): still a MemoryError.
      set_error(g_memory, "out of memory: an allocation failed (std::bad_alloc)");
    }
  });
}

}  // namespace bindings
}  // namespace pyflame_vision
