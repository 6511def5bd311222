// The image resampler and pixel functions (cpp/transforms/resample.cpp,
// image.cpp, cpp/kernels/*/resample_f32__*.cpp).
//
// Microkernels at every tier this CPU has, against a float64 reference: sizes
// around every vector and block edge, outputs pre-filled with NaN beyond the
// written range (guards), taps from 1 to beyond the register block. The
// driver against a float64 separable reference built from the same taps, for
// every layout pair and dtype. Weight tables: properties torch's tables have
// (taps inside the image, normalised, the identity for equal sizes) and a few
// hand-computed values. Bit-level agreement with torch itself is tested in
// Python (tests/python/test_image_transforms.py), which has torch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../../cpp/kernels/resample.h"
#include "../../cpp/transforms/resample.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/transforms.h"
#include "test_helpers.h"
#include "resample_tester.h"
#include "test_kernels_util.h"

namespace {

namespace pfv = pyflame_vision;
namespace T = pyflame_vision::transforms;
namespace D = pyflame_vision::transforms::detail;
namespace K = pyflame_vision::kernels;
using pfv::DType;
using pfv::Isa;
using pfv_ktest::all_tiers;
using pfv_ktest::IsaName;
using pfv_test::Contains;
using pfv_test::message_of;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

using pfv_resample_test::byte;
using pfv_resample_test::value;

// ------------------------------------------------------------------ microkernels

class ResampleKernels : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam()); }
  const K::ResampleUkernels& uk() const { return K::resample_ukernels_for(GetParam()); }
};

TEST_P(ResampleKernels, VerticalFloatAndByteRows) {
  EXPECT_EQ(uk().isa, GetParam());
  pfv_resample_test::check_vertical(uk());
}

TEST_P(ResampleKernels, HorizontalAllChannelCounts) { pfv_resample_test::check_horizontal(uk()); }

TEST_P(ResampleKernels, QuantiseRoundsHalfToEvenAndClamps) { pfv_resample_test::check_quantise(uk()); }

INSTANTIATE_TEST_SUITE_P(Tiers, ResampleKernels, ::testing::ValuesIn(all_tiers()), IsaName());

// ------------------------------------------------------------------ weight tables

TEST(ResampleTaps, InsideTheImageNormalisedAndPadded) {
  for (T::Interpolation mode : {T::Interpolation::bilinear, T::Interpolation::bicubic}) {
    for (bool aa : {true, false}) {
      for (int64_t in : {1, 2, 3, 7, 64, 301, 4000}) {
        for (int64_t out : {1, 2, 5, 64, 224, 333, 1000}) {
          const D::Taps t = D::compute_taps(in, out, mode, aa);
          ASSERT_EQ(t.stride % 16, 0u);
          ASSERT_GE(t.stride, t.max_count());
          for (int64_t i = 0; i < out; ++i) {
            const size_t ui = static_cast<size_t>(i);
            ASSERT_GE(t.count[ui], 1u);
            ASSERT_LE(t.start[ui] + t.count[ui], static_cast<size_t>(in)) << in << "->" << out << " i=" << i;
            double sum = 0;
            for (size_t k = 0; k < t.stride; ++k) {
              const float wk = t.weights[ui * t.stride + k];
              if (k >= t.count[ui]) {
                ASSERT_EQ(wk, 0.0f);
              }
              sum += wk;
            }
            ASSERT_NEAR(sum, 1.0, 1e-5) << pfv::transforms::interpolation_name(mode) << " aa=" << aa << " " << in
                                        << "->" << out << " i=" << i;
          }
          if (aa) {
            // torch's bound: at most ceil(support) * 2 + 1 taps, support = interp_size / 2 * max(in / out, 1).
            const double support = (mode == T::Interpolation::bicubic ? 2.0 : 1.0) *
                                   std::max(static_cast<double>(in) / static_cast<double>(out), 1.0);
            ASSERT_LE(t.max_count(), static_cast<size_t>(std::ceil(support) * 2 + 1));
          }
        }
      }
    }
  }
}

