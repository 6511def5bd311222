#include <pybind11/stl.h>

#include "bindings.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/models/registry.h"

namespace pyflame_vision {
namespace bindings {

using models::EfficientNet;
using models::Model;
using models::ResNet;
using models::ResNetBlockType;

namespace {
std::vector<bool> dilation_from_python(py::handle obj) {
  if (obj.is_none()) return {false, false, false};
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
    throw TypeError("replace_stride_with_dilation must be None or a sequence of 3 bools");
  std::vector<bool> v;
  for (py::handle h : obj) {
    if (!PyBool_Check(h.ptr()) && !PyIndex_Check(h.ptr()))
      throw TypeError("replace_stride_with_dilation entries must be bools, got " +
                      std::string(py::str(py::type::handle_of(h).attr("__name__"))));
    v.push_back(PyObject_IsTrue(h.ptr()) == 1);
  }
  return v;
}

std::vector<int64_t> ints_from_python(py::handle obj, const char* what) {
  return shape_from_python(obj, what);  // same rules: ints only, checked range
}

// Format 1 of a pickled model's architecture; _pickle._rebuild reads it (keep the two in step).
py::dict architecture_of(const Model& self) {
  py::dict d;
  d["format"] = 1;
  d["name"] = self.name();
  if (auto* r = dynamic_cast<const ResNet*>(&self)) {
    d["family"] = "resnet";
    d["block_type"] = r->block_type() == ResNetBlockType::BASIC ? "BASIC" : "BOTTLENECK";
    d["layers"] = shape_to_python(r->layer_config());
    d["num_classes"] = r->num_classes();
    d["zero_init_residual"] = r->zero_init_residual();
    d["groups"] = r->groups();
    d["width_per_group"] = r->width_per_group();
    py::list dil;
    for (bool b : r->replace_stride_with_dilation()) dil.append(b);
    d["replace_stride_with_dilation"] = dil;
  } else if (auto* e = dynamic_cast<const EfficientNet*>(&self)) {
    d["family"] = "efficientnet";
    d["width_mult"] = e->width_mult();
    d["depth_mult"] = e->depth_mult();
    d["dropout"] = e->dropout();
    d["num_classes"] = e->num_classes();
    d["stochastic_depth_prob"] = e->stochastic_depth_prob();
    d["resolution"] = e->resolution();
  } else {
    throw Unsupported("pickling " + self.type_name() + ": only ResNet and EfficientNet models can be pickled");
  }
  return d;
}
}  // namespace

void init_models(py::module_& m) {
  m.attr("IncompatibleKeys") = py::module_::import("collections")
                                   .attr("namedtuple")("IncompatibleKeys", py::make_tuple("missing_keys", "unexpected_keys"));
  m.attr("IncompatibleKeys").attr("__module__") = "pyflame_vision";
  py::class_<models::SummaryRow>(m, "SummaryRow", "One graph node of a model summary.")
      .def_readonly("path", &models::SummaryRow::path)
      .def_readonly("type", &models::SummaryRow::type)
      .def_property_readonly("output_shape", [](const models::SummaryRow& r) { return shape_to_python(r.output_shape); })
      .def_readonly("params", &models::SummaryRow::params)
      .def_readonly("macs", &models::SummaryRow::macs)
      .def("__repr__", [](const models::SummaryRow& r) {
        return "SummaryRow(path='" + r.path + "', type='" + r.type + "', output_shape=" +
               shape_to_string(r.output_shape) + ", params=" + std::to_string(r.params) +
               ", macs=" + std::to_string(r.macs) + ")";
      });

  py::class_<models::Summary>(m, "Summary",
                              "Per-layer output shapes, parameters and multiply-accumulates; print() shows a table.")
      .def_readonly("model", &models::Summary::model)
      .def_readonly("input", &models::Summary::input)
      .def_property_readonly("output_shape", [](const models::Summary& s) { return shape_to_python(s.output_shape); })
      .def_readonly("rows", &models::Summary::rows)
      .def_readonly("total_params", &models::Summary::total_params)
      .def_readonly("total_macs", &models::Summary::total_macs)
      .def_readonly("param_bytes", &models::Summary::param_bytes)
      .def_readonly("activation_bytes", &models::Summary::activation_bytes)
      .def("__str__", &models::Summary::to_string)
      .def("__repr__", &models::Summary::to_string);

  py::class_<Model, nn::Module, std::shared_ptr<Model>>(m, "Model", "Common base of every model.")
      .def(
          "get_output_shape",
          [](const Model& self, py::handle input_shape) {
            const TensorSpec spec = spec_from_python(input_shape, "input_shape");
            Shape out;
            {
              py::gil_scoped_release release;
              out = self.get_output_spec(spec).shape();
            }
            return shape_to_python(out);
          },
          py::arg("input_shape"),
          "Output shape for an [N, C, H, W] input shape (list of ints or TensorSpec). Runs no kernel.")
      .def(
          "forward",
          [](const Model& self, py::handle input) -> py::object {
            if (is_array_input(input)) {
              py::object keep;
              const models::InputView view = input_view(input, keep);
              const Tensor out = run_interruptible([&] { return self.forward(view); });
              return to_numpy(out);
            }
            const TensorSpec spec = spec_from_python(input, "input");
            TensorSpec out;
            {
              py::gil_scoped_release release;
              out = self.get_output_spec(spec);
            }
            return py::cast(out);
          },
          py::arg("input"),
          "On a float32 [N, C, H, W] NumPy array: runs the model and returns a float32 array.\n"
          "On a shape or TensorSpec: the output TensorSpec (shape inference only).")
      .def(
          "__call__", [](py::object self, py::handle input) { return self.attr("forward")(input); },
          py::arg("input"))
      .def(
          "forward_features",
          [](const Model& self, py::handle input) -> py::object {
            const bool single = dynamic_cast<const EfficientNet*>(&self) != nullptr;
            if (is_array_input(input)) {
              py::object keep;
              const models::InputView view = input_view(input, keep);
              const std::vector<Tensor> feats = run_interruptible([&] { return self.forward_features(view); });
              if (single) return to_numpy(feats.at(0));
              py::list l;
              for (const auto& t : feats) l.append(to_numpy(t));
              return std::move(l);
            }
            const TensorSpec spec = spec_from_python(input, "input");
            std::vector<TensorSpec> feats;
            {
              py::gil_scoped_release release;
              feats = self.forward_features(spec);
            }
            if (single) return py::cast(feats.at(0));
            return py::cast(feats);
          },
          py::arg("input"),
          "Intermediate features: ResNet -> [stem, layer1, layer2, layer3, layer4] (stem after the max-pool);\n"
          "EfficientNet -> the features before pooling. Arrays in, arrays out; shapes or specs in, specs out.")
      .def(
          "init_weights",
          [](Model& self, py::handle seed) {
            if (PyBool_Check(seed.ptr()) || !PyIndex_Check(seed.ptr()))
              throw TypeError("init_weights: seed must be an int, got " +
                              std::string(py::str(py::type::handle_of(seed).attr("__name__"))));
            py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(seed.ptr()));  // numpy ints too
            if (!as_int) throw py::error_already_set();
            const unsigned long long v = PyLong_AsUnsignedLongLong(as_int.ptr());
            if (PyErr_Occurred()) {
              PyErr_Clear();
              throw InvalidArgument("init_weights: seed must be in [0, 2**64), got " +
                                    std::string(py::str(seed)));
            }
            py::gil_scoped_release release;
            self.init_weights(static_cast<uint64_t>(v));
          },
          py::arg("seed") = 0,
          "Fill every parameter and buffer with torchvision's initialisation scheme, reproducibly from `seed`.")
      .def_property_readonly("has_weights", &Model::has_weights, "True once every parameter and buffer has a value.")
      .def_property_readonly("weights_version", &Model::weights_version,
                             "0 until the model first gets weights, then a new value (unique in the process) after "
                             "every\ninit_weights and successful load_state_dict / load_weights: identifies the "
                             "current weights.")
      .def("resident_weight_bytes", &Model::resident_weight_bytes,
           "Bytes of parameters and buffers held as loaded. Compiling (the first forward for a shape) drops the\n"
           "convolution and linear weights that their packed copies rebuild bit for bit; state_dict() rebuilds\n"
           "them on demand. What stays: BatchNorm tensors, biases, Winograd layers' weights.")
      .def("weight_correction_bytes", &Model::weight_correction_bytes,
           "Bytes of the 2-bit rounding corrections that rebuilding the dropped weights needs.")
      .def(
          "state_dict",
          [](const Model& self) {
            std::vector<std::pair<std::string, Tensor>> sd;
            {
              py::gil_scoped_release release;
              sd = self.state_dict();
            }
            py::object od = py::module_::import("collections").attr("OrderedDict")();
            for (const auto& kv : sd) od[py::str(kv.first)] = to_numpy(kv.second);
            return od;
          },
          "Parameters and buffers as NumPy arrays (copies) under torchvision's keys, in torch's order.")
      .def(
          "load_state_dict",
          [](Model& self, py::handle state, bool strict) {
            if (!py::hasattr(state, "items"))
              throw TypeError("load_state_dict expects a mapping of names to arrays, got " +
                              std::string(py::str(py::type::handle_of(state).attr("__name__"))));
            std::vector<std::pair<std::string, Tensor>> sd;
            for (py::handle item : state.attr("items")()) {
              if (!py::isinstance<py::tuple>(item) || py::len(item) != 2)
                throw TypeError("load_state_dict: items() of the mapping must yield (key, value) pairs, got " +
                                short_repr(item, 60));
              py::tuple kv = py::reinterpret_borrow<py::tuple>(item);
              if (!py::isinstance<py::str>(kv[0]))
                throw TypeError("load_state_dict: keys must be str, got " +
                                std::string(py::str(py::type::handle_of(kv[0]).attr("__name__"))) + " " +
                                short_repr(kv[0], 60));
              Py_ssize_t n = 0;
              const char* utf8 = PyUnicode_AsUTF8AndSize(kv[0].ptr(), &n);
              if (!utf8) {
                PyErr_Clear();
                throw TypeError("load_state_dict: key " + short_repr(kv[0], 200) +
                                " cannot be encoded as UTF-8 (it holds a lone surrogate)");
              }
              sd.emplace_back(std::string(utf8, static_cast<size_t>(n)), tensor_from_python(kv[1], short_repr(kv[0], 200)));
            }
            models::LoadResult r;
            {
              py::gil_scoped_release release;
              r = self.load_state_dict(std::move(sd), strict);  // sd holds copies: no second one
            }
            py::object nt = py::module_::import("pyflame_vision._core").attr("IncompatibleKeys");
            return nt(py::cast(r.missing_keys), py::cast(r.unexpected_keys));
          },
          py::arg("state_dict"), py::arg("strict") = true,
          "torch's load_state_dict: keys, shapes and order as torchvision's. Raises WeightsError (a RuntimeError)\n"
          "listing every missing, unexpected and mis-shaped key; on error the previous weights stay. Returns\n"
          "IncompatibleKeys(missing_keys, unexpected_keys).")
      .def(
          "eval", [](py::object self) { return self; },
          "Inference mode, as torch's model.eval(); pyflame_vision only does inference, so this is a no-op "
          "that returns the model.")
      .def(
          "train",
          [](py::object self, bool mode) {
            if (mode)
              throw Unsupported("pyflame_vision runs inference only (BatchNorm uses running statistics, Dropout and "
                                "StochasticDepth are the identity); train(True) is not supported");
            return self;
          },
          py::arg("mode") = true, "torch's train(mode): train(False) is eval(); train(True) raises UnsupportedError.")
      .def(
          "execution_plan",
          [](const Model& self, py::handle input_shape, bool features) {
            const TensorSpec spec = spec_from_python(input_shape, "input_shape");
            py::gil_scoped_release release;
            return self.execution_plan(spec, features);
          },
          py::arg("input_shape"), py::arg("features") = false,
          "How the model runs for this input shape: one line per fused step with its algorithm and microkernel.")
      .def(
          "summary",
          [](const Model& self, py::object input_shape) {
            const TensorSpec spec = input_shape.is_none() ? TensorSpec(self.default_input_shape())
                                                          : spec_from_python(input_shape, "input_shape");
            py::gil_scoped_release release;
            return self.summary(spec);
          },
          py::arg("input_shape") = py::none(),
          "Per-layer table (output shape, parameters, MACs) with totals, at the model's native resolution by "
          "default. Runs nothing.")
      .def("_architecture", &architecture_of,
           "The architecture as a dict of plain values (family, name, the constructor's options, num_classes: 0\n"
           "once the head is removed): what a pickle records, enough to build the same module tree again.")
      // Pickling: the architecture (above) plus the weights' state from pyflame_vision.models._pickle (a
      // reference to the weights enum member or file they came from, or their .safetensors bytes), rebuilt by
      // _pickle._rebuild. The weights' provenance is recorded in Python (models/_record.py), hence the call out.
      .def(
          "__reduce__",
          [](py::object self) {
            py::module_ p = py::module_::import("pyflame_vision.models._pickle");
            return py::make_tuple(p.attr("_rebuild"),
                                  py::make_tuple(self.attr("_architecture")(), p.attr("weights_state")(self)));
          },
          "Pickle support: architecture + weights (a reference when known, else .safetensors bytes); see\n"
          "pyflame_vision.models.inline_weights.")
      .def("num_features", &Model::num_features, "Channels of the features that feed the classifier.")
      .def_property_readonly("name", &Model::name, "Registry name, e.g. 'resnet50'.")
      .def("_set_name", &Model::set_name, py::arg("name"))
      .def_property_readonly("default_input_shape",
                             [](const Model& self) { return shape_to_python(self.default_input_shape()); });

