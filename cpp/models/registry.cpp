#include "pyflame_vision/models/registry.h"

#include <functional>
#include <utility>

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace models {

namespace {
template <typename M>
std::shared_ptr<M> named(std::shared_ptr<M> m, const char* name) {
  m->set_name(name);
  return m;
}
using B = ResNetBlockType;
std::shared_ptr<EfficientNet> effnet(const char* name, double w, double d, double dropout, int64_t res,
                                     int64_t num_classes) {
  return named(std::make_shared<EfficientNet>(w, d, dropout, num_classes, 0.2, res), name);
}
}  // namespace

// Architecture tables from torchvision.models.resnet / efficientnet.
std::shared_ptr<ResNet> resnet18(int64_t n) { return named(std::make_shared<ResNet>(B::BASIC, std::vector<int64_t>{2, 2, 2, 2}, n), "resnet18"); }
std::shared_ptr<ResNet> resnet34(int64_t n) { return named(std::make_shared<ResNet>(B::BASIC, std::vector<int64_t>{3, 4, 6, 3}, n), "resnet34"); }
std::shared_ptr<ResNet> resnet50(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 4, 6, 3}, n), "resnet50"); }
std::shared_ptr<ResNet> resnet101(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 4, 23, 3}, n), "resnet101"); }
std::shared_ptr<ResNet> resnet152(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 8, 36, 3}, n), "resnet152"); }
std::shared_ptr<ResNet> resnext50_32x4d(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 4, 6, 3}, n, false, 32, 4), "resnext50_32x4d"); }
std::shared_ptr<ResNet> resnext101_32x8d(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 4, 23, 3}, n, false, 32, 8), "resnext101_32x8d"); }
std::shared_ptr<ResNet> wide_resnet50_2(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 4, 6, 3}, n, false, 1, 128), "wide_resnet50_2"); }
std::shared_ptr<ResNet> wide_resnet101_2(int64_t n) { return named(std::make_shared<ResNet>(B::BOTTLENECK, std::vector<int64_t>{3, 4, 23, 3}, n, false, 1, 128), "wide_resnet101_2"); }
// width_mult, depth_mult, dropout, native resolution
std::shared_ptr<EfficientNet> efficientnet_b0(int64_t n) { return effnet("efficientnet_b0", 1.0, 1.0, 0.2, 224, n); }
std::shared_ptr<EfficientNet> efficientnet_b1(int64_t n) { return effnet("efficientnet_b1", 1.0, 1.1, 0.2, 240, n); }
std::shared_ptr<EfficientNet> efficientnet_b2(int64_t n) { return effnet("efficientnet_b2", 1.1, 1.2, 0.3, 260, n); }
std::shared_ptr<EfficientNet> efficientnet_b3(int64_t n) { return effnet("efficientnet_b3", 1.2, 1.4, 0.3, 300, n); }
std::shared_ptr<EfficientNet> efficientnet_b4(int64_t n) { return effnet("efficientnet_b4", 1.4, 1.8, 0.4, 380, n); }

namespace {
const std::vector<std::pair<const char*, std::function<std::shared_ptr<Model>(int64_t)>>>& table() {
  static const std::vector<std::pair<const char*, std::function<std::shared_ptr<Model>(int64_t)>>> t = {
      {"efficientnet_b0", efficientnet_b0}, {"efficientnet_b1", efficientnet_b1},
      {"efficientnet_b2", efficientnet_b2}, {"efficientnet_b3", efficientnet_b3},
      {"efficientnet_b4", efficientnet_b4}, {"resnet101", resnet101},
      {"resnet152", resnet152},             {"resnet18", resnet18},
      {"resnet34", resnet34},               {"resnet50", resnet50},
      {"resnext101_32x8d", resnext101_32x8d}, {"resnext50_32x4d", resnext50_32x4d},
      {"wide_resnet101_2", wide_resnet101_2}, {"wide_resnet50_2", wide_resnet50_2},
  };
  return t;
}
}  // namespace

std::vector<std::string> list_models() {
  std::vector<std::string> names;
  for (const auto& e : table()) names.emplace_back(e.first);
  return names;
}

std::shared_ptr<Model> create_model(const std::string& name, int64_t num_classes) {
  for (const auto& e : table())
    if (name == e.first) return e.second(num_classes);
  std::string valid;
  for (const auto& e : table()) valid += (valid.empty() ? "" : ", ") + std::string(e.first);
  throw InvalidArgument("Unknown model '" + name + "'; available models: " + valid);
}

}  // namespace models
}  // namespace pyflame_vision
