// pyflame_vision/nn/layers.h - leaf layers with torch semantics and torch names.
//
// Every Layer declares its options, its parameters (as TensorSpecs) and a pure
// shape function `infer` that allocates nothing, uses overflow-checked
// arithmetic and throws ShapeError / ShapeOverflowError / TypeError with a
// message saying what was expected and what was received. The graph prefixes
// that message with "[op] path: " and the input shapes.
//
// Activations are [N, C, H, W] float32. Constructors validate their options
// and throw InvalidArgument (or Unsupported) like torch does. Layers are
// immutable after construction: every const member may be called from many
// threads at once. Layers are held by std::shared_ptr (a module tree or a
// Graph shares ownership).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pyflame_vision/nn/module.h"

namespace pyflame_vision {
namespace nn {

/// A (height, width) pair; an int converts to a square pair.
struct Size2 {
  int64_t h = 0, w = 0;
  Size2() = default;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor): torch accepts ints
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  bool operator==(const Size2& o) const { return h == o.h && w == o.w; }
  bool operator!=(const Size2& o) const { return !(*this == o); }
  /// "(3, 3)"
  std::string str() const;
};

class Layer : public Module {
 public:
  /// Lower-case op tag used in error messages, e.g. "conv2d".
  virtual const char* op_name() const = 0;
  /// How many graph inputs the layer takes.
  virtual int num_inputs() const { return 1; }
  /// Pure shape function: output spec for the given input specs.
  virtual TensorSpec infer(const std::vector<TensorSpec>& inputs) const = 0;
  /// Multiply-accumulates for one call with these shapes (convolution and
  /// linear layers; 0 for everything else, as torchvision's published GFLOPS count).
  virtual int64_t macs(const std::vector<TensorSpec>& inputs, const TensorSpec& output) const;
  ValueId lower(Lowering& g, ValueId x) const override;
};

// ---------------------------------------------------------------- Conv2d
struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Size2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  Conv2dOptions& stride(Size2 v) { stride_ = v; return *this; }
  Conv2dOptions& padding(Size2 v) { padding_ = v; return *this; }
  Conv2dOptions& dilation(Size2 v) { dilation_ = v; return *this; }
  Conv2dOptions& groups(int64_t v) { groups_ = v; return *this; }
  Conv2dOptions& bias(bool v) { bias_ = v; return *this; }
  int64_t in_channels_, out_channels_;
  Size2 kernel_size_, stride_{1}, padding_{0}, dilation_{1};
  int64_t groups_ = 1;
  bool bias_ = true;
};

/// torch.nn.Conv2d (zeros padding). Parameters: weight [out, in/groups, kh, kw], bias [out].
class Conv2d : public Layer {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  const Conv2dOptions& options() const { return opt_; }
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "conv2d"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;
  int64_t macs(const std::vector<TensorSpec>& inputs, const TensorSpec& output) const override;

 private:
  Conv2dOptions opt_;
};

/// Output extent of a convolution or pooling window along one axis:
/// floor((in + 2*pad - dilation*(kernel-1) - 1) / stride) + 1, overflow-checked.
/// Throws ShapeError when the padded input is smaller than the dilated kernel.
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

// ---------------------------------------------------------------- BatchNorm2d
/// torch.nn.BatchNorm2d in inference mode. Parameters weight, bias [C];
/// buffers running_mean, running_var [C] float32, num_batches_tracked [] int64.
class BatchNorm2d : public Layer {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1);
  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "batch_norm2d"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;

 private:
  int64_t num_features_;
  double eps_, momentum_;
};

// ---------------------------------------------------------------- activations
enum class Activation { ReLU, SiLU, Sigmoid };

/// Elementwise activation (torch.nn.ReLU, SiLU, Sigmoid); any shape.
class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation kind, bool inplace = false) : kind_(kind), inplace_(inplace) {}
  Activation kind() const { return kind_; }
  std::string type_name() const override;
  std::string extra_repr() const override;
  const char* op_name() const override;
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;

 private:
  Activation kind_;
  bool inplace_;
};
class ReLU : public ActivationLayer {
 public:
  explicit ReLU(bool inplace = false) : ActivationLayer(Activation::ReLU, inplace) {}
};
class SiLU : public ActivationLayer {
 public:
  explicit SiLU(bool inplace = false) : ActivationLayer(Activation::SiLU, inplace) {}
};
class Sigmoid : public ActivationLayer {
 public:
  Sigmoid() : ActivationLayer(Activation::Sigmoid, false) {}
};

