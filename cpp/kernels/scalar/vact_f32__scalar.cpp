// Portable SiLU and sigmoid (std::exp; see microkernels.h).
#include <cmath>

#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

void vsigmoid_f32__scalar(size_t n, float* x) {
  for (size_t i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void vsilu_f32__scalar(size_t n, float* x) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] * (1.0f / (1.0f + std::exp(-x[i])));
}

}  // namespace kernels
}  // namespace pyflame_vision
