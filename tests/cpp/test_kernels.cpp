// Conv2dKernel and LinearKernel (cpp/kernels/conv.h) against a slow float64
// reference, at every instruction-set tier this CPU supports (tiers it lacks
// are skipped visibly, naming the tier). Conventions (DESIGN.md section 3.7):
// odd sizes around every block edge, NaN-prefilled outputs with guard zones,
// integer data compared exactly, random data within a rounding-error bound
// that grows with the reduction length (see tolerance() in
// test_kernels_util.h). Real layer shapes: test_kernels_shapes.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "test_helpers.h"
#include "test_kernels_util.h"

using namespace pfv_ktest;  // NOLINT
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

/// Output-channel and pixel counts around every block edge: 1, b-1, b, b+1,
/// 2b+1 for b in {4, 6, 8, 12, 14, 16, 32} (scalar 4x8, avx2 6x16, avx512
/// 12x32 tiles; 14x32 for other AVX-512 tilings; dwconv 4/8/16 channels).
std::vector<int64_t> edge_sizes() {
  std::set<int64_t> s;
  for (int64_t b : {4, 6, 8, 12, 14, 16, 32})
    for (int64_t v : {int64_t{1}, b - 1, b, b + 1, 2 * b + 1}) s.insert(v);
  return {s.begin(), s.end()};
}

const std::vector<int64_t> kReductionSizes{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
                                           127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1025};

const Epilogue kEpilogues[] = {Epilogue::none, Epilogue::relu, Epilogue::silu, Epilogue::sigmoid};

class KernelConv : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam()); }
  Isa isa() const { return GetParam(); }

  /// Runs one case and compares every element; returns false on failure so
  /// loops can stop after the first few failing cases.
  bool check(const ConvCase& c, size_t misalign = 0) {
    Guarded out = run_conv(c, isa(), misalign);
    auto r = check_conv(c, out.data());
    EXPECT_TRUE(r) << "[" << pfv::isa_name(isa()) << "]";
    return static_cast<bool>(r) && !HasFailure();
  }
};

// ------------------------------------------------------------ 1x1 (GEMM) edges

TEST_P(KernelConv, Gemm1x1EdgesOutChannelsByPixels) {
  const auto edges = edge_sizes();
  uint64_t seed = 1;
  for (int64_t oc : edges) {
    for (int64_t pix : edges) {
      for (int64_t k : {1, 3, 8, 17, 65}) {
        // Alternate a 1 x pix row and a pix x 1 column; alternate bias/residual/relu.
        const bool row = (seed % 2) == 0;
        const auto s = conv_shape(1, row ? 1 : pix, row ? pix : 1, k, oc, 1, 1);
        const Epilogue e = (seed % 3 == 0) ? Epilogue::relu : Epilogue::none;
        const auto c = make_case(s, e, seed % 4 != 1, seed % 5 < 2, Data::integer, seed);
        ++seed;
        if (!check(c)) return;
      }
    }
  }
}

TEST_P(KernelConv, Gemm1x1ReductionLengths) {
  uint64_t seed = 100;
  for (int64_t k : kReductionSizes) {
    for (int64_t oc : {1, 7, 16, 33}) {
      for (int64_t pix : {1, 13, 33}) {
        const auto s = conv_shape(1, 1, pix, k, oc, 1, 1);
        if (!check(make_case(s, Epilogue::none, true, seed % 2 == 0, Data::integer, seed))) return;
        ++seed;
      }
    }
  }
}

TEST_P(KernelConv, Gemm1x1RandomDataWithinRoundingBound) {
  uint64_t seed = 200;
  for (int64_t k : {1, 3, 17, 64, 129, 1025, 2048}) {
    for (int64_t oc : {5, 32, 65}) {
      for (Epilogue e : kEpilogues) {
        const auto s = conv_shape(1, 3, 11, k, oc, 1, 1);
        if (!check(make_case(s, e, true, seed % 2 == 0, Data::random, seed))) return;
        ++seed;
      }
    }
  }
}

TEST_P(KernelConv, OneByOneStride2AndPadded) {
  uint64_t seed = 300;
  // 1x1 stride 2 (ResNet downsample), odd spatial sizes.
  for (int64_t hw : {1, 2, 3, 7, 14, 15, 56}) {
    for (int64_t oc : {3, 16, 17}) {
      if (!check(make_case(conv_shape(1, hw, hw + 1, 9, oc, 1, 1, 2, 2), Epilogue::none, true, true, Data::integer,
                           seed++)))
        return;
    }
  }
  // 1x1 with padding (a border of bias-only outputs) and 1x1 stride (1, 2).
  ASSERT_TRUE(check(make_case(conv_shape(1, 5, 6, 7, 9, 1, 1, 1, 1, 1, 2), Epilogue::relu, true, false,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(2, 5, 9, 8, 17, 1, 1, 1, 2), Epilogue::none, true, true, Data::integer,
                              seed++)));
}

// ------------------------------------------------------------ KxK (implicit GEMM)

TEST_P(KernelConv, Conv3x3EdgesSpatialChannels) {
  uint64_t seed = 400;
  for (int64_t h : {1, 2, 3, 5, 8, 9}) {
    for (int64_t w : {1, 4, 7, 13, 17}) {
      for (int64_t cin : {1, 3, 8, 17}) {
        for (int64_t oc : {1, 5, 16, 33}) {
          const int64_t stride = (seed % 3 == 0) ? 2 : 1;
          const int64_t pad = (seed % 4 == 0 && h >= 3 && w >= 3) ? 0 : 1;
          const auto s = conv_shape(1, h, w, cin, oc, 3, 3, stride, stride, pad, pad);
          const Epilogue e = (seed % 2 == 0) ? Epilogue::relu : Epilogue::none;
          if (!check(make_case(s, e, seed % 3 != 1, seed % 5 == 0, Data::integer, seed))) return;
          ++seed;
        }
      }
    }
  }
}

