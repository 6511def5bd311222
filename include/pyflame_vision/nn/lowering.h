// pyflame_vision/nn/lowering.h - where modules emit their computation.
//
// A module lowers itself by calling its children (call / call_child, which
// extend the dotted path) and adding layers (add). The graph's GraphBuilder
// (graph.h) implements this interface, so the module tree does not depend on
// the graph: nn/ includes nothing from graph.
//
// Implementations are single-threaded scratch state used while lowering.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/nn/module.h"

namespace pyflame_vision {
namespace nn {

class Layer;

class Lowering {
 public:
  virtual ~Lowering() = default;
  /// Lowers child module `module` registered as `name` under the current path.
  virtual ValueId call(const std::string& name, const Module& module, ValueId x) = 0;
  /// Adds a node for `layer` at the current path, extended by `name` if given
  /// (graph-only ops such as the head's "flatten").
  virtual ValueId add(std::shared_ptr<const Layer> layer, std::vector<ValueId> inputs,
                      const std::string& name = "") = 0;
  /// Marks `v` as an intermediate feature (in call order).
  virtual void tap(ValueId v) = 0;
  /// The current dotted path ("" at the root).
  virtual std::string path() const = 0;
  /// Lowers the child `name` of `parent`; throws std::logic_error if absent.
  ValueId call_child(const Module& parent, const std::string& name, ValueId x);
};

}  // namespace nn
}  // namespace pyflame_vision
