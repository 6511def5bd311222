#include "pyflame_vision/tensor_spec.h"

#include <sstream>

#include "pyflame_vision/checked.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/version.h"

namespace pyflame_vision {

int64_t dtype_itemsize(DType dtype) {
  switch (dtype) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::float16: return 2;
    case DType::bfloat16: return 2;
    case DType::int64: return 8;
    case DType::int32: return 4;
    case DType::uint8: return 1;
    case DType::bool_: return 1;
  }
  return 1;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::int64: return "int64";
    case DType::int32: return "int32";
    case DType::uint8: return "uint8";
    case DType::bool_: return "bool";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  if (name == "float32" || name == "float") return DType::float32;
  if (name == "float64" || name == "double") return DType::float64;
  if (name == "float16" || name == "half") return DType::float16;
  if (name == "bfloat16") return DType::bfloat16;
  if (name == "int64" || name == "long") return DType::int64;
  if (name == "int32" || name == "int") return DType::int32;
  if (name == "uint8") return DType::uint8;
  if (name == "bool") return DType::bool_;
  throw TypeError("unknown dtype '" + name +
                  "'; expected one of float32, float64, float16, bfloat16, int64, int32, uint8, bool");
}

std::string shape_to_string(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0)
      throw ShapeError("dimension " + std::to_string(i) + " is negative (" + std::to_string(shape[i]) +
                       ") in shape " + shape_to_string(shape) + "; dimensions must be >= 0");
  }
  for (int64_t d : shape)
    if (d == 0) return 0;  // an empty tensor, whatever the other dimensions
  for (int64_t d : shape) n = checked::mul(n, d, "the element count of shape " + shape_to_string(shape));
  return n;
}

TensorSpec::TensorSpec() = default;

TensorSpec::TensorSpec(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  numel_ = shape_numel(shape_);
  checked::mul(numel_, dtype_itemsize(dtype_), "the byte size of shape " + shape_to_string(shape_));
}

int64_t TensorSpec::dim(int64_t i) const {
  const int64_t n = ndim();
  if (i < -n || i >= n)
    throw ShapeError("dimension index " + std::to_string(i) + " out of range for " + std::to_string(n) +
                     "-D shape " + shape_to_string(shape_));
  return shape_[static_cast<size_t>(i < 0 ? i + n : i)];
}

std::string TensorSpec::repr() const {
  return "TensorSpec(shape=" + shape_to_string(shape_) + ", dtype=" + dtype_name(dtype_) + ")";
}

namespace checked {
void throw_overflow(const char* op, int64_t a, int64_t b, const std::string& what) {
  throw ShapeOverflowError("integer overflow computing " + what + ": " + std::to_string(a) + " " + op + " " +
                           std::to_string(b) + " does not fit in int64");
}
}  // namespace checked

const char* version() { return PYFLAME_VISION_VERSION; }

}  // namespace pyflame_vision