TEST_P(KernelConv, ConvKxKReductionLengths) {
  uint64_t seed = 500;
  // K = cin * 9 crosses the kc / row-pointer blocking at several offsets.
  for (int64_t cin : {1, 2, 3, 7, 8, 9, 17, 31, 32, 33, 64, 65, 129, 257}) {
    const auto s = conv_shape(1, 6, 7, cin, 19, 3, 3, 1, 1, 1, 1);
    if (!check(make_case(s, Epilogue::none, true, false, Data::integer, seed++))) return;
  }
}

TEST_P(KernelConv, ConvKxKRandomDataWithinRoundingBound) {
  uint64_t seed = 600;
  for (Epilogue e : kEpilogues) {
    if (!check(make_case(conv_shape(1, 9, 10, 64, 40, 3, 3, 1, 1, 1, 1), e, true, true, Data::random, seed++))) return;
    if (!check(make_case(conv_shape(1, 9, 10, 33, 17, 3, 3, 2, 2, 1, 1), e, true, false, Data::random, seed++))) return;
  }
}

TEST_P(KernelConv, Stem7x7Stride2ThreeInputChannels) {
  // ResNet's conv1 on small odd images, and on a 224 crop's top rows.
  uint64_t seed = 700;
  for (int64_t hw : {7, 8, 23, 37}) {
    ASSERT_TRUE(check(make_case(conv_shape(1, hw, hw + 2, 3, 64, 7, 7, 2, 2, 3, 3), Epilogue::relu, true, false,
                                Data::integer, seed++)));
  }
  ASSERT_TRUE(check(make_case(conv_shape(1, 16, 224, 3, 64, 7, 7, 2, 2, 3, 3), Epilogue::relu, true, false,
                              Data::random, seed++)));
}

TEST_P(KernelConv, AsymmetricKernelStridePadding) {
  // Height and width parameters differ, so swapping them anywhere fails.
  uint64_t seed = 800;
  ASSERT_TRUE(check(make_case(conv_shape(1, 7, 9, 5, 6, 1, 3, 1, 1, 0, 1), Epilogue::none, true, false, Data::integer,
                              seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 9, 7, 5, 6, 3, 1, 1, 1, 1, 0), Epilogue::none, true, false, Data::integer,
                              seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 11, 8, 4, 9, 3, 2, 2, 1, 1, 0, 1, 2), Epilogue::relu, false, true,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(2, 6, 13, 3, 10, 2, 5, 1, 3, 0, 2, 2, 1), Epilogue::none, true, true,
                              Data::integer, seed++)));
}

TEST_P(KernelConv, PaddingLargerThanNeeded) {
  // Outputs whose whole receptive field is padding hold bias (+ residual) only.
  uint64_t seed = 900;
  ASSERT_TRUE(check(make_case(conv_shape(1, 3, 4, 5, 7, 3, 3, 1, 1, 3, 2), Epilogue::none, true, true, Data::integer,
                              seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 2, 2, 2, 3, 1, 1, 1, 1, 2, 2), Epilogue::relu, true, false, Data::integer,
                              seed++)));
}

TEST_P(KernelConv, WinogradTilesEdgesAndEpilogues) {
  // Dense 3x3 stride 1 with >= 16 channels and outputs >= 8x8 run as
  // Winograd F(2x2, 3x3): odd sizes leave half-empty tiles at the right and
  // bottom edges, tiles cross image boundaries in a batch, channel counts
  // leave vector tails, padding 0/1/2; every epilogue, with and without
  // residual. Outputs are NaN-prefilled, so an unwritten element fails.
  uint64_t seed = 5000;
  const ConvShape shapes[] = {
      conv_shape(1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1),     conv_shape(1, 9, 9, 16, 17, 3, 3, 1, 1, 1, 1),
      conv_shape(3, 11, 8, 19, 40, 3, 3, 1, 1, 1, 1),    conv_shape(2, 10, 13, 33, 24, 3, 3, 1, 1, 0, 0),
      conv_shape(1, 8, 9, 24, 20, 3, 3, 1, 1, 2, 2),     conv_shape(2, 17, 15, 64, 48, 3, 3, 1, 1, 1, 1),
      conv_shape(1, 6, 20, 16, 16, 3, 3, 1, 1, 2, 2),    conv_shape(5, 14, 14, 72, 130, 3, 3, 1, 1, 1, 1),
      // Few tiles: the output channels are split too (last part shorter).
      conv_shape(1, 8, 8, 32, 80, 3, 3, 1, 1, 1, 1),     conv_shape(1, 9, 11, 24, 200, 3, 3, 1, 1, 1, 1),
  };
  for (const auto& s : shapes) {
    {
      kern::Conv2dKernel k(s, std::vector<float>(static_cast<size_t>(s.out_c * s.in_c * 9), 1.0f).data(), nullptr,
                           Epilogue::none, isa());
      EXPECT_NE(k.description().find("winograd"), std::string::npos) << k.description();
    }
    for (Epilogue e : kEpilogues) {
      for (bool res : {false, true}) {
        ASSERT_TRUE(check(make_case(s, e, true, res, Data::integer, seed++)));
        const bool bias = seed % 2 == 0;
        ASSERT_TRUE(check(make_case(s, e, bias, res, Data::random, seed++)));
      }
    }
  }
  // Not Winograd: stride 2, dilation, groups, few channels, outputs under 8x8.
  const ConvShape direct[] = {
      conv_shape(1, 16, 16, 16, 16, 3, 3, 2, 2, 1, 1), conv_shape(1, 12, 12, 16, 16, 3, 3, 1, 1, 2, 2, 2, 2),
      conv_shape(1, 12, 12, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 2), conv_shape(1, 12, 12, 8, 32, 3, 3, 1, 1, 1, 1),
      conv_shape(1, 7, 7, 64, 64, 3, 3, 1, 1, 1, 1),
  };
  for (const auto& s : direct) {
    kern::Conv2dKernel k(s, std::vector<float>(static_cast<size_t>(s.out_c * (s.in_c / s.groups) * 9), 1.0f).data(),
                         nullptr, Epilogue::none, isa());
    EXPECT_EQ(k.description().find("winograd"), std::string::npos) << k.description();
  }
}