TEST(ResampleTaps, HandComputedValues) {
  // 4 -> 2 antialiased bilinear: scale 2, support 2, centre 1: taps 0..2 with triangle(0.25, 0.25, 0.75)
  // = 0.75, 0.75, 0.25 normalised to 3/7, 3/7, 1/7.
  D::Taps t = D::compute_taps(4, 2, T::Interpolation::bilinear, true);
  EXPECT_EQ(t.start[0], 0u);
  ASSERT_EQ(t.count[0], 3u);
  EXPECT_FLOAT_EQ(t.weights[0], 3.0f / 7.0f);
  EXPECT_FLOAT_EQ(t.weights[1], 3.0f / 7.0f);
  EXPECT_FLOAT_EQ(t.weights[2], 1.0f / 7.0f);
  // 2 -> 4 bilinear without antialiasing: x = 0.5 * (i + 0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25.
  t = D::compute_taps(2, 4, T::Interpolation::bilinear, false);
  EXPECT_EQ(t.count[0], 2u);
  EXPECT_FLOAT_EQ(t.weights[0], 1.0f);
  EXPECT_FLOAT_EQ(t.weights[t.stride + 0], 0.75f);
  EXPECT_FLOAT_EQ(t.weights[t.stride + 1], 0.25f);
  EXPECT_EQ(t.start[3], 1u);
  EXPECT_EQ(t.count[3], 1u);  // both taps on the last pixel
  EXPECT_FLOAT_EQ(t.weights[3 * t.stride], 1.0f);
  // Equal sizes: the identity, whatever the mode.
  t = D::compute_taps(9, 9, T::Interpolation::bicubic, true);
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(t.start[i], i);
    EXPECT_EQ(t.count[i], 1u);
    EXPECT_EQ(t.weights[i * t.stride], 1.0f);
  }
  // Bicubic without antialiasing at the border: indices -1, 0, 1, 2 clamp to 0, 0, 1, 2 and merge.
  t = D::compute_taps(8, 8 * 4, T::Interpolation::bicubic, false);
  EXPECT_EQ(t.start[0], 0u);
  EXPECT_LE(t.count[0], 3u);
  EXPECT_THROW(D::compute_taps(0, 3, T::Interpolation::bilinear, true), pfv::InvalidArgument);
  EXPECT_THROW(D::compute_taps(3, 3, T::Interpolation::nearest, true), pfv::InvalidArgument);
}

