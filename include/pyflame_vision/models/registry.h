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

/// The 14 model names, sorted.
std::vector<std::string> list_models();
/// Builds a model by name. Throws InvalidArgument for an unknown name (the
/// message lists the valid ones).
std::shared_ptr<Model> create_model(const std::string& name, int64_t num_classes = 1000);

}  // namespace models
}  // namespace pyflame_vision
