// Pass 3: a convolution's epilogue absorbs the residual add that reads only
// its output (the other operand becomes the residual) and then the
// activation that reads only the result. The fused op takes the place of the
// last op it absorbs, so the residual is computed before it runs.
#include "graph/program.h"

namespace pyflame_vision {
namespace passes {

namespace {

kernels::Epilogue epilogue_of(const nn::Layer& l) {
  switch (static_cast<const nn::ActivationLayer&>(l).kind()) {
    case nn::Activation::ReLU: return kernels::Epilogue::relu;
    case nn::Activation::SiLU: return kernels::Epilogue::silu;
    case nn::Activation::Sigmoid: return kernels::Epilogue::sigmoid;
  }
  return kernels::Epilogue::none;
}

const char* act_name(kernels::Epilogue e) {
  switch (e) {
    case kernels::Epilogue::relu: return "relu";
    case kernels::Epilogue::silu: return "silu";
    case kernels::Epilogue::sigmoid: return "sigmoid";
    case kernels::Epilogue::none: break;
  }
  return "";
}

// Moves op i into the slot of op j (its sole reader), leaving op i dead.
void absorb(Program& p, std::vector<char>& dead, size_t i, size_t j) {
  p.ops[j] = std::move(p.ops[i]);
  dead[i] = 1;
  dead[j] = 0;
}

}  // namespace

void fuse_epilogues(Program& p) {
  std::vector<char> dead(p.ops.size(), 0);
  for (size_t i = 0; i < p.ops.size(); ++i) {
    if (dead[i] || p.ops[i].kind != OpKind::conv) continue;
    size_t at = i;
    Uses u = uses_of(p);  // fresh: earlier fusions moved ops
    int r = u.sole_reader(p.ops[at].output);
    if (r >= 0 && !dead[static_cast<size_t>(r)] && p.ops[static_cast<size_t>(r)].kind == OpKind::add) {
      const Op& add = p.ops[static_cast<size_t>(r)];
      const int a = add.inputs[0], b = add.inputs[1], out = p.ops[at].output;
      if ((a == out) != (b == out)) {
        Op fused = std::move(p.ops[at]);
        fused.residual = a == out ? b : a;
        fused.inputs.push_back(fused.residual);
        fused.output = add.output;
        fused.label += "+add";
        p.ops[at] = std::move(fused);
        absorb(p, dead, at, static_cast<size_t>(r));
        at = static_cast<size_t>(r);
        u = uses_of(p);
      }
    }
    r = u.sole_reader(p.ops[at].output);
    if (r >= 0 && !dead[static_cast<size_t>(r)] && p.ops[static_cast<size_t>(r)].kind == OpKind::activation) {
      const kernels::Epilogue e = epilogue_of(*p.ops[static_cast<size_t>(r)].node->layer);
      p.ops[at].epilogue = e;
      p.ops[at].output = p.ops[static_cast<size_t>(r)].output;
      p.ops[at].label += std::string("+") + act_name(e);
      absorb(p, dead, at, static_cast<size_t>(r));
    }
  }
  erase_ops(p, dead);
}

}  // namespace passes
}  // namespace pyflame_vision
