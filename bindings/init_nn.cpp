#include <pybind11/stl.h>

#include "bindings.h"
#include "pyflame_vision/nn/module.h"

namespace pyflame_vision {
namespace bindings {

namespace {
py::dict to_dict(const std::vector<nn::Parameter>& ps) {
  py::dict d;  // insertion-ordered, as torch's state_dict
  for (const auto& p : ps) d[py::str(p.name)] = py::cast(p);
  return d;
}
}  // namespace

void init_nn(py::module_& m) {
  py::class_<nn::Parameter>(m, "Parameter", "A named parameter or buffer description (name and TensorSpec).")
      .def_readonly("name", &nn::Parameter::name, "Full dotted name, e.g. 'layer1.0.conv1.weight'.")
      .def_readonly("spec", &nn::Parameter::spec, "TensorSpec with shape and dtype.")
      .def_property_readonly("shape", [](const nn::Parameter& p) { return shape_to_python(p.spec.shape()); })
      .def_property_readonly("dtype", [](const nn::Parameter& p) { return std::string(dtype_name(p.spec.dtype())); })
      .def("__repr__", [](const nn::Parameter& p) {
        return "Parameter(name='" + p.name + "', shape=" + shape_to_string(p.spec.shape()) +
               ", dtype=" + dtype_name(p.spec.dtype()) + ")";
      });

  py::class_<nn::Module, std::shared_ptr<nn::Module>>(m, "Module", "A node of the torch-style module tree.")
      .def("named_parameters", [](const nn::Module& mod) { return to_dict(mod.named_parameters()); },
           "Dict of dotted name -> Parameter, in torch's order.")
      .def("parameters", [](const nn::Module& mod) { return py::cast(mod.named_parameters()); },
           "List of Parameter (each with .name and .spec), in torch's order.")
      .def("named_buffers", [](const nn::Module& mod) { return to_dict(mod.named_buffers()); },
           "Dict of dotted name -> Parameter for buffers (BatchNorm running statistics).")
      .def(
          "state_dict_spec",
          [](const nn::Module& mod) {
            py::dict d;
            for (const auto& p : mod.state_dict_spec()) d[py::str(p.name)] = py::cast(p.spec);
            return d;
          },
          "Dict of state-dict key -> TensorSpec; keys, order, shapes and dtypes equal torchvision's state_dict().")
      .def("num_parameters", &nn::Module::num_parameters, "Total number of parameter elements.")
      .def(
          "named_children",
          [](const nn::Module& mod) {
            py::list l;
            for (const auto& c : mod.children()) l.append(py::make_tuple(c.first, c.second));
            return l;
          },
          "List of (name, Module) for the direct children.")
      .def_property_readonly("type_name", &nn::Module::type_name, "The torch class name, e.g. 'Conv2d'.")
      .def("__repr__", &nn::Module::repr);
}

}  // namespace bindings
}  // namespace pyflame_vision
