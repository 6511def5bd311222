// The separable resampler behind transforms::resize_image (driver: weight
// tables, row scheduling, threading; the arithmetic is in the microkernels of
// cpp/kernels/{scalar,avx2,avx512}/resample_f32__*.cpp).
//
// Weights follow torch's CPU upsampling kernels for float32 tensors
// (aten/src/ATen/native/cpu/UpSampleKernel.cpp and UpSample.h), step by step
// in the same float/double mix, so the taps (first index, count) are the ones
// torch uses and the weights agree to the last bit or two. torchvision's
// transforms.Resize sends uint8 tensors through the same float32 arithmetic
// and rounds at the end, which is what the uint8 path here does.
//
// Order of work: for each output row, the vertical pass sums its input rows
// (SIMD along the whole row, contiguous in memory for both planar and
// interleaved images), then the horizontal pass sums columns of that one row
// buffer, which stays in L1/L2. torch goes horizontal first; in exact
// arithmetic the two orders are the same sum, and in float32 they differ by
// rounding only. Rows are split into a fixed number of contiguous bands, one
// pool task each; every output element is computed the same way whatever the
// split, so results do not depend on the thread count.
#include "transforms/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/resample.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace kernels {

namespace {
constexpr ResampleUkernels kScalar = {Isa::scalar,
                                      "scalar",
                                      resample_v_f32__scalar,
                                      resample_v_u8__scalar,
                                      resample_h_f32__scalar,
                                      resample_quant_u8__scalar};
constexpr ResampleUkernels kAvx2 = {
    Isa::avx2, "avx2", resample_v_f32__avx2, resample_v_u8__avx2, resample_h_f32__avx2, resample_quant_u8__avx2};
constexpr ResampleUkernels kAvx512 = {Isa::avx512,
                                      "avx512",
                                      resample_v_f32__avx512,
                                      resample_v_u8__avx512,
                                      resample_h_f32__avx512,
                                      resample_quant_u8__avx512};
}  // namespace

const ResampleUkernels& resample_ukernels_for(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return kAvx512;
    case Isa::avx2:
      return kAvx2;
    case Isa::scalar:
      break;
  }
  return kScalar;
}

}  // namespace kernels