// ---------------------------------------------------------------- pooling
/// torch.nn.MaxPool2d on [N, C, H, W]. Constructor requires kernel >= 1,
/// stride >= 1 (0 means "= kernel"), padding <= kernel/2, dilation >= 1.
class MaxPool2d : public Layer {
 public:
  MaxPool2d(Size2 kernel_size, Size2 stride = Size2(0), Size2 padding = Size2(0), Size2 dilation = Size2(1),
            bool ceil_mode = false);
  /// Extents as torch prints them: an int if constructed from an int.
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "max_pool2d"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;
  Size2 kernel_size() const { return kernel_; }
  Size2 stride() const { return stride_; }
  Size2 padding() const { return padding_; }
  Size2 dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }

 private:
  Size2 kernel_, stride_, padding_, dilation_;
  bool ceil_mode_;
};

/// torch's pooling_output_shape along one axis (floor or ceil mode).
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode);

/// torch.nn.AdaptiveAvgPool2d with a fixed output size. `square` records whether
/// it was built from one int (printed as output_size=1) or a pair ((1, 1)).
class AdaptiveAvgPool2d : public Layer {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size, bool square = false);
  Size2 output_size() const { return out_; }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "adaptive_avg_pool2d"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;

 private:
  Size2 out_;
  bool square_;
};

// ---------------------------------------------------------------- shape ops
/// torch.flatten(x, start_dim, end_dim) / torch.nn.Flatten.
class Flatten : public Layer {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "flatten"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;

 private:
  int64_t start_, end_;
};

/// torch.nn.Linear: [..., in_features] -> [..., out_features].
/// Parameters weight [out, in], bias [out].
class Linear : public Layer {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "linear"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;
  int64_t macs(const std::vector<TensorSpec>& inputs, const TensorSpec& output) const override;

 private:
  int64_t in_, out_;
  bool bias_;
};

/// torch.nn.Dropout; the identity at inference. Requires 0 <= p <= 1.
class Dropout : public Layer {
 public:
  explicit Dropout(double p = 0.5, bool inplace = false);
  double p() const { return p_; }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  const char* op_name() const override { return "dropout"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;

 private:
  double p_;
  bool inplace_;
};

/// torch.nn.Identity.
class Identity : public Layer {
 public:
  std::string type_name() const override { return "Identity"; }
  const char* op_name() const override { return "identity"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;
};

/// torchvision.ops.StochasticDepth; the identity at inference.
/// Requires 0 <= p <= 1 and mode "row" or "batch".
class StochasticDepth : public Layer {
 public:
  StochasticDepth(double p, std::string mode);
  double p() const { return p_; }
  const std::string& mode() const { return mode_; }
  std::string type_name() const override { return "StochasticDepth"; }
  /// torchvision prints "StochasticDepth(p=0.0125, mode=row)".
  std::string extra_repr() const override;
  const char* op_name() const override { return "stochastic_depth"; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;

 private:
  double p_;
  std::string mode_;
};

// ---------------------------------------------------------------- graph-only ops
/// Residual addition `a += b` (torch's in-place add): both shapes must be equal.
/// Not part of any module tree; blocks emit it while lowering.
class Add : public Layer {
 public:
  std::string type_name() const override { return "Add"; }
  const char* op_name() const override { return "add"; }
  int num_inputs() const override { return 2; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;
};

/// Elementwise product with torch broadcasting (squeeze-excitation's `scale * x`).
class Mul : public Layer {
 public:
  std::string type_name() const override { return "Mul"; }
  const char* op_name() const override { return "mul"; }
  int num_inputs() const override { return 2; }
  TensorSpec infer(const std::vector<TensorSpec>& inputs) const override;
};

}  // namespace nn
}  // namespace pyflame_vision
