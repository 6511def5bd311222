// pyflame_vision/tensor_spec.h - dtype and shape description of a tensor.
//
// A TensorSpec is metadata only: it never owns element memory. Shapes are
// int64 vectors in the order torch uses (activations are [N, C, H, W]).
// Every TensorSpec satisfies: all dimensions >= 0 and numel * itemsize fits in
// int64; the constructor throws otherwise. TensorSpec is a value type and is
// safe to share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyflame_vision {

/// Element types. Names follow torch/numpy ("float32", "int64", ...).
enum class DType { float32, float64, float16, bfloat16, int64, int32, uint8, bool_ };

/// Size of one element in bytes.
int64_t dtype_itemsize(DType dtype);
/// Canonical name, e.g. "float32".
const char* dtype_name(DType dtype);
/// Parses a dtype name ("float32", "float", "int64", "long", ...).
/// Throws TypeError for an unknown name.
DType dtype_from_name(const std::string& name);

using Shape = std::vector<int64_t>;

/// "[1, 3, 224, 224]"
std::string shape_to_string(const Shape& shape);

/// Product of the dimensions; throws ShapeError for a negative dimension and
/// ShapeOverflowError if the product does not fit in int64.
int64_t shape_numel(const Shape& shape);

class TensorSpec {
 public:
  /// A float32 scalar (shape []).
  TensorSpec();
  /// Throws ShapeError if a dimension is negative, ShapeOverflowError if the
  /// byte size does not fit in int64.
  explicit TensorSpec(Shape shape, DType dtype = DType::float32);

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  /// Dimension i; negative i counts from the end. Throws ShapeError when out of range.
  int64_t dim(int64_t i) const;
  int64_t numel() const { return numel_; }
  int64_t nbytes() const { return numel_ * dtype_itemsize(dtype_); }

  /// "TensorSpec(shape=[1, 3, 224, 224], dtype=float32)"
  std::string repr() const;

  bool operator==(const TensorSpec& o) const { return dtype_ == o.dtype_ && shape_ == o.shape_; }
  bool operator!=(const TensorSpec& o) const { return !(*this == o); }

 private:
  Shape shape_;
  DType dtype_ = DType::float32;
  int64_t numel_ = 1;
};

}  // namespace pyflame_vision