namespace transforms {
namespace detail {

namespace {

constexpr size_t kWeightAlign = 16;

size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

// torch's filters, in float (scalar_t = float for float32 and, via
// torchvision's cast, uint8 tensors).
float triangle(float x) {
  x = std::fabs(x);
  return x < 1.0f ? 1.0f - x : 0.0f;
}

// torch's cubic_convolution1/2 as its AVX2/AVX-512 builds compile them:
// GCC contracts each multiply-add into an FMA (-ffp-contract=fast).
float cubic1(float x, float a) { return std::fma(std::fma(a + 2.0f, x, -(a + 3.0f)) * x, x, 1.0f); }
float cubic2(float x, float a) { return std::fma(std::fma(std::fma(a, x, -5.0f * a), x, 8.0f * a), x, -4.0f * a); }

float keys_cubic(float x, float a) {
  x = std::fabs(x);
  if (x < 1.0f) return cubic1(x, a);
  if (x < 2.0f) return cubic2(x, a);
  return 0.0f;
}

// area_pixel_compute_source_index (align_corners=False): scale * (i + 0.5) -
// 0.5, one FMA in torch's vectorised builds.
float source_index(float scale, int64_t i) { return std::fma(scale, static_cast<float>(i) + 0.5f, -0.5f); }

Taps empty_taps(int64_t in, int64_t out, size_t max_count) {
  Taps t;
  t.in = in;
  t.out = out;
  t.stride = round_up(std::max<size_t>(max_count, 1), kWeightAlign);
  t.start.assign(static_cast<size_t>(out), 0);
  t.count.assign(static_cast<size_t>(out), 0);
  t.weights.assign(static_cast<size_t>(out) * t.stride, 0.0f);
  return t;
}

Taps identity_taps(int64_t n) {
  Taps t = empty_taps(n, n, 1);
  for (int64_t i = 0; i < n; ++i) {
    t.start[static_cast<size_t>(i)] = static_cast<size_t>(i);
    t.count[static_cast<size_t>(i)] = 1;
    t.weights[static_cast<size_t>(i) * t.stride] = 1.0f;
  }
  return t;
}

// HelperInterpBase::_compute_indices_min_size_weights_aa, with torch's types:
// scale, support, centre, invscale and the weights are float; the index
// bounds and the filter argument go through double where torch's expressions
// mix in double literals.
Taps antialiased_taps(int64_t in, int64_t out, Interpolation mode) {
  const bool cubic = mode == Interpolation::bicubic;
  const double interp_size = cubic ? 4.0 : 2.0;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const float support =
      scale >= 1.0f ? static_cast<float>(interp_size * 0.5 * scale) : static_cast<float>(interp_size * 0.5);
  const int64_t max_interp = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  const float invscale = scale >= 1.0f ? static_cast<float>(1.0 / scale) : 1.0f;
  Taps t = empty_taps(in, out, static_cast<size_t>(std::min(max_interp, in)));
  std::vector<float> w(static_cast<size_t>(max_interp));
  for (int64_t i = 0; i < out; ++i) {
    const float center = static_cast<float>(scale * (static_cast<double>(i) + 0.5));
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(static_cast<double>(center - support) + 0.5), 0);
    int64_t xsize = std::min<int64_t>(static_cast<int64_t>(static_cast<double>(center + support) + 0.5), in) - xmin;
    xsize = std::min<int64_t>(std::max<int64_t>(xsize, 0), max_interp);
    float total = 0.0f;
    for (int64_t j = 0; j < xsize; ++j) {
      const float d = static_cast<float>(j + xmin) - center;
      const float x = static_cast<float>((static_cast<double>(d) + 0.5) * static_cast<double>(invscale));
      w[static_cast<size_t>(j)] = cubic ? keys_cubic(x, -0.5f) : triangle(x);
      total += w[static_cast<size_t>(j)];
    }
    const size_t ui = static_cast<size_t>(i);
    if (xsize == 0) {  // cannot happen for in, out >= 1; keep the table valid anyway
      t.start[ui] = static_cast<size_t>(std::min(xmin, in - 1));
      t.count[ui] = 1;
      continue;
    }
    t.start[ui] = static_cast<size_t>(xmin);
    t.count[ui] = static_cast<size_t>(xsize);
    float* dst = t.weights.data() + ui * t.stride;
    for (int64_t j = 0; j < xsize; ++j)
      dst[j] = total != 0.0f ? w[static_cast<size_t>(j)] / total : w[static_cast<size_t>(j)];
  }
  return t;
}

// compute_source_index_and_lambda (align_corners=False) for bilinear.
Taps bilinear_taps(int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  Taps t = empty_taps(in, out, 2);
  for (int64_t i = 0; i < out; ++i) {
    float real = source_index(scale, i);
    if (real < 0.0f) real = 0.0f;
    const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(real)), in - 1);
    const float l1 = std::min(std::max(real - static_cast<float>(i0), 0.0f), 1.0f);
    const float l0 = 1.0f - l1;
    const size_t ui = static_cast<size_t>(i);
    float* dst = t.weights.data() + ui * t.stride;
    t.start[ui] = static_cast<size_t>(i0);
    if (i0 < in - 1) {
      t.count[ui] = 2;
      dst[0] = l0;
      dst[1] = l1;
    } else {  // both taps on the last pixel
      t.count[ui] = 1;
      dst[0] = l0 + l1;
    }
  }
  return t;
}

// HelperInterpCubic::compute_indices_weights (align_corners=False): four taps
// at floor(x) - 1 ... floor(x) + 2 clamped to the image; clamped duplicates
// are merged so that the taps stay one contiguous run.
Taps bicubic_taps(int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const float a = -0.75f;
  Taps t = empty_taps(in, out, 4);
  for (int64_t i = 0; i < out; ++i) {
    const float real = source_index(scale, i);
    const int64_t idx = std::min<int64_t>(static_cast<int64_t>(std::floor(real)), in - 1);
    const float l = std::min(std::max(real - static_cast<float>(idx), 0.0f), 1.0f);
    const float c[4] = {cubic2(l + 1.0f, a), cubic1(l, a), cubic1(1.0f - l, a), cubic2((1.0f - l) + 1.0f, a)};
    const int64_t lo = std::min(std::max<int64_t>(idx - 1, 0), in - 1);
    const int64_t hi = std::min(std::max<int64_t>(idx + 2, 0), in - 1);
    const size_t ui = static_cast<size_t>(i);
    float* dst = t.weights.data() + ui * t.stride;
    t.start[ui] = static_cast<size_t>(lo);
    t.count[ui] = static_cast<size_t>(hi - lo + 1);
    for (int64_t j = 0; j < 4; ++j) {
      const int64_t k = std::min(std::max<int64_t>(idx - 1 + j, 0), in - 1);
      dst[k - lo] += c[j];
    }
  }
  return t;
}

