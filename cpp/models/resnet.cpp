#include "pyflame_vision/models/resnet.h"

#include "pyflame_vision/error.h"
#include "pyflame_vision/nn/blocks.h"

namespace pyflame_vision {
namespace models {

using namespace nn;

namespace {
// torchvision.models.resnet.ResNet._make_layer, with the running inplanes and
// dilation of the builder passed by reference.
std::shared_ptr<Sequential> make_layer(ResNetBlockType type, int64_t& inplanes, int64_t& dilation, int64_t planes,
                                       int64_t blocks, int64_t stride, bool dilate, int64_t groups,
                                       int64_t base_width) {
  const int64_t expansion = type == ResNetBlockType::BASIC ? BasicBlock::expansion : Bottleneck::expansion;
  const int64_t previous_dilation = dilation;
  if (dilate) {
    dilation *= stride;
    stride = 1;
  }
  Module::Ptr downsample;
  if (stride != 1 || inplanes != planes * expansion) {
    auto ds = std::make_shared<Sequential>();
    ds->push_back(std::make_shared<Conv2d>(Conv2dOptions(inplanes, planes * expansion, 1).stride(stride).bias(false)));
    ds->push_back(std::make_shared<BatchNorm2d>(planes * expansion));
    downsample = ds;
  }
  auto make = [&](int64_t in, int64_t s, Module::Ptr ds, int64_t dil) -> Module::Ptr {
    if (type == ResNetBlockType::BASIC)
      return std::make_shared<BasicBlock>(in, planes, s, std::move(ds), groups, base_width, dil);
    return std::make_shared<Bottleneck>(in, planes, s, std::move(ds), groups, base_width, dil);
  };
  auto layer = std::make_shared<Sequential>();
  layer->push_back(make(inplanes, stride, downsample, previous_dilation));
  inplanes = planes * expansion;
  for (int64_t i = 1; i < blocks; ++i) layer->push_back(make(inplanes, 1, nullptr, dilation));
  return layer;
}
}  // namespace

ResNet::ResNet(ResNetBlockType block_type, std::vector<int64_t> layers, int64_t num_classes, bool zero_init_residual,
               int64_t groups, int64_t width_per_group, std::vector<bool> replace_stride_with_dilation)
    : block_type_(block_type),
      layers_(std::move(layers)),
      zero_init_residual_(zero_init_residual),
      groups_(groups),
      width_per_group_(width_per_group),
      dilation_(std::move(replace_stride_with_dilation)) {
  if (layers_.size() != 4)
    throw InvalidArgument("ResNet: layers must have 4 entries (blocks per stage), got " +
                          std::to_string(layers_.size()));
  for (size_t i = 0; i < 4; ++i)
    if (layers_[i] < 1)
      throw InvalidArgument("ResNet: layers[" + std::to_string(i) + "] must be >= 1, got " +
                            std::to_string(layers_[i]));
  if (num_classes < 0) throw InvalidArgument("ResNet: num_classes must be >= 0, got " + std::to_string(num_classes));
  if (groups < 1) throw InvalidArgument("ResNet: groups must be >= 1, got " + std::to_string(groups));
  if (width_per_group < 1)
    throw InvalidArgument("ResNet: width_per_group must be >= 1, got " + std::to_string(width_per_group));
  if (dilation_.size() != 3)
    throw InvalidArgument(
        "replace_stride_with_dilation should be None or a 3-element tuple, got " + std::to_string(dilation_.size()) +
        " elements");

  int64_t inplanes = 64, dilation = 1;
  register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions(3, inplanes, 7).stride(2).padding(3).bias(false)));
  register_module("bn1", std::make_shared<BatchNorm2d>(inplanes));
  register_module("relu", std::make_shared<ReLU>(true));
  register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  const int64_t planes[4] = {64, 128, 256, 512};
  for (int i = 0; i < 4; ++i) {
    register_module("layer" + std::to_string(i + 1),
                    make_layer(block_type_, inplanes, dilation, planes[i], layers_[i], i == 0 ? 1 : 2,
                               i == 0 ? false : static_cast<bool>(dilation_[i - 1]), groups, width_per_group));
  }
  if (num_classes > 0) {
    register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(Size2(1, 1), false));
    register_module("fc", std::make_shared<Linear>(num_features(), num_classes));
  }
  set_name("ResNet");
  rebuild_graph();
}

int64_t ResNet::num_features() const {
  return 512 * (block_type_ == ResNetBlockType::BASIC ? BasicBlock::expansion : Bottleneck::expansion);
}

bool ResNet::has_fc() const { return child("fc") != nullptr; }

int64_t ResNet::num_classes() const {
  auto fc = child("fc");
  return fc ? std::static_pointer_cast<Linear>(fc)->out_features() : 0;
}

void ResNet::remove_fc() {
  if (!has_fc() && !child("avgpool")) return;
  unregister_module("fc");
  unregister_module("avgpool");
  rebuild_graph();
}

ValueId ResNet::lower_model(nn::Lowering& g, ValueId x) const {
  static const std::shared_ptr<const Layer> flatten = std::make_shared<const Flatten>(1);
  for (const char* stem : {"conv1", "bn1", "relu", "maxpool"}) x = g.call_child(*this, stem, x);
  g.tap(x);
  for (const char* layer : {"layer1", "layer2", "layer3", "layer4"}) {
    x = g.call_child(*this, layer, x);
    g.tap(x);
  }
  if (has_fc()) {
    x = g.call_child(*this, "avgpool", x);
    x = g.add(flatten, {x}, "flatten");
    x = g.call_child(*this, "fc", x);
  }
  return x;
}

std::vector<std::string> ResNet::zero_init_names() const {
  std::vector<std::string> out;
  if (!zero_init_residual_) return out;
  const std::string last = block_type_ == ResNetBlockType::BOTTLENECK ? "bn3" : "bn2";
  for (const char* layer : {"layer1", "layer2", "layer3", "layer4"}) {
    auto stage = child(layer);
    if (!stage) continue;
    for (const auto& block : stage->children()) out.push_back(std::string(layer) + "." + block.first + "." + last + ".weight");
  }
  return out;
}

}  // namespace models
}  // namespace pyflame_vision
