#include "common.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum)
    : num_features_(num_features), eps_(eps), momentum_(momentum) {
  detail::require_at_least("num_features", num_features, 1, "BatchNorm2d");
  if (!(eps > 0.0)) throw InvalidArgument("BatchNorm2d: eps must be > 0, got " + python_float_repr(eps));
  register_parameter("weight", {num_features});
  register_parameter("bias", {num_features});
  register_buffer("running_mean", {num_features});
  register_buffer("running_var", {num_features});
  register_buffer("num_batches_tracked", {}, DType::int64);
}

std::string BatchNorm2d::extra_repr() const {
  return std::to_string(num_features_) + ", eps=" + python_float_repr(eps_) +
         ", momentum=" + python_float_repr(momentum_) + ", affine=True, bias=True, track_running_stats=True";
}

TensorSpec BatchNorm2d::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& x = inputs.at(0);
  detail::require_nchw(x);
  if (x.shape()[1] != num_features_)
    throw ShapeError("expected " + std::to_string(num_features_) + " channels (num_features), got " +
                     std::to_string(x.shape()[1]));
  return x;
}

}  // namespace nn
}  // namespace pyflame_vision
