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
#include <memory>
#include <string>

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

class Conv2dKernel {
 public:
  /// Packs `weight` ([out_c, in_c/groups, kernel_h, kernel_w]) and `bias`
  /// ([out_c] or null) for `isa`. The shape must be consistent (out_h/out_w as
  /// torch computes them); throws InvalidArgument otherwise, and also when
  /// `isa` is above detected_isa(). Chooses the algorithm: depthwise kernel when
  /// groups == in_c == out_c, GEMM for 1x1 stride-1 unpadded, implicit GEMM
  /// (indirection buffer) otherwise, per group for grouped convolutions.
  Conv2dKernel(const ConvShape& shape, const float* weight, const float* bias, Epilogue epilogue, Isa isa);
  /// The same layer (weights, channels, kernel, stride, padding, dilation,
  /// groups, epilogue, tier) for another batch size or spatial size: shares
  /// `donor`'s packed weights instead of packing again. Throws InvalidArgument
  /// if the layer parameters differ.
  Conv2dKernel(const ConvShape& shape, const Conv2dKernel& donor);
  ~Conv2dKernel();
  Conv2dKernel(const Conv2dKernel&) = delete;
  Conv2dKernel& operator=(const Conv2dKernel&) = delete;

  /// in: [batch, in_h, in_w, in_c]; out: [batch, out_h, out_w, out_c];
  /// residual: like out, or null. `out` must not alias `in`; it may alias
  /// `residual`. Uses the process-wide thread pool.
  void run(const float* in, float* out, const float* residual) const;

  const ConvShape& shape() const;
  /// Algorithm and microkernel, e.g. "igemm 3x3/s1 igemm_f32_6x16__avx2".
  std::string description() const;
  /// Why this algorithm was chosen and the ones before it in the ordered list
  /// (depthwise, 1x1 GEMM, row-merged stem, grouped variants, implicit GEMM) were not.
  std::string why() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// y[n, out] = act(x[n, in] . weight[out, in]^T + bias[out]) (torch.nn.Linear).
class LinearKernel {
 public:
  LinearKernel(int64_t in_features, int64_t out_features, const float* weight, const float* bias,
               Epilogue epilogue, Isa isa);
  struct SharePacked {};
  /// Shares `donor`'s packed weights (row counts are given to run()).
  LinearKernel(const LinearKernel& donor, SharePacked);
  ~LinearKernel();
  LinearKernel(const LinearKernel&) = delete;
  LinearKernel& operator=(const LinearKernel&) = delete;

  /// x: [rows, in_features] dense; y: [rows, out_features] dense, not aliasing x.
  void run(const float* x, int64_t rows, float* y) const;
  std::string description() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kernels
}  // namespace pyflame_vision
