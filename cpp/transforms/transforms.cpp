#include "pyflame_vision/transforms.h"

#include <cmath>

#include "pyflame_vision/checked.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/nn/module.h"

namespace pyflame_vision {
namespace transforms {

namespace {
void require_image(const Shape& s, size_t min_dims, const char* who, const char* layout) {
  if (s.size() < min_dims)
    throw ShapeError(std::string("[") + who + "] expected a tensor image of shape " + layout + ", got a " +
                     std::to_string(s.size()) + "-D shape " + shape_to_string(s));
  shape_numel(s);  // negative dimensions and overflow
}
std::string list_repr(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + nn::python_float_repr(v[i]);
  return s + "]";
}
}  // namespace

Resize::Resize(std::vector<int64_t> size, int64_t max_size, std::string interpolation, bool antialias,
               bool size_is_int)
    : size_(std::move(size)),
      max_size_(max_size),
      interpolation_(std::move(interpolation)),
      antialias_(antialias),
      size_is_int_(size_is_int) {
  if (size_.empty() || size_.size() > 2)
    throw InvalidArgument("Resize: size must be an int or a sequence of 1 or 2 ints, got " +
                          std::to_string(size_.size()) + " values");
  for (int64_t v : size_)
    if (v < 1) throw InvalidArgument("Resize: size values must be positive, got " + shape_to_string(size_));
  if (max_size_ >= 0) {
    if (size_.size() != 1)
      throw InvalidArgument("Resize: max_size should only be passed if size specifies the length of the smaller edge");
    if (max_size_ <= size_[0])
      throw InvalidArgument("Resize: max_size = " + std::to_string(max_size_) +
                            " must be strictly greater than the requested size for the smaller edge size = " +
                            std::to_string(size_[0]));
  }
}

Shape Resize::get_output_shape(const Shape& input) const {
  require_image(input, 2, "Resize", "[..., H, W]");
  Shape out = input;
  const int64_t h = input[input.size() - 2], w = input[input.size() - 1];
  if (h == 0 || w == 0) throw ShapeError("[Resize] cannot resize an empty image of shape " + shape_to_string(input));
  int64_t new_h, new_w;
  if (size_.size() == 1) {
    // torchvision _compute_resized_output_size: int(requested * long / short)
    const int64_t shorter = w <= h ? w : h, longer = w <= h ? h : w;
    const int64_t req = size_[0];
    int64_t new_short = req;
    int64_t new_long = static_cast<int64_t>(static_cast<double>(checked::mul(req, longer, "the resized size")) /
                                            static_cast<double>(shorter));
    if (max_size_ >= 0 && new_long > max_size_) {
      new_short = static_cast<int64_t>(static_cast<double>(max_size_ * new_short) / static_cast<double>(new_long));
      new_long = max_size_;
    }
    new_w = w <= h ? new_short : new_long;
    new_h = w <= h ? new_long : new_short;
  } else {
    new_h = size_[0];
    new_w = size_[1];
  }
  out[out.size() - 2] = new_h;
  out[out.size() - 1] = new_w;
  return out;
}

std::string Resize::repr() const {
  std::string size = size_is_int_ ? std::to_string(size_[0]) : shape_to_string(size_);
  return "Resize(size=" + size + ", interpolation=" + interpolation_ + ", max_size=" +
         (max_size_ >= 0 ? std::to_string(max_size_) : std::string("None")) +
         ", antialias=" + (antialias_ ? "True" : "False") + ")";
}

CenterCrop::CenterCrop(int64_t height, int64_t width, bool size_is_int) : h_(height), w_(width), size_is_int_(size_is_int) {
  if (h_ < 1 || w_ < 1)
    throw InvalidArgument("CenterCrop: size must be positive, got (" + std::to_string(h_) + ", " + std::to_string(w_) +
                          ")");
}

Shape CenterCrop::get_output_shape(const Shape& input) const {
  require_image(input, 2, "CenterCrop", "[..., H, W]");
  Shape out = input;  // larger crops pad with zeros first, so the result is always (h, w)
  out[out.size() - 2] = h_;
  out[out.size() - 1] = w_;
  return out;
}

std::string CenterCrop::repr() const {
  return "CenterCrop(size=(" + std::to_string(h_) + ", " + std::to_string(w_) + "))";
}

Normalize::Normalize(std::vector<double> mean, std::vector<double> std, bool inplace)
    : mean_(std::move(mean)), std_(std::move(std)), inplace_(inplace) {
  if (mean_.empty() || std_.empty()) throw InvalidArgument("Normalize: mean and std must not be empty");
  if (mean_.size() != std_.size() && mean_.size() != 1 && std_.size() != 1)
    throw InvalidArgument("Normalize: mean has " + std::to_string(mean_.size()) + " values but std has " +
                          std::to_string(std_.size()));
  for (double s : std_)
    if (static_cast<float>(s) == 0.0f)
      throw InvalidArgument("Normalize: std evaluated to zero after conversion to float32, leading to division by zero");
  for (double v : mean_)
    if (!std::isfinite(v)) throw InvalidArgument("Normalize: mean values must be finite");
}

Shape Normalize::get_output_shape(const Shape& input) const {
  require_image(input, 3, "Normalize", "[..., C, H, W]");
  const int64_t c = input[input.size() - 3];
  const size_t n = std::max(mean_.size(), std_.size());
  if (n != 1 && static_cast<size_t>(c) != n)
    throw ShapeError("[Normalize] expected " + std::to_string(n) + " channels (one per mean/std value), got " +
                     std::to_string(c) + " (input shape " + shape_to_string(input) + ")");
  return input;
}

std::string Normalize::repr() const { return "Normalize(mean=" + list_repr(mean_) + ", std=" + list_repr(std_) + ")"; }

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms) : transforms_(std::move(transforms)) {
  for (const auto& t : transforms_)
    if (!t) throw InvalidArgument("Compose: transforms must not contain null entries");
}

Shape Compose::get_output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& t : transforms_) s = t->get_output_shape(s);
  return s;
}

std::string Compose::repr() const {
  std::string s = "Compose(";
  for (const auto& t : transforms_) s += "\n    " + t->repr();
  return s + "\n)";
}

}  // namespace transforms
}  // namespace pyflame_vision
