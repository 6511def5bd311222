// Internal: convolution and linear layers with weights packed once for one
// instruction-set tier. The execution engine (cpp/graph/) builds one of these
// per node when it compiles a model for an input shape, then calls run() for
// every forward.
//
// Layouts: activations are NHWC, dense: element (n, y, x, c) of a tensor with
// H rows, W columns and C channels is at ((n*H + y)*W + x)*C + c. Weights come
// in torch's layout (OIHW, [out_c, in_c/groups, kh, kw]) and are packed by the
// constructor; the caller's weight memory is not referenced afterwards.
//
// Semantics: out = act(conv(in, weight) + bias + residual), computed in float32
// with zero padding, exactly torch.nn.functional.conv2d's definition. bias and
// residual may be null. The residual has the output's shape and layout.
// NaN or Inf anywhere in the inputs propagates as IEEE arithmetic does: relu
// keeps NaN (relu(NaN) = NaN, like torch).
//
// Determinism: the result is bit-identical whatever the thread count, because
// every output element is produced by one fixed sequence of operations (the
// work grid does not depend on the number of threads).
//
// Thread safety: run() is const and may be called from many threads at once
// with different buffers; it takes its scratch memory from the stack or
// allocates it per call.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pyflame_vision/cpu.h"

namespace pyflame_vision {
namespace kernels {

enum class Epilogue { none, relu, silu, sigmoid };

struct ConvShape {
  int64_t batch = 1;
  int64_t in_h = 0, in_w = 0, in_c = 0;
  int64_t out_h = 0, out_w = 0, out_c = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

class ConvImpl;
struct ConvImplEntry;

/// Packed weights that give back, bit for bit, the weights they were packed
/// from (the kernel's packing is a permutation of them, zero padding aside).
/// Holds the packed data alive; unpack() is const and thread-safe.
class PackedWeights {
 public:
  virtual ~PackedWeights() = default;
  /// Floats unpack() writes.
  virtual size_t size() const = 0;
  /// Writes the weights in torch's layout: a convolution's [out_c,
  /// in_c/groups, kh, kw] (as given to the kernel, BatchNorm folded in),
  /// a Linear's [out_features, in_features].
  virtual void unpack(float* weight) const = 0;
  /// The packed data's identity: equal for objects that share it (a
  /// PackCache hit), so that a holder can tell a new packing from the one it has.
  virtual const void* id() const = 0;
};

/// Packed weights by key (layer, implementation, tier), so that the kernels
/// of several input shapes of one model share them when they choose the same
/// implementation. Thread-safe.
class PackCache {
 public:
  std::shared_ptr<const void> find(const std::string& key) const;
  /// Stores `value` unless `key` is present; returns the stored value.
  std::shared_ptr<const void> put(const std::string& key, std::shared_ptr<const void> value);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const void>> map_;
};

/// Folded weights of one convolution: [out_c, in_c/groups, kh, kw] and [out_c]
/// (empty: no bias). Filled only when the cache has no packed weights yet.
struct ConvWeights {
  std::vector<float> weight;
  std::vector<float> bias;
};
using ConvWeightSource = std::function<ConvWeights()>;

class Conv2dKernel {
 public:
  /// Packs `weight` ([out_c, in_c/groups, kernel_h, kernel_w]) and `bias`
  /// ([out_c] or null) for `isa`. The shape must be consistent (out_h/out_w as
  /// torch computes them); throws InvalidArgument otherwise, and also when
  /// `isa` is above detected_isa(). The implementation is the first entry of
  /// the ordered list (conv_impls.h) that applies to this shape and tier.
  Conv2dKernel(const ConvShape& shape, const float* weight, const float* bias, Epilogue epilogue, Isa isa);
  /// The same, with packed weights looked up in (or added to) `cache` under
  /// `layer_key` + the chosen implementation + the tier; `source` is called
  /// only when they must be packed. Throws as above, and what `source` throws.
  Conv2dKernel(const ConvShape& shape, Epilogue epilogue, Isa isa, PackCache& cache, const std::string& layer_key,
               const ConvWeightSource& source);
  /// The same layer for another input size: selection runs again for
  /// `shape`; if it chooses donor's implementation, the packed weights are
  /// shared. Throws InvalidArgument if the layer parameters differ or another
  /// implementation applies (then the weights must be packed again).
  Conv2dKernel(const ConvShape& shape, const Conv2dKernel& donor);
  /// Forces the implementation called `impl` (tests, benchmarks); throws
  /// InvalidArgument naming the reason if it does not apply, or listing the
  /// names if there is no such implementation.
  static Conv2dKernel with_impl(const std::string& impl, const ConvShape& shape, const float* weight,
                                const float* bias, Epilogue epilogue, Isa isa);
  ~Conv2dKernel();
  Conv2dKernel(Conv2dKernel&&) noexcept;
  Conv2dKernel(const Conv2dKernel&) = delete;
  Conv2dKernel& operator=(const Conv2dKernel&) = delete;

  /// in: [batch, in_h, in_w, in_c]; out: [batch, out_h, out_w, out_c];
  /// residual: like out, or null. `out` must not alias `in`; it may alias
  /// `residual`. Uses the process-wide thread pool.
  void run(const float* in, float* out, const float* residual) const;

  const ConvShape& shape() const;
  /// Name of the chosen list entry, e.g. "winograd_2x2_3x3".
  const char* impl_name() const;
  /// Algorithm and microkernel, e.g. "igemm 3x3/s1 igemm_f32_6x16__avx2 +relu".
  std::string description() const;
  /// One line per list entry up to the chosen one: "chose NAME: reason" last,
  /// "skipped NAME: reason" for each entry before it.
  std::string why() const;
  /// Multiply-adds the implementation executes for this shape (direct
  /// convolution's count, fewer for Winograd).
  int64_t macs_executed() const;
  /// The packed weights, sharing them, if the chosen implementation can give
  /// back the weights it packed exactly (every one but Winograd); else null.
  std::shared_ptr<const PackedWeights> packed_weights() const;

 private:
  Conv2dKernel() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Names of the convolution implementations, in the order they are tried.
std::vector<std::string> conv_impl_names();

/// y[n, out] = act(x[n, in] . weight[out, in]^T + bias[out]) (torch.nn.Linear).
class LinearKernel {
 public:
  LinearKernel(int64_t in_features, int64_t out_features, const float* weight, const float* bias,
               Epilogue epilogue, Isa isa);
  struct SharePacked {};
  /// Shares `donor`'s packed weights (row counts are given to run()).
  LinearKernel(const LinearKernel& donor, SharePacked);
  /// Packed weights looked up in (or added to) `cache` under `layer_key` and
  /// the tier; weight and bias are read only when they must be packed.
  LinearKernel(int64_t in_features, int64_t out_features, const float* weight, const float* bias,
               Epilogue epilogue, Isa isa, PackCache& cache, const std::string& layer_key);
  ~LinearKernel();
  LinearKernel(const LinearKernel&) = delete;
  LinearKernel& operator=(const LinearKernel&) = delete;

  /// x: [rows, in_features] dense; y: [rows, out_features] dense, not aliasing x.
  void run(const float* x, int64_t rows, float* y) const;
  std::string description() const;
  /// The packed weights (shared), which give back [out_features, in_features] exactly.
  std::shared_ptr<const PackedWeights> packed_weights() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kernels
}  // namespace pyflame_vision