  py::enum_<ResNetBlockType>(m, "ResNetBlockType", "Residual block type of a ResNet.")
      .value("BASIC", ResNetBlockType::BASIC, "2 conv layers (ResNet-18/34)")
      .value("BOTTLENECK", ResNetBlockType::BOTTLENECK, "3 conv layers (ResNet-50/101/152)");

  py::class_<ResNet, Model, std::shared_ptr<ResNet>>(m, "ResNet", "torchvision-compatible ResNet / ResNeXt / Wide ResNet.")
      .def(py::init([](ResNetBlockType block_type, py::handle layers, int64_t num_classes, bool zero_init_residual,
                       int64_t groups, int64_t width_per_group, py::handle replace_stride_with_dilation) {
             return std::make_shared<ResNet>(block_type, ints_from_python(layers, "layers"), num_classes,
                                             zero_init_residual, groups, width_per_group,
                                             dilation_from_python(replace_stride_with_dilation));
           }),
           py::arg("block_type"), py::arg("layers"), py::arg("num_classes") = 1000,
           py::arg("zero_init_residual") = false, py::arg("groups") = 1, py::arg("width_per_group") = 64,
           py::arg("replace_stride_with_dilation") = py::none())
      .def_property_readonly("block_type", &ResNet::block_type)
      .def_property_readonly("layer_config", [](const ResNet& r) { return shape_to_python(r.layer_config()); })
      .def_property_readonly("groups", &ResNet::groups)
      .def_property_readonly("width_per_group", &ResNet::width_per_group)
      .def_property_readonly("zero_init_residual", &ResNet::zero_init_residual)
      .def_property_readonly("replace_stride_with_dilation",
                             [](const ResNet& r) {
                               py::list l;
                               for (bool b : r.replace_stride_with_dilation()) l.append(b);
                               return l;
                             })
      .def_property_readonly("num_classes", &ResNet::num_classes)
      .def("remove_fc", &ResNet::remove_fc,
           "Remove avgpool and fc; the model then returns layer4's [N, C, H, W] features.")
      .def("has_fc", &ResNet::has_fc);

