// pyflame_vision/transforms.h - torchvision-style preprocessing transforms.
//
// Shape semantics follow torchvision.transforms on tensors of shape
// [..., C, H, W]: Resize, CenterCrop, Normalize, Compose. These compute shapes
// only (no pixel operations yet; examples/cpp/classify.cpp shows a complete
// preprocessing written out). get_output_shape is pure and thread-safe;
// transforms are immutable after construction and may be shared between
// threads. Constructors throw InvalidArgument for bad options;
// get_output_shape throws ShapeError for inputs the transform cannot take.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {
namespace transforms {

class Transform {
 public:
  virtual ~Transform() = default;
  /// The shape this transform produces for a [..., C, H, W] input shape.
  virtual Shape get_output_shape(const Shape& input) const = 0;
  /// torchvision's repr, e.g. "Resize(size=256, ...)".
  virtual std::string repr() const = 0;
};

/// torchvision.transforms.Resize. `size` with one entry resizes the smaller
/// edge to it keeping the aspect ratio (int(size * long / short) for the long
/// edge; `max_size` caps the long edge); two entries are (h, w).
class Resize : public Transform {
 public:
  explicit Resize(std::vector<int64_t> size, int64_t max_size = -1, std::string interpolation = "bilinear",
                  bool antialias = true, bool size_is_int = false);
  Shape get_output_shape(const Shape& input) const override;
  std::string repr() const override;
  const std::vector<int64_t>& size() const { return size_; }
  int64_t max_size() const { return max_size_; }

 private:
  std::vector<int64_t> size_;
  int64_t max_size_;
  std::string interpolation_;
  bool antialias_, size_is_int_;
};

/// torchvision.transforms.CenterCrop: output [..., h, w]; a crop larger than
/// the image pads it with zeros, as torchvision does.
class CenterCrop : public Transform {
 public:
  CenterCrop(int64_t height, int64_t width, bool size_is_int = false);
  Shape get_output_shape(const Shape& input) const override;
  std::string repr() const override;
  int64_t height() const { return h_; }
  int64_t width() const { return w_; }

 private:
  int64_t h_, w_;
  bool size_is_int_;
};

/// torchvision.transforms.Normalize: (x - mean[c]) / std[c]. Requires at least
/// 3-D input whose channel count equals len(mean) (or len(mean) == 1).
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std, bool inplace = false);
  Shape get_output_shape(const Shape& input) const override;
  std::string repr() const override;
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }

 private:
  std::vector<double> mean_, std_;
  bool inplace_;
};

/// torchvision.transforms.Compose: applies transforms in order (shares
/// ownership of them).
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);
  Shape get_output_shape(const Shape& input) const override;
  std::string repr() const override;
  const std::vector<std::shared_ptr<const Transform>>& transforms() const { return transforms_; }

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

}  // namespace transforms
}  // namespace pyflame_vision
