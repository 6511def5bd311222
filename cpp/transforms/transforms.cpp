#include "pyflame_vision/transforms.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <iterator>

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

Resize::Resize(std::vector<int64_t> size, int64_t max_size, std::string interpolation, bool antialias, bool size_is_int)
    : size_(std::move(size)),
      max_size_(max_size),
      interpolation_(std::move(interpolation)),
      antialias_(antialias),
      size_is_int_(size_is_int) {
  static const char* const kModes[] = {"nearest", "nearest-exact", "bilinear", "bicubic", "box", "hamming", "lanczos"};
  if (std::none_of(std::begin(kModes), std::end(kModes), [&](const char* m) { return interpolation_ == m; }))
    throw InvalidArgument("Resize: unknown interpolation \"" + interpolation_ +
                          "\"; expected one of \"nearest\", \"nearest-exact\", \"bilinear\", \"bicubic\", "
                          "\"box\", \"hamming\", \"lanczos\"");
  if (size_.empty() || size_.size() > 2)
    throw InvalidArgument("Resize: size must be an int or a sequence of 1 or 2 ints, got " +
                          std::to_string(size_.size()) + " values");
  for (int64_t v : size_)
    if (v < 1) throw InvalidArgument("Resize: size values must be positive, got " + shape_to_string(size_));
  if (max_size_ >= 0) {
    if (size_.size() != 1)
      throw InvalidArgument("Resize: max_size should only be passed if size specifies the length of the smaller edge");
    if (max_size_ <= size_[0])
      throw InvalidArgument(
          "Resize: max_size = " + std::to_string(max_size_) +
          " must be strictly greater than the requested size for the smaller edge size = " + std::to_string(size_[0]));
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

namespace {
void check_output_hw(const Shape& want, const ImageLayout& got, const char* who) {
  const int64_t h = want[want.size() - 2], w = want[want.size() - 1];
  if (got.h != h || got.w != w)
    throw ShapeError(std::string("[") + who + "] expected a destination of " + std::to_string(h) + "x" +
                     std::to_string(w) + ", got " + std::to_string(got.h) + "x" + std::to_string(got.w));
}
}  // namespace

void Resize::apply(const ImageView& src, const MutableImageView& dst) const {
  const Interpolation mode = parse_interpolation(interpolation_);
  check_output_hw(get_output_shape(src.layout.shape()), dst.layout, "Resize");
  resize_image(src, dst, mode, antialias_);
}

std::string Resize::repr() const {
  std::string size = size_is_int_ ? std::to_string(size_[0]) : shape_to_string(size_);
  return "Resize(size=" + size + ", interpolation=" + interpolation_ +
         ", max_size=" + (max_size_ >= 0 ? std::to_string(max_size_) : std::string("None")) +
         ", antialias=" + (antialias_ ? "True" : "False") + ")";
}

CenterCrop::CenterCrop(int64_t height, int64_t width, bool size_is_int)
    : h_(height), w_(width), size_is_int_(size_is_int) {
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

void CenterCrop::apply(const ImageView& src, const MutableImageView& dst) const {
  check_output_hw(get_output_shape(src.layout.shape()), dst.layout, "CenterCrop");
  center_crop_image(src, dst);
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
      throw InvalidArgument(
          "Normalize: std evaluated to zero after conversion to float32, leading to division by zero");
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

void Normalize::apply(const ImageView& src, const MutableImageView& dst) const {
  normalize_image(src, dst, mean_, std_);
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

ImageClassification::ImageClassification(int64_t crop_size, int64_t resize_size, std::vector<double> mean,
                                         std::vector<double> std, Interpolation interpolation, bool antialias)
    : crop_size_(crop_size),
      resize_size_(resize_size),
      mean_(mean),
      std_(std),
      interpolation_(interpolation),
      antialias_(antialias),
      resize_({resize_size}, -1, interpolation_name(interpolation), antialias, true),
      normalize_(std::move(mean), std::move(std)) {
  if (crop_size_ < 1)
    throw InvalidArgument("ImageClassification: crop_size must be positive, got " + std::to_string(crop_size_));
}

Shape ImageClassification::get_output_shape(const Shape& input) const {
  Shape s = resize_.get_output_shape(input);
  s[s.size() - 2] = crop_size_;
  s[s.size() - 1] = crop_size_;
  return normalize_.get_output_shape(s);
}

Tensor ImageClassification::operator()(const ImageView& images) const {
  const ImageLayout& l = images.layout;
  const Shape out_shape = get_output_shape(l.shape());  // validates sizes and channels
  const Shape resized = resize_.get_output_shape(l.shape());
  const int64_t rh = resized[2], rw = resized[3];
  const auto tl = center_crop_offsets(rh, rw, crop_size_, crop_size_);
  const bool same_size = rh == l.h && rw == l.w;  // torchvision returns the image itself
  const bool inside = tl.first >= 0 && tl.second >= 0;
  const size_t el = images.dtype == DType::float32 ? sizeof(float) : sizeof(uint8_t);

  // The crop as the dtype of the input, then converted and normalized.
  std::vector<unsigned char> buf;
  ImageView cropped;
  if (same_size && inside) {
    cropped = images;
    cropped.data = static_cast<const char*>(images.data) +
                   static_cast<size_t>(tl.first * l.stride_y + tl.second * l.stride_x) * el;
    cropped.layout.h = cropped.layout.w = crop_size_;
  } else if (inside) {
    // Only the crop window of the resize is computed: the same values as a
    // full resize followed by the crop.
    const ImageLayout cl = ImageLayout::planar(l.n, l.c, crop_size_, crop_size_);
    buf.resize(static_cast<size_t>(checked::mul(cl.stride_n, l.n, "crop size")) * el);
    MutableImageView dst{buf.data(), images.dtype, cl};
    resize_image(images, dst, rh, rw, tl.first, tl.second, interpolation_, antialias_);
    cropped = ImageView{buf.data(), images.dtype, cl};
  } else {
    const ImageLayout rl = ImageLayout::planar(l.n, l.c, rh, rw);
    std::vector<unsigned char> rbuf;
    ImageView resized_view = images;
    if (!same_size) {
      rbuf.resize(static_cast<size_t>(checked::mul(rl.stride_n, l.n, "resized size")) * el);
      resize_image(images, MutableImageView{rbuf.data(), images.dtype, rl}, interpolation_, antialias_);
      resized_view = ImageView{rbuf.data(), images.dtype, rl};
    }
    const ImageLayout cl = ImageLayout::planar(l.n, l.c, crop_size_, crop_size_);
    buf.resize(static_cast<size_t>(checked::mul(cl.stride_n, l.n, "crop size")) * el);
    crop_image(resized_view, MutableImageView{buf.data(), images.dtype, cl}, tl.first, tl.second);
    cropped = ImageView{buf.data(), images.dtype, cl};
  }
  Tensor out(TensorSpec(out_shape, DType::float32));
  normalize_image(cropped, mutable_image_view(out), mean_, std_);
  return out;
}

Tensor ImageClassification::operator()(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels) const {
  return (*this)(ImageView{hwc, DType::uint8, ImageLayout::interleaved(1, height, width, channels)});
}

std::string ImageClassification::repr() const {
  return "ImageClassification(\n    crop_size=[" + std::to_string(crop_size_) + "]\n    resize_size=[" +
         std::to_string(resize_size_) + "]\n    mean=" + list_repr(mean_) + "\n    std=" + list_repr(std_) +
         "\n    interpolation=InterpolationMode." +
         [&] {
           std::string n = interpolation_name(interpolation_);
           for (char& ch : n) ch = ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
           return n;
         }() +
         "\n)";
}

}  // namespace transforms
}  // namespace pyflame_vision
