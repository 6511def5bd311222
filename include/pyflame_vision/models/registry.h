// pyflame_vision/models/registry.h - torchvision-named model factories.
//
// Each factory builds the architecture lazily (no weight memory) in well under
// a millisecond per block and returns a new model the caller owns (shared_ptr;
// the model has no weights until init_weights() or load_weights()).
// num_classes == 0 builds the model without its classifier head. Throws
// InvalidArgument for num_classes < 0. All functions here are thread-safe.
//
// Output for a float32 [N, 3, H, W] input: [N, num_classes] logits.
// Native resolutions: 224 (every ResNet, EfficientNet-B0), 240 (B1), 260 (B2),
// 300 (B3), 380 (B4); other sizes work too (get_output_shape throws
// ShapeError, naming the layer, for one that does not).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/models/efficientnet.h"
#include "pyflame_vision/models/resnet.h"

namespace pyflame_vision {
namespace models {

/// torchvision.models.resnet18 ... wide_resnet101_2: ResNet, ResNeXt and Wide ResNet.
std::shared_ptr<ResNet> resnet18(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet34(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet50(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet101(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet152(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnext50_32x4d(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnext101_32x8d(int64_t num_classes = 1000);
std::shared_ptr<ResNet> wide_resnet50_2(int64_t num_classes = 1000);
std::shared_ptr<ResNet> wide_resnet101_2(int64_t num_classes = 1000);
/// torchvision.models.efficientnet_b0 ... efficientnet_b4.
std::shared_ptr<EfficientNet> efficientnet_b0(int64_t num_classes = 1000);
std::shared_ptr<EfficientNet> efficientnet_b1(int64_t num_classes = 1000);
std::shared_ptr<EfficientNet> efficientnet_b2(int64_t num_classes = 1000);
std::shared_ptr<EfficientNet> efficientnet_b3(int64_t num_classes = 1000);
std::shared_ptr<EfficientNet> efficientnet_b4(int64_t num_classes = 1000);

/// One row of the model table: everything that defines a named model. The
/// factories below, list_models/create_model, the Python bindings and
/// factories, and the tests all iterate this table, so adding a model is
/// adding a row (the weights metadata will join it).
struct ModelSpec {
  const char* name = "";            ///< torchvision's name, e.g. "resnet50"
  const char* family = "";          ///< "resnet" or "efficientnet"
  int64_t default_resolution = 224;  ///< native square input size (224 ... 380)
  // ResNet family (torchvision.models.resnet._resnet arguments)
  ResNetBlockType block = ResNetBlockType::BASIC;
  std::vector<int64_t> layers;
  int64_t groups = 1;
  int64_t width_per_group = 64;
  // EfficientNet family (torchvision.models.efficientnet._efficientnet_conf / _efficientnet)
  double width_mult = 1.0;
  double depth_mult = 1.0;
  double dropout = 0.2;
  /// Builds the model, named, with `num_classes` (0: without its head).
  /// Throws InvalidArgument for num_classes < 0.
  std::shared_ptr<Model> create(int64_t num_classes = 1000) const;
};
/// The 14 models, in torchvision's order (ResNet-18 ... EfficientNet-B4).
const std::vector<ModelSpec>& model_table();
/// The table row called `name`; throws InvalidArgument (listing the valid names) otherwise.
const ModelSpec& model_spec(const std::string& name);

/// The 14 model names, sorted.
std::vector<std::string> list_models();
/// Builds a model by name. Throws InvalidArgument for an unknown name (the
/// message lists the valid ones).
std::shared_ptr<Model> create_model(const std::string& name, int64_t num_classes = 1000);

}  // namespace models
}  // namespace pyflame_vision