TEST_P(KernelConv, Dilation) {
  uint64_t seed = 1000;
  for (int64_t d : {2, 4}) {
    // DeepLab-style dilated 3x3 keeping the size (padding = dilation)...
    ASSERT_TRUE(check(make_case(conv_shape(1, 13, 14, 17, 20, 3, 3, 1, 1, d, d, d, d), Epilogue::relu, true, true,
                                Data::integer, seed++)));
    // ...unpadded, strided, and on an input smaller than the dilated kernel plus padding.
    ASSERT_TRUE(check(make_case(conv_shape(1, 15, 12, 8, 9, 3, 3, 1, 1, 0, 0, d, d), Epilogue::none, true, false,
                                Data::integer, seed++)));
    ASSERT_TRUE(check(make_case(conv_shape(1, 17, 16, 5, 7, 3, 3, 2, 2, d, d, d, d), Epilogue::none, false, false,
                                Data::integer, seed++)));
    ASSERT_TRUE(check(make_case(conv_shape(1, 3, 4, 4, 6, 3, 3, 1, 1, d, d, d, d), Epilogue::none, true, false,
                                Data::integer, seed++)));
    ASSERT_TRUE(check(make_case(conv_shape(1, 28, 28, 64, 48, 3, 3, 1, 1, d, d, d, d), Epilogue::silu, true, true,
                                Data::random, seed++)));
  }
  // Dilated depthwise and grouped.
  ASSERT_TRUE(check(make_case(conv_shape(1, 10, 11, 24, 24, 3, 3, 1, 1, 2, 2, 2, 2, 24), Epilogue::relu, true, false,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 10, 11, 32, 64, 3, 3, 1, 1, 4, 4, 4, 4, 8), Epilogue::none, true, true,
                              Data::integer, seed++)));
}

// ------------------------------------------------------------ groups

TEST_P(KernelConv, Grouped) {
  uint64_t seed = 1100;
  struct G {
    int64_t groups, cin_g, cout_g, k, stride;
  };
  const G cases[] = {
      {2, 3, 5, 3, 1},   {2, 1, 1, 1, 1},  {3, 7, 9, 3, 2},  {4, 8, 8, 1, 1},  {5, 2, 17, 3, 1},
      {32, 4, 4, 3, 1},  {32, 4, 4, 3, 2},  // ResNeXt-50 32x4d (scaled-down widths per group)
      {32, 8, 8, 3, 1},  {32, 8, 8, 3, 2},  // ResNeXt-101 32x8d
      {8, 16, 16, 3, 1}, {8, 17, 15, 3, 1}, {6, 33, 7, 1, 1}, {4, 1, 8, 3, 1},  // channel multiplier
  };
  for (const auto& g : cases) {
    for (int64_t hw : {1, 5, 8}) {
      const auto s = conv_shape(1, hw, hw + 1, g.groups * g.cin_g, g.groups * g.cout_g, g.k, g.k, g.stride, g.stride,
                                g.k / 2, g.k / 2, 1, 1, g.groups);
      const Epilogue e = seed % 2 ? Epilogue::relu : Epilogue::none;
      if (!check(make_case(s, e, seed % 3 != 0, seed % 4 == 0, Data::integer, seed))) return;
      ++seed;
    }
  }
  // Per-group output channels around the tile widths.
  for (int64_t cout_g : edge_sizes()) {
    const auto s = conv_shape(1, 4, 5, 2 * 5, 2 * cout_g, 3, 3, 1, 1, 1, 1, 1, 1, 2);
    if (!check(make_case(s, Epilogue::none, true, false, Data::integer, seed++))) return;
  }
  ASSERT_TRUE(check(make_case(conv_shape(1, 14, 14, 256, 256, 3, 3, 1, 1, 1, 1, 1, 1, 32), Epilogue::relu, true,
                              false, Data::random, seed++)));
}

