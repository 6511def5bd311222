// pyflame_vision/transforms.h - torchvision-style preprocessing transforms.
//
// Two halves:
//
// 1. Shape logic. Resize, CenterCrop, Normalize and Compose compute the shape
//    torchvision.transforms produces for a tensor of shape [..., C, H, W]
//    (get_output_shape); pure and allocation-free apart from the result.
//
// 2. Pixel operations on images in memory, with torchvision's tensor-path
//    numbers: resize_image (F.interpolate with or without antialiasing:
//    nearest, nearest-exact, bilinear, bicubic), crop_image / center_crop_image
//    (torchvision's zero padding and rounding), convert_image
//    (convert_image_dtype) and normalize_image. An ImageView describes where
//    a batch of images lives (data, dtype, [N, C, H, W] sizes and element
//    strides), so interleaved HWC buffers straight from a decoder and planar
//    NCHW tensors are both taken without a copy. The ImageClassification
//    preset chains them: a uint8 RGB image in, the model's float32
//    [N, 3, crop, crop] input out.
//
// Pixel dtypes: uint8 and float32. The caller owns every buffer; functions
// only read the source during the call and write nothing but the destination
// (which must not overlap the source). Work is spread over the library's
// thread pool (pyflame_vision/cpu.h); results do not depend on the thread
// count or the instruction-set tier beyond float rounding.
//
// Thread safety: transforms are immutable after construction and may be
// shared between threads; every function may be called concurrently.
// Throws: constructors InvalidArgument for bad options; get_output_shape
// ShapeError for inputs the transform cannot take; pixel functions ShapeError
// (sizes that do not fit), TypeError (dtypes), InvalidArgument (layouts,
// null data), Unsupported (interpolation modes only PIL has).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pyflame_vision/tensor.h"
#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {
namespace transforms {

// ============================================================ pixel buffers

/// torchvision's InterpolationMode on tensors (the values are its strings).
enum class Interpolation : int {
  nearest = 0,        ///< "nearest": src = min(floor(dst * in / out), in - 1) (torch's legacy nearest)
  nearest_exact = 1,  ///< "nearest-exact": src = min(floor((dst + 0.5) * in / out), in - 1)
  bilinear = 2,       ///< "bilinear": triangle filter, half-pixel centres
  bicubic = 3,        ///< "bicubic": Keys cubic, a = -0.5 antialiased (as PIL), -0.75 without
};

/// Parses torchvision's names ("nearest", "nearest-exact", "bilinear",
/// "bicubic"). Throws Unsupported for "box", "hamming" and "lanczos" (PIL-only
/// in torchvision's tensor path) and InvalidArgument for anything else.
Interpolation parse_interpolation(const std::string& name);
/// "nearest", "nearest-exact", "bilinear", "bicubic".
const char* interpolation_name(Interpolation mode);

/// Where a batch of images lives: element (n, c, y, x) is at
/// data + n * stride_n + c * stride_c + y * stride_y + x * stride_x, strides
/// in elements (>= 0). The pixel functions take rows in one of two forms:
///   planar      stride_x == 1 (each channel's row contiguous: NCHW tensors)
///   interleaved stride_c == 1 and stride_x == c (a pixel's channels together:
///               HWC images as decoders produce them)
/// Rows, channel planes and images may be anywhere (stride_y, stride_c and
/// stride_n are free), e.g. a crop inside a larger buffer.
struct ImageLayout {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t stride_n = 0, stride_c = 0, stride_y = 0, stride_x = 0;

