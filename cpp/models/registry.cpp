// The model table (architecture tables from torchvision.models.resnet and
// torchvision.models.efficientnet) and the factories built on it.
#include "pyflame_vision/models/registry.h"

#include <algorithm>
#include <utility>

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace models {

namespace {

ModelSpec resnet(const char* name, ResNetBlockType block, std::vector<int64_t> layers, int64_t groups = 1,
                 int64_t width_per_group = 64) {
  ModelSpec s;
  s.name = name, s.family = "resnet", s.default_resolution = 224;
  s.block = block;
  s.layers = std::move(layers);
  s.groups = groups;
  s.width_per_group = width_per_group;
  return s;
}

ModelSpec efficientnet(const char* name, double width, double depth, double dropout, int64_t resolution) {
  ModelSpec s;
  s.name = name, s.family = "efficientnet", s.default_resolution = resolution;
  s.width_mult = width;
  s.depth_mult = depth;
  s.dropout = dropout;
  return s;
}

using B = ResNetBlockType;

}  // namespace

const std::vector<ModelSpec>& model_table() {
  static const std::vector<ModelSpec> table = {
      resnet("resnet18", B::BASIC, {2, 2, 2, 2}),
      resnet("resnet34", B::BASIC, {3, 4, 6, 3}),
      resnet("resnet50", B::BOTTLENECK, {3, 4, 6, 3}),
      resnet("resnet101", B::BOTTLENECK, {3, 4, 23, 3}),
      resnet("resnet152", B::BOTTLENECK, {3, 8, 36, 3}),
      resnet("resnext50_32x4d", B::BOTTLENECK, {3, 4, 6, 3}, 32, 4),
      resnet("resnext101_32x8d", B::BOTTLENECK, {3, 4, 23, 3}, 32, 8),
      resnet("wide_resnet50_2", B::BOTTLENECK, {3, 4, 6, 3}, 1, 128),
      resnet("wide_resnet101_2", B::BOTTLENECK, {3, 4, 23, 3}, 1, 128),
      // width_mult, depth_mult, dropout, native resolution
      efficientnet("efficientnet_b0", 1.0, 1.0, 0.2, 224),
      efficientnet("efficientnet_b1", 1.0, 1.1, 0.2, 240),
      efficientnet("efficientnet_b2", 1.1, 1.2, 0.3, 260),
      efficientnet("efficientnet_b3", 1.2, 1.4, 0.3, 300),
      efficientnet("efficientnet_b4", 1.4, 1.8, 0.4, 380),
  };
  return table;
}

std::shared_ptr<Model> ModelSpec::create(int64_t num_classes) const {
  std::shared_ptr<Model> m;
  if (std::string(family) == "resnet") {
    m = std::make_shared<ResNet>(block, layers, num_classes, false, groups, width_per_group);
  } else {
    m = std::make_shared<EfficientNet>(width_mult, depth_mult, dropout, num_classes, 0.2, default_resolution);
  }
  m->set_name(name);
  return m;
}

const ModelSpec& model_spec(const std::string& name) {
  for (const auto& s : model_table())
    if (name == s.name) return s;
  std::string valid;
  for (const auto& n : list_models()) valid += (valid.empty() ? "" : ", ") + n;
  throw InvalidArgument("Unknown model '" + name + "'; available models: " + valid);
}

std::vector<std::string> list_models() {
  std::vector<std::string> names;
  for (const auto& s : model_table()) names.emplace_back(s.name);
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<Model> create_model(const std::string& name, int64_t num_classes) {
  return model_spec(name).create(num_classes);
}

namespace {
std::shared_ptr<ResNet> make_resnet(const char* name, int64_t n) {
  return std::static_pointer_cast<ResNet>(model_spec(name).create(n));
}
std::shared_ptr<EfficientNet> make_efficientnet(const char* name, int64_t n) {
  return std::static_pointer_cast<EfficientNet>(model_spec(name).create(n));
}
}  // namespace

std::shared_ptr<ResNet> resnet18(int64_t n) { return make_resnet("resnet18", n); }
std::shared_ptr<ResNet> resnet34(int64_t n) { return make_resnet("resnet34", n); }
std::shared_ptr<ResNet> resnet50(int64_t n) { return make_resnet("resnet50", n); }
std::shared_ptr<ResNet> resnet101(int64_t n) { return make_resnet("resnet101", n); }
std::shared_ptr<ResNet> resnet152(int64_t n) { return make_resnet("resnet152", n); }
std::shared_ptr<ResNet> resnext50_32x4d(int64_t n) { return make_resnet("resnext50_32x4d", n); }
std::shared_ptr<ResNet> resnext101_32x8d(int64_t n) { return make_resnet("resnext101_32x8d", n); }
std::shared_ptr<ResNet> wide_resnet50_2(int64_t n) { return make_resnet("wide_resnet50_2", n); }
std::shared_ptr<ResNet> wide_resnet101_2(int64_t n) { return make_resnet("wide_resnet101_2", n); }
std::shared_ptr<EfficientNet> efficientnet_b0(int64_t n) { return make_efficientnet("efficientnet_b0", n); }
std::shared_ptr<EfficientNet> efficientnet_b1(int64_t n) { return make_efficientnet("efficientnet_b1", n); }
std::shared_ptr<EfficientNet> efficientnet_b2(int64_t n) { return make_efficientnet("efficientnet_b2", n); }
std::shared_ptr<EfficientNet> efficientnet_b3(int64_t n) { return make_efficientnet("efficientnet_b3", n); }
std::shared_ptr<EfficientNet> efficientnet_b4(int64_t n) { return make_efficientnet("efficientnet_b4", n); }

}  // namespace models
}  // namespace pyflame_vision