TEST_P(KernelConv, Depthwise) {
  uint64_t seed = 1200;
  // Channels around the dwconv vector widths (4, 8, 16) and their doubles.
  for (int64_t ch : {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 65}) {
    for (int64_t k : {3, 5}) {
      for (int64_t stride : {1, 2}) {
        for (int64_t hw : {1, 2, 7, 10}) {
          const auto s = conv_shape(1, hw, hw + 3, ch, ch, k, k, stride, stride, k / 2, k / 2, 1, 1, ch);
          const Epilogue e = seed % 2 ? Epilogue::relu : Epilogue::none;
          if (!check(make_case(s, e, seed % 3 != 0, seed % 4 == 0, Data::integer, seed))) return;
          ++seed;
        }
      }
    }
  }
  // 5x5 stride 2 (EfficientNet), unpadded, 7x7, and random data with every activation.
  ASSERT_TRUE(check(make_case(conv_shape(1, 29, 29, 40, 40, 5, 5, 2, 2, 2, 2, 1, 1, 40), Epilogue::silu, true, false,
                              Data::random, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 9, 8, 12, 12, 3, 3, 1, 1, 0, 0, 1, 1, 12), Epilogue::none, true, true,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(2, 9, 8, 20, 20, 7, 7, 1, 1, 3, 3, 1, 1, 20), Epilogue::none, true, true,
                              Data::integer, seed++)));
  for (Epilogue e : kEpilogues)
    ASSERT_TRUE(check(make_case(conv_shape(1, 12, 13, 37, 37, 3, 3, 1, 1, 1, 1, 1, 1, 37), e, true, true,
                                Data::random, seed++)));
}

// ------------------------------------------------------------ batch, residual

TEST_P(KernelConv, BatchZeroIsANoOp) {
  for (const auto& s : {conv_shape(0, 8, 8, 16, 32, 3, 3, 1, 1, 1, 1), conv_shape(0, 8, 8, 16, 32, 1, 1),
                        conv_shape(0, 8, 8, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16)}) {
    std::vector<float> w(static_cast<size_t>(w_elems(s)), 1.0f), b(static_cast<size_t>(s.out_c), 1.0f);
    kern::Conv2dKernel k(s, w.data(), b.data(), Epilogue::relu, isa());
    Guarded in(4), out(4), res(4);
    k.run(in.data(), out.data(), nullptr);
    k.run(in.data(), out.data(), res.data());
    for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(out[i])) << "batch 0 wrote output element " << i;
    EXPECT_TRUE(out.guards_intact());
    EXPECT_EQ(k.shape().batch, 0);
  }
}

TEST_P(KernelConv, BatchThreeImagesAreIndependent) {
  uint64_t seed = 1300;
  ASSERT_TRUE(check(make_case(conv_shape(3, 7, 9, 10, 12, 3, 3, 1, 1, 1, 1), Epilogue::relu, true, true,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(3, 7, 9, 10, 12, 1, 1), Epilogue::none, true, true, Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(3, 7, 9, 10, 12, 1, 1, 2, 2), Epilogue::none, true, false, Data::integer,
                              seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(3, 8, 7, 24, 24, 5, 5, 2, 2, 2, 2, 1, 1, 24), Epilogue::none, true, true,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(3, 5, 6, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 32), Epilogue::none, true, true,
                              Data::integer, seed++)));
  // Image 1 must depend on image 1 only: change image 0 and 2, image 1's output stays bit-identical.
  auto c = make_case(conv_shape(3, 6, 6, 8, 16, 3, 3, 1, 1, 1, 1), Epilogue::none, true, false, Data::random, seed++);
  Guarded a = run_conv(c, isa());
  const size_t per_in = static_cast<size_t>(in_elems(c.shape) / 3);
  const size_t per_out = static_cast<size_t>(out_elems(c.shape) / 3);
  for (size_t i = 0; i < per_in; ++i) {
    c.in[i] += 1.0f;
    c.in[2 * per_in + i] -= 1.0f;
  }
  Guarded b = run_conv(c, isa());
  EXPECT_EQ(std::memcmp(a.data() + per_out, b.data() + per_out, per_out * sizeof(float)), 0);
}

TEST_P(KernelConv, ResidualMayAliasOutput) {
  uint64_t seed = 1400;
  const ConvShape shapes[] = {
      conv_shape(1, 7, 9, 16, 33, 1, 1),                            // gemm
      conv_shape(2, 7, 9, 13, 20, 3, 3, 1, 1, 1, 1),                // igemm
      conv_shape(1, 9, 9, 24, 24, 3, 3, 1, 1, 1, 1, 1, 1, 24),      // depthwise
      conv_shape(1, 6, 6, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 32),      // grouped
      conv_shape(1, 14, 14, 8, 17, 1, 1, 2, 2),                     // 1x1 s2
  };
  for (const auto& s : shapes) {
    for (Epilogue e : kEpilogues) {
      const auto c = make_case(s, e, true, true, Data::integer, seed++);
      kern::Conv2dKernel k(c.shape, c.weight.data(), c.bias_ptr(), c.epilogue, isa());
      Guarded in(c.in), io(c.residual);
      k.run(in.data(), io.data(), io.data());  // out == residual
      EXPECT_TRUE(io.guards_intact());
      auto r = check_conv(c, io.data());
      ASSERT_TRUE(r) << "[" << pfv::isa_name(isa()) << "] out aliasing residual";
    }
  }
}

TEST_P(KernelConv, NoBiasNoResidual) {
  uint64_t seed = 1500;
  ASSERT_TRUE(check(make_case(conv_shape(1, 5, 5, 9, 19, 3, 3, 1, 1, 1, 1), Epilogue::none, false, false,
                              Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 5, 5, 9, 19, 1, 1), Epilogue::relu, false, false, Data::integer, seed++)));
  ASSERT_TRUE(check(make_case(conv_shape(1, 5, 5, 19, 19, 3, 3, 1, 1, 1, 1, 1, 1, 19), Epilogue::none, false, true,
                              Data::integer, seed++)));
}

// ------------------------------------------------------------ special values, activations