bool is_nearest(Interpolation m) { return m == Interpolation::nearest || m == Interpolation::nearest_exact; }

// ---------------------------------------------------------------- validation

struct RowForm {
  bool interleaved = false;  // a row holds all channels of each pixel (w * c contiguous elements)
};

std::string layout_string(const ImageLayout& l) {
  return "[N, C, H, W] = " + shape_to_string({l.n, l.c, l.h, l.w}) + " with element strides " +
         shape_to_string({l.stride_n, l.stride_c, l.stride_y, l.stride_x});
}

// Interleaved when every row holds all channels of its pixels contiguously
// (preferred for several channels: one pass handles them all), else planar
// when each channel's row is contiguous.
RowForm row_form(const ImageLayout& l, const char* who, const char* which) {
  const bool planar = l.w == 1 || l.stride_x == 1;
  const bool inter = (l.c == 1 || l.stride_c == 1) && (l.w == 1 || l.stride_x == l.c);
  RowForm f;
  if (l.c > 1 && inter) {
    f.interleaved = true;
    return f;
  }
  if (planar) return f;
  throw InvalidArgument(std::string(who) + ": " + which +
                        " rows must be planar (stride_x == 1) or interleaved (stride_c == 1 and stride_x == C), got " +
                        layout_string(l));
}

void check_layout(const ImageLayout& l, const void* data, const char* who, const char* which) {
  if (l.n < 0 || l.c < 0 || l.h < 0 || l.w < 0 || l.stride_n < 0 || l.stride_c < 0 || l.stride_y < 0 || l.stride_x < 0)
    throw InvalidArgument(std::string(who) + ": " + which + " sizes and strides must be >= 0, got " + layout_string(l));
  // The largest element offset must fit in int64 (and so in size_t).
  int64_t last = 0;
  if (l.n > 0 && l.c > 0 && l.h > 0 && l.w > 0) {
    const std::string what = std::string(which) + " element offsets";
    last = checked::add(
        checked::add(checked::mul(l.n - 1, l.stride_n, what), checked::mul(l.c - 1, l.stride_c, what), what),
        checked::add(checked::mul(l.h - 1, l.stride_y, what), checked::mul(l.w - 1, l.stride_x, what), what), what);
    if (data == nullptr)
      throw InvalidArgument(std::string(who) + ": " + which + " data is null for a non-empty image " +
                            layout_string(l));
  }
  (void)last;
}

void check_dtype(DType d, const char* who, const char* which) {
  if (d != DType::uint8 && d != DType::float32)
    throw TypeError(std::string(who) + ": expected a uint8 or float32 " + which + ", got " + dtype_name(d));
}

// ---------------------------------------------------------------- nearest

template <typename T>
void nearest_gather(const ImageView& src, const MutableImageView& dst, const std::vector<int64_t>& iy,
                    const std::vector<int64_t>& ix, int64_t top, int64_t left) {
  const ImageLayout& s = src.layout;
  const ImageLayout& d = dst.layout;
  const T* sp = static_cast<const T*>(src.data);
  T* dp = static_cast<T*>(dst.data);
  const size_t rows = static_cast<size_t>(d.n * d.h);
  auto task = [&](size_t r) {
    const int64_t n = static_cast<int64_t>(r) / d.h, y = static_cast<int64_t>(r) % d.h;
    const T* srow = sp + n * s.stride_n + iy[static_cast<size_t>(top + y)] * s.stride_y;
    T* drow = dp + n * d.stride_n + y * d.stride_y;
    for (int64_t x = 0; x < d.w; ++x) {
      const T* sx = srow + ix[static_cast<size_t>(left + x)] * s.stride_x;
      T* dx = drow + x * d.stride_x;
      for (int64_t c = 0; c < d.c; ++c) dx[c * d.stride_c] = sx[c * s.stride_c];
    }
  };
  pyflame_vision::detail::parallel_for(rows, pyflame_vision::detail::TaskFn(task));
}

