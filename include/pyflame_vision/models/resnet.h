// pyflame_vision/models/resnet.h - torchvision's ResNet, ResNeXt and Wide ResNet.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "pyflame_vision/models/model.h"

namespace pyflame_vision {
namespace models {

enum class ResNetBlockType { BASIC, BOTTLENECK };

/// torchvision.models.ResNet. Module names, parameter shapes and the printed
/// tree equal torchvision's. num_classes == 0 builds the model without the
/// avgpool/fc head (as remove_fc()).
///
/// Throws InvalidArgument for: layers not 4 entries >= 1, num_classes < 0,
/// groups/width_per_group < 1, replace_stride_with_dilation not 3 entries,
/// BASIC with groups != 1 or width_per_group != 64; Unsupported for BASIC with
/// dilation.
class ResNet : public Model {
 public:
  ResNet(ResNetBlockType block_type, std::vector<int64_t> layers, int64_t num_classes = 1000,
         bool zero_init_residual = false, int64_t groups = 1, int64_t width_per_group = 64,
         std::vector<bool> replace_stride_with_dilation = {false, false, false});

  ResNetBlockType block_type() const { return block_type_; }
  const std::vector<int64_t>& layer_config() const { return layers_; }
  int64_t groups() const { return groups_; }
  int64_t width_per_group() const { return width_per_group_; }
  bool zero_init_residual() const { return zero_init_residual_; }
  const std::vector<bool>& replace_stride_with_dilation() const { return dilation_; }
  /// Current number of classes (0 once the head is removed).
  int64_t num_classes() const;

  /// Removes avgpool and fc: the model then returns layer4's [N, C, H, W]. Idempotent.
  void remove_fc();
  bool has_fc() const;
  /// remove_fc().
  void remove_head() override { remove_fc(); }
  bool has_head() const override { return has_fc(); }
  int64_t num_features() const override;

  std::string type_name() const override { return "ResNet"; }

 protected:
  ValueId lower_model(nn::Lowering& g, ValueId x) const override;
  /// With zero_init_residual: each block's last BatchNorm weight (bn3 / bn2).
  std::vector<std::string> zero_init_names() const override;

 private:
  ResNetBlockType block_type_;
  std::vector<int64_t> layers_;
  bool zero_init_residual_;
  int64_t groups_, width_per_group_;
  std::vector<bool> dilation_;
};

}  // namespace models
}  // namespace pyflame_vision