TEST_P(KernelConv, NaNAndInfPropagate) {
  // NaN in the input reaches exactly the outputs whose receptive field holds
  // it (times any weight, even 0), for every epilogue: relu(NaN) = NaN like
  // torch. +-Inf: checked for none/relu (silu(-inf) is NaN by torch's formula
  // but the limit is 0; not pinned down).
  uint64_t seed = 1600;
  const ConvShape shapes[] = {
      conv_shape(1, 6, 7, 8, 20, 1, 1),
      conv_shape(1, 6, 7, 8, 20, 3, 3, 1, 1, 1, 1),
      conv_shape(1, 6, 7, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),
      conv_shape(1, 6, 7, 16, 32, 3, 3, 2, 2, 1, 1, 1, 1, 8),
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const auto& s : shapes) {
    for (Epilogue e : kEpilogues) {
      auto c = make_case(s, e, true, true, Data::integer, seed++);
      c.in[5] = nan;                                                     // pixel (0,0), channel 5
      c.in[static_cast<size_t>((3 * s.in_w + 4) * s.in_c + 2)] = nan;  // pixel (3,4), channel 2
      c.residual[static_cast<size_t>(out_elems(s) - 1)] = nan;           // last output element
      if (e == Epilogue::none || e == Epilogue::relu) {
        c.in[static_cast<size_t>((5 * s.in_w + 6) * s.in_c + 1)] = inf;   // bottom-right area
        c.in[static_cast<size_t>((5 * s.in_w + 0) * s.in_c + 0)] = -inf;  // bottom-left area
      }
      Guarded out = run_conv(c, isa());
      auto r = check_conv(c, out.data());
      ASSERT_TRUE(r) << "[" << pfv::isa_name(isa()) << "]";
      int nans = 0;
      for (size_t i = 0; i < out.size(); ++i) nans += std::isnan(out[i]);
      EXPECT_GT(nans, 1) << "expected NaN outputs";  // the test data must actually exercise NaN
    }
  }
  // NaN in a bias: the whole channel is NaN.
  auto c = make_case(conv_shape(1, 4, 5, 8, 20, 1, 1), Epilogue::relu, true, false, Data::integer, seed++);
  c.bias[17] = nan;
  Guarded out = run_conv(c, isa());
  ASSERT_TRUE(check_conv(c, out.data()));
}

/// 1x1 conv with one input channel and weights (1, -1, 0.5): out = act(+-x)
/// exactly for a sweep of pre-activation values.
void check_activation_sweep(Isa isa, Epilogue e) {
  std::vector<float> xs;
  for (int i = -2000; i <= 2000; ++i) xs.push_back(static_cast<float>(i) * 0.0137f);  // [-27.4, 27.4]
  for (float v : {0.0f, -0.0f, 1e-30f, 1e-10f, 1e-6f, 0.5f, 1.0f, 5.0f, 10.0f, 15.9f, 16.0f, 17.3f, 20.0f, 30.0f,
                  40.0f, 50.0f, 80.0f, 87.0f, 88.0f, 88.72f, 88.73f, 89.0f, 100.0f, 103.97f, 104.5f, 200.0f, 1000.0f,
                  1e10f, 1e30f, std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
                  std::numeric_limits<float>::min()}) {
    xs.push_back(v);
    xs.push_back(-v);
  }
  ConvCase c;
  c.shape = conv_shape(1, 1, static_cast<int64_t>(xs.size()), 1, 3, 1, 1);
  c.epilogue = e;
  c.data = Data::random;  // tolerance mode
  c.in = xs;
  c.weight = {1.0f, -1.0f, 0.5f};
  Guarded out = run_conv(c, isa);
  auto r = check_conv(c, out.data());
  EXPECT_TRUE(r) << "[" << pfv::isa_name(isa) << "] " << epilogue_name(e);
}

TEST_P(KernelConv, ActivationAccuracyIncludingLargeMagnitudes) {
  for (Epilogue e : kEpilogues) check_activation_sweep(isa(), e);
}

TEST_P(KernelConv, ReluIsExactlyMaxZero) {
  // Sign of zero aside, relu passes values through bit-exactly.
  ConvCase c;
  std::vector<float> xs{-1.0f, 1.0f, 3.5f, -3.5f, 1e-38f, -1e-38f, std::numeric_limits<float>::denorm_min(), 7e30f};
  c.shape = conv_shape(1, 1, static_cast<int64_t>(xs.size()), 1, 1, 1, 1);
  c.epilogue = Epilogue::relu;
  c.in = xs;
  c.weight = {1.0f};
  Guarded out = run_conv(c, isa());
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(out[i], xs[i] > 0 ? xs[i] : 0.0f) << "x = " << xs[i];
}

// ------------------------------------------------------------ threads

TEST_P(KernelConv, BitIdenticalForAnyThreadCount) {
  CpuStateGuard restore;
  uint64_t seed = 1700;
  const ConvShape shapes[] = {
      conv_shape(1, 56, 56, 64, 256, 1, 1),                         // gemm, many tiles
      conv_shape(1, 28, 28, 128, 128, 3, 3, 1, 1, 1, 1),            // igemm
      conv_shape(1, 57, 57, 96, 96, 5, 5, 2, 2, 2, 2, 1, 1, 96),    // depthwise
      conv_shape(1, 28, 28, 256, 256, 3, 3, 1, 1, 1, 1, 1, 1, 32),  // grouped
      conv_shape(2, 7, 7, 2048, 64, 1, 1),                          // long reduction
  };
  for (const auto& s : shapes) {
    const auto c = make_case(s, Epilogue::silu, true, true, Data::random, seed++);
    std::vector<float> first;
    for (int threads : {1, 2, 3, 1}) {
      pfv::set_num_threads(threads);
      Guarded out = run_conv(c, isa());
      if (first.empty()) {
        first = out.to_vector();
        ASSERT_TRUE(check_conv(c, out.data(), nullptr));
      } else {
        EXPECT_TRUE(bitwise_equal(first, out.data())) << "[" << pfv::isa_name(isa()) << "] " << threads
                                                      << " threads differ from 1 thread: " << c.str();
      }
    }
  }
}

