// Internal: a model compiled for one input shape (see models/model.h).
//
// Compilation (create): resolves identity layers (Dropout, StochasticDepth,
// Identity, Flatten of [N, C, 1, 1]) to aliases, drops everything the requested
// outputs do not need, folds each BatchNorm into the convolution before it,
// fuses the residual add and the activation that follow into that
// convolution's epilogue, packs weights for one instruction-set tier and plans
// one activation arena in which buffers with disjoint lifetimes share memory.
//
// Running (run): binds the caller's input and a pooled arena; const, so many
// threads may run one Executable at once (each takes its own arena).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "pyflame_vision/cpu.h"
#include "pyflame_vision/graph.h"
#include "pyflame_vision/models/model.h"
#include "pyflame_vision/tensor.h"

namespace pyflame_vision {

class Executable {
 public:
  /// `features`: return the graph's taps (forward_features) instead of its output.
  /// Throws WeightsError if a needed weight is missing, Unsupported for a
  /// layer configuration the engine cannot run.
  /// `donor`: an executable of the same graph, weights and tier for another
  /// input shape, or null; its packed weights are shared instead of packed again.
  Executable(const Graph& graph, const std::unordered_map<std::string, Tensor>& weights, const TensorSpec& input,
             bool features, Isa isa, const Executable* donor = nullptr);
  ~Executable();
  Executable(const Executable&) = delete;
  Executable& operator=(const Executable&) = delete;

  /// Runs on `input` (shape must equal the compiled one); returns NCHW (or
  /// [N, F]) tensors: one for forward, one per tap for features.
  std::vector<Tensor> run(const models::InputView& input) const;
  /// One line per step: "layer1.0.conv1+bn1+relu: gemm 1x1 igemm_f32_6x16__avx2".
  const std::string& plan() const { return plan_; }
  int64_t arena_bytes() const { return arena_floats_ * 4; }
  Isa isa() const { return isa_; }

  struct Step;

 private:
  struct Value {
    Shape shape;         // torch's shape (NCHW or [N, F])
    int64_t n = 0, h = 1, w = 1, c = 0;  // stored NHWC
    int64_t offset = -1;  // in floats, inside the arena
  };
  float* acquire_arena() const;
  void release_arena(float* a) const;

  TensorSpec input_;
  Isa isa_;
  std::vector<Value> values_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<int> outputs_;
  int input_value_ = 0;
  int64_t arena_floats_ = 0;
  std::string plan_;
  mutable std::mutex arena_mu_;
  mutable std::vector<float*> free_arenas_;
};

}  // namespace pyflame_vision
