// pyflame_vision/nn/module.h - the module tree.
//
// A Module is a node of a torch-style module tree: it owns named parameters,
// named buffers and named child modules, in registration order, exactly as
// torch.nn.Module does. Hierarchical names ("layer1.0.conv1.weight") and the
// state-dict order (a module's parameters, then its buffers, then its children)
// follow torch, so keys line up with torchvision's state_dict().
//
// Modules are lazy: a parameter is a TensorSpec (name, shape, dtype); building
// a model allocates no weight memory.
//
// Leaf modules derive from Layer (nn/layers.h) and carry a pure shape function.
// Composite modules (Sequential, blocks, models) implement lower(), which emits
// their computation into a Lowering (nn/lowering.h; the graph's GraphBuilder).
//
// Thread safety: const member functions may be called from many threads at once.
// Mutating functions (register_*, removing children) must not run concurrently
// with anything else on the same module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {

/// Index of a value in a Graph (0 is the graph input).
using ValueId = int;

namespace nn {

class Lowering;

/// A named tensor description: a parameter or buffer of a module.
struct Parameter {
  std::string name;  ///< local name inside a module, or the full dotted name from named_*()
  TensorSpec spec;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  using Ptr = std::shared_ptr<Module>;
  using Child = std::pair<std::string, Ptr>;

  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The torch class name, e.g. "Conv2d", "Bottleneck", "ResNet".
  virtual std::string type_name() const = 0;
  /// What torch prints inside the parentheses, e.g. "64, eps=1e-05, ...".
  virtual std::string extra_repr() const { return {}; }

  /// Emits this module's computation applied to value `x`; returns the output value.
  virtual ValueId lower(Lowering& g, ValueId x) const = 0;

  const std::vector<Child>& children() const { return children_; }
  /// The child called `name`, or nullptr.
  Ptr child(const std::string& name) const;
  const std::vector<Parameter>& local_parameters() const { return params_; }
  const std::vector<Parameter>& local_buffers() const { return buffers_; }

  /// All parameters with dotted names, in torch's named_parameters() order.
  std::vector<Parameter> named_parameters() const;
  /// All buffers with dotted names, in torch's named_buffers() order.
  std::vector<Parameter> named_buffers() const;
  /// Parameters and buffers in torch's state_dict() order.
  std::vector<Parameter> state_dict_spec() const;
  /// Total number of parameter elements (buffers excluded). Throws ShapeOverflowError.
  int64_t num_parameters() const;
  /// Number of elements in this module's own parameters (children excluded).
  int64_t num_local_parameters() const;
  /// torch's repr: "Conv2d(3, 64, kernel_size=(7, 7), ...)" or a nested tree.
  std::string repr() const;

 protected:
  void register_parameter(std::string name, Shape shape);
  void register_buffer(std::string name, Shape shape, DType dtype = DType::float32);
  /// Registers `module` under `name` and returns it.
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    add_child(std::move(name), module);
    return module;
  }
  /// Removes the child called `name`; no-op if absent.
  void unregister_module(const std::string& name);

 private:
  void add_child(std::string name, Ptr module);
  void collect(const std::string& prefix, bool params, bool buffers, std::vector<Parameter>& out) const;

  std::vector<Parameter> params_;
  std::vector<Parameter> buffers_;
  std::vector<Child> children_;
};

/// A module that applies its children in order (torch.nn.Sequential).
/// `type_name` lets torchvision's Sequential subclasses (Conv2dNormActivation)
/// keep their printed name.
class Sequential : public Module {
 public:
  explicit Sequential(std::string type_name = "Sequential") : type_name_(std::move(type_name)) {}
  /// Appends a child named by its index ("0", "1", ...); returns it.
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return register_module(std::to_string(children().size()), std::move(module));
  }
  size_t size() const { return children().size(); }
  std::string type_name() const override { return type_name_; }
  ValueId lower(Lowering& g, ValueId x) const override;

 private:
  std::string type_name_;
};

/// Formats a double as Python's repr() does ("0.1", "1e-05", "0.0125", "1.0").
std::string python_float_repr(double v);

}  // namespace nn
}  // namespace pyflame_vision