TEST(ResampleTaps, NearestIndices) {
  // floor(i * 5/3) for 5 -> 3; floor((i + 0.5) * 5/3) for nearest-exact.
  EXPECT_EQ(D::nearest_indices(5, 3, T::Interpolation::nearest, false), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(D::nearest_indices(5, 3, T::Interpolation::nearest_exact, false), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(D::nearest_indices(5, 3, T::Interpolation::nearest_exact, true), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(D::nearest_indices(2, 5, T::Interpolation::nearest, false), (std::vector<int64_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(D::nearest_indices(1, 4, T::Interpolation::nearest_exact, false), (std::vector<int64_t>{0, 0, 0, 0}));
  // 2 -> 41, i = 20: (20.5) * (2 / 41) is 1 in exact arithmetic; torch's two kernels round float32(2/41) apart.
  const auto generic = D::nearest_indices(2, 41, T::Interpolation::nearest_exact, false);
  const auto cl = D::nearest_indices(2, 41, T::Interpolation::nearest_exact, true);
  EXPECT_NE(generic[20], cl[20]);
}

// ------------------------------------------------------------------ resize_image

// A float64 separable reference from the same taps (vertical then horizontal).
std::vector<double> reference_resize(const std::vector<float>& src, int64_t n, int64_t c, int64_t h, int64_t w,
                                     int64_t oh, int64_t ow, T::Interpolation mode, bool aa) {
  std::vector<double> out(static_cast<size_t>(n * c * oh * ow));
  const bool nearest = mode == T::Interpolation::nearest || mode == T::Interpolation::nearest_exact;
  if (nearest) {
    const auto iy = D::nearest_indices(h, oh, mode, oh + ow <= 128);
    const auto ix = D::nearest_indices(w, ow, mode, oh + ow <= 128);
    for (int64_t p = 0; p < n * c; ++p)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x)
          out[static_cast<size_t>((p * oh + y) * ow + x)] =
              src[static_cast<size_t>((p * h + iy[static_cast<size_t>(y)]) * w + ix[static_cast<size_t>(x)])];
    return out;
  }
  const D::Taps tv = D::compute_taps(h, oh, mode, aa), th = D::compute_taps(w, ow, mode, aa);
  for (int64_t p = 0; p < n * c; ++p) {
    for (int64_t y = 0; y < oh; ++y) {
      std::vector<double> row(static_cast<size_t>(w), 0.0);
      const size_t uy = static_cast<size_t>(y);
      for (size_t k = 0; k < tv.count[uy]; ++k)
        for (int64_t x = 0; x < w; ++x)
          row[static_cast<size_t>(x)] +=
              static_cast<double>(tv.weights[uy * tv.stride + k]) *
              src[static_cast<size_t>((p * h + static_cast<int64_t>(tv.start[uy] + k)) * w + x)];
      for (int64_t x = 0; x < ow; ++x) {
        const size_t ux = static_cast<size_t>(x);
        double acc = 0;
        for (size_t k = 0; k < th.count[ux]; ++k)
          acc += static_cast<double>(th.weights[ux * th.stride + k]) * row[th.start[ux] + k];
        out[static_cast<size_t>((p * oh + y) * ow + x)] = acc;
      }
    }
  }
  return out;
}

class ResizeImage : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam()); }
};

TEST_P(ResizeImage, EveryLayoutAndDtypeAgainstTheReference) {
  const Isa isa = GetParam();
  struct Case {
    int64_t n, c, h, w, oh, ow;
  };
  const Case cases[] = {{1, 3, 40, 50, 17, 23}, {2, 3, 17, 23, 40, 61}, {1, 1, 1, 1, 4, 5},      {1, 4, 9, 1, 3, 2},
                        {1, 2, 33, 70, 33, 9},  {2, 5, 20, 20, 7, 20},  {1, 3, 300, 401, 64, 85}};
  const T::Interpolation modes[] = {T::Interpolation::nearest, T::Interpolation::nearest_exact,
                                    T::Interpolation::bilinear, T::Interpolation::bicubic};
  for (const Case& cs : cases) {
    const int64_t total = cs.n * cs.c * cs.h * cs.w;
    std::vector<float> planar(static_cast<size_t>(total));
    for (int64_t i = 0; i < total; ++i) planar[static_cast<size_t>(i)] = value(static_cast<uint64_t>(i) + 5);
    std::vector<uint8_t> planar8(planar.size());
    for (size_t i = 0; i < planar.size(); ++i) planar8[i] = static_cast<uint8_t>(planar[i] * 255.0f);
    std::vector<float> planar8f(planar8.begin(), planar8.end());
    // The same pixels interleaved [N, H, W, C].
    auto interleave = [&](const auto& v) {
      std::remove_const_t<std::remove_reference_t<decltype(v)>> o(v.size());
      for (int64_t p = 0; p < cs.n; ++p)
        for (int64_t ch = 0; ch < cs.c; ++ch)
          for (int64_t y = 0; y < cs.h; ++y)
            for (int64_t x = 0; x < cs.w; ++x)
              o[static_cast<size_t>(((p * cs.h + y) * cs.w + x) * cs.c + ch)] =
                  v[static_cast<size_t>(((p * cs.c + ch) * cs.h + y) * cs.w + x)];
      return o;
    };
    const std::vector<float> inter = interleave(planar);
    const std::vector<uint8_t> inter8 = interleave(planar8);
    for (T::Interpolation mode : modes) {
      for (bool aa : {true, false}) {
        const auto ref = reference_resize(planar, cs.n, cs.c, cs.h, cs.w, cs.oh, cs.ow, mode, aa);
        const auto ref8 = reference_resize(planar8f, cs.n, cs.c, cs.h, cs.w, cs.oh, cs.ow, mode, aa);
        for (int src_inter = 0; src_inter < 2; ++src_inter) {
          for (int dst_inter = 0; dst_inter < 2; ++dst_inter) {
            const T::ImageLayout sl = src_inter ? T::ImageLayout::interleaved(cs.n, cs.h, cs.w, cs.c)
                                                : T::ImageLayout::planar(cs.n, cs.c, cs.h, cs.w);
            const T::ImageLayout dl = dst_inter ? T::ImageLayout::interleaved(cs.n, cs.oh, cs.ow, cs.c)
                                                : T::ImageLayout::planar(cs.n, cs.c, cs.oh, cs.ow);
            const size_t on = static_cast<size_t>(cs.n * cs.c * cs.oh * cs.ow);
            std::vector<float> out(on, kNaN);
            std::vector<uint8_t> out8(on, 77);
            D::resize_window(T::ImageView{src_inter ? inter.data() : planar.data(), DType::float32, sl},
                             T::MutableImageView{out.data(), DType::float32, dl}, cs.oh, cs.ow, 0, 0, mode, aa, isa);
            D::resize_window(T::ImageView{src_inter ? inter8.data() : planar8.data(), DType::uint8, sl},
                             T::MutableImageView{out8.data(), DType::uint8, dl}, cs.oh, cs.ow, 0, 0, mode, aa, isa);
            for (int64_t p = 0; p < cs.n; ++p)
              for (int64_t ch = 0; ch < cs.c; ++ch)
                for (int64_t y = 0; y < cs.oh; ++y)
                  for (int64_t x = 0; x < cs.ow; ++x) {
                    const size_t r = static_cast<size_t>(((p * cs.c + ch) * cs.oh + y) * cs.ow + x);
                    const size_t o =
                        static_cast<size_t>(p * dl.stride_n + ch * dl.stride_c + y * dl.stride_y + x * dl.stride_x);
                    ASSERT_NEAR(out[o], ref[r], 2e-6)
                        << T::interpolation_name(mode) << " aa=" << aa << " src_inter=" << src_inter
                        << " dst_inter=" << dst_inter << " " << cs.h << "x" << cs.w << "->" << cs.oh << "x" << cs.ow;
                    const double want = std::min(std::max(ref8[r], 0.0), 255.0);
                    ASSERT_LE(std::fabs(out8[o] - want), 0.5 + 1e-3) << "uint8 " << T::interpolation_name(mode);
                  }
          }
        }
      }
    }
  }
}

TEST_P(ResizeImage, WindowEqualsCropOfTheFullResize) {
  const Isa isa = GetParam();
  const int64_t h = 97, w = 131, top = 5, left = 11, ch = 50, cw = 60;
  std::vector<uint8_t> src(static_cast<size_t>(3 * h * w));
  for (size_t i = 0; i < src.size(); ++i) src[i] = byte(i);
  // Both dimensions resized, and the width unchanged (the row is copied, not resampled).
  for (auto out : {std::pair<int64_t, int64_t>{64, 86}, {64, w}, {h, 86}}) {
    const int64_t oh = out.first, ow = out.second;
    for (int inter : {0, 1}) {
      const T::ImageView in{src.data(), DType::uint8,
                            inter ? T::ImageLayout::interleaved(1, h, w, 3) : T::ImageLayout::planar(1, 3, h, w)};
      const T::ImageLayout fl =
          inter ? T::ImageLayout::interleaved(1, oh, ow, 3) : T::ImageLayout::planar(1, 3, oh, ow);
      const T::ImageLayout wl =
          inter ? T::ImageLayout::interleaved(1, ch, cw, 3) : T::ImageLayout::planar(1, 3, ch, cw);
      std::vector<uint8_t> full(static_cast<size_t>(3 * oh * ow)), win(static_cast<size_t>(3 * ch * cw));
      D::resize_window(in, T::MutableImageView{full.data(), DType::uint8, fl}, oh, ow, 0, 0, T::Interpolation::bicubic,
                       true, isa);
      D::resize_window(in, T::MutableImageView{win.data(), DType::uint8, wl}, oh, ow, top, left,
                       T::Interpolation::bicubic, true, isa);
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < ch; ++y)
          for (int64_t x = 0; x < cw; ++x)
            ASSERT_EQ(win[static_cast<size_t>(c * wl.stride_c + y * wl.stride_y + x * wl.stride_x)],
                      full[static_cast<size_t>(c * fl.stride_c + (top + y) * fl.stride_y + (left + x) * fl.stride_x)])
                << oh << "x" << ow << " interleaved=" << inter;
    }
  }
}

