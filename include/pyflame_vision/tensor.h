// pyflame_vision/tensor.h - a dense tensor with shared, immutable-by-convention storage.
//
// A Tensor is a TensorSpec plus a 64-byte aligned buffer of spec().nbytes()
// bytes in row-major (C) order. Copying a Tensor shares the buffer (like
// torch.Tensor); use clone() for an independent copy. The library never
// writes into a Tensor it has handed out or received, so tensors shared
// between threads are safe to read concurrently. Writing through data_f32() /
// raw_data() while another thread reads the same storage is the caller's race.
//
// Layout: row-major, so a [N, C, H, W] tensor's element (n, c, h, w) is at
// ((n * C + c) * H + h) * W + w. Multi-byte elements are in host byte order.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {

class Tensor {
 public:
  /// An undefined tensor (defined() is false, no storage).
  Tensor() = default;
  /// Allocates a zero-filled tensor. Throws OutOfMemory (saying the shape and
  /// the bytes) when the memory cannot be had: checked against the available
  /// memory before allocating for requests of 64 MiB and more.
  explicit Tensor(TensorSpec spec);
  /// Allocates a tensor and copies spec.nbytes() bytes from `data` (row-major,
  /// owned by the caller, only read during the call).
  static Tensor from_data(TensorSpec spec, const void* data);

  /// False for a default-constructed tensor (no storage); every accessor below
  /// except spec()/shape()/dtype()/numel()/nbytes() then returns null.
  bool defined() const { return static_cast<bool>(buf_); }
  const TensorSpec& spec() const { return spec_; }
  /// Dimensions, e.g. [N, C, H, W] for activations.
  const Shape& shape() const { return spec_.shape(); }
  DType dtype() const { return spec_.dtype(); }
  /// Number of elements (product of the shape; 1 for a 0-d tensor).
  int64_t numel() const { return spec_.numel(); }
  /// Size of the data in bytes (numel * itemsize).
  int64_t nbytes() const { return spec_.nbytes(); }

  /// The first byte of the data (64-byte aligned); valid while any Tensor
  /// sharing this storage lives.
  void* raw_data() { return buf_.get(); }
  const void* raw_data() const { return buf_.get(); }
  /// Typed access, same lifetime as raw_data(); throws TypeError if the dtype
  /// is not float32 / int64.
  float* data_f32();
  const float* data_f32() const;
  int64_t* data_i64();
  const int64_t* data_i64() const;

  /// A deep copy with its own storage.
  Tensor clone() const;
  /// The shared storage (for bindings that hand the buffer to NumPy without a copy).
  const std::shared_ptr<void>& storage() const { return buf_; }

 private:
  TensorSpec spec_;
  std::shared_ptr<void> buf_;
};

/// A borrowed float32 array: `data` points at element [0, 0, 0, 0]; `strides`
/// (one per dimension of `shape`) are in elements, not bytes, and may be
/// negative or zero. The caller keeps the memory alive and unchanged for the
/// duration of the call that reads it; the library never writes through it.
struct InputView {
  const float* data = nullptr;
  Shape shape;
  std::vector<int64_t> strides;
  /// A dense row-major view of `t`. Throws TypeError if `t` is not float32.
  /// The view borrows `t`'s storage: `t` must outlive it.
  static InputView of(const Tensor& t);
  /// A dense row-major (C-contiguous) view of `shape` at `data`.
  /// Throws ShapeError for a negative dimension.
  static InputView contiguous(const float* data, Shape shape);
};

}  // namespace pyflame_vision