// ---------------------------------------------------------------- separable

struct Plan {
  const Taps* tv;
  const Taps* th;
  bool v_identity, h_identity;
  int64_t top, left;  // output window
};

void resample_separable(const ImageView& src, const MutableImageView& dst, const Plan& plan,
                        const kernels::ResampleUkernels& uk) {
  const ImageLayout& s = src.layout;
  const ImageLayout& d = dst.layout;
  const bool s_inter = row_form(s, "resize_image", "source").interleaved;
  const bool d_inter = row_form(d, "resize_image", "destination").interleaved;
  const bool f32_in = src.dtype == DType::float32;
  const bool f32_out = dst.dtype == DType::float32;
  const size_t C = static_cast<size_t>(s.c);
  const size_t cpix = s_inter ? C : 1;                  // channels per vertical-pass row
  const size_t vlen = static_cast<size_t>(s.w) * cpix;  // floats per vertical-pass row
  const size_t ow = static_cast<size_t>(d.w);
  const size_t outer = static_cast<size_t>(s.n) * (s_inter ? 1 : C);
  const size_t rows_total = outer * static_cast<size_t>(d.h);

  const Taps& tv = *plan.tv;
  const Taps& th = *plan.th;
  // An unchanged width needs no horizontal pass when the destination rows
  // have the source rows' form (a dot product per pixel would be the
  // costliest copy).
  const bool h_copy = plan.h_identity && (s_inter == d_inter || C == 1) &&
                      (d.w == 1 || d.stride_x == static_cast<int64_t>(s_inter ? C : 1)) &&
                      (!s_inter || d.c == 1 || d.stride_c == 1);
  const size_t* hstart = th.start.data() + plan.left;
  const size_t* hcount = th.count.data() + plan.left;
  const float* hweights = th.weights.data() + static_cast<size_t>(plan.left) * th.stride;

  // One scratch block per task: the vertical row, the float output row(s)
  // for uint8 destinations, a byte row for scatters, the row pointers.
  const size_t threads = static_cast<size_t>(std::max(1, get_num_threads()));
  const size_t tasks = std::max<size_t>(1, std::min(rows_total, 4 * threads));
  const size_t hlen = f32_out ? 0 : ow * cpix;
  const size_t floats_per_task = round_up(vlen, 16) + round_up(hlen, 16);
  const size_t qlen = round_up(ow, 64);
  const size_t ptrs = std::max<size_t>(tv.max_count(), 1);
  std::vector<float> fscratch(tasks * floats_per_task);
  std::vector<uint8_t> qscratch(tasks * qlen);
  std::vector<const float*> fptrs(f32_in ? tasks * ptrs : 0);
  std::vector<const uint8_t*> bptrs(f32_in ? 0 : tasks * ptrs);

  const char* sbase = static_cast<const char*>(src.data);
  char* dbase = static_cast<char*>(dst.data);
  const size_t sel = f32_in ? sizeof(float) : sizeof(uint8_t);
  const size_t del = f32_out ? sizeof(float) : sizeof(uint8_t);

  auto task = [&](size_t t) {
    float* vbuf = fscratch.data() + t * floats_per_task;
    float* hbuf = vbuf + round_up(vlen, 16);
    uint8_t* qbuf = qscratch.data() + t * qlen;
    const size_t r0 = rows_total * t / tasks, r1 = rows_total * (t + 1) / tasks;
    for (size_t r = r0; r < r1; ++r) {
      const size_t o = r / static_cast<size_t>(d.h);
      const int64_t y = static_cast<int64_t>(r % static_cast<size_t>(d.h));
      const int64_t n = static_cast<int64_t>(s_inter ? o : o / C);
      const int64_t ch = s_inter ? 0 : static_cast<int64_t>(o % C);
      const char* splane = sbase + static_cast<size_t>(n * s.stride_n + ch * s.stride_c) * sel;
      const size_t vy = static_cast<size_t>(plan.top + y);

      // Vertical pass -> `hin` (a float row of vlen elements).
      const float* hin;
      if (plan.v_identity && f32_in) {
        hin = reinterpret_cast<const float*>(splane + static_cast<size_t>(static_cast<int64_t>(vy) * s.stride_y) * sel);
      } else {
        const size_t taps = tv.count[vy];
        const float* w = tv.weights.data() + vy * tv.stride;
        if (f32_in) {
          const float** rows = fptrs.data() + t * ptrs;
          for (size_t k = 0; k < taps; ++k)
            rows[k] = reinterpret_cast<const float*>(
                splane + static_cast<size_t>(static_cast<int64_t>(tv.start[vy] + k) * s.stride_y) * sel);
          uk.v_f32(vlen, taps, rows, w, vbuf);
        } else {
          const uint8_t** rows = bptrs.data() + t * ptrs;
          for (size_t k = 0; k < taps; ++k)
            rows[k] = reinterpret_cast<const uint8_t*>(
                splane + static_cast<size_t>(static_cast<int64_t>(tv.start[vy] + k) * s.stride_y) * sel);
          uk.v_u8(vlen, taps, rows, w, vbuf);
        }
        hin = vbuf;
      }

      // Horizontal pass -> the destination (float32) or hbuf (uint8).
      char* drow = dbase + static_cast<size_t>(n * d.stride_n + ch * d.stride_c + y * d.stride_y) * del;
      if (h_copy) {  // width unchanged, same row form: the row (window) as it is
        const float* seg = hin + static_cast<size_t>(plan.left) * cpix;
        if (f32_out)
          std::memcpy(drow, seg, ow * cpix * sizeof(float));
        else
          uk.quant_u8(ow * cpix, seg, reinterpret_cast<uint8_t*>(drow));
        continue;
      }
      if (f32_out) {
        uk.h_f32(ow, cpix, hin, hstart, hcount, hweights, th.stride, reinterpret_cast<float*>(drow),
                 static_cast<size_t>(d.stride_x), static_cast<size_t>(d.stride_c));
        continue;
      }
      uint8_t* drow8 = reinterpret_cast<uint8_t*>(drow);
      if (s_inter && d_inter) {  // one interleaved row: [ow][C]
        uk.h_f32(ow, cpix, hin, hstart, hcount, hweights, th.stride, hbuf, C, 1);
        uk.quant_u8(ow * C, hbuf, drow8);
      } else if (s_inter) {  // all channels -> planar rows: [C][ow]
        uk.h_f32(ow, cpix, hin, hstart, hcount, hweights, th.stride, hbuf, 1, ow);
        for (size_t c = 0; c < C; ++c) uk.quant_u8(ow, hbuf + c * ow, drow8 + c * static_cast<size_t>(d.stride_c));
      } else if (!d_inter || d.c == 1) {  // one channel -> its planar row
        uk.h_f32(ow, 1, hin, hstart, hcount, hweights, th.stride, hbuf, 1, 0);
        uk.quant_u8(ow, hbuf, drow8);
      } else {  // one channel -> every C-th byte of an interleaved row
        uk.h_f32(ow, 1, hin, hstart, hcount, hweights, th.stride, hbuf, 1, 0);
        uk.quant_u8(ow, hbuf, qbuf);
        for (size_t x = 0; x < ow; ++x) drow8[x * static_cast<size_t>(d.stride_x)] = qbuf[x];
      }
    }
  };
  pyflame_vision::detail::parallel_for(tasks, pyflame_vision::detail::TaskFn(task));
}

}  // namespace