TEST_P(ResizeImage, ThreadCountDoesNotChangeResults) {
  pfv_test::CpuStateGuard guard;
  const int64_t h = 211, w = 307;
  std::vector<float> src(static_cast<size_t>(2 * 3 * h * w));
  for (size_t i = 0; i < src.size(); ++i) src[i] = value(i);
  const T::ImageView in{src.data(), DType::float32, T::ImageLayout::planar(2, 3, h, w)};
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 2, 3}) {
    pfv::set_num_threads(threads);
    std::vector<float> out(static_cast<size_t>(2 * 3 * 50 * 70));
    D::resize_window(in, T::MutableImageView{out.data(), DType::float32, T::ImageLayout::planar(2, 3, 50, 70)}, 50, 70,
                     0, 0, T::Interpolation::bilinear, true, GetParam());
    outs.push_back(out);
  }
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
}

INSTANTIATE_TEST_SUITE_P(Tiers, ResizeImage, ::testing::ValuesIn(all_tiers()), IsaName());

TEST(ResizeImageErrors, TypedAndSaySo) {
  std::vector<float> f(3 * 4 * 5, 0.5f);
  std::vector<uint8_t> b(3 * 4 * 5, 1);
  const T::ImageView in{f.data(), DType::float32, T::ImageLayout::planar(1, 3, 4, 5)};
  std::vector<float> out(3 * 2 * 2);
  const T::MutableImageView dst{out.data(), DType::float32, T::ImageLayout::planar(1, 3, 2, 2)};
  EXPECT_TRUE(Contains(message_of<pfv::TypeError>([&] {
                         T::resize_image(in, T::MutableImageView{b.data(), DType::uint8, dst.layout},
                                         T::Interpolation::bilinear);
                       }),
                       "dtypes differ"));
  EXPECT_TRUE(Contains(message_of<pfv::TypeError>([&] {
                         T::resize_image(T::ImageView{f.data(), DType::float64, in.layout}, dst,
                                         T::Interpolation::bilinear);
                       }),
                       "expected a uint8 or float32 source, got float64"));
  EXPECT_TRUE(Contains(message_of<pfv::ShapeError>([&] {
                         T::resize_image(
                             in, T::MutableImageView{out.data(), DType::float32, T::ImageLayout::planar(1, 2, 2, 3)},
                             T::Interpolation::bilinear);
                       }),
                       "N and C"));
  T::ImageLayout odd = T::ImageLayout::planar(1, 3, 4, 5);
  odd.stride_x = 2;
  odd.stride_y = 10;
  odd.stride_c = 40;
  std::vector<float> big(200, 0.0f);
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] {
                         T::resize_image(T::ImageView{big.data(), DType::float32, odd}, dst,
                                         T::Interpolation::bilinear);
                       }),
                       "rows must be planar"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] {
                         T::resize_image(T::ImageView{nullptr, DType::float32, in.layout}, dst,
                                         T::Interpolation::bilinear);
                       }),
                       "data is null"));
  EXPECT_TRUE(Contains(
      message_of<pfv::InvalidArgument>([&] { T::resize_image(in, dst, 4, 4, 3, 0, T::Interpolation::bilinear); }),
      "outside the output"));
  EXPECT_TRUE(Contains(message_of<pfv::ShapeError>([&] {
                         T::resize_image(T::ImageView{f.data(), DType::float32, T::ImageLayout::planar(1, 3, 0, 5)},
                                         dst, T::Interpolation::bilinear);
                       }),
                       "empty image"));
  EXPECT_TRUE(Contains(message_of<pfv::Unsupported>([] { T::parse_interpolation("lanczos"); }), "PIL"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { T::parse_interpolation("cubic"); }), "unknown"));
  EXPECT_EQ(T::parse_interpolation("nearest-exact"), T::Interpolation::nearest_exact);
  EXPECT_STREQ(T::interpolation_name(T::Interpolation::bicubic), "bicubic");
  // Resize::apply checks the destination size against the shape logic; PIL-only modes refuse pixels.
  T::Resize r({2, 2});
  EXPECT_NO_THROW(r.apply(in, dst));
  EXPECT_THROW(T::Resize({3, 3}).apply(in, dst), pfv::ShapeError);
  EXPECT_THROW(T::Resize({2, 2}, -1, "box").apply(in, dst), pfv::Unsupported);
  EXPECT_THROW(T::Resize({2, 2}, -1, "cubic"), pfv::InvalidArgument);
}

