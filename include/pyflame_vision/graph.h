// pyflame_vision/graph.h - the layer graph a module tree lowers to.
//
// A Graph is an immutable list of nodes in topological order. Value 0 is the
// graph input; node i produces value i + 1. Each node references its Layer
// (which holds options and the shape function) and the dotted module path it
// came from ("layer4.0.conv1"); graph-only ops (residual add, SE scaling,
// flatten) carry the path of the block that emitted them.
//
// Shape inference (`infer`) is pure: it runs no kernel, allocates no tensor
// memory, and may be called from many threads at once. A Graph shares
// ownership of its layers; Model::graph() hands out immutable snapshots.
// GraphBuilder is single-threaded scratch state used while lowering.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/nn/layers.h"
#include "pyflame_vision/nn/lowering.h"

namespace pyflame_vision {

struct Node {
  std::shared_ptr<const nn::Layer> layer;
  std::string path;
  std::vector<ValueId> inputs;
};

class Graph {
 public:
  Graph(std::vector<Node> nodes, ValueId output, std::vector<ValueId> taps);

  const std::vector<Node>& nodes() const { return nodes_; }
  /// The value the model returns.
  ValueId output() const { return output_; }
  /// Values marked by the model as intermediate features (forward_features).
  const std::vector<ValueId>& taps() const { return taps_; }
  /// Number of values (nodes + 1).
  size_t num_values() const { return nodes_.size() + 1; }

  /// Specs of every value for `input`. Throws ShapeError / ShapeOverflowError /
  /// TypeError whose message starts "[op] path: " and ends with the input shapes.
  std::vector<TensorSpec> infer(const TensorSpec& input) const;

 private:
  std::vector<Node> nodes_;
  ValueId output_;
  std::vector<ValueId> taps_;
};

/// Collects nodes while a module tree lowers itself (the nn::Lowering the
/// modules emit into). Modules call `call` for each child (which extends the
/// dotted path) and `add` for a layer.
class GraphBuilder : public nn::Lowering {
 public:
  ValueId input() const { return 0; }
  ValueId call(const std::string& name, const nn::Module& module, ValueId x) override;
  /// Adds a node; throws std::logic_error for a wrong input count or an undefined input.
  ValueId add(std::shared_ptr<const nn::Layer> layer, std::vector<ValueId> inputs,
              const std::string& name = "") override;
  void tap(ValueId v) override { taps_.push_back(v); }
  std::string path() const override;
  Graph finish(ValueId output) &&;

 private:
  std::vector<Node> nodes_;
  std::vector<std::string> path_;
  std::vector<ValueId> taps_;
};

}  // namespace pyflame_vision
