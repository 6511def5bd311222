#include "common.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : in_(in_features), out_(out_features), bias_(bias) {
  detail::require_at_least("in_features", in_features, 1, "Linear");
  detail::require_at_least("out_features", out_features, 1, "Linear");
  register_parameter("weight", {out_features, in_features});
  if (bias) register_parameter("bias", {out_features});
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + (bias_ ? "True" : "False");
}

TensorSpec Linear::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& x = inputs.at(0);
  if (x.ndim() < 1) throw ShapeError("expected an input with at least 1 dimension, got a scalar");
  if (x.shape().back() != in_)
    throw ShapeError("expected the last dimension to be in_features=" + std::to_string(in_) + ", got " +
                     std::to_string(x.shape().back()));
  Shape s = x.shape();
  s.back() = out_;
  return TensorSpec(std::move(s), x.dtype());
}

int64_t Linear::macs(const std::vector<TensorSpec>&, const TensorSpec& out) const {
  return checked::mul(out.numel(), in_, "MACs");
}

}  // namespace nn
}  // namespace pyflame_vision