// ------------------------------------------------------------------ crop, convert, normalize

TEST(CropImage, OffsetsRoundHalfToEvenAndPad) {
  // (size - crop) / 2 = 16.5 -> 16, 17.5 -> 18 (Python's round); larger crops start at -(crop - size) // 2.
  EXPECT_EQ(T::center_crop_offsets(257, 259, 224, 224), (std::pair<int64_t, int64_t>{16, 18}));
  EXPECT_EQ(T::center_crop_offsets(256, 300, 224, 100), (std::pair<int64_t, int64_t>{16, 100}));
  EXPECT_EQ(T::center_crop_offsets(10, 11, 15, 16), (std::pair<int64_t, int64_t>{-2, -2}));
  EXPECT_EQ(T::center_crop_offsets(10, 10, 13, 5), (std::pair<int64_t, int64_t>{-1, 2}));
  EXPECT_THROW(T::center_crop_offsets(-1, 3, 2, 2), pfv::InvalidArgument);

  const int64_t h = 5, w = 6;
  std::vector<float> src(static_cast<size_t>(2 * h * w));
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i + 1);
  const T::ImageView in{src.data(), DType::float32, T::ImageLayout::planar(1, 2, h, w)};
  for (int64_t top : {-3, -1, 0, 2, 4, 7}) {
    for (int64_t left : {-2, 0, 3, 6}) {
      std::vector<float> out(2 * 4 * 4, kNaN);
      T::crop_image(in, T::MutableImageView{out.data(), DType::float32, T::ImageLayout::interleaved(1, 4, 4, 2)}, top,
                    left);
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t y = 0; y < 4; ++y)
          for (int64_t x = 0; x < 4; ++x) {
            const int64_t sy = top + y, sx = left + x;
            const float want =
                (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[static_cast<size_t>((c * h + sy) * w + sx)] : 0.0f;
            ASSERT_EQ(out[static_cast<size_t>((y * 4 + x) * 2 + c)], want) << top << "," << left;
          }
    }
  }
  T::CenterCrop cc(3, 4);
  std::vector<float> out(2 * 3 * 4);
  cc.apply(in, T::MutableImageView{out.data(), DType::float32, T::ImageLayout::planar(1, 2, 3, 4)});
  EXPECT_EQ(out[0], src[static_cast<size_t>(1 * w + 1)]);  // offsets (1, 1)
}

