// Internal: a model compiled for one input shape (see models/model.h).
//
// Compilation runs the passes of graph/program.h (lowering, BatchNorm
// folding, epilogue fusion, kernel selection, memory planning); the
// Executable only holds their result and runs it.
//
// Running (run): binds the caller's input and a pooled arena; const, so many
// threads may run one Executable at once (each takes its own arena).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph/program.h"

namespace pyflame_vision {

class Executable {
 public:
  /// `features`: return the graph's taps (forward_features) instead of its
  /// output. `packs`: packed weights shared with the executables of other
  /// input shapes of the same graph and weights (layers that choose the same
  /// implementation there reuse them). Weights it packs reversibly become
  /// derived in `weights` (see WeightStore). Throws WeightsError if a needed
  /// weight is missing, Unsupported for a layer configuration the engine
  /// cannot run.
  Executable(const Graph& graph, WeightStore& weights, const TensorSpec& input, bool features, Isa isa,
             kernels::PackCache& packs);
  ~Executable();
  Executable(const Executable&) = delete;
  Executable& operator=(const Executable&) = delete;

  /// Runs on `input` (shape must equal the compiled one); returns NCHW (or
  /// [N, F]) tensors: one for forward, one per tap for features.
  std::vector<Tensor> run(const InputView& input) const;
  /// One line per step: "layer1.0.conv1+bn1+relu: gemm 1x1 igemm_f32_6x16__avx2 +relu".
  const std::string& plan() const { return plan_; }
  int64_t arena_bytes() const { return arena_floats_ * 4; }
  /// Multiply-adds the steps execute per run (Winograd layers count their 16 products per 2x2 tile).
  int64_t macs_executed() const;
  Isa isa() const { return isa_; }

 private:
  float* acquire_arena() const;
  void release_arena(float* a) const;

  TensorSpec input_;
  Isa isa_;
  std::vector<Value> values_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<int> outputs_;
  int64_t arena_floats_ = 0;
  std::string plan_;
  mutable std::mutex arena_mu_;
  mutable std::vector<float*> free_arenas_;
};

}  // namespace pyflame_vision
