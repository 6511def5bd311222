// Shape-preserving and shape-only layers: Flatten, Dropout, Identity,
// StochasticDepth, and the graph-only Add and Mul.
#include <algorithm>

#include "common.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
}

TensorSpec Flatten::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& x = inputs.at(0);
  const int64_t n = x.ndim();
  if (n == 0) return TensorSpec({1}, x.dtype());  // torch.flatten of a scalar is 1-D
  auto norm = [&](int64_t d) {
    if (d < -n || d >= n)
      throw ShapeError("flatten dimension " + std::to_string(d) + " out of range for a " + std::to_string(n) +
                       "-D input");
    return d < 0 ? d + n : d;
  };
  const int64_t a = norm(start_), b = norm(end_);
  if (a > b) throw ShapeError("flatten start_dim cannot come after end_dim");
  Shape out(x.shape().begin(), x.shape().begin() + a);
  int64_t m = 1;
  for (int64_t i = a; i <= b; ++i) m = checked::mul(m, x.shape()[i], "the flattened size");
  out.push_back(m);
  out.insert(out.end(), x.shape().begin() + b + 1, x.shape().end());
  return TensorSpec(std::move(out), x.dtype());
}

Dropout::Dropout(double p, bool inplace) : p_(p), inplace_(inplace) { detail::require_probability("Dropout", p); }

std::string Dropout::extra_repr() const {
  return "p=" + python_float_repr(p_) + ", inplace=" + (inplace_ ? "True" : "False");
}

TensorSpec Dropout::infer(const std::vector<TensorSpec>& inputs) const { return inputs.at(0); }

TensorSpec Identity::infer(const std::vector<TensorSpec>& inputs) const { return inputs.at(0); }

StochasticDepth::StochasticDepth(double p, std::string mode) : p_(p), mode_(std::move(mode)) {
  detail::require_probability("StochasticDepth", p);
  if (mode_ != "row" && mode_ != "batch")
    throw InvalidArgument("StochasticDepth: mode has to be either 'batch' or 'row', but got " + mode_);
}

std::string StochasticDepth::extra_repr() const { return "p=" + python_float_repr(p_) + ", mode=" + mode_; }

TensorSpec StochasticDepth::infer(const std::vector<TensorSpec>& inputs) const { return inputs.at(0); }

TensorSpec Add::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& a = inputs.at(0);
  const TensorSpec& b = inputs.at(1);
  if (a.shape() != b.shape())
    throw ShapeError("expected both operands to have the same shape, got " + shape_to_string(a.shape()) + " and " +
                     shape_to_string(b.shape()));
  if (a.dtype() != b.dtype())
    throw TypeError(std::string("expected both operands to have the same dtype, got ") + dtype_name(a.dtype()) +
                    " and " + dtype_name(b.dtype()));
  return a;
}

TensorSpec Mul::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& a = inputs.at(0);
  const TensorSpec& b = inputs.at(1);
  if (a.dtype() != b.dtype())
    throw TypeError(std::string("expected both operands to have the same dtype, got ") + dtype_name(a.dtype()) +
                    " and " + dtype_name(b.dtype()));
  // numpy/torch broadcasting, aligned from the trailing dimension.
  const size_t n = std::max(a.shape().size(), b.shape().size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < a.shape().size() ? a.shape()[a.shape().size() - 1 - i] : 1;
    const int64_t db = i < b.shape().size() ? b.shape()[b.shape().size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError("operands cannot be broadcast together: " + shape_to_string(a.shape()) + " and " +
                       shape_to_string(b.shape()));
    out[n - 1 - i] = da == 1 ? db : da;
  }
  return TensorSpec(std::move(out), a.dtype());
}

}  // namespace nn
}  // namespace pyflame_vision
