// pyflame_vision/models/model.h - common base of every model.
//
// A Model is the root of a module tree plus the Graph it lowers to. Shape
// functions (get_output_shape, forward_features, summary) only run shape
// inference: nothing is allocated or computed. They are const and safe to
// call from many threads at once; mutating calls (remove_fc,
// remove_classifier) must happen before multi-threaded use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/graph.h"
#include "pyflame_vision/nn/module.h"

namespace pyflame_vision {
namespace models {

/// One row of Model::summary: a graph node.
struct SummaryRow {
  std::string path;    ///< module path ("layer1.0.conv1"); blocks for graph-only ops
  std::string type;    ///< layer class ("Conv2d", "Add", ...)
  Shape output_shape;  ///< [N, C, H, W] or [N, F]
  int64_t params = 0;  ///< parameter elements owned by this layer
  int64_t macs = 0;    ///< multiply-accumulates (convolution and linear layers)
};

struct Summary {
  std::string model;             ///< model name, e.g. "resnet50"
  TensorSpec input;              ///< the input the table was computed for
  Shape output_shape;
  std::vector<SummaryRow> rows;  ///< one per graph node, in execution order
  int64_t total_params = 0;      ///< every parameter of the model
  int64_t total_macs = 0;        ///< sum of rows' macs
  int64_t param_bytes = 0;       ///< float32 parameters and buffers
  int64_t activation_bytes = 0;  ///< sum of all node outputs (no buffer reuse)
  /// A fixed-width table with totals, as printed by `pyflame-vision summary`.
  std::string to_string() const;
};

class Model : public nn::Module {
 public:
  /// Output spec for `input` ([N, C, H, W] float32). Throws ShapeError (wrong
  /// rank, channels, too-small spatial size; message names the layer path),
  /// TypeError (dtype other than float32), ShapeOverflowError.
  TensorSpec get_output_spec(const TensorSpec& input) const;
  /// get_output_spec on a float32 spec of `input_shape`.
  Shape get_output_shape(const Shape& input_shape) const;
  /// Specs of the model's intermediate features (ResNet: stem after max-pool,
  /// layer1..layer4; EfficientNet: the features before pooling).
  std::vector<TensorSpec> forward_features(const TensorSpec& input) const;
  /// Per-layer table of output shapes, parameters and MACs. Runs nothing.
  Summary summary(const TensorSpec& input) const;

  /// Channels of the features that feed the classifier (512, 2048, 1280, ...).
  virtual int64_t num_features() const = 0;
  /// The model's registry name ("resnet50"), or its class name if custom-built.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  /// Native input resolution ([1, 3, 224, 224] for ResNets, 380 for B4).
  virtual Shape default_input_shape() const { return {1, 3, 224, 224}; }

  /// The lowered graph (immutable snapshot; rebuilt by mutating calls).
  std::shared_ptr<const Graph> graph() const;
  ValueId lower(GraphBuilder& g, ValueId x) const override;

 protected:
  /// Lowers the model into a fresh graph and publishes it. Derived constructors
  /// call this last, and again after every structural change.
  void rebuild_graph();
  /// Emits the model's forward() into `g`, tapping the features; returns the output.
  virtual ValueId lower_model(GraphBuilder& g, ValueId x) const = 0;

 private:
  std::shared_ptr<const Graph> graph_;
  std::string name_;
};

}  // namespace models
}  // namespace pyflame_vision
