// Pass 1, lowering: the graph for one input shape becomes a Program.
// Identity layers (Dropout, StochasticDepth, Identity, a Flatten of
// [N, C, 1, 1]) become aliases of their input; nodes that no requested
// output needs are dropped.
#include <cstring>

#include "graph/program.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {

OpKind op_kind(const nn::Layer& layer, const std::string& path) {
  struct Entry {
    const char* op;
    OpKind kind;
  };
  static const Entry table[] = {
      {"conv2d", OpKind::conv},         {"linear", OpKind::linear},
      {"batch_norm2d", OpKind::batchnorm}, {"relu", OpKind::activation},
      {"silu", OpKind::activation},     {"sigmoid", OpKind::activation},
      {"add", OpKind::add},             {"mul", OpKind::mul},
      {"max_pool2d", OpKind::max_pool}, {"adaptive_avg_pool2d", OpKind::avg_pool},
      {"flatten", OpKind::flatten},     {"dropout", OpKind::identity},
      {"identity", OpKind::identity},   {"stochastic_depth", OpKind::identity},
  };
  for (const Entry& e : table)
    if (std::strcmp(e.op, layer.op_name()) == 0) return e.kind;
  throw Unsupported(std::string("[") + layer.op_name() + "] " + path + ": the engine cannot run " + layer.type_name() +
                    " yet");
}

namespace passes {

Program lower(const Graph& graph, const TensorSpec& input, bool features) {
  Program p;
  const auto specs = graph.infer(input);
  const auto& nodes = graph.nodes();
  const int nv = static_cast<int>(specs.size());
  p.values.resize(specs.size());
  for (size_t v = 0; v < specs.size(); ++v) {
    Value& val = p.values[v];
    val.shape = specs[v].shape();
    const Shape& s = val.shape;
    if (s.size() == 4) {
      val.n = s[0], val.c = s[1], val.h = s[2], val.w = s[3];
    } else if (s.size() == 2) {
      val.n = s[0], val.c = s[1];
    } else {
      throw Unsupported("the engine runs [N, C, H, W] and [N, F] values, got " + shape_to_string(s));
    }
  }
  auto node_of = [&](int v) -> const Node& { return nodes[static_cast<size_t>(v - 1)]; };

  std::vector<OpKind> kind(static_cast<size_t>(nv), OpKind::identity);
  std::vector<int> alias(static_cast<size_t>(nv), -1);
  auto resolve = [&](int v) {
    while (alias[static_cast<size_t>(v)] >= 0) v = alias[static_cast<size_t>(v)];
    return v;
  };
  for (int v = 1; v < nv; ++v) {
    const Node& n = node_of(v);
    kind[static_cast<size_t>(v)] = op_kind(*n.layer, n.path.empty() ? "(model)" : n.path);
    const int in0 = resolve(n.inputs[0]);
    const Value& a = p.values[static_cast<size_t>(in0)];
    const bool flat_1x1 = kind[static_cast<size_t>(v)] == OpKind::flatten && a.h * a.w == 1 &&
                          p.values[static_cast<size_t>(v)].shape.size() == 2;
    if (kind[static_cast<size_t>(v)] == OpKind::identity || flat_1x1) alias[static_cast<size_t>(v)] = in0;
  }

  if (features) {
    for (ValueId t : graph.taps()) p.outputs.push_back(resolve(static_cast<int>(t)));
  } else {
    p.outputs.push_back(resolve(static_cast<int>(graph.output())));
  }
  std::vector<char> needed(static_cast<size_t>(nv), 0);
  std::vector<int> stack(p.outputs.begin(), p.outputs.end());
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    if (needed[static_cast<size_t>(v)]) continue;
    needed[static_cast<size_t>(v)] = 1;
    if (v == 0) continue;
    for (ValueId i : node_of(v).inputs) stack.push_back(resolve(static_cast<int>(i)));
  }
  for (int v = 1; v < nv; ++v) {
    if (alias[static_cast<size_t>(v)] >= 0 || !needed[static_cast<size_t>(v)]) continue;
    const Node& n = node_of(v);
    Op op;
    op.kind = kind[static_cast<size_t>(v)];
    op.node = &n;
    for (ValueId i : n.inputs) op.inputs.push_back(resolve(static_cast<int>(i)));
    op.output = v;
    op.label = n.path.empty() ? "(model)" : n.path;
    p.ops.push_back(std::move(op));
  }
  return p;
}

Uses uses_of(const Program& p) {
  Uses u;
  u.readers.resize(p.values.size());
  u.pinned.assign(p.values.size(), 0);
  for (int o : p.outputs) u.pinned[static_cast<size_t>(o)] = 1;
  for (size_t i = 0; i < p.ops.size(); ++i)
    for (int v : p.ops[i].inputs) u.readers[static_cast<size_t>(v)].push_back(static_cast<int>(i));
  return u;
}

int Uses::sole_reader(int v) const {
  if (pinned[static_cast<size_t>(v)]) return -1;
  const auto& r = readers[static_cast<size_t>(v)];
  return r.size() == 1 ? r[0] : -1;
}

void erase_ops(Program& p, const std::vector<char>& dead) {
  std::vector<Op> kept;
  for (size_t i = 0; i < p.ops.size(); ++i)
    if (!dead[i]) kept.push_back(std::move(p.ops[i]));
  p.ops = std::move(kept);
}

std::string fused_suffix(const std::string& path) {
  const auto dot = path.rfind('.');
  return "+" + (dot == std::string::npos ? path : path.substr(dot + 1));
}

}  // namespace passes
}  // namespace pyflame_vision
