#include "pyflame_vision/nn/lowering.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

std::string Size2::str() const { return "(" + std::to_string(h) + ", " + std::to_string(w) + ")"; }

int64_t Layer::macs(const std::vector<TensorSpec>&, const TensorSpec&) const { return 0; }

ValueId Layer::lower(Lowering& g, ValueId x) const {
  return g.add(std::static_pointer_cast<const Layer>(shared_from_this()), {x});
}

}  // namespace nn
}  // namespace pyflame_vision