TEST_P(KernelConv, ConcurrentRunsOnOneKernel) {
  // run() is const: several user threads may share one kernel.
  const auto s = conv_shape(2, 14, 14, 32, 48, 3, 3, 1, 1, 1, 1);
  std::vector<ConvCase> cases;
  for (uint64_t i = 0; i < 4; ++i) cases.push_back(make_case(s, Epilogue::relu, true, true, Data::random, 1800 + i));
  for (auto& c : cases) c.weight = cases[0].weight, c.bias = cases[0].bias;  // one kernel, different data
  kern::Conv2dKernel k(s, cases[0].weight.data(), cases[0].bias_ptr(), Epilogue::relu, isa());
  std::vector<std::vector<float>> expected;
  for (const auto& c : cases) {
    Guarded out(static_cast<size_t>(out_elems(s)));
    k.run(c.in.data(), out.data(), c.residual.data());
    ASSERT_TRUE(check_conv(c, out.data()));
    expected.push_back(out.to_vector());
  }
  std::vector<std::vector<float>> got(cases.size(), std::vector<float>(static_cast<size_t>(out_elems(s))));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < cases.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) k.run(cases[t].in.data(), got[t].data(), cases[t].residual.data());
    });
  }
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < cases.size(); ++t) EXPECT_EQ(got[t], expected[t]) << "thread " << t;
}

// ------------------------------------------------------------ construction

TEST_P(KernelConv, DescriptionNamesTheTierAndShapeIsKept) {
  const ConvShape shapes[] = {conv_shape(1, 8, 8, 16, 32, 1, 1), conv_shape(1, 8, 8, 16, 32, 3, 3, 1, 1, 1, 1),
                              conv_shape(1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),
                              conv_shape(1, 8, 8, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 32)};
  for (const auto& s : shapes) {
    std::vector<float> w(static_cast<size_t>(w_elems(s)), 0.5f);
    kern::Conv2dKernel k(s, w.data(), nullptr, Epilogue::none, isa());
    const std::string d = k.description();
    EXPECT_FALSE(d.empty());
    // A kernel built for a tier must not use a higher one (it would crash on
    // CPUs without it, and the lower tier would go untested here).
    for (Isa higher : all_tiers()) {
      if (higher > isa()) {
        EXPECT_FALSE(Contains(d, pfv::isa_name(higher))) << d << " built for " << pfv::isa_name(isa());
      }
    }
    EXPECT_TRUE(Contains(d, pfv::isa_name(isa()))) << "description should name the microkernel's tier: " << d;
    EXPECT_EQ(k.shape().out_h, s.out_h);
    EXPECT_EQ(k.shape().in_c, s.in_c);
    EXPECT_EQ(k.shape().groups, s.groups);
  }
}

TEST_P(KernelConv, WeightsAreCopiedAtConstruction) {
  auto c = make_case(conv_shape(1, 5, 6, 7, 9, 3, 3, 1, 1, 1, 1), Epilogue::none, true, false, Data::integer, 1900);
  kern::Conv2dKernel k(c.shape, c.weight.data(), c.bias_ptr(), c.epilogue, isa());
  const ConvCase original = c;
  std::fill(c.weight.begin(), c.weight.end(), std::numeric_limits<float>::quiet_NaN());
  std::fill(c.bias.begin(), c.bias.end(), std::numeric_limits<float>::quiet_NaN());
  Guarded out(static_cast<size_t>(out_elems(c.shape)));
  k.run(c.in.data(), out.data(), nullptr);
  EXPECT_TRUE(check_conv(original, out.data()));
}

TEST_P(KernelConv, InconsistentShapesThrowInvalidArgument) {
  const std::vector<float> w(4096, 1.0f);
  auto expect_invalid = [&](ConvShape s, const char* what) {
    const std::string m = message_of<pfv::InvalidArgument>(
        [&] { kern::Conv2dKernel k(s, w.data(), nullptr, Epilogue::none, isa()); });
    EXPECT_FALSE(m.empty()) << what;
  };
  const auto good = conv_shape(1, 8, 8, 4, 8, 3, 3, 1, 1, 1, 1);
  ConvShape s = good;
  s.out_h = 7;
  expect_invalid(s, "out_h differs from torch's formula");
  s = good;
  s.out_w = 9;
  expect_invalid(s, "out_w differs from torch's formula");
  s = conv_shape(1, 8, 8, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4);
  expect_invalid(s, "in_c not divisible by groups");
  s = conv_shape(1, 8, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 4);
  expect_invalid(s, "out_c not divisible by groups");
  s = good;
  s.groups = 0;
  expect_invalid(s, "groups 0");
  s = good;
  s.stride_h = 0;
  expect_invalid(s, "stride 0");
  s = good;
  s.dilation_w = 0;
  expect_invalid(s, "dilation 0");
  s = good;
  s.kernel_h = 0;
  expect_invalid(s, "kernel 0");
  s = good;
  s.pad_w = -1;
  expect_invalid(s, "negative padding");
  s = good;
  s.batch = -1;
  expect_invalid(s, "negative batch");
  s = conv_shape(1, 2, 2, 4, 8, 5, 5);  // kernel larger than the input: torch rejects it
  s.out_h = s.out_w = 0;
  expect_invalid(s, "kernel larger than the padded input");
}