size_t Taps::max_count() const {
  size_t m = 0;
  for (size_t c : count) m = std::max(m, c);
  return m;
}

Taps compute_taps(int64_t in, int64_t out, Interpolation mode, bool antialias) {
  if (in < 1 || out < 1)
    throw InvalidArgument("compute_taps: sizes must be >= 1, got " + std::to_string(in) + " -> " + std::to_string(out));
  if (is_nearest(mode)) throw InvalidArgument("compute_taps: the nearest modes have no weights (nearest_indices)");
  if (in == out) return identity_taps(in);
  if (antialias) return antialiased_taps(in, out, mode);
  return mode == Interpolation::bicubic ? bicubic_taps(in, out) : bilinear_taps(in, out);
}

std::vector<int64_t> nearest_indices(int64_t in, int64_t out, Interpolation mode, bool channels_last_kernel) {
  if (in < 1 || out < 1)
    throw InvalidArgument("nearest_indices: sizes must be >= 1, got " + std::to_string(in) + " -> " +
                          std::to_string(out));
  std::vector<int64_t> idx(static_cast<size_t>(out));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i) {
    float src;
    if (mode == Interpolation::nearest) {
      src = static_cast<float>(i) * scale;
    } else if (channels_last_kernel) {  // nearest_exact_idx
      src = static_cast<float>((static_cast<double>(i) + 0.5) * static_cast<double>(scale));
    } else {  // HelperInterpNearestExact: round(max(source_index, 0)) as floor(x + 0.5)
      const float real = std::max(source_index(scale, i), 0.0f);
      src = static_cast<float>(static_cast<double>(real) + 0.5);
    }
    idx[static_cast<size_t>(i)] = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
  }
  return idx;
}

