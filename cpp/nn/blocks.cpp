#include "pyflame_vision/nn/blocks.h"

#include <algorithm>

#include "pyflame_vision/error.h"
#include "pyflame_vision/nn/lowering.h"

namespace pyflame_vision {
namespace nn {

namespace {
// Stateless graph-only ops, shared by every block.
std::shared_ptr<const Layer> add_op() {
  static const std::shared_ptr<const Layer> op = std::make_shared<const Add>();
  return op;
}
std::shared_ptr<const Layer> mul_op() {
  static const std::shared_ptr<const Layer> op = std::make_shared<const Mul>();
  return op;
}

std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride, int64_t groups, int64_t dilation) {
  return std::make_shared<Conv2d>(
      Conv2dOptions(in, out, 3).stride(stride).padding(dilation).groups(groups).dilation(dilation).bias(false));
}
std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return std::make_shared<Conv2d>(Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// Shared tail of both residual blocks: out + identity (or downsample(x)), then relu.
ValueId residual_tail(Lowering& g, const Module& block, ValueId out, ValueId x) {
  ValueId identity = x;
  if (block.child("downsample")) identity = g.call_child(block, "downsample", x);
  out = g.add(add_op(), {out, identity});
  return g.call_child(block, "relu", out);
}
}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, Module::Ptr downsample, int64_t groups,
                       int64_t base_width, int64_t dilation) {
  if (groups != 1 || base_width != 64)
    throw InvalidArgument("BasicBlock only supports groups=1 and base_width=64, got groups=" + std::to_string(groups) +
                          " and base_width=" + std::to_string(base_width));
  if (dilation > 1) throw Unsupported("Dilation > 1 not supported in BasicBlock");
  register_module("conv1", conv3x3(inplanes, planes, stride, 1, 1));
  register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  register_module("relu", std::make_shared<ReLU>(true));
  register_module("conv2", conv3x3(planes, planes, 1, 1, 1));
  register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (downsample) register_module("downsample", std::move(downsample));
}

ValueId BasicBlock::lower(Lowering& g, ValueId x) const {
  ValueId out = g.call_child(*this, "conv1", x);
  out = g.call_child(*this, "bn1", out);
  out = g.call_child(*this, "relu", out);
  out = g.call_child(*this, "conv2", out);
  out = g.call_child(*this, "bn2", out);
  return residual_tail(g, *this, out, x);
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, Module::Ptr downsample, int64_t groups,
                       int64_t base_width, int64_t dilation) {
  // torchvision: width = int(planes * (base_width / 64.0)) * groups
  const int64_t width = static_cast<int64_t>(static_cast<double>(planes) * (static_cast<double>(base_width) / 64.0)) *
                        groups;
  if (width < 1)
    throw InvalidArgument("Bottleneck: width int(planes * base_width / 64) * groups must be >= 1, got " +
                          std::to_string(width));
  register_module("conv1", conv1x1(inplanes, width));
  register_module("bn1", std::make_shared<BatchNorm2d>(width));
  register_module("conv2", conv3x3(width, width, stride, groups, dilation));
  register_module("bn2", std::make_shared<BatchNorm2d>(width));
  register_module("conv3", conv1x1(width, planes * expansion));
  register_module("bn3", std::make_shared<BatchNorm2d>(planes * expansion));
  register_module("relu", std::make_shared<ReLU>(true));
  if (downsample) register_module("downsample", std::move(downsample));
}

ValueId Bottleneck::lower(Lowering& g, ValueId x) const {
  ValueId out = g.call_child(*this, "conv1", x);
  out = g.call_child(*this, "bn1", out);
  out = g.call_child(*this, "relu", out);
  out = g.call_child(*this, "conv2", out);
  out = g.call_child(*this, "bn2", out);
  out = g.call_child(*this, "relu", out);
  out = g.call_child(*this, "conv3", out);
  out = g.call_child(*this, "bn3", out);
  return residual_tail(g, *this, out, x);
}

namespace {
std::shared_ptr<Layer> make_activation(Activation a) {
  switch (a) {
    case Activation::ReLU: return std::make_shared<ReLU>(true);
    case Activation::SiLU: return std::make_shared<SiLU>(true);
    case Activation::Sigmoid: return std::make_shared<Sigmoid>();
  }
  return nullptr;
}
}  // namespace

SqueezeExcitation::SqueezeExcitation(int64_t input_channels, int64_t squeeze_channels, Activation activation) {
  register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, true));
  register_module("fc1", std::make_shared<Conv2d>(Conv2dOptions(input_channels, squeeze_channels, 1)));
  register_module("fc2", std::make_shared<Conv2d>(Conv2dOptions(squeeze_channels, input_channels, 1)));
  register_module("activation", make_activation(activation));
  register_module("scale_activation", std::make_shared<Sigmoid>());
}