TEST_P(KernelConv, UnalignedBuffers) {
  // The contract states no alignment requirement: pointers offset by one float.
  uint64_t seed = 2000;
  const ConvShape shapes[] = {conv_shape(1, 7, 9, 16, 33, 1, 1), conv_shape(1, 7, 9, 13, 20, 3, 3, 1, 1, 1, 1),
                              conv_shape(1, 9, 9, 24, 24, 3, 3, 1, 1, 1, 1, 1, 1, 24)};
  for (const auto& s : shapes)
    ASSERT_TRUE(check(make_case(s, Epilogue::relu, true, true, Data::integer, seed++), /*misalign=*/1));
}

INSTANTIATE_TEST_SUITE_P(Tiers, KernelConv, ::testing::ValuesIn(all_tiers()), IsaName());

TEST(KernelConstruction, TierAboveDetectedOrInvalidThrowsInsteadOfCrashing) {
  // Building for a tier the CPU lacks must be refused up front (running it
  // would die with SIGILL); so must a value outside the enum.
  const auto s = conv_shape(1, 4, 4, 8, 8, 3, 3, 1, 1, 1, 1);
  std::vector<float> w(static_cast<size_t>(w_elems(s)), 1.0f);
  for (int v : {-1, 3, 42}) {
    EXPECT_FALSE(message_of<pfv::InvalidArgument>([&] {
                   kern::Conv2dKernel k(s, w.data(), nullptr, Epilogue::none, static_cast<Isa>(v));
                 }).empty());
    EXPECT_FALSE(message_of<pfv::InvalidArgument>([&] {
                   kern::LinearKernel k(8, 8, w.data(), nullptr, Epilogue::none, static_cast<Isa>(v));
                 }).empty());
  }
  if (pfv::detected_isa() == Isa::avx512) GTEST_SKIP() << "this CPU has every tier; nothing above detected to refuse";
  const Isa above = static_cast<Isa>(static_cast<int>(pfv::detected_isa()) + 1);
  const std::string m = message_of<pfv::InvalidArgument>(
      [&] { kern::Conv2dKernel k(s, w.data(), nullptr, Epilogue::none, above); });
  EXPECT_TRUE(Contains(m, pfv::isa_name(above))) << m;
  EXPECT_FALSE(message_of<pfv::InvalidArgument>([&] {
                 kern::LinearKernel k(8, 8, w.data(), nullptr, Epilogue::none, above);
               }).empty());
}

// ================================================================== Linear

struct LinearCase {
  int64_t rows, in, out;
  Epilogue epilogue;
  Data data;
  std::vector<float> x, w, b;
};

LinearCase make_linear(int64_t rows, int64_t in, int64_t out, Epilogue e, bool bias, Data data, uint64_t seed) {
  LinearCase c{rows, in, out, e, data, {}, {}, {}};
  Rng rng(seed);
  c.x.resize(static_cast<size_t>(rows * in));
  c.w.resize(static_cast<size_t>(out * in));
  fill(c.x, rng, data, -3, 3, 1.0f);
  fill(c.w, rng, data, -2, 2, 1.0f / std::sqrt(static_cast<float>(in)));
  if (bias) {
    c.b.resize(static_cast<size_t>(out));
    fill(c.b, rng, data, -8, 8, 0.5f);
  }
  return c;
}

/// The linear layer is the 1x1 convolution of a rows x 1 image: reuse that
/// reference and tolerance.
ConvCase as_conv(const LinearCase& l) {
  ConvCase c;
  c.shape = conv_shape(1, l.rows, 1, l.in, l.out, 1, 1);
  c.epilogue = l.epilogue;
  c.data = l.data;
  c.in = l.x;
  c.weight = l.w;
  c.bias = l.b;
  return c;
}

class KernelLinear : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam()); }
  bool check(const LinearCase& l) {
    kern::LinearKernel k(l.in, l.out, l.w.data(), l.b.empty() ? nullptr : l.b.data(), l.epilogue, GetParam());
    Guarded x(l.x), y(static_cast<size_t>(l.rows * l.out));
    k.run(x.data(), l.rows, y.data());
    EXPECT_TRUE(y.guards_intact()) << "wrote outside y";
    EXPECT_TRUE(bitwise_equal(l.x, x.data())) << "modified x";
    auto r = check_conv(as_conv(l), y.data());
    EXPECT_TRUE(r) << "[" << pfv::isa_name(GetParam()) << "] linear rows=" << l.rows << " in=" << l.in
                   << " out=" << l.out;
    return static_cast<bool>(r) && !HasFailure();
  }
};

TEST_P(KernelLinear, EdgesRowsOutFeatures) {
  uint64_t seed = 3000;
  for (int64_t rows : {1, 2, 3, 5, 6, 7, 12, 13, 33}) {
    for (int64_t out : edge_sizes()) {
      for (int64_t in : {1, 3, 8, 17, 64, 129}) {
        const Epilogue e = seed % 2 ? Epilogue::relu : Epilogue::none;
        if (!check(make_linear(rows, in, out, e, seed % 3 != 0, Data::integer, seed))) return;
        ++seed;
      }
    }
  }
}

