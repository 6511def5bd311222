// Internal: a model's parameters and buffers by state-dict key, held once.
//
// Every value starts resident (a Tensor). When a convolution or linear
// weight has been packed by a kernel whose packing is a permutation of it
// (every implementation but Winograd), the compile passes hand the store a
// rebuilder instead (derive()): the packed weights (shared with the
// kernel), the BatchNorm scale that was folded into them, and, where
// unscaling lands on the neighbouring float, a 2-bit
// correction per element. derive() rebuilds the tensor at once and keeps
// the rebuilder only if the result equals the resident tensor bit for bit;
// then it drops the resident copy. get() returns the resident tensor or a
// freshly rebuilt one, so state_dict() and packing for another
// implementation or tier see exactly the values that were loaded.
//
// Memory: a derived weight costs its packed copy (which the kernels need
// anyway) plus 2 bits per element, at most; weights that cannot be
// rebuilt (Winograd layers, a BatchNorm scale of 0, inf or NaN, NaN
// weights) stay resident.
//
// Thread safety: every member may be called from several threads at once
// (one mutex; rebuilds run outside it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pyflame_vision/tensor.h"

namespace pyflame_vision {
namespace kernels {
class PackedWeights;  // kernels/conv.h
}  // namespace kernels

class WeightStore {
 public:
  /// Sets `key` to the resident tensor `t` (replacing any value).
  void set(const std::string& key, Tensor t);
  bool has(const std::string& key) const;
  /// The value of `key`: the resident tensor (shared; never write into it)
  /// or a new tensor rebuilt from the packed weights. An undefined Tensor if
  /// the key has no value. Throws std::bad_alloc.
  Tensor get(const std::string& key) const;
  /// A value the caller owns: a copy of the resident tensor, or a rebuilt one.
  /// Undefined if the key has no value.
  Tensor get_copy(const std::string& key) const;
  /// Whether `key` is held resident (false: absent or derived).
  bool resident(const std::string& key) const;
  /// Offers a rebuilder for the float32 weight `key` ([out, ...]): `packed`
  /// unpacks to W' where W'[o, ...] = float(W[o, ...] * scale[o]) (scale
  /// empty: W' = W). Keeps it, dropping the resident tensor or the previous
  /// rebuilder, only if it rebuilds the current value bit for bit; returns
  /// whether the value is now rebuilt from `packed`. A derived value moves to
  /// the newest packing (so that an older one, e.g. the packing of weights
  /// kept by load_state_dict(strict=False) from before, is freed once no
  /// kernel uses it); handing the same packing again (equal id()) costs
  /// nothing. Does nothing (false) for an absent key or a null `packed`.
  bool derive(const std::string& key, std::shared_ptr<const kernels::PackedWeights> packed,
              const std::vector<double>& scale);
  /// A new store with the same values (resident tensors and rebuilders shared).
  std::shared_ptr<WeightStore> copy() const;
  /// Bytes held by resident tensors (derived ones count 0).
  int64_t resident_bytes() const;
  /// Bytes held by the rebuilders' corrections (the packed weights they
  /// share belong to the kernels).
  int64_t derived_bytes() const;

  class Derived;

 private:
  struct Entry {
    Tensor tensor;                           // resident, or undefined
    std::shared_ptr<const Derived> derived;  // or rebuilt from this
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace pyflame_vision
