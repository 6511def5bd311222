#include <pybind11/stl.h>

#include "bindings.h"
#include "pyflame_vision/transforms.h"

namespace pyflame_vision {
namespace bindings {

using namespace transforms;

void init_transforms(py::module_& m) {
  py::module_ t = m.def_submodule("transforms", "Shape logic of the preprocessing transforms.");
  py::class_<Transform, std::shared_ptr<Transform>>(t, "Transform")
      .def(
          "get_output_shape",
          [](const Transform& self, py::handle shape) {
            return shape_to_python(self.get_output_shape(shape_from_python(shape, "input_shape")));
          },
          py::arg("input_shape"))
      .def("__repr__", &Transform::repr);
  py::class_<Resize, Transform, std::shared_ptr<Resize>>(t, "Resize")
      .def(py::init<std::vector<int64_t>, int64_t, std::string, bool, bool>(), py::arg("size"),
           py::arg("max_size") = -1, py::arg("interpolation") = "bilinear", py::arg("antialias") = true,
           py::arg("size_is_int") = false);
  py::class_<CenterCrop, Transform, std::shared_ptr<CenterCrop>>(t, "CenterCrop")
      .def(py::init<int64_t, int64_t, bool>(), py::arg("height"), py::arg("width"), py::arg("size_is_int") = false);
  py::class_<Normalize, Transform, std::shared_ptr<Normalize>>(t, "Normalize")
      .def(py::init<std::vector<double>, std::vector<double>, bool>(), py::arg("mean"), py::arg("std"),
           py::arg("inplace") = false);
  py::class_<Compose, Transform, std::shared_ptr<Compose>>(t, "Compose")
      .def(py::init([](const std::vector<std::shared_ptr<Transform>>& v) {
             return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>(v.begin(), v.end()));
           }),
           py::arg("transforms"));
}

}  // namespace bindings
}  // namespace pyflame_vision