TEST_P(KernelLinear, ClassifierShapesRandomData) {
  uint64_t seed = 3100;
  for (int64_t in : {512, 1280, 1408, 1536, 1792, 2048}) {
    for (int64_t rows : {1, 3}) {
      ASSERT_TRUE(check(make_linear(rows, in, 1000, Epilogue::none, true, Data::random, seed++)));
      ASSERT_TRUE(check(make_linear(rows, in, 1000, Epilogue::none, true, Data::integer, seed++)));
    }
  }
  for (Epilogue e : kEpilogues) ASSERT_TRUE(check(make_linear(4, 100, 37, e, true, Data::random, seed++)));
}

TEST_P(KernelLinear, ZeroRowsIsANoOp) {
  std::vector<float> w(12, 1.0f);
  kern::LinearKernel k(3, 4, w.data(), nullptr, Epilogue::none, GetParam());
  Guarded x(3), y(4);
  k.run(x.data(), 0, y.data());
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(y[i]));
  EXPECT_TRUE(y.guards_intact());
}

TEST_P(KernelLinear, NaNPropagatesThroughRelu) {
  auto l = make_linear(3, 20, 17, Epilogue::relu, true, Data::integer, 3200);
  l.x[25] = std::numeric_limits<float>::quiet_NaN();  // row 1
  ASSERT_TRUE(check(l));
}

TEST_P(KernelLinear, BitIdenticalForAnyThreadCount) {
  CpuStateGuard restore;
  const auto l = make_linear(8, 2048, 1000, Epilogue::none, true, Data::random, 3300);
  kern::LinearKernel k(l.in, l.out, l.w.data(), l.b.data(), l.epilogue, GetParam());
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    pfv::set_num_threads(threads);
    std::vector<float> y(static_cast<size_t>(l.rows * l.out));
    k.run(l.x.data(), l.rows, y.data());
    if (first.empty())
      first = y;
    else
      EXPECT_EQ(y, first) << threads << " threads";
  }
}

TEST_P(KernelLinear, DescriptionDoesNotNameAHigherTier) {
  std::vector<float> w(64 * 32, 1.0f);
  kern::LinearKernel k(64, 32, w.data(), nullptr, Epilogue::none, GetParam());
  const std::string d = k.description();
  EXPECT_FALSE(d.empty());
  for (Isa higher : all_tiers()) {
    if (higher > GetParam()) {
      EXPECT_FALSE(Contains(d, pfv::isa_name(higher))) << d;
    }
  }
  EXPECT_TRUE(Contains(d, pfv::isa_name(GetParam()))) << d;
}

INSTANTIATE_TEST_SUITE_P(Tiers, KernelLinear, ::testing::ValuesIn(all_tiers()), IsaName());

}  // namespace

// A kernel built from a donor (same layer, another input size) shares the
// packed weights and computes exactly what a freshly packed kernel computes.
TEST(KernelConvShare, DonorKernelEqualsFreshKernelAtAnotherSize) {
  for (pfv::Isa isa : {pfv::Isa::scalar, pfv::Isa::avx2, pfv::Isa::avx512}) {
    if (isa > pfv::detected_isa()) {
      ASSERT_GT(isa, pfv_test::required_isa()) << "PYFLAME_VISION_REQUIRE_ISA requires the " << pfv::isa_name(isa)
                                               << " tier, which this CPU lacks";
      std::printf("[   NOTE   ] tier %s not run: this CPU lacks it\n", pfv::isa_name(isa));
      continue;
    }
    for (int64_t groups : {1, 8, 32}) {
      kern::ConvShape a;
      a.batch = 1, a.in_h = 9, a.in_w = 11, a.in_c = 32, a.out_c = 64, a.kernel_h = a.kernel_w = 3;
      a.pad_h = a.pad_w = 1, a.stride_h = a.stride_w = 2, a.groups = groups;
      a.out_h = 5, a.out_w = 6;
      if (groups == 32) a.out_c = 32;  // depthwise
      std::vector<float> w(static_cast<size_t>(a.out_c * (a.in_c / groups) * 9)), bias(static_cast<size_t>(a.out_c));
      for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 7919) % 13) - 6.0f;
      for (size_t i = 0; i < bias.size(); ++i) bias[i] = static_cast<float>(i % 5);
      kern::Conv2dKernel first(a, w.data(), bias.data(), kern::Epilogue::relu, isa);
      kern::ConvShape b = a;
      b.batch = 2, b.in_h = 14, b.in_w = 7, b.out_h = 7, b.out_w = 4;
      kern::Conv2dKernel shared(b, first);
      kern::Conv2dKernel fresh(b, w.data(), bias.data(), kern::Epilogue::relu, isa);
      std::vector<float> in(static_cast<size_t>(b.batch * b.in_h * b.in_w * b.in_c));
      for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>((i * 104729) % 17) - 8.0f;
      const size_t n_out = static_cast<size_t>(b.batch * b.out_h * b.out_w * b.out_c);
      std::vector<float> o1(n_out, std::numeric_limits<float>::quiet_NaN()), o2 = o1;
      shared.run(in.data(), o1.data(), nullptr);
      fresh.run(in.data(), o2.data(), nullptr);
      ASSERT_EQ(std::memcmp(o1.data(), o2.data(), n_out * sizeof(float)), 0) << pfv::isa_name(isa) << " g" << groups;
      EXPECT_EQ(shared.description(), fresh.description());
      kern::ConvShape other = b;
      other.kernel_h = other.kernel_w = 1, other.pad_h = other.pad_w = 0, other.out_h = 7, other.out_w = 4;
      EXPECT_THROW(kern::Conv2dKernel(other, first), pfv::InvalidArgument);
    }
  }
}
