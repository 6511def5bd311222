#include <pybind11/stl.h>

#include "bindings.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace bindings {

namespace {
std::string type_of(py::handle h) { return py::str(py::type::handle_of(h).attr("__name__")); }
}  // namespace

std::string short_repr(py::handle obj, size_t max_chars) {
  std::string r;
  try {
    r = py::repr(obj).cast<std::string>();
  } catch (py::error_already_set&) {
    return "<" + type_of(obj) + " object>";
  }
  if (r.size() <= max_chars) return r;
  // Cut on a UTF-8 boundary so the message stays decodable.
  size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(r[cut]) & 0xC0) == 0x80) --cut;
  return r.substr(0, cut) + "... (" + std::to_string(r.size()) + " characters)";
}

Shape shape_from_python(py::handle obj, const char* what) {
  if (py::isinstance<TensorSpec>(obj)) return obj.cast<const TensorSpec&>().shape();
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) || !py::isinstance<py::iterable>(obj))
    throw TypeError(std::string(what) + " must be a sequence of ints such as [1, 3, 224, 224] or a TensorSpec, got " +
                    type_of(obj));
  Shape shape;
  size_t i = 0;
  for (py::handle item : obj) {
    if (PyBool_Check(item.ptr()) || !PyIndex_Check(item.ptr())) {
      // A nested list is data, not a shape: say how to pass it (never the
      // whole list: a 224x224 image would make a megabyte-long message).
      if (i == 0 && (py::isinstance<py::list>(item) || py::isinstance<py::tuple>(item)))
        throw TypeError(std::string(what) + ": expected a shape (a sequence of ints such as [1, 3, 224, 224]) or a "
                        "float32 NumPy array [N, C, H, W], got a nested " + type_of(obj) + " " +
                        short_repr(obj, 60) + "; pass the data as numpy.asarray(x, dtype=numpy.float32)");
      throw TypeError(std::string(what) + ": dimension " + std::to_string(i) + " must be an int, got " +
                      type_of(item) + " " + short_repr(item, 60));
    }
    py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(item.ptr()));
    if (!idx) throw py::error_already_set();
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
    if (overflow != 0)
      throw ShapeOverflowError(std::string(what) + ": dimension " + std::to_string(i) + " (" +
                               std::string(py::str(idx)) + ") does not fit in int64");
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    shape.push_back(static_cast<int64_t>(v));
    ++i;
  }
  return shape;
}

TensorSpec spec_from_python(py::handle obj, const char* what) {
  if (py::isinstance<TensorSpec>(obj)) return obj.cast<TensorSpec>();
  return TensorSpec(shape_from_python(obj, what), DType::float32);
}

py::list shape_to_python(const Shape& s) {
  py::list l;
  for (int64_t d : s) l.append(d);
  return l;
}

void init_tensor(py::module_& m) {
  py::class_<TensorSpec>(m, "TensorSpec",
                         "Shape and dtype of a tensor (metadata only; never holds data).\n\n"
                         "TensorSpec([1, 3, 224, 224]) or TensorSpec(shape, dtype='float32').")
      .def(py::init([](py::handle shape, const std::string& dtype) {
             return TensorSpec(shape_from_python(shape), dtype_from_name(dtype));
           }),
           py::arg("shape"), py::arg("dtype") = "float32")
      .def_property_readonly("shape", [](const TensorSpec& t) { return shape_to_python(t.shape()); },
                             "The dimensions as a list of ints.")
      .def_property_readonly("dtype", [](const TensorSpec& t) { return std::string(dtype_name(t.dtype())); },
                             "The dtype name, e.g. 'float32'.")
      .def_property_readonly("ndim", &TensorSpec::ndim)
      .def_property_readonly("numel", &TensorSpec::numel, "Number of elements.")
      .def_property_readonly("nbytes", &TensorSpec::nbytes, "Size in bytes.")
      .def("__repr__", &TensorSpec::repr)
      .def("__eq__",
           [](const TensorSpec& a, py::object b) -> py::object {
             if (!py::isinstance<TensorSpec>(b)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             return py::bool_(a == b.cast<const TensorSpec&>());
           })
      .def("__hash__",
           [](const TensorSpec& t) {
             return py::hash(py::make_tuple(py::tuple(shape_to_python(t.shape())), dtype_name(t.dtype())));
           })
      .def(py::pickle(
          [](const TensorSpec& t) { return py::make_tuple(shape_to_python(t.shape()), dtype_name(t.dtype())); },
          [](py::tuple s) {
            return TensorSpec(shape_from_python(s[0]), dtype_from_name(s[1].cast<std::string>()));
          }));
}

}  // namespace bindings
}  // namespace pyflame_vision
