// Internal: what the compile passes work on. A Program is the graph after
// lowering for one input shape: values with their shapes (stored NHWC), and
// operators in execution order with their inputs resolved through aliases.
// The passes, each a named unit run in this order by the Executable:
//
//   lower            graph -> Program: identity layers become aliases, nodes
//                    the requested outputs do not need are dropped
//                    (passes/lower.cpp)
//   fold_batchnorm   a BatchNorm whose input is only a convolution's output
//                    folds into that convolution (passes/fold_batchnorm.cpp)
//   fuse_epilogues   the residual add and the activation that follow a
//                    convolution join its epilogue (passes/fuse_epilogue.cpp)
//   select_kernels   one kernel per operator; for convolutions the first
//                    entry of the ordered implementation list that applies,
//                    with packed weights shared through a PackCache; weights
//                    packed reversibly leave the WeightStore's resident set
//                    (passes/select_kernels.cpp, graph/weight_store.h)
//   plan_memory      one arena; buffers with disjoint lifetimes share it
//                    (memory_plan.cpp)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph/step.h"
#include "graph/weight_store.h"
#include "kernels/conv.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/graph.h"
#include "pyflame_vision/tensor.h"

namespace pyflame_vision {

/// Operator kinds the engine runs; every switch over operators is over this.
enum class OpKind { conv, linear, batchnorm, activation, add, mul, max_pool, avg_pool, flatten, identity };

/// The kind of `layer` (from its op name); throws Unsupported for a layer
/// the engine cannot run, naming it and `path`.
OpKind op_kind(const nn::Layer& layer, const std::string& path);

struct Value {
  Shape shape;                         // torch's shape (NCHW or [N, F])
  int64_t n = 0, h = 1, w = 1, c = 0;  // stored NHWC
  int64_t offset = -1;                 // in floats, inside the arena
  int64_t floats() const { return n * h * w * c; }
};

struct Op {
  OpKind kind;
  const Node* node = nullptr;  // the graph node the operator comes from
  std::vector<int> inputs;     // value ids (aliases resolved)
  int output = -1;
  std::string label;           // "layer1.0.conv1+bn1+relu"
  const Node* bn = nullptr;    // BatchNorm folded into a convolution
  int residual = -1;           // value added in a convolution's epilogue
  kernels::Epilogue epilogue = kernels::Epilogue::none;
};

struct Program {
  std::vector<Value> values;  // value 0 is the input
  std::vector<Op> ops;        // execution order
  std::vector<int> outputs;   // value ids (resolved)
};

namespace passes {

Program lower(const Graph& graph, const TensorSpec& input, bool features);
void fold_batchnorm(Program& p);
void fuse_epilogues(Program& p);
/// One step per operator of `p`, in order. Throws WeightsError for a missing
/// weight, Unsupported for a configuration the engine cannot run. Every
/// convolution and linear weight a kernel has packed reversibly is handed to
/// `weights` as derived (WeightStore::derive), so that the model holds it once.
std::vector<std::unique_ptr<Step>> select_kernels(const Program& p, WeightStore& weights, Isa isa,
                                                  kernels::PackCache& packs);

/// For each value, the ops reading it (outputs count as a reader that cannot be fused).
struct Uses {
  std::vector<std::vector<int>> readers;  // op indices
  std::vector<char> pinned;               // a requested output
  /// The op that is the only reader of value v, or -1.
  int sole_reader(int v) const;
};
Uses uses_of(const Program& p);
/// Removes the ops marked in `dead` (absorbed by a fusion), keeping the order.
void erase_ops(Program& p, const std::vector<char>& dead);
/// The layer path's last component with a '+' ("+bn1" for "layer1.0.bn1").
std::string fused_suffix(const std::string& path);

}  // namespace passes

/// Assigns every value read or written by `steps` (and the outputs) an
/// offset in one arena; values whose lifetimes are disjoint share memory
/// (greedy first fit, largest first). Returns the arena size in floats.
int64_t plan_memory(const std::vector<std::unique_ptr<Step>>& steps, const std::vector<int>& outputs,
                    std::vector<Value>& values);

}  // namespace pyflame_vision