TEST(ConvertAndNormalize, TorchvisionArithmetic) {
  const uint8_t px[4] = {0, 1, 128, 255};
  std::vector<float> f(4);
  T::convert_image(T::ImageView{px, DType::uint8, T::ImageLayout::planar(1, 1, 2, 2)},
                   T::MutableImageView{f.data(), DType::float32, T::ImageLayout::planar(1, 1, 2, 2)});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f[static_cast<size_t>(i)], static_cast<float>(px[i]) / 255.0f);
  const float back_in[4] = {0.0f, 0.5f, 1.0f, -0.2f};
  uint8_t back[4];
  T::convert_image(T::ImageView{back_in, DType::float32, T::ImageLayout::planar(1, 1, 2, 2)},
                   T::MutableImageView{back, DType::uint8, T::ImageLayout::planar(1, 1, 2, 2)});
  EXPECT_EQ(back[0], 0);
  EXPECT_EQ(back[1], 127);  // trunc(0.5 * 255.999)
  EXPECT_EQ(back[2], 255);
  EXPECT_EQ(back[3], 0);  // saturates instead of wrapping

  // Normalize: (x / 255 - m) / s per channel, float32, from interleaved uint8.
  const std::vector<double> mean{0.485, 0.456, 0.406}, sd{0.229, 0.224, 0.225};
  std::vector<uint8_t> hwc(2 * 3 * 3);
  for (size_t i = 0; i < hwc.size(); ++i) hwc[i] = byte(i);
  std::vector<float> out(hwc.size());
  T::normalize_image(T::ImageView{hwc.data(), DType::uint8, T::ImageLayout::interleaved(1, 2, 3, 3)},
                     T::MutableImageView{out.data(), DType::float32, T::ImageLayout::planar(1, 3, 2, 3)}, mean, sd);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 6; ++i) {
      const float v = static_cast<float>(hwc[static_cast<size_t>(i * 3 + c)]) / 255.0f;
      EXPECT_EQ(out[static_cast<size_t>(c * 6 + i)], (v - static_cast<float>(mean[static_cast<size_t>(c)])) /
                                                         static_cast<float>(sd[static_cast<size_t>(c)]));
    }
  EXPECT_THROW(T::normalize_image(T::ImageView{hwc.data(), DType::uint8, T::ImageLayout::interleaved(1, 2, 3, 3)},
                                  T::MutableImageView{out.data(), DType::float32, T::ImageLayout::planar(1, 3, 2, 3)},
                                  {0.5, 0.5}, {1.0, 1.0}),
               pfv::ShapeError);
  EXPECT_THROW(T::normalize_image(T::ImageView{hwc.data(), DType::uint8, T::ImageLayout::interleaved(1, 2, 3, 3)},
                                  T::MutableImageView{out.data(), DType::float32, T::ImageLayout::planar(1, 3, 2, 3)},
                                  {0.5}, {0.0}),
               pfv::InvalidArgument);
  EXPECT_THROW(T::normalize_image(T::ImageView{hwc.data(), DType::uint8, T::ImageLayout::interleaved(1, 2, 3, 3)},
                                  T::MutableImageView{hwc.data(), DType::uint8, T::ImageLayout::planar(1, 3, 2, 3)},
                                  {0.5}, {1.0}),
               pfv::TypeError);
}