  /// Contiguous [N, C, H, W] (row-major).
  static ImageLayout planar(int64_t n, int64_t c, int64_t h, int64_t w);
  /// Contiguous [N, H, W, C] (row-major): images as decoded, N of them.
  static ImageLayout interleaved(int64_t n, int64_t h, int64_t w, int64_t c);
  /// [N, C, H, W].
  Shape shape() const { return {n, c, h, w}; }
};

/// A read-only batch of images (not owned). dtype: uint8 or float32.
struct ImageView {
  const void* data = nullptr;
  DType dtype = DType::uint8;
  ImageLayout layout;
};

/// A batch of images to write (not owned). dtype: uint8 or float32.
struct MutableImageView {
  void* data = nullptr;
  DType dtype = DType::float32;
  ImageLayout layout;
};

/// A view of a float32 Tensor of shape [N, C, H, W] (planar).
ImageView image_view(const Tensor& t);
MutableImageView mutable_image_view(Tensor& t);

/// Resizes every image of `src` to dst.layout.h x dst.layout.w, as torchvision's
/// tensor path does (F.interpolate with align_corners=False, antialias as given;
/// antialiasing applies to bilinear and bicubic only and is ignored for the
/// nearest modes). Separable: weights are computed once per output row and
/// column (torch's formulas, in float32 as torch computes them for float32
/// and for uint8 tensors), each output row is the weighted sum of its input
/// rows, then of its columns. uint8 images are resampled in float32 and
/// rounded half to even with a clamp to [0, 255] (torchvision's
/// transforms.Resize on uint8 tensors); nearest modes copy pixels exactly.
/// src and dst: same dtype (uint8 or float32), same N and C, planar or
/// interleaved rows each (they may differ: HWC in, CHW out is a common use),
/// H, W >= 1. Equal sizes copy.
void resize_image(const ImageView& src, const MutableImageView& dst, Interpolation mode, bool antialias = true);

/// resize_image to out_h x out_w computing only the window of dst's size at
/// (top, left) of that output: the values a full resize followed by an
/// in-bounds crop gives, for the cost of the window (resize-then-center-crop
/// in one step). Throws InvalidArgument if the window leaves the output.
void resize_image(const ImageView& src, const MutableImageView& dst, int64_t out_h, int64_t out_w, int64_t top,
                  int64_t left, Interpolation mode, bool antialias = true);

/// torchvision's crop with zero padding: dst(n, c, y, x) = src(n, c, top + y,
/// left + x) where that lies inside src, else 0. top/left may be negative or
/// beyond the image. Same dtype, N and C; any strides.
void crop_image(const ImageView& src, const MutableImageView& dst, int64_t top, int64_t left);

/// The (top, left) of torchvision's center_crop of an h x w image to
/// crop_h x crop_w: round-half-to-even((h - crop_h) / 2) per axis, or, where
/// the crop is larger, minus the zero padding torchvision adds before it
/// ((crop - size) // 2).
std::pair<int64_t, int64_t> center_crop_offsets(int64_t h, int64_t w, int64_t crop_h, int64_t crop_w);

/// crop_image at center_crop_offsets: the crop size is dst's H x W.
void center_crop_image(const ImageView& src, const MutableImageView& dst);

/// torchvision's convert_image_dtype between uint8 and float32: uint8 ->
/// float32 is x / 255 (a float32 division, as torch's), float32 -> uint8 is
/// trunc(x * 255.999) clamped to [0, 255] (torch's float -> uint8 cast of
/// x * (255 + 1 - 1e-3); values outside [0, 1] saturate instead of wrapping).
/// Same dtype copies. Same N, C, H, W; any layouts.
void convert_image(const ImageView& src, const MutableImageView& dst);

/// torchvision's normalize: dst = (src - mean[c]) / std[c] in float32, with
/// mean and std rounded to float32 first (a single value applies to every
/// channel). A uint8 src is converted first as convert_image does (x / 255),
/// i.e. ConvertImageDtype(float32) followed by Normalize. dst is float32;
/// same N, C, H, W. Throws InvalidArgument for a zero std and ShapeError when
/// the channel count differs from len(mean) / len(std).
void normalize_image(const ImageView& src, const MutableImageView& dst, const std::vector<double>& mean,
                     const std::vector<double>& std);

// ============================================================ transforms

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
/// `interpolation` is one of torchvision's InterpolationMode values
/// ("nearest", "nearest-exact", "bilinear", "bicubic", and "box", "hamming",
/// "lanczos", which only PIL images support: shapes work, apply() throws
/// Unsupported).
class Resize : public Transform {
 public:
  explicit Resize(std::vector<int64_t> size, int64_t max_size = -1, std::string interpolation = "bilinear",
                  bool antialias = true, bool size_is_int = false);
  Shape get_output_shape(const Shape& input) const override;
  std::string repr() const override;
  const std::vector<int64_t>& size() const { return size_; }
  int64_t max_size() const { return max_size_; }
  const std::string& interpolation() const { return interpolation_; }
  bool antialias() const { return antialias_; }
  /// Resizes src into dst, whose H x W must be get_output_shape's (ShapeError
  /// otherwise); see resize_image. Throws Unsupported for the PIL-only modes.
  void apply(const ImageView& src, const MutableImageView& dst) const;

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
  /// Crops src into dst (dst's H x W must be the crop size); see center_crop_image.
  void apply(const ImageView& src, const MutableImageView& dst) const;

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
  /// normalize_image(src, dst, mean(), std()).
  void apply(const ImageView& src, const MutableImageView& dst) const;

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

/// torchvision's ImageClassification preset (the `.transforms` of the
/// classification weights) on the tensor path: resize the shorter edge to
/// resize_size (the longer to int(resize_size * long / short)), center-crop
/// crop_size x crop_size, convert to float32 in [0, 1], normalize. A uint8
/// input is resized and cropped as uint8 (rounded, as torchvision does on
/// uint8 tensors) and converted afterwards, so the result equals
/// torchvision's preset on the same uint8 tensor (within float rounding);
/// float32 input stays float32 throughout (values expected in [0, 1]).
class ImageClassification {
 public:
  explicit ImageClassification(int64_t crop_size, int64_t resize_size = 256,
                               std::vector<double> mean = {0.485, 0.456, 0.406},
                               std::vector<double> std = {0.229, 0.224, 0.225},
                               Interpolation interpolation = Interpolation::bilinear, bool antialias = true);
  /// [N, C, crop, crop] for an [N, C, H, W] (or [..., C, H, W]) input shape.
  Shape get_output_shape(const Shape& input) const;
  /// The model input for `images` (uint8 or float32, planar or interleaved):
  /// a float32 Tensor [N, C, crop_size, crop_size].
  Tensor operator()(const ImageView& images) const;
  /// One interleaved 8-bit image (height x width x channels bytes, row-major,
  /// as decoders produce it): a float32 Tensor [1, channels, crop, crop].
  Tensor operator()(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels = 3) const;
  /// torchvision's repr (five indented lines).
  std::string repr() const;
  int64_t crop_size() const { return crop_size_; }
  int64_t resize_size() const { return resize_size_; }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }
  Interpolation interpolation() const { return interpolation_; }
  bool antialias() const { return antialias_; }

 private:
  int64_t crop_size_, resize_size_;
  std::vector<double> mean_, std_;
  Interpolation interpolation_;
  bool antialias_;
  Resize resize_;
  Normalize normalize_;
};

}  // namespace transforms
}  // namespace pyflame_vision
