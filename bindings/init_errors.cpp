// Python exception classes for the C++ exceptions; each also subclasses the
// matching builtin so `except ValueError` keeps working.
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

PyObject* make(py::module_& m, const char* name, py::tuple bases, const char* doc) {
  const std::string full = std::string("pyflame_vision.") + name;
  PyObject* t = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases.ptr(), nullptr);
  if (!t) throw py::error_already_set();
  m.add_object(name, py::handle(t));  // the module keeps a reference; ours lives for the process
  return t;
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

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ShapeOverflowError& e) {
      PyErr_SetString(g_overflow, e.what());
    } catch (const ShapeError& e) {
      PyErr_SetString(g_shape, e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(g_invalid, e.what());
    } catch (const TypeError& e) {
      PyErr_SetString(g_type, e.what());
    } catch (const Unsupported& e) {
      PyErr_SetString(g_unsupported, e.what());
    } catch (const WeightsError& e) {
      PyErr_SetString(g_weights, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });
}

}  // namespace bindings
}  // namespace pyflame_vision