  py::class_<EfficientNet, Model, std::shared_ptr<EfficientNet>>(m, "EfficientNet",
                                                                 "torchvision-compatible EfficientNet (B0-B4 and custom scalings).")
      .def(py::init<double, double, double, int64_t, double, int64_t>(), py::arg("width_mult") = 1.0,
           py::arg("depth_mult") = 1.0, py::arg("dropout") = 0.2, py::arg("num_classes") = 1000,
           py::arg("stochastic_depth_prob") = 0.2, py::arg("resolution") = 224)
      .def_property_readonly("width_mult", &EfficientNet::width_mult)
      .def_property_readonly("depth_mult", &EfficientNet::depth_mult)
      .def_property_readonly("dropout", &EfficientNet::dropout)
      .def_property_readonly("stochastic_depth_prob", &EfficientNet::stochastic_depth_prob)
      .def_property_readonly("resolution", &EfficientNet::resolution)
      .def_property_readonly("num_classes", &EfficientNet::num_classes)
      .def("remove_classifier", &EfficientNet::remove_classifier,
           "Remove avgpool and classifier; the model then returns the [N, C, H, W] features.")
      .def("has_classifier", &EfficientNet::has_classifier);

  py::module_ f = m.def_submodule("factories", "C++ model factories (wrapped by pyflame_vision.models).");
  // One factory per row of the model table (models/registry.h).
  for (const models::ModelSpec& spec : models::model_table()) {
    f.def(
        spec.name, [&spec](int64_t num_classes) { return spec.create(num_classes); }, py::arg("num_classes") = 1000,
        (std::string("torchvision's ") + spec.name + " (C++ factory).").c_str());
  }
  f.def(
      "model_table",
      []() {
        py::list rows;
        for (const models::ModelSpec& s : models::model_table()) {
          py::dict d;
          d["name"] = s.name;
          d["family"] = s.family;
          d["default_resolution"] = s.default_resolution;
          if (std::string(s.family) == "resnet") {
            d["block_type"] = s.block;
            d["layers"] = s.layers;
            d["groups"] = s.groups;
            d["width_per_group"] = s.width_per_group;
          } else {
            d["width_mult"] = s.width_mult;
            d["depth_mult"] = s.depth_mult;
            d["dropout"] = s.dropout;
          }
          rows.append(d);
        }
        return rows;
      },
      "The model table, one dict per model in torchvision's order: name, family, default_resolution and the\n"
      "architecture options (ResNet: block_type, layers, groups, width_per_group; EfficientNet: width_mult,\n"
      "depth_mult, dropout).");
  f.def("list_models", &models::list_models);
  f.def("create_model", &models::create_model, py::arg("name"), py::arg("num_classes") = 1000);
}

}  // namespace bindings
}  // namespace pyflame_vision
