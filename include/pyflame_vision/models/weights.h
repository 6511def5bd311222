// pyflame_vision/models/weights.h - torchvision's pretrained weights: the table.
//
// One entry per member of torchvision 0.29.1's weights enums for the 14 models
// (ResNet50_Weights.IMAGENET1K_V1, ...): where the checkpoint is downloaded from,
// its SHA-256 prefix, the ImageNet categories, the published accuracy, and the
// preprocessing preset the weights were trained and evaluated with. The table is
// generated from torchvision itself (cpp/models/gen_weights_table.py) and is the
// one source for both languages: Python's weights enums
// (pyflame_vision.models.ResNet50_Weights) are built from it.
//
// A C++ application finds a checkpoint that torchvision or pyflame_vision
// already downloaded with find_cached_weights() and loads it with
// load_weights() (io.h); the categories label its outputs. Downloading is done
// by the Python package (or by hand: the entry's url to the cache directory).
//
// Everything here is immutable static data (no static initialisers run for the
// table) and every function is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pyflame_vision {
namespace models {

/// torchvision.transforms._presets.ImageClassification's settings: resize the
/// smaller edge to resize_size with `interpolation` (antialiased), center-crop
/// crop_size x crop_size, scale to [0, 1], normalise with mean and std.
struct WeightsPreset {
  int64_t crop_size;
  int64_t resize_size;
  const char* interpolation;  ///< torchvision's InterpolationMode value: "bilinear" or "bicubic"
  std::array<double, 3> mean;
  std::array<double, 3> std;
  bool antialias;
};

/// One pretrained checkpoint (a member of a torchvision weights enum).
struct WeightsInfo {
  const char* model;           ///< model name, as in create_model(): "resnet50"
  const char* enum_name;       ///< torchvision's enum class: "ResNet50_Weights"
  const char* member;          ///< "IMAGENET1K_V2"
  bool is_default;             ///< the enum's DEFAULT alias points here
  bool is_legacy_pretrained;   ///< what torchvision's legacy pretrained=True loads (IMAGENET1K_V1)
  const char* url;             ///< https://download.pytorch.org/models/resnet50-11ad3fa6.pth
  const char* file_name;       ///< the last component of url: the name in the cache directory
  const char* sha256_prefix;   ///< the hex digits after the last '-' of file_name, as torch hub checks
  int64_t num_params;          ///< meta["num_params"]
  std::array<int64_t, 2> min_size;  ///< meta["min_size"] (height, width)
  const char* recipe;          ///< meta["recipe"]
  double acc1;                 ///< meta["_metrics"]["ImageNet-1K"]["acc@1"] (percent)
  double acc5;                 ///< meta["_metrics"]["ImageNet-1K"]["acc@5"] (percent)
  double gmacs;                ///< meta["_ops"]: giga multiply-adds at crop_size
  double file_size_mb;         ///< meta["_file_size"]: the checkpoint's size in MB (10^6 bytes)
  const char* docs;            ///< meta["_docs"], verbatim
  WeightsPreset preset;        ///< the transforms preset
  /// "ResNet50_Weights.IMAGENET1K_V2"
  std::string full_name() const;
  /// The 1000 ImageNet-1K class names, index = logit index (meta["categories"]).
  const std::vector<std::string>& categories() const;
};

/// Every entry, grouped by model in create_model()'s order, members in
/// torchvision's order (IMAGENET1K_V1 before IMAGENET1K_V2).
const std::vector<WeightsInfo>& pretrained_weights();
/// The entries of one model ("resnet50"); throws InvalidArgument for an unknown model.
std::vector<const WeightsInfo*> model_weights(const std::string& model);
/// Looks an entry up by "ResNet50_Weights.IMAGENET1K_V2" or "ResNet50_Weights.DEFAULT"
/// (also accepts the model name for the enum: "resnet50.DEFAULT"). Throws InvalidArgument
/// naming what was asked and what exists.
const WeightsInfo& get_weights(const std::string& name);
/// The entry that `DEFAULT` names for `model`. Throws InvalidArgument for an unknown model.
const WeightsInfo& default_weights(const std::string& model);
/// The 1000 ImageNet-1K class names ("tench", "goldfish", ...), as torchvision's
/// _IMAGENET_CATEGORIES.
const std::vector<std::string>& imagenet_categories();

/// The checkpoint cache directory, the one torch hub uses so that checkpoints
/// downloaded by torchvision are found: $PYFLAME_VISION_HOME/checkpoints if that
/// variable is set, else $TORCH_HOME/hub/checkpoints, else
/// $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints.
/// Nothing is created. Throws InvalidArgument if none of HOME and the variables is set.
std::string weights_cache_dir();
/// The path of `w`'s checkpoint in weights_cache_dir() if a regular file is
/// there, else an empty string. The file's hash is not checked (as torch hub
/// does not check a cached file).
std::string find_cached_weights(const WeightsInfo& w);

}  // namespace models
}  // namespace pyflame_vision
