// Shared declarations of the pybind11 bindings (one init_* per area).
#pragma once

#include <pybind11/pybind11.h>

#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {
namespace bindings {

namespace py = pybind11;

void init_errors(py::module_& m);
void init_tensor(py::module_& m);
void init_nn(py::module_& m);
void init_models(py::module_& m);
void init_transforms(py::module_& m);

/// Converts a Python shape (list/tuple of ints, numpy integer array, or a
/// TensorSpec) to a Shape. Raises TypeError for non-integers (bool and float
/// included), ShapeError (ValueError) for negative dimensions,
/// ShapeOverflowError for values outside int64.
Shape shape_from_python(py::handle obj, const char* what = "shape");
/// A float32 TensorSpec from a shape or a TensorSpec (whose dtype is kept).
TensorSpec spec_from_python(py::handle obj, const char* what = "input");
/// A Python list of ints.
py::list shape_to_python(const Shape& s);

}  // namespace bindings
}  // namespace pyflame_vision
