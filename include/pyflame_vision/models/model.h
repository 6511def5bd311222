// pyflame_vision/models/model.h - common base of every model.
//
// A Model is the root of a module tree plus the Graph it lowers to. Shape
// functions (get_output_shape, forward_features, summary) only run shape
// inference: nothing is allocated or computed. They are const and safe to
// call from many threads at once; mutating calls (remove_fc,
// remove_classifier) must happen before multi-threaded use.
//
// Weights: a model starts without weights. init_weights(seed) fills them with
// torchvision's initialisation schemes; load_state_dict() takes torchvision's
// state-dict keys. Weights are an immutable snapshot swapped atomically, so a
// forward that is running keeps the weights it started with, and a failed load
// leaves the previous weights untouched.
//
// Running: forward() and forward_features() take a float32 [N, C, H, W] array
// (any strides), compile the model for that input shape once (BatchNorm folded
// into convolutions, activations and residual adds fused, weights packed for
// the active instruction-set tier) and cache the result. They are const and
// may be called from many threads at once; results are bit-identical whatever
// the number of threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pyflame_vision/graph.h"
#include "pyflame_vision/nn/module.h"
#include "pyflame_vision/tensor.h"

namespace pyflame_vision {
class Executable;
namespace models {

/// One row of Model::summary: a graph node.
struct SummaryRow {
  std::string path;    ///< module path ("layer1.0.conv1"); blocks for graph-only ops
  std::string type;    ///< layer class ("Conv2d", "Add", ...)
  Shape output_shape;  ///< [N, C, H, W] or [N, F]
  int64_t params = 0;  ///< parameter elements owned by this layer
  int64_t macs = 0;    ///< multiply-accumulates (convolution and linear layers)
};

/// A float32 array the caller owns: `data` points at element [0, 0, 0, 0];
/// strides are in elements and may be negative or zero.
struct InputView {
  const float* data = nullptr;
  Shape shape;
  std::vector<int64_t> strides;
  /// A dense row-major view of `t` (must be float32).
  static InputView of(const Tensor& t);
};

/// What load_state_dict(strict=false) skipped (torch's _IncompatibleKeys).
struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
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

  // ---------------------------------------------------------------- weights
  /// True once every parameter and buffer has a value.
  bool has_weights() const;
  /// Fills every parameter and buffer with torchvision's initialisation
  /// scheme for this model (kaiming-normal convolutions, unit BatchNorm, the
  /// model's Linear init), drawn from a generator seeded with `seed`. The same
  /// seed gives the same weights on every platform.
  void init_weights(uint64_t seed = 0);
  /// Parameters and buffers in torch's state_dict order, as copies. Throws
  /// WeightsError if the model has no weights.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  /// torch's load_state_dict: every key of the model must be present with the
  /// same shape (strict) and no other key may appear. Values are converted to
  /// the model's dtype (float32; int64 for num_batches_tracked) if they are a
  /// float or integer dtype. Throws WeightsError listing every missing,
  /// unexpected and mis-shaped key (size mismatches are errors even when not
  /// strict); on error the previous weights stay. With strict = false, keys of
  /// the model that are absent keep their previous values.
  LoadResult load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state, bool strict = true);

  // ---------------------------------------------------------------- running
  /// Runs the model on a float32 [N, C, H, W] input; returns the output
  /// ([N, num_classes], or [N, C, H, W] without a head). Throws ShapeError /
  /// TypeError for a wrong input (before any compute), WeightsError without weights.
  Tensor forward(const InputView& input) const;
  /// The intermediate features (see forward_features(TensorSpec)) as [N, C, H, W] tensors.
  std::vector<Tensor> forward_features(const InputView& input) const;
  /// How the model runs for `input`: one line per step (fused layers,
  /// algorithm, microkernel). Compiles (and caches) if needed.
  std::string execution_plan(const TensorSpec& input, bool features = false) const;

  /// The lowered graph (immutable snapshot; rebuilt by mutating calls).
  std::shared_ptr<const Graph> graph() const;
  ValueId lower(GraphBuilder& g, ValueId x) const override;

 protected:
  /// Lowers the model into a fresh graph and publishes it. Derived constructors
  /// call this last, and again after every structural change.
  void rebuild_graph();
  /// Emits the model's forward() into `g`, tapping the features; returns the output.
  virtual ValueId lower_model(GraphBuilder& g, ValueId x) const = 0;
  /// Whether a Linear layer uses EfficientNet's init (uniform +-1/sqrt(out),
  /// zero bias) rather than torch's default (uniform +-1/sqrt(in)).
  virtual bool efficientnet_linear_init() const { return false; }
  /// Names of BatchNorm weights to set to zero by init_weights (zero_init_residual).
  virtual std::vector<std::string> zero_init_names() const { return {}; }

 private:
  using WeightMap = std::unordered_map<std::string, Tensor>;
  std::shared_ptr<const WeightMap> weights() const;
  void require_weights() const;
  /// The compiled executable for `input` (compiling and caching it if needed).
  std::shared_ptr<const Executable> executable(const TensorSpec& input, bool features) const;
  /// The cached executable for `input`, or null (no validation, no compile).
  std::shared_ptr<const Executable> cached_executable(const TensorSpec& input, bool features) const;

  std::shared_ptr<const Graph> graph_;
  std::string name_;
  mutable std::mutex mu_;  // guards weights_ and cache_
  std::shared_ptr<const WeightMap> weights_;
  struct CacheEntry {
    std::shared_ptr<const Executable> exe;
    // Compiled from this graph snapshot and these weights (held, so that a
    // later snapshot can never reuse their addresses while the entry lives).
    std::shared_ptr<const Graph> graph;
    std::shared_ptr<const void> weights;
    uint64_t last_used = 0;
  };
  mutable std::map<std::string, CacheEntry> cache_;
  mutable uint64_t clock_ = 0;
};

}  // namespace models
}  // namespace pyflame_vision
