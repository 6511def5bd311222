// Pixel operations of the transforms (see pyflame_vision/transforms.h):
// layouts, crop, dtype conversion, normalisation; resize_image hands over to
// the separable resampler in transforms/resample.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/transforms.h"
#include "transforms/resample.h"

namespace pyflame_vision {
namespace transforms {

namespace {

std::string layout_string(const ImageLayout& l) {
  return shape_to_string(l.shape()) + " (element strides " +
         shape_to_string({l.stride_n, l.stride_c, l.stride_y, l.stride_x}) + ")";
}

void check_view(const ImageLayout& l, const void* data, DType dtype, const char* who, const char* which) {
  if (dtype != DType::uint8 && dtype != DType::float32)
    throw TypeError(std::string(who) + ": expected a uint8 or float32 " + which + ", got " + dtype_name(dtype));
  if (l.n < 0 || l.c < 0 || l.h < 0 || l.w < 0 || l.stride_n < 0 || l.stride_c < 0 || l.stride_y < 0 || l.stride_x < 0)
    throw InvalidArgument(std::string(who) + ": " + which + " sizes and strides must be >= 0, got " + layout_string(l));
  if (l.n > 0 && l.c > 0 && l.h > 0 && l.w > 0) {
    const std::string what = std::string(which) + " element offsets";
    checked::add(checked::add(checked::mul(l.n - 1, l.stride_n, what), checked::mul(l.c - 1, l.stride_c, what), what),
                 checked::add(checked::mul(l.h - 1, l.stride_y, what), checked::mul(l.w - 1, l.stride_x, what), what),
                 what);
    if (data == nullptr)
      throw InvalidArgument(std::string(who) + ": " + which + " data is null for a non-empty image " +
                            layout_string(l));
  }
}

void check_same_nchw(const ImageLayout& s, const ImageLayout& d, const char* who) {
  if (s.n != d.n || s.c != d.c || s.h != d.h || s.w != d.w)
    throw ShapeError(std::string("[") + who + "] expected a destination of shape " + shape_to_string(s.shape()) +
                     ", got " + shape_to_string(d.shape()));
}

// Runs fn(n, c, y) for every row of an [N, C, H, W] layout on the pool when
// there is enough work, else inline.
template <typename F>
void for_each_row(const ImageLayout& l, F&& fn) {
  const size_t rows = static_cast<size_t>(l.n * l.c * l.h);
  if (rows == 0 || l.w == 0) return;
  auto task = [&](size_t r) {
    const int64_t y = static_cast<int64_t>(r) % l.h;
    const int64_t nc = static_cast<int64_t>(r) / l.h;
    fn(nc / l.c, nc % l.c, y);
  };
  if (static_cast<int64_t>(rows) * l.w < (int64_t{1} << 16)) {
    for (size_t r = 0; r < rows; ++r) task(r);
  } else {
    pyflame_vision::detail::parallel_for(rows, pyflame_vision::detail::TaskFn(task));
  }
}

size_t itemsize(DType d) { return d == DType::float32 ? sizeof(float) : sizeof(uint8_t); }

// torch's uint8 -> float32 conversion: image.to(float) / 255 (a division).
inline float u8_to_unit(uint8_t v) { return static_cast<float>(v) / 255.0f; }

}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  if (name == "nearest") return Interpolation::nearest;
  if (name == "nearest-exact") return Interpolation::nearest_exact;
  if (name == "bilinear") return Interpolation::bilinear;
  if (name == "bicubic") return Interpolation::bicubic;
  if (name == "box" || name == "hamming" || name == "lanczos")
    throw Unsupported("interpolation \"" + name +
                      "\" is only available for PIL images (as in torchvision's tensor path); arrays support "
                      "\"nearest\", \"nearest-exact\", \"bilinear\" and \"bicubic\"");
  throw InvalidArgument("unknown interpolation \"" + name +
                        "\"; expected one of \"nearest\", \"nearest-exact\", \"bilinear\", \"bicubic\", \"box\", "
                        "\"hamming\", \"lanczos\"");
}

const char* interpolation_name(Interpolation mode) {
  switch (mode) {
    case Interpolation::nearest:
      return "nearest";
    case Interpolation::nearest_exact:
      return "nearest-exact";
    case Interpolation::bilinear:
      return "bilinear";
    case Interpolation::bicubic:
      return "bicubic";
  }
  return "?";
}

ImageLayout ImageLayout::planar(int64_t n, int64_t c, int64_t h, int64_t w) {
  ImageLayout l;
  l.n = n;
  l.c = c;
  l.h = h;
  l.w = w;
  l.stride_x = 1;
  l.stride_y = w;
  l.stride_c = checked::mul(h, w, "image plane size");
  l.stride_n = checked::mul(c, l.stride_c, "image size");
  return l;
}

ImageLayout ImageLayout::interleaved(int64_t n, int64_t h, int64_t w, int64_t c) {
  ImageLayout l;
  l.n = n;
  l.c = c;
  l.h = h;
  l.w = w;
  l.stride_c = 1;
  l.stride_x = c;
  l.stride_y = checked::mul(w, c, "image row size");
  l.stride_n = checked::mul(h, l.stride_y, "image size");
  return l;
}

namespace {
ImageLayout tensor_layout(const Tensor& t, const char* who) {
  if (!t.defined() || t.dtype() != DType::float32 || t.shape().size() != 4)
    throw ShapeError(std::string("[") + who + "] expected a float32 Tensor of shape [N, C, H, W], got " +
                     (t.defined() ? std::string(dtype_name(t.dtype())) + " " + shape_to_string(t.shape())
                                  : std::string("an undefined Tensor")));
  const Shape& s = t.shape();
  return ImageLayout::planar(s[0], s[1], s[2], s[3]);
}
}  // namespace

ImageView image_view(const Tensor& t) {
  return ImageView{t.raw_data(), DType::float32, tensor_layout(t, "image_view")};
}

MutableImageView mutable_image_view(Tensor& t) {
  return MutableImageView{t.raw_data(), DType::float32, tensor_layout(t, "mutable_image_view")};
}

void resize_image(const ImageView& src, const MutableImageView& dst, Interpolation mode, bool antialias) {
  detail::resize_window(src, dst, dst.layout.h, dst.layout.w, 0, 0, mode, antialias, active_isa());
}

void resize_image(const ImageView& src, const MutableImageView& dst, int64_t out_h, int64_t out_w, int64_t top,
                  int64_t left, Interpolation mode, bool antialias) {
  detail::resize_window(src, dst, out_h, out_w, top, left, mode, antialias, active_isa());
}

void crop_image(const ImageView& src, const MutableImageView& dst, int64_t top, int64_t left) {
  const char* who = "crop_image";
  check_view(src.layout, src.data, src.dtype, who, "source");
  check_view(dst.layout, dst.data, dst.dtype, who, "destination");
  if (src.dtype != dst.dtype)
    throw TypeError(std::string(who) + ": source and destination dtypes differ (" + dtype_name(src.dtype) + " vs " +
                    dtype_name(dst.dtype) + ")");
  const ImageLayout& s = src.layout;
  const ImageLayout& d = dst.layout;
  if (s.n != d.n || s.c != d.c)
    throw ShapeError(std::string("[") + who + "] expected the destination to have the source's N and C " +
                     shape_to_string({s.n, s.c}) + ", got " + shape_to_string({d.n, d.c}));
  // Columns [x0, x1) and rows [y0, y1) of dst come from src; the rest is zero.
  const int64_t x0 = std::min(std::max<int64_t>(-left, 0), d.w);
  const int64_t x1 = std::max(std::min(s.w - left, d.w), x0);
  const int64_t y0 = std::min(std::max<int64_t>(-top, 0), d.h);
  const int64_t y1 = std::max(std::min(s.h - top, d.h), y0);
  const size_t el = itemsize(src.dtype);
  const char* sb = static_cast<const char*>(src.data);
  char* db = static_cast<char*>(dst.data);
  for_each_row(d, [&](int64_t n, int64_t c, int64_t y) {
    char* drow = db + static_cast<size_t>(n * d.stride_n + c * d.stride_c + y * d.stride_y) * el;
    auto zero = [&](int64_t a, int64_t b) {
      for (int64_t x = a; x < b; ++x) std::memset(drow + static_cast<size_t>(x * d.stride_x) * el, 0, el);
    };
    if (y < y0 || y >= y1) {
      zero(0, d.w);
      return;
    }
    zero(0, x0);
    const char* srow = sb + static_cast<size_t>(n * s.stride_n + c * s.stride_c + (top + y) * s.stride_y) * el;
    if (s.stride_x == 1 && d.stride_x == 1) {
      if (x1 > x0)
        std::memcpy(drow + static_cast<size_t>(x0) * el, srow + static_cast<size_t>(left + x0) * el,
                    static_cast<size_t>(x1 - x0) * el);
    } else {
      for (int64_t x = x0; x < x1; ++x)
        std::memcpy(drow + static_cast<size_t>(x * d.stride_x) * el,
                    srow + static_cast<size_t>((left + x) * s.stride_x) * el, el);
    }
    zero(x1, d.w);
  });
}

std::pair<int64_t, int64_t> center_crop_offsets(int64_t h, int64_t w, int64_t crop_h, int64_t crop_w) {
  if (h < 0 || w < 0 || crop_h < 0 || crop_w < 0)
    throw InvalidArgument("center_crop_offsets: sizes must be >= 0, got image " + shape_to_string({h, w}) +
                          " and crop " + shape_to_string({crop_h, crop_w}));
  // torchvision: pad (crop - size) // 2 before when the crop is larger (the
  // crop then starts at the padded origin), else int(round((size - crop) / 2.0))
  // with Python's round half to even.
  auto offset = [](int64_t size, int64_t crop) -> int64_t {
    if (crop > size) return -((crop - size) / 2);
    const int64_t d = size - crop;
    const int64_t half = d / 2;
    return (d % 2 == 1 && half % 2 == 1) ? half + 1 : half;
  };
  return {offset(h, crop_h), offset(w, crop_w)};
}

void center_crop_image(const ImageView& src, const MutableImageView& dst) {
  const auto tl = center_crop_offsets(src.layout.h, src.layout.w, dst.layout.h, dst.layout.w);
  crop_image(src, dst, tl.first, tl.second);
}

void convert_image(const ImageView& src, const MutableImageView& dst) {
  const char* who = "convert_image";
  check_view(src.layout, src.data, src.dtype, who, "source");
  check_view(dst.layout, dst.data, dst.dtype, who, "destination");
  check_same_nchw(src.layout, dst.layout, who);
  const ImageLayout& s = src.layout;
  const ImageLayout& d = dst.layout;
  const size_t sel = itemsize(src.dtype), del = itemsize(dst.dtype);
  const char* sb = static_cast<const char*>(src.data);
  char* db = static_cast<char*>(dst.data);
  const DType from = src.dtype, to = dst.dtype;
  for_each_row(d, [&](int64_t n, int64_t c, int64_t y) {
    const char* srow = sb + static_cast<size_t>(n * s.stride_n + c * s.stride_c + y * s.stride_y) * sel;
    char* drow = db + static_cast<size_t>(n * d.stride_n + c * d.stride_c + y * d.stride_y) * del;
    for (int64_t x = 0; x < d.w; ++x) {
      const char* sp = srow + static_cast<size_t>(x * s.stride_x) * sel;
      char* dp = drow + static_cast<size_t>(x * d.stride_x) * del;
      if (from == to) {
        std::memcpy(dp, sp, sel);
      } else if (from == DType::uint8) {
        const float v = u8_to_unit(*reinterpret_cast<const uint8_t*>(sp));
        std::memcpy(dp, &v, sizeof v);
      } else {
        float v;
        std::memcpy(&v, sp, sizeof v);
        // torch: (x * (255 + 1 - 1e-3)).to(uint8), the product in float32.
        v = v * static_cast<float>(255.0 + 1.0 - 1e-3);
        const uint8_t q = !(v > 0.0f) ? 0 : (v >= 255.0f ? 255 : static_cast<uint8_t>(v));
        *reinterpret_cast<uint8_t*>(dp) = q;
      }
    }
  });
}

void normalize_image(const ImageView& src, const MutableImageView& dst, const std::vector<double>& mean,
                     const std::vector<double>& std) {
  const char* who = "normalize_image";
  check_view(src.layout, src.data, src.dtype, who, "source");
  check_view(dst.layout, dst.data, dst.dtype, who, "destination");
  if (dst.dtype != DType::float32)
    throw TypeError(std::string(who) + ": expected a float32 destination, got " + dtype_name(dst.dtype));
  check_same_nchw(src.layout, dst.layout, who);
  // The validation and channel check of the Normalize transform.
  const Normalize spec(mean, std);
  spec.get_output_shape(src.layout.shape());
  const ImageLayout& s = src.layout;
  const ImageLayout& d = dst.layout;
  std::vector<float> m(static_cast<size_t>(s.c)), sd(static_cast<size_t>(s.c));
  for (int64_t c = 0; c < s.c; ++c) {
    m[static_cast<size_t>(c)] = static_cast<float>(mean.size() == 1 ? mean[0] : mean[static_cast<size_t>(c)]);
    sd[static_cast<size_t>(c)] = static_cast<float>(std.size() == 1 ? std[0] : std[static_cast<size_t>(c)]);
  }
  const bool u8 = src.dtype == DType::uint8;
  const size_t sel = itemsize(src.dtype);
  const char* sb = static_cast<const char*>(src.data);
  float* db = static_cast<float*>(dst.data);
  for_each_row(d, [&](int64_t n, int64_t c, int64_t y) {
    const float mc = m[static_cast<size_t>(c)], sc = sd[static_cast<size_t>(c)];
    const char* srow = sb + static_cast<size_t>(n * s.stride_n + c * s.stride_c + y * s.stride_y) * sel;
    float* drow = db + (n * d.stride_n + c * d.stride_c + y * d.stride_y);
    if (u8) {
      const uint8_t* sp = reinterpret_cast<const uint8_t*>(srow);
      for (int64_t x = 0; x < d.w; ++x) drow[x * d.stride_x] = (u8_to_unit(sp[x * s.stride_x]) - mc) / sc;
    } else {
      const float* sp = reinterpret_cast<const float*>(srow);
      for (int64_t x = 0; x < d.w; ++x) drow[x * d.stride_x] = (sp[x * s.stride_x] - mc) / sc;
    }
  });
}

}  // namespace transforms
}  // namespace pyflame_vision
