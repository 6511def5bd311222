#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

std::string ActivationLayer::type_name() const {
  switch (kind_) {
    case Activation::ReLU: return "ReLU";
    case Activation::SiLU: return "SiLU";
    case Activation::Sigmoid: return "Sigmoid";
  }
  return "?";
}

const char* ActivationLayer::op_name() const {
  switch (kind_) {
    case Activation::ReLU: return "relu";
    case Activation::SiLU: return "silu";
    case Activation::Sigmoid: return "sigmoid";
  }
  return "?";
}

std::string ActivationLayer::extra_repr() const {
  if (kind_ == Activation::Sigmoid) return {};
  return inplace_ ? "inplace=True" : "";
}

TensorSpec ActivationLayer::infer(const std::vector<TensorSpec>& inputs) const { return inputs.at(0); }

}  // namespace nn
}  // namespace pyflame_vision
