// pyflame_vision/nn/blocks.h - composite blocks of ResNet and EfficientNet.
//
// Each block registers its children under torchvision's names, so parameter
// names and printed trees match torchvision exactly, and lowers itself into the
// graph with torchvision's forward() semantics (residual add, ReLU after add,
// squeeze-excitation scaling, stochastic depth before the skip add).
// Blocks are built once (constructors throw InvalidArgument for bad options)
// and then only read, so const members are safe from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

/// torchvision.models.resnet.BasicBlock (expansion 1): conv3x3-bn-relu-conv3x3-bn,
/// + identity or `downsample`, relu. Throws InvalidArgument for groups != 1 or
/// base_width != 64 and Unsupported for dilation > 1, like torchvision.
class BasicBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride = 1, Module::Ptr downsample = nullptr,
             int64_t groups = 1, int64_t base_width = 64, int64_t dilation = 1);
  std::string type_name() const override { return "BasicBlock"; }
  ValueId lower(Lowering& g, ValueId x) const override;
};

/// torchvision.models.resnet.Bottleneck (expansion 4): conv1x1-bn-relu,
/// conv3x3(stride, groups, dilation)-bn-relu, conv1x1-bn, + identity or
/// `downsample`, relu. width = int(planes * base_width / 64) * groups.
class Bottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride = 1, Module::Ptr downsample = nullptr,
             int64_t groups = 1, int64_t base_width = 64, int64_t dilation = 1);
  std::string type_name() const override { return "Bottleneck"; }
  ValueId lower(Lowering& g, ValueId x) const override;
};

/// torchvision.ops.SqueezeExcitation: x * sigmoid(fc2(act(fc1(avgpool(x))))),
/// with fc1/fc2 1x1 convolutions with bias.
class SqueezeExcitation : public Module {
 public:
  SqueezeExcitation(int64_t input_channels, int64_t squeeze_channels, Activation activation = Activation::ReLU);
  std::string type_name() const override { return "SqueezeExcitation"; }
  ValueId lower(Lowering& g, ValueId x) const override;
};

/// Conv2d + BatchNorm2d (+ activation) as torchvision.ops.Conv2dNormActivation:
/// padding (kernel-1)/2*dilation, no conv bias, children "0", "1", "2".
std::shared_ptr<Sequential> conv_norm_activation(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                                 int64_t stride, int64_t groups, bool with_activation,
                                                 Activation activation = Activation::SiLU, double bn_eps = 1e-5);

/// One row of torchvision's EfficientNet table, already scaled.
struct MBConvConfig {
  double expand_ratio;
  int64_t kernel;
  int64_t stride;
  int64_t input_channels;
  int64_t out_channels;
  int64_t num_layers;
};

/// torchvision.models.efficientnet.MBConv: [expand 1x1] - depthwise kxk -
/// squeeze-excitation - project 1x1, with stochastic depth and the skip add
/// when stride == 1 and input == output channels.
class MBConv : public Module {
 public:
  MBConv(const MBConvConfig& cnf, double stochastic_depth_prob, double bn_eps = 1e-5);
  bool use_res_connect() const { return use_res_connect_; }
  std::string type_name() const override { return "MBConv"; }
  ValueId lower(Lowering& g, ValueId x) const override;

 private:
  bool use_res_connect_;
};

/// torchvision's _make_divisible(v, divisor, min_value=None).
int64_t make_divisible(double v, int64_t divisor, int64_t min_value = -1);

}  // namespace nn
}  // namespace pyflame_vision