// ------------------------------------------------------------------ the preset

TEST(ImageClassificationPreset, EqualsTheStepsWrittenOut) {
  const T::ImageClassification preset(24, 28);  // bilinear, antialiased, ImageNet mean/std
  EXPECT_EQ(preset.get_output_shape({2, 3, 40, 60}), (pfv::Shape{2, 3, 24, 24}));
  EXPECT_EQ(preset.repr(),
            "ImageClassification(\n    crop_size=[24]\n    resize_size=[28]\n    mean=[0.485, 0.456, 0.406]\n"
            "    std=[0.229, 0.224, 0.225]\n    interpolation=InterpolationMode.BILINEAR\n)");
  for (auto hw : {std::pair<int64_t, int64_t>{40, 60}, {28, 31}, {10, 12}, {28, 28}, {100, 7}}) {
    const int64_t h = hw.first, w = hw.second;
    std::vector<uint8_t> hwc(static_cast<size_t>(h * w * 3));
    for (size_t i = 0; i < hwc.size(); ++i) hwc[i] = byte(i * 3 + 1);
    const pfv::Tensor got = preset(hwc.data(), h, w);
    ASSERT_EQ(got.shape(), (pfv::Shape{1, 3, 24, 24}));
    // Written out: Resize(28) on uint8 -> CenterCrop(24) -> /255 -> Normalize.
    const T::Resize resize({28}, -1, "bilinear", true, true);
    const pfv::Shape rs = resize.get_output_shape({1, 3, h, w});
    std::vector<uint8_t> resized(static_cast<size_t>(3 * rs[2] * rs[3]));
    const T::ImageView in{hwc.data(), DType::uint8, T::ImageLayout::interleaved(1, h, w, 3)};
    if (rs[2] == h && rs[3] == w) {
      T::convert_image(in, T::MutableImageView{resized.data(), DType::uint8, T::ImageLayout::planar(1, 3, h, w)});
    } else {
      resize.apply(in, T::MutableImageView{resized.data(), DType::uint8, T::ImageLayout::planar(1, 3, rs[2], rs[3])});
    }
    std::vector<uint8_t> cropped(3 * 24 * 24);
    T::CenterCrop(24, 24).apply(
        T::ImageView{resized.data(), DType::uint8, T::ImageLayout::planar(1, 3, rs[2], rs[3])},
        T::MutableImageView{cropped.data(), DType::uint8, T::ImageLayout::planar(1, 3, 24, 24)});
    pfv::Tensor want(pfv::TensorSpec({1, 3, 24, 24}));
    T::Normalize({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225})
        .apply(T::ImageView{cropped.data(), DType::uint8, T::ImageLayout::planar(1, 3, 24, 24)},
               T::mutable_image_view(want));
    const float* a = got.data_f32();
    const float* b = want.data_f32();
    for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(a[i], b[i]) << h << "x" << w << " i=" << i;
  }
  EXPECT_THROW(T::ImageClassification(0), pfv::InvalidArgument);
  EXPECT_THROW(preset(nullptr, 0, 5), pfv::ShapeError);
}

}  // namespace
