// Internal helpers shared by the layer shape functions.
#pragma once

#include <string>
#include <vector>

#include "pyflame_vision/error.h"
#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {
namespace nn {
namespace detail {

/// Throws ShapeError unless `t` is 4-D ([N, C, H, W]).
inline void require_nchw(const TensorSpec& t) {
  if (t.ndim() != 4)
    throw ShapeError("expected a 4-D input [N, C, H, W], got a " + std::to_string(t.ndim()) + "-D input");
}

/// Throws InvalidArgument unless v >= lo.
inline void require_at_least(const char* what, int64_t v, int64_t lo, const char* layer) {
  if (v < lo)
    throw InvalidArgument(std::string(layer) + ": " + what + " must be >= " + std::to_string(lo) + ", got " +
                          std::to_string(v));
}

inline void require_probability(const char* layer, double p) {
  if (!(p >= 0.0 && p <= 1.0))
    throw InvalidArgument(std::string(layer) + ": probability has to be between 0 and 1, but got " +
                          std::to_string(p));
}

}  // namespace detail
}  // namespace nn
}  // namespace pyflame_vision
