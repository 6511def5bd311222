#include "pyflame_vision/models/efficientnet.h"

#include <cmath>

#include "pyflame_vision/error.h"
#include "pyflame_vision/nn/module.h"

namespace pyflame_vision {
namespace models {

using namespace nn;

std::vector<MBConvConfig> EfficientNet::base_config() {
  // torchvision's B0 table: expand_ratio, kernel, stride, input, output, layers.
  return {
      {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
      {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
  };
}

EfficientNet::EfficientNet(double width_mult, double depth_mult, double dropout, int64_t num_classes,
                           double stochastic_depth_prob, int64_t resolution)
    : width_mult_(width_mult),
      depth_mult_(depth_mult),
      dropout_(dropout),
      sd_prob_(stochastic_depth_prob),
      resolution_(resolution) {
  if (!(width_mult > 0.0) || !std::isfinite(width_mult))
    throw InvalidArgument("EfficientNet: width_mult must be > 0, got " + python_float_repr(width_mult));
  if (!(depth_mult > 0.0) || !std::isfinite(depth_mult))
    throw InvalidArgument("EfficientNet: depth_mult must be > 0, got " + python_float_repr(depth_mult));
  if (!(dropout >= 0.0 && dropout <= 1.0))
    throw InvalidArgument("EfficientNet: dropout must be in [0, 1], got " + python_float_repr(dropout));
  if (!(stochastic_depth_prob >= 0.0 && stochastic_depth_prob <= 1.0))
    throw InvalidArgument("EfficientNet: stochastic_depth_prob must be in [0, 1], got " +
                          python_float_repr(stochastic_depth_prob));
  if (num_classes < 0)
    throw InvalidArgument("EfficientNet: num_classes must be >= 0, got " + std::to_string(num_classes));
  if (resolution < 1) throw InvalidArgument("EfficientNet: resolution must be >= 1, got " + std::to_string(resolution));

  // MBConvConfig.adjust_channels / adjust_depth.
  for (MBConvConfig c : base_config()) {
    c.input_channels = make_divisible(static_cast<double>(c.input_channels) * width_mult, 8);
    c.out_channels = make_divisible(static_cast<double>(c.out_channels) * width_mult, 8);
    const double layers = std::ceil(static_cast<double>(c.num_layers) * depth_mult);
    if (layers > 1e6) throw InvalidArgument("EfficientNet: depth_mult gives too many layers");
    c.num_layers = static_cast<int64_t>(layers);
    config_.push_back(c);
  }

  auto features = std::make_shared<Sequential>();
  features->push_back(conv_norm_activation(3, config_.front().input_channels, 3, 2, 1, true, Activation::SiLU));
  int64_t total_blocks = 0;
  for (const auto& c : config_) total_blocks += c.num_layers;
  int64_t block_id = 0;
  for (const auto& c : config_) {
    auto stage = std::make_shared<Sequential>();
    for (int64_t i = 0; i < c.num_layers; ++i) {
      MBConvConfig bc = c;
      if (stage->size() > 0) {
        bc.input_channels = bc.out_channels;
        bc.stride = 1;
      }
      // torchvision: stochastic_depth_prob * float(stage_block_id) / total_stage_blocks
      const double sd = stochastic_depth_prob * static_cast<double>(block_id) / static_cast<double>(total_blocks);
      stage->push_back(std::make_shared<MBConv>(bc, sd));
      ++block_id;
    }
    features->push_back(stage);
  }
  const int64_t last_in = config_.back().out_channels;
  last_channels_ = 4 * last_in;
  features->push_back(conv_norm_activation(last_in, last_channels_, 1, 1, 1, true, Activation::SiLU));
  register_module("features", features);
  if (num_classes > 0) {
    register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, true));
    auto classifier = std::make_shared<Sequential>();
    classifier->push_back(std::make_shared<Dropout>(dropout, true));
    classifier->push_back(std::make_shared<Linear>(last_channels_, num_classes));
    register_module("classifier", classifier);
  }
  set_name("EfficientNet");
  rebuild_graph();
}

bool EfficientNet::has_classifier() const { return child("classifier") != nullptr; }

int64_t EfficientNet::num_classes() const {
  auto c = child("classifier");
  if (!c) return 0;
  return std::static_pointer_cast<Linear>(c->children().back().second)->out_features();
}

void EfficientNet::remove_classifier() {
  if (!has_classifier() && !child("avgpool")) return;
  unregister_module("classifier");
  unregister_module("avgpool");
  rebuild_graph();
}

ValueId EfficientNet::lower_model(nn::Lowering& g, ValueId x) const {
  static const std::shared_ptr<const Layer> flatten = std::make_shared<const Flatten>(1);
  x = g.call_child(*this, "features", x);
  g.tap(x);
  if (has_classifier()) {
    x = g.call_child(*this, "avgpool", x);
    x = g.add(flatten, {x}, "flatten");
    x = g.call_child(*this, "classifier", x);
  }
  return x;
}

}  // namespace models
}  // namespace pyflame_vision