void resize_window(const ImageView& src, const MutableImageView& dst, int64_t out_h, int64_t out_w, int64_t top,
                   int64_t left, Interpolation mode, bool antialias, Isa isa) {
  const char* who = "resize_image";
  check_dtype(src.dtype, who, "source");
  check_dtype(dst.dtype, who, "destination");
  if (src.dtype != dst.dtype)
    throw TypeError(std::string(who) + ": source and destination dtypes differ (" + dtype_name(src.dtype) + " vs " +
                    dtype_name(dst.dtype) + ")");
  const ImageLayout& s = src.layout;
  const ImageLayout& d = dst.layout;
  check_layout(s, src.data, who, "source");
  check_layout(d, dst.data, who, "destination");
  if (s.n != d.n || s.c != d.c)
    throw ShapeError(std::string("[") + who + "] expected the destination to have the source's N and C " +
                     shape_to_string({s.n, s.c}) + ", got " + shape_to_string({d.n, d.c}));
  if (s.h < 1 || s.w < 1)
    throw ShapeError(std::string("[") + who + "] cannot resize an empty image of shape " + shape_to_string(s.shape()));
  if (out_h < 1 || out_w < 1)
    throw ShapeError(std::string("[") + who + "] output size must be >= 1, got " + shape_to_string({out_h, out_w}));
  if (top < 0 || left < 0 || d.h < 0 || d.w < 0 || top > out_h - d.h || left > out_w - d.w)
    throw InvalidArgument(std::string(who) + ": window [" + std::to_string(top) + ", " + std::to_string(left) + "] + " +
                          shape_to_string({d.h, d.w}) + " lies outside the output " + shape_to_string({out_h, out_w}));
  if (d.n == 0 || d.c == 0 || d.h == 0 || d.w == 0) return;
  // Rows must be addressable as planar or interleaved (throws otherwise).
  row_form(s, who, "source");
  row_form(d, who, "destination");

  if (is_nearest(mode)) {
    // torch takes its channels-last kernel for small outputs and for
    // channels-last inputs of more than 3 channels; its nearest-exact index
    // differs from the generic kernel's on exact ties.
    const bool cl = out_h + out_w <= 128 || (s.c > 3 && row_form(s, who, "source").interleaved);
    const std::vector<int64_t> iy = nearest_indices(s.h, out_h, mode, cl);
    const std::vector<int64_t> ix = nearest_indices(s.w, out_w, mode, cl);
    if (src.dtype == DType::float32)
      nearest_gather<float>(src, dst, iy, ix, top, left);
    else
      nearest_gather<uint8_t>(src, dst, iy, ix, top, left);
    return;
  }
  const Taps tv = compute_taps(s.h, out_h, mode, antialias);
  const Taps th = compute_taps(s.w, out_w, mode, antialias);
  Plan plan{&tv, &th, s.h == out_h, s.w == out_w, top, left};
  resample_separable(src, dst, plan, kernels::resample_ukernels_for(isa));
}

}  // namespace detail
}  // namespace transforms
}  // namespace pyflame_vision
