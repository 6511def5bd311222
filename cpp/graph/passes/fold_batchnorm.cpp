// Pass 2: a BatchNorm whose input is read by nothing else folds into the
// convolution that produced it (the arithmetic is in select_kernels, once,
// for folded and standalone BatchNorms alike: batchnorm.h).
#include "graph/program.h"

namespace pyflame_vision {
namespace passes {

void fold_batchnorm(Program& p) {
  const Uses u = uses_of(p);
  std::vector<char> dead(p.ops.size(), 0);
  for (size_t i = 0; i < p.ops.size(); ++i) {
    Op& conv = p.ops[i];
    if (conv.kind != OpKind::conv || dead[i]) continue;
    const int r = u.sole_reader(conv.output);
    if (r < 0 || p.ops[static_cast<size_t>(r)].kind != OpKind::batchnorm) continue;
    Op& bn = p.ops[static_cast<size_t>(r)];
    // The fused op takes the BatchNorm's place, after everything it follows.
    conv.bn = bn.node;
    conv.output = bn.output;
    conv.label += fused_suffix(bn.node->path);
    bn = std::move(conv);
    dead[i] = 1;
  }
  erase_ops(p, dead);
}

}  // namespace passes
}  // namespace pyflame_vision
