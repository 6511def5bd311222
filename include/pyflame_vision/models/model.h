// pyflame_vision/models/model.h - common base of every model.
//
// A Model is the root of a module tree plus the Graph it lowers to. Models are
// created by the factories in models/registry.h (resnet50(num_classes), ...)
// and held by std::shared_ptr; the caller owns them.
//
// Layout and units: inputs and feature maps are float32 [N, C, H, W] (batch,
// channels, height, width) in row-major order; classifier outputs are float32
// [N, num_classes] logits (no softmax). Shapes are int64 element counts.
//
// Shape functions (get_output_shape, forward_features on a TensorSpec,
// summary) only run shape inference: nothing is allocated or computed.
//
// Weights: a model starts without weights. init_weights(seed) fills them with
// torchvision's initialisation schemes; load_state_dict() takes torchvision's
// state-dict keys (load_weights() in io.h reads them from a .safetensors
// file or a PyTorch checkpoint). Weights are an immutable snapshot swapped atomically, so a forward
// that is running keeps the weights it started with, and a failed load leaves
// the previous weights untouched.
//
// Memory: weights are held once. Compiling packs each convolution and linear
// weight for its kernel (BatchNorm folded in); where that packed copy gives
// the weight back bit for bit (every kernel but Winograd's), the model keeps
// only the packed copy, plus a 2-bit rounding correction per element where
// dividing the BatchNorm scale back out needs one, and state_dict()
// rebuilds the tensor from it on demand. resident_weight_bytes() tells what
// is still held as loaded.
//
// Running: forward() and forward_features() take a float32 [N, C, H, W] array
// (any strides), compile the model for that input shape once (BatchNorm folded
// into convolutions, activations and residual adds fused, weights packed for
// the active instruction-set tier) and cache the result (the 8 most recently
// used shapes). Compute uses the process-wide thread pool (set_num_threads in
// cpu.h).
//
// Thread safety: every const member function may be called from many threads
// at once on one model, and concurrent forward() calls give bit-identical
// results whatever the number of threads. init_weights and load_state_dict
// may run while other threads call forward() (those keep the weights they
// started with), but not concurrently with each other. Structural changes
// (remove_head / remove_fc / remove_classifier) and set_name must happen
// before the model is shared between threads.
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
class WeightStore;
namespace kernels {
class PackCache;
}  // namespace kernels
namespace models {

/// One row of Model::summary: a graph node.
struct SummaryRow {
  std::string path;    ///< module path ("layer1.0.conv1"); blocks for graph-only ops
  std::string type;    ///< layer class ("Conv2d", "Add", ...)
  Shape output_shape;  ///< [N, C, H, W] or [N, F]
  int64_t params = 0;  ///< parameter elements owned by this layer
  int64_t macs = 0;    ///< multiply-accumulates (convolution and linear layers)
};

/// Kept under its former name (it lives in tensor.h, beside the tensor types).
using InputView = pyflame_vision::InputView;

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
  /// Output spec for `input` ([N, C, H, W] float32): [N, num_classes], or the
  /// last [N, C, H, W] feature map without a head. Throws ShapeError (wrong
  /// rank, channels, too-small spatial size; message names the layer path),
  /// TypeError (dtype other than float32), ShapeOverflowError.
  TensorSpec get_output_spec(const TensorSpec& input) const;
  /// get_output_spec on a float32 spec of `input_shape`, e.g.
  /// resnet50()->get_output_shape({1, 3, 224, 224}) == {1, 1000}. Same throws.
  Shape get_output_shape(const Shape& input_shape) const;
  /// Specs of the model's intermediate features (ResNet: stem after max-pool,
  /// layer1..layer4; EfficientNet: the features before pooling), all
  /// [N, C, H, W]. Same throws as get_output_spec.
  std::vector<TensorSpec> forward_features(const TensorSpec& input) const;
  /// Per-layer table of output shapes, parameters and MACs. Runs nothing.
  /// Same throws as get_output_spec.
  Summary summary(const TensorSpec& input) const;

