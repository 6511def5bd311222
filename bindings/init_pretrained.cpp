// The pretrained-weights table (models/weights.h) as plain Python data; the
// Python package builds torchvision-style weights enums from it.
#include <pybind11/stl.h>

#include "bindings.h"
#include "pyflame_vision/models/weights.h"

namespace pyflame_vision {
namespace bindings {

namespace {
py::dict entry_dict(const models::WeightsInfo& w) {
  py::dict d;
  d["model"] = w.model;
  d["enum_name"] = w.enum_name;
  d["member"] = w.member;
  d["is_default"] = w.is_default;
  d["is_legacy_pretrained"] = w.is_legacy_pretrained;
  d["url"] = w.url;
  d["file_name"] = w.file_name;
  d["sha256_prefix"] = w.sha256_prefix;
  d["num_params"] = w.num_params;
  d["min_size"] = py::make_tuple(w.min_size[0], w.min_size[1]);
  d["recipe"] = w.recipe;
  d["acc1"] = w.acc1;
  d["acc5"] = w.acc5;
  d["gmacs"] = w.gmacs;
  d["file_size_mb"] = w.file_size_mb;
  d["docs"] = w.docs;
  py::dict preset;
  preset["crop_size"] = w.preset.crop_size;
  preset["resize_size"] = w.preset.resize_size;
  preset["interpolation"] = w.preset.interpolation;
  preset["mean"] = py::make_tuple(w.preset.mean[0], w.preset.mean[1], w.preset.mean[2]);
  preset["std"] = py::make_tuple(w.preset.std[0], w.preset.std[1], w.preset.std[2]);
  preset["antialias"] = w.preset.antialias;
  d["preset"] = preset;
  return d;
}
}  // namespace

void init_pretrained(py::module_& m) {
  auto p = m.def_submodule("pretrained", "torchvision's pretrained weights table (include/pyflame_vision/models/weights.h)");
  p.def(
      "entries",
      [] {
        py::list out;
        for (const auto& w : models::pretrained_weights()) out.append(entry_dict(w));
        return out;
      },
      "Every weights entry as a dict (model, enum_name, member, url, sha256_prefix, metrics, preset, ...).");
  p.def("imagenet_categories", &models::imagenet_categories, "The 1000 ImageNet-1K class names.");
  p.def("weights_cache_dir", &models::weights_cache_dir,
        "The checkpoint cache directory (PYFLAME_VISION_HOME/checkpoints, else torch hub's).");
  p.def(
      "find_cached_weights",
      [](const std::string& name) { return models::find_cached_weights(models::get_weights(name)); },
      py::arg("name"), "The cached checkpoint's path for 'ResNet50_Weights.IMAGENET1K_V2', or '' if absent.");
}

}  // namespace bindings
}  // namespace pyflame_vision
