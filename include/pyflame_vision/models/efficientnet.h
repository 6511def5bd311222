// pyflame_vision/models/efficientnet.h - torchvision's EfficientNet B0-B7 family.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "pyflame_vision/models/model.h"
#include "pyflame_vision/nn/blocks.h"

namespace pyflame_vision {
namespace models {

/// torchvision.models.EfficientNet built from the B0 MBConv table scaled by
/// width_mult (channels, rounded to multiples of 8) and depth_mult (layers,
/// rounded up), with torchvision's stochastic-depth schedule. Module names,
/// parameter shapes and the printed tree equal torchvision's.
///
/// `resolution` is the native input size used by summary() defaults.
/// num_classes == 0 builds it without avgpool/classifier (as remove_classifier()).
/// Throws InvalidArgument for width/depth <= 0, dropout or
/// stochastic_depth_prob outside [0, 1], num_classes < 0, resolution < 1.
class EfficientNet : public Model {
 public:
  EfficientNet(double width_mult, double depth_mult, double dropout, int64_t num_classes = 1000,
               double stochastic_depth_prob = 0.2, int64_t resolution = 224);

  /// The scaled MBConv table this model was built from.
  const std::vector<nn::MBConvConfig>& stage_config() const { return config_; }
  /// torchvision's unscaled B0 table: (expand, kernel, stride, in, out, layers).
  static std::vector<nn::MBConvConfig> base_config();

  double width_mult() const { return width_mult_; }
  double depth_mult() const { return depth_mult_; }
  double dropout() const { return dropout_; }
  double stochastic_depth_prob() const { return sd_prob_; }
  int64_t resolution() const { return resolution_; }
  int64_t num_classes() const;

  /// Removes avgpool and classifier: the model then returns the [N, C, H, W]
  /// features. Idempotent.
  void remove_classifier();
  bool has_classifier() const;
  /// remove_classifier().
  void remove_head() override { remove_classifier(); }
  bool has_head() const override { return has_classifier(); }
  int64_t num_features() const override { return last_channels_; }
  Shape default_input_shape() const override { return {1, 3, resolution_, resolution_}; }

  std::string type_name() const override { return "EfficientNet"; }

 protected:
  ValueId lower_model(nn::Lowering& g, ValueId x) const override;
  bool efficientnet_linear_init() const override { return true; }

 private:
  double width_mult_, depth_mult_, dropout_, sd_prob_;
  int64_t resolution_;
  std::vector<nn::MBConvConfig> config_;
  int64_t last_channels_;
};

}  // namespace models
}  // namespace pyflame_vision
