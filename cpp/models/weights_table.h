// Internal: the generated table behind models/weights.h (weights_table.cpp,
// written by gen_weights_table.py from torchvision).
#pragma once

#include <cstddef>

#include "pyflame_vision/models/weights.h"

namespace pyflame_vision {
namespace models {
namespace detail {

constexpr size_t kNumWeights = 22;
constexpr size_t kNumImagenetCategories = 1000;
extern const char* const kImagenetCategories[kNumImagenetCategories];
extern const WeightsInfo kWeightsTable[kNumWeights];

}  // namespace detail
}  // namespace models
}  // namespace pyflame_vision