  /// Channels of the features that feed the classifier (512, 2048, 1280, ...).
  virtual int64_t num_features() const = 0;
  /// Removes the classifier head (global pooling and the final Linear), so the
  /// model returns its last [N, C, H, W] feature map: ResNet::remove_fc(),
  /// EfficientNet::remove_classifier(). Idempotent. Keeps the weights of the
  /// remaining layers. Must not run concurrently with any other call on the model.
  virtual void remove_head() = 0;
  /// True while the model has its classifier head.
  virtual bool has_head() const = 0;
  /// The model's registry name ("resnet50"); empty if custom-built.
  const std::string& name() const { return name_; }
  /// Sets the name used in messages and summaries. Not thread-safe.
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
  /// Parameters and buffers in torch's state_dict order, as copies the caller
  /// owns (float32, int64 for num_batches_tracked). Throws WeightsError if the
  /// model has no weights.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  /// torch's load_state_dict: every key of the model must be present with the
  /// same shape (strict) and no other key may appear. Values are converted to
  /// the model's dtype (float32; int64 for num_batches_tracked) if they are a
  /// float (float64/32/16, bfloat16) or integer dtype; the model keeps its own
  /// copies, `state` may be discarded afterwards. Throws WeightsError listing every missing,
  /// unexpected and mis-shaped key (size mismatches are errors even when not
  /// strict); on error the previous weights stay. With strict = false, keys of
  /// the model that are absent keep their previous values.
  LoadResult load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state, bool strict = true);
  /// The same, taking the tensors over: a value that already has the model's
  /// dtype and shape and whose storage nothing else holds (use_count() == 1,
  /// e.g. tensors a reader just created) becomes the model's weight without a
  /// copy; other values are converted or copied as above. `state` is left in
  /// an unspecified state, on success and on error (the model's previous
  /// weights still stay on error).
  LoadResult load_state_dict(std::vector<std::pair<std::string, Tensor>>&& state, bool strict = true);
  /// Identifies the model's current weights: 0 until weights are first set, then
  /// a new value, unique in the process, after every init_weights and every
  /// successful load_state_dict (and so load_weights); a failed load and the
  /// structural calls (remove_head, set_name) leave it unchanged. Lets a caller
  /// remember where the weights came from (a file, a weights enum) and know
  /// whether that is still true. Thread-safe.
  uint64_t weights_version() const;

  // ---------------------------------------------------------------- running
  /// Runs the model on a float32 [N, C, H, W] input; returns a new tensor the
  /// caller owns: [N, num_classes] logits, or [N, C, H, W] without a head.
  /// The first call for a shape compiles it (tens of milliseconds to a second
  /// for the large models); later calls only run. Throws ShapeError for a
  /// wrong shape, InvalidArgument for a null pointer or strides that do not
  /// match the shape (all before any compute), WeightsError without weights.
  /// Thread-safe; bit-identical results across threads and thread counts.
  Tensor forward(const InputView& input) const;
  /// forward() on a tensor; throws TypeError unless it is float32.
  Tensor forward(const Tensor& input) const;
  /// forward() on a dense row-major float32 buffer of shape [N, C, H, W] at
  /// `data` (shape_numel(shape) floats, borrowed for the call).
  Tensor forward(const float* data, const Shape& shape) const;
  /// The intermediate features (see forward_features(TensorSpec)) as new
  /// [N, C, H, W] tensors. Same throws and thread safety as forward().
  std::vector<Tensor> forward_features(const InputView& input) const;
  /// forward_features() on a float32 tensor (TypeError otherwise).
  std::vector<Tensor> forward_features(const Tensor& input) const;
  /// How the model runs for `input`: one line per step (fused layers,
  /// algorithm, microkernel). Compiles (and caches) if needed.
  std::string execution_plan(const TensorSpec& input, bool features = false) const;
  /// Multiply-adds the compiled kernels execute for `input`: the direct
  /// convolution's count (summary()'s MACs), less where an algorithm
  /// multiplies less (Winograd F(2x2,3x3): 16 products per 2x2 tile instead
  /// of 36). For honest "% of peak" figures. Compiles (and caches) if needed.
  int64_t executed_macs(const TensorSpec& input, bool features = false) const;

  /// Bytes of parameters and buffers held as loaded (0 without weights).
  /// Compiling drops the convolution and linear weights that their packed
  /// copies rebuild exactly (see "Memory" above), so this shrinks after the
  /// first forward: what remains is the small tensors (BatchNorm, biases),
  /// Winograd layers' weights and anything that cannot be rebuilt.
  int64_t resident_weight_bytes() const;
  /// Bytes of the 2-bit corrections that rebuilding needs.
  int64_t weight_correction_bytes() const;

  /// The lowered graph (immutable snapshot; rebuilt by mutating calls).
  std::shared_ptr<const Graph> graph() const;
  ValueId lower(nn::Lowering& g, ValueId x) const override;

 protected:
  /// Lowers the model into a fresh graph and publishes it. Derived constructors
  /// call this last, and again after every structural change.
  void rebuild_graph();
  /// Emits the model's forward() into `g`, tapping the features; returns the output.
  virtual ValueId lower_model(nn::Lowering& g, ValueId x) const = 0;
  /// Whether a Linear layer uses EfficientNet's init (uniform +-1/sqrt(out),
  /// zero bias) rather than torch's default (uniform +-1/sqrt(in)).
  virtual bool efficientnet_linear_init() const { return false; }
  /// Names of BatchNorm weights to set to zero by init_weights (zero_init_residual).
  virtual std::vector<std::string> zero_init_names() const { return {}; }

 private:
  /// Both load_state_dict overloads; `owned` is `state` when its values may be moved out, else null.
  LoadResult load_state_dict_impl(const std::vector<std::pair<std::string, Tensor>>& state, bool strict,
                                  std::vector<std::pair<std::string, Tensor>>* owned);
  std::shared_ptr<WeightStore> weights() const;
  void require_weights() const;
  /// The compiled executable for `input` (compiling and caching it if needed).
  std::shared_ptr<const Executable> executable(const TensorSpec& input, bool features) const;
  /// The cached executable for `input`, or null (no validation, no compile).
  std::shared_ptr<const Executable> cached_executable(const TensorSpec& input, bool features) const;

  std::shared_ptr<const Graph> graph_;
  std::string name_;
  mutable std::mutex mu_;  // guards weights_ and cache_
  // Replaced as a whole by init_weights and load_state_dict; inside, compiling
  // turns resident weights into derived ones (the store has its own lock).
  std::shared_ptr<WeightStore> weights_;
  uint64_t weights_version_ = 0;  // guarded by mu_; see weights_version()
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
  // Packed weights shared by the executables of every input shape compiled
  // from the same graph and weights (each layer once per implementation).
  mutable std::shared_ptr<kernels::PackCache> packs_;
  mutable std::shared_ptr<const void> packs_graph_, packs_weights_;  // held: addresses never reused
};

}  // namespace models
}  // namespace pyflame_vision