ValueId SqueezeExcitation::lower(Lowering& g, ValueId x) const {
  ValueId s = g.call_child(*this, "avgpool", x);
  s = g.call_child(*this, "fc1", s);
  s = g.call_child(*this, "activation", s);
  s = g.call_child(*this, "fc2", s);
  s = g.call_child(*this, "scale_activation", s);
  return g.add(mul_op(), {s, x});
}

std::shared_ptr<Sequential> conv_norm_activation(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                                 int64_t stride, int64_t groups, bool with_activation,
                                                 Activation activation, double bn_eps) {
  auto seq = std::make_shared<Sequential>("Conv2dNormActivation");
  seq->push_back(std::make_shared<Conv2d>(Conv2dOptions(in_channels, out_channels, kernel_size)
                                              .stride(stride)
                                              .padding((kernel_size - 1) / 2)
                                              .groups(groups)
                                              .bias(false)));
  seq->push_back(std::make_shared<BatchNorm2d>(out_channels, bn_eps));
  if (with_activation) seq->push_back(make_activation(activation));
  return seq;
}

int64_t make_divisible(double v, int64_t divisor, int64_t min_value) {
  if (min_value < 0) min_value = divisor;
  const int64_t rounded = static_cast<int64_t>(v + static_cast<double>(divisor) / 2.0) / divisor * divisor;
  int64_t new_v = std::max(min_value, rounded);
  if (static_cast<double>(new_v) < 0.9 * v) new_v += divisor;  // never round down by more than 10%
  return new_v;
}

MBConv::MBConv(const MBConvConfig& cnf, double stochastic_depth_prob, double bn_eps) {
  if (cnf.stride < 1 || cnf.stride > 2) throw InvalidArgument("MBConv: illegal stride value " + std::to_string(cnf.stride));
  use_res_connect_ = cnf.stride == 1 && cnf.input_channels == cnf.out_channels;
  auto block = std::make_shared<Sequential>();
  const int64_t expanded = make_divisible(static_cast<double>(cnf.input_channels) * cnf.expand_ratio, 8);
  if (expanded != cnf.input_channels)
    block->push_back(conv_norm_activation(cnf.input_channels, expanded, 1, 1, 1, true, Activation::SiLU, bn_eps));
  block->push_back(
      conv_norm_activation(expanded, expanded, cnf.kernel, cnf.stride, expanded, true, Activation::SiLU, bn_eps));
  const int64_t squeeze = std::max<int64_t>(1, cnf.input_channels / 4);
  block->push_back(std::make_shared<SqueezeExcitation>(expanded, squeeze, Activation::SiLU));
  block->push_back(conv_norm_activation(expanded, cnf.out_channels, 1, 1, 1, false, Activation::SiLU, bn_eps));
  register_module("block", block);
  register_module("stochastic_depth", std::make_shared<StochasticDepth>(stochastic_depth_prob, "row"));
}

ValueId MBConv::lower(Lowering& g, ValueId x) const {
  ValueId out = g.call_child(*this, "block", x);
  if (use_res_connect_) {
    out = g.call_child(*this, "stochastic_depth", out);
    out = g.add(add_op(), {out, x});
  }
  return out;
}

}  // namespace nn
}  // namespace pyflame_vision
