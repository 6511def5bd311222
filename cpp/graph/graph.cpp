#include "pyflame_vision/graph.h"

#include <stdexcept>

#include "pyflame_vision/error.h"

namespace pyflame_vision {

Graph::Graph(std::vector<Node> nodes, ValueId output, std::vector<ValueId> taps)
    : nodes_(std::move(nodes)), output_(output), taps_(std::move(taps)) {}

namespace {
std::string context(const Node& n, const std::vector<TensorSpec>& in, const char* what) {
  std::string s = std::string("[") + n.layer->op_name() + "] " + (n.path.empty() ? "(model)" : n.path) + ": " + what;
  if (in.size() == 1) {
    s += " (input shape " + shape_to_string(in[0].shape()) + ")";
  } else {
    s += " (input shapes ";
    for (size_t i = 0; i < in.size(); ++i) s += (i ? " and " : "") + shape_to_string(in[i].shape());
    s += ")";
  }
  return s;
}
}  // namespace

std::vector<TensorSpec> Graph::infer(const TensorSpec& input) const {
  std::vector<TensorSpec> values;
  values.reserve(num_values());
  values.push_back(input);
  std::vector<TensorSpec> in;
  for (const Node& n : nodes_) {
    in.clear();
    for (ValueId id : n.inputs) in.push_back(values[static_cast<size_t>(id)]);
    try {
      values.push_back(n.layer->infer(in));
    } catch (const ShapeOverflowError& e) {
      throw ShapeOverflowError(context(n, in, e.what()));
    } catch (const ShapeError& e) {
      throw ShapeError(context(n, in, e.what()));
    } catch (const TypeError& e) {
      throw TypeError(context(n, in, e.what()));
    }
  }
  return values;
}

ValueId GraphBuilder::call(const std::string& name, const nn::Module& module, ValueId x) {
  path_.push_back(name);
  struct Pop {
    std::vector<std::string>& p;
    ~Pop() { p.pop_back(); }
  } pop{path_};
  return module.lower(*this, x);
}

std::string GraphBuilder::path() const {
  std::string s;
  for (const auto& p : path_) s += (s.empty() ? "" : ".") + p;
  return s;
}

ValueId GraphBuilder::add(std::shared_ptr<const nn::Layer> layer, std::vector<ValueId> inputs,
                          const std::string& name) {
  if (static_cast<int>(inputs.size()) != layer->num_inputs())
    throw std::logic_error(std::string(layer->op_name()) + " takes " + std::to_string(layer->num_inputs()) +
                           " inputs");
  const ValueId next = static_cast<ValueId>(nodes_.size()) + 1;
  for (ValueId v : inputs)
    if (v < 0 || v >= next) throw std::logic_error("graph input refers to a value not yet defined");
  std::string p = path();
  if (!name.empty()) p += (p.empty() ? "" : ".") + name;
  nodes_.push_back({std::move(layer), std::move(p), std::move(inputs)});
  return next;
}

Graph GraphBuilder::finish(ValueId output) && {
  return Graph(std::move(nodes_), output, std::move(taps_));
}

}  // namespace pyflame_vision
