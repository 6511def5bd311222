// Shape functions, parameters, MACs and constructor validation of every leaf
// layer in nn/layers.h, against torch's formulas. Expected values were
// checked with torch 2.x (nn.Conv2d, nn.MaxPool2d, ... on zero tensors).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/error.h"
#include "pyflame_vision/nn/layers.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace nn = pyflame_vision::nn;
using pfv::DType;
using pfv::Shape;
using pfv::TensorSpec;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

Shape infer1(const nn::Layer& layer, const Shape& in, DType dtype = DType::float32) {
  return layer.infer({TensorSpec(in, dtype)}).shape();
}

Shape infer2(const nn::Layer& layer, const Shape& a, const Shape& b) {
  return layer.infer({TensorSpec(a), TensorSpec(b)}).shape();
}

int64_t macs1(const nn::Layer& layer, const Shape& in) {
  const std::vector<TensorSpec> inputs{TensorSpec(in)};
  return layer.macs(inputs, layer.infer(inputs));
}

/// torch's Conv2d output formula, written independently.
int64_t torch_conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

}  // namespace

// ================================================================== Size2

TEST(Size2, ConstructionAndStr) {
  nn::Size2 sq(3);
  EXPECT_EQ(sq.h, 3);
  EXPECT_EQ(sq.w, 3);
  nn::Size2 r(3, 5);
  EXPECT_EQ(r.h, 3);
  EXPECT_EQ(r.w, 5);
  EXPECT_EQ(r.str(), "(3, 5)");
  EXPECT_EQ(sq.str(), "(3, 3)");
  EXPECT_TRUE(nn::Size2(2) == nn::Size2(2, 2));
  EXPECT_TRUE(nn::Size2(2, 1) != nn::Size2(1, 2));
}

// ================================================================== Conv2d

TEST(Conv2d, ResNetStem) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false));
  EXPECT_EQ(infer1(conv, {1, 3, 224, 224}), (Shape{1, 64, 112, 112}));
  EXPECT_EQ(infer1(conv, {8, 3, 225, 97}), (Shape{8, 64, 113, 49}));
  EXPECT_EQ(std::string(conv.op_name()), "conv2d");
  EXPECT_EQ(conv.type_name(), "Conv2d");
}

TEST(Conv2d, OutputFormulaOverManyConfigurations) {
  for (int64_t k : {1, 2, 3, 5, 7})
    for (int64_t s : {1, 2, 3})
      for (int64_t p : {0, 1, 3})
        for (int64_t d : {1, 2})
          for (int64_t h : {7, 8, 13, 32}) {
            if (h + 2 * p < d * (k - 1) + 1) continue;
            SCOPED_TRACE("k=" + std::to_string(k) + " s=" + std::to_string(s) + " p=" + std::to_string(p) +
                         " d=" + std::to_string(d) + " h=" + std::to_string(h));
            nn::Conv2d conv(nn::Conv2dOptions(4, 6, k).stride(s).padding(p).dilation(d));
            const int64_t o = torch_conv_out(h, k, s, p, d);
            EXPECT_EQ(infer1(conv, {2, 4, h, h + 1}), (Shape{2, 6, o, torch_conv_out(h + 1, k, s, p, d)}));
            EXPECT_EQ(nn::conv_output_size(h, k, s, p, d), o);
          }
}

TEST(Conv2d, RectangularStrideDilationGroups) {
  // torch: nn.Conv2d(16, 32, (3, 5), stride=(1, 2), padding=(1, 0), dilation=2, groups=4)
  //        on zeros(2, 16, 20, 30) -> [2, 32, 18, 11]
  nn::Conv2d conv(nn::Conv2dOptions(16, 32, nn::Size2(3, 5))
                      .stride(nn::Size2(1, 2))
                      .padding(nn::Size2(1, 0))
                      .dilation(2)
                      .groups(4));
  EXPECT_EQ(infer1(conv, {2, 16, 20, 30}), (Shape{2, 32, 18, 11}));
  // macs = N * Cout * Ho * Wo * (Cin / groups) * kh * kw
  EXPECT_EQ(macs1(conv, {2, 16, 20, 30}), int64_t{2} * 32 * 18 * 11 * 4 * 3 * 5);
  EXPECT_EQ(conv.num_local_parameters(), 32 * 4 * 3 * 5 + 32);
}

TEST(Conv2d, ParameterShapes) {
  nn::Conv2d conv(nn::Conv2dOptions(16, 32, nn::Size2(3, 5)).groups(4));
  const auto& p = conv.local_parameters();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[0].spec.shape(), (Shape{32, 4, 3, 5}));
  EXPECT_EQ(p[0].spec.dtype(), DType::float32);
  EXPECT_EQ(p[1].name, "bias");
  EXPECT_EQ(p[1].spec.shape(), (Shape{32}));
  EXPECT_TRUE(conv.local_buffers().empty());
  EXPECT_EQ(conv.num_parameters(), 32 * 4 * 15 + 32);

  nn::Conv2d nobias(nn::Conv2dOptions(3, 64, 7).bias(false));
  ASSERT_EQ(nobias.local_parameters().size(), 1u);
  EXPECT_EQ(nobias.local_parameters()[0].name, "weight");
  EXPECT_EQ(nobias.num_parameters(), 64 * 3 * 49);

  // Depthwise: weight [C, 1, k, k].
  nn::Conv2d dw(nn::Conv2dOptions(96, 96, 3).groups(96).bias(false));
  EXPECT_EQ(dw.local_parameters()[0].spec.shape(), (Shape{96, 1, 3, 3}));
}

TEST(Conv2d, Macs) {
  nn::Conv2d stem(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false));
  EXPECT_EQ(macs1(stem, {1, 3, 224, 224}), int64_t{118013952});  // 64*112*112*3*7*7
  EXPECT_EQ(macs1(stem, {4, 3, 224, 224}), int64_t{4} * 118013952);
  EXPECT_EQ(macs1(stem, {0, 3, 224, 224}), 0);
  nn::Conv2d dw(nn::Conv2dOptions(32, 32, 3).padding(1).groups(32));
  EXPECT_EQ(macs1(dw, {1, 32, 112, 112}), int64_t{32} * 112 * 112 * 1 * 9);
}

TEST(Conv2d, PreservesDtypeAndBatch) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).padding(1));
  const TensorSpec out = conv.infer({TensorSpec({5, 3, 10, 12}, DType::float64)});
  EXPECT_EQ(out.shape(), (Shape{5, 8, 10, 12}));
  EXPECT_EQ(out.dtype(), DType::float64);
  EXPECT_EQ(infer1(conv, {0, 3, 10, 12}), (Shape{0, 8, 10, 12}));
}

TEST(Conv2d, WrongChannelCountThrows) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false));
  const std::string msg = message_of<pfv::ShapeError>([&] { infer1(conv, {1, 4, 224, 224}); });
  EXPECT_TRUE(Contains(msg, "expected 3 input channels, got 4"));
  EXPECT_THROW(infer1(conv, {1, 1, 224, 224}), pfv::ShapeError);
}

TEST(Conv2d, InputSmallerThanDilatedKernelThrows) {
  // Dilated kernel: 2 * (3 - 1) + 1 = 5.
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).dilation(2));
  EXPECT_THROW(infer1(conv, {1, 3, 4, 4}), pfv::ShapeError);
  EXPECT_THROW(infer1(conv, {1, 3, 5, 4}), pfv::ShapeError);  // width alone too small
  EXPECT_THROW(infer1(conv, {1, 3, 4, 5}), pfv::ShapeError);  // height alone too small
  EXPECT_EQ(infer1(conv, {1, 3, 5, 5}), (Shape{1, 8, 1, 1}));  // exactly fits
  // Padding makes it fit: torch gives [1, 8, 2, 2] for padding=1.
  nn::Conv2d padded(nn::Conv2dOptions(3, 8, 3).dilation(2).padding(1));
  EXPECT_EQ(infer1(padded, {1, 3, 4, 4}), (Shape{1, 8, 2, 2}));
  EXPECT_THROW(infer1(conv, {1, 3, 0, 8}), pfv::ShapeError);
}

TEST(Conv2d, NonFourDimensionalInputThrows) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3));
  EXPECT_THROW(infer1(conv, {3, 32, 32}), pfv::ShapeError);
  EXPECT_THROW(infer1(conv, {1, 1, 3, 32, 32}), pfv::ShapeError);
  EXPECT_THROW(infer1(conv, {}), pfv::ShapeError);
  const std::string msg = message_of<pfv::ShapeError>([&] { infer1(conv, {3, 32, 32}); });
  EXPECT_TRUE(Contains(msg, "3-D"));
}

TEST(Conv2d, HugePaddingOverflowsInsteadOfWrapping) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 1).padding(int64_t{1} << 62));
  EXPECT_THROW(infer1(conv, {1, 3, 8, 8}), pfv::ShapeOverflowError);
  // Output element count overflow: [1, 8, ~2^41, ~2^41].
  nn::Conv2d conv2(nn::Conv2dOptions(3, 8, 1).padding(int64_t{1} << 40));
  EXPECT_THROW(infer1(conv2, {1, 3, 8, 8}), pfv::ShapeOverflowError);
}

TEST(Conv2d, ConstructorValidation) {
  const std::string msg =
      message_of<pfv::InvalidArgument>([] { nn::Conv2d(nn::Conv2dOptions(3, 64, 3).groups(2)); });
  EXPECT_TRUE(Contains(msg, "in_channels"));
  EXPECT_TRUE(Contains(msg, "groups"));
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 6, 3).groups(4)), pfv::InvalidArgument);  // out % groups
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(0, 6, 3)), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 0, 3)), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 6, 0)), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 6, nn::Size2(3, 0))), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).stride(0)), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).padding(-1)), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).dilation(0)), pfv::InvalidArgument);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 6, 3).groups(0)), pfv::InvalidArgument);
  EXPECT_NO_THROW(nn::Conv2d(nn::Conv2dOptions(4, 8, 3).groups(4)));
}

TEST(Conv2d, HugeWeightOverflowsAtConstruction) {
  const int64_t big = int64_t{1} << 31;
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(big, big, nn::Size2(big, big))), pfv::ShapeOverflowError);
}

TEST(ConvOutputSize, FreeFunction) {
  EXPECT_EQ(nn::conv_output_size(224, 7, 2, 3, 1), 112);
  EXPECT_EQ(nn::conv_output_size(7, 3, 2, 1, 1), 4);
  EXPECT_EQ(nn::conv_output_size(5, 3, 1, 0, 2), 1);
  EXPECT_EQ(nn::conv_output_size(1, 1, 2, 0, 1), 1);
  EXPECT_THROW(nn::conv_output_size(4, 3, 1, 0, 2), pfv::ShapeError);
  EXPECT_THROW(nn::conv_output_size(std::numeric_limits<int64_t>::max(), 3, 1, 1, 1), pfv::ShapeOverflowError);
}

// ================================================================== BatchNorm2d

TEST(BatchNorm2d, IdentityShapeWithChannelCheck) {
  nn::BatchNorm2d bn(64);
  EXPECT_EQ(infer1(bn, {2, 64, 7, 9}), (Shape{2, 64, 7, 9}));
  EXPECT_EQ(bn.infer({TensorSpec({1, 64, 3, 3}, DType::float16)}).dtype(), DType::float16);
  const std::string msg = message_of<pfv::ShapeError>([&] { infer1(bn, {2, 32, 7, 9}); });
  EXPECT_TRUE(Contains(msg, "64"));
  EXPECT_TRUE(Contains(msg, "32"));
  EXPECT_THROW(infer1(bn, {2, 64}), pfv::ShapeError);  // torch: expected 4D input
  EXPECT_THROW(infer1(bn, {2, 64, 7}), pfv::ShapeError);
  EXPECT_EQ(std::string(bn.op_name()), "batch_norm2d");
  EXPECT_EQ(bn.num_features(), 64);
  EXPECT_DOUBLE_EQ(bn.eps(), 1e-5);
  EXPECT_EQ(macs1(bn, {2, 64, 7, 9}), 0);
}

TEST(BatchNorm2d, ParametersAndBuffers) {
  nn::BatchNorm2d bn(32);
  const auto& p = bn.local_parameters();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[0].spec, TensorSpec({32}));
  EXPECT_EQ(p[1].name, "bias");
  EXPECT_EQ(p[1].spec, TensorSpec({32}));
  const auto& b = bn.local_buffers();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].name, "running_mean");
  EXPECT_EQ(b[0].spec, TensorSpec({32}, DType::float32));
  EXPECT_EQ(b[1].name, "running_var");
  EXPECT_EQ(b[1].spec, TensorSpec({32}, DType::float32));
  EXPECT_EQ(b[2].name, "num_batches_tracked");
  EXPECT_EQ(b[2].spec.shape(), Shape{});
  EXPECT_EQ(b[2].spec.dtype(), DType::int64);
  EXPECT_EQ(bn.num_parameters(), 64);  // buffers excluded

  const auto sd = bn.state_dict_spec();
  ASSERT_EQ(sd.size(), 5u);
  const char* order[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(sd[i].name, order[i]);
}

TEST(BatchNorm2d, ConstructorValidation) {
  EXPECT_THROW(nn::BatchNorm2d(0), pfv::InvalidArgument);
  EXPECT_THROW(nn::BatchNorm2d(-4), pfv::InvalidArgument);
  EXPECT_THROW(nn::BatchNorm2d(4, 0.0), pfv::InvalidArgument);
  EXPECT_THROW(nn::BatchNorm2d(4, -1e-5), pfv::InvalidArgument);
}

// ================================================================== activations

TEST(Activations, IdentityShapes) {
  nn::ReLU relu(true);
  nn::SiLU silu;
  nn::Sigmoid sigmoid;
  for (const nn::Layer* l : std::vector<const nn::Layer*>{&relu, &silu, &sigmoid}) {
    SCOPED_TRACE(l->type_name());
    EXPECT_EQ(infer1(*l, {2, 3, 5, 7}), (Shape{2, 3, 5, 7}));
    EXPECT_EQ(infer1(*l, {4, 10}), (Shape{4, 10}));
    EXPECT_EQ(infer1(*l, {}), Shape{});
    EXPECT_EQ(infer1(*l, {0, 3}), (Shape{0, 3}));
    EXPECT_EQ(l->infer({TensorSpec({2, 2}, DType::bfloat16)}).dtype(), DType::bfloat16);
    EXPECT_EQ(l->num_parameters(), 0);
    EXPECT_EQ(macs1(*l, {2, 3, 5, 7}), 0);
  }
  EXPECT_EQ(std::string(relu.op_name()), "relu");
  EXPECT_EQ(std::string(silu.op_name()), "silu");
  EXPECT_EQ(std::string(sigmoid.op_name()), "sigmoid");
  EXPECT_EQ(relu.kind(), nn::Activation::ReLU);
  EXPECT_EQ(silu.kind(), nn::Activation::SiLU);
  EXPECT_EQ(sigmoid.kind(), nn::Activation::Sigmoid);
}

// ================================================================== MaxPool2d

TEST(MaxPool2d, ResNetStemPool) {
  nn::MaxPool2d pool(3, 2, 1);
  EXPECT_EQ(infer1(pool, {1, 64, 112, 112}), (Shape{1, 64, 56, 56}));
  EXPECT_EQ(infer1(pool, {1, 64, 113, 1}), (Shape{1, 64, 57, 1}));
  EXPECT_EQ(std::string(pool.op_name()), "max_pool2d");
  EXPECT_EQ(pool.num_parameters(), 0);
}

struct PoolCase {
  int64_t in, k, s, p, d;
  bool ceil;
  int64_t expected;
};

TEST(MaxPool2d, PoolingOutputShapeMatchesTorch) {
  // Every expected value is nn.MaxPool2d(k, s, p, d, ceil_mode)(zeros(1, 1, in, in)).shape[-1] from torch.
  const PoolCase cases[] = {
      {112, 3, 2, 1, 1, false, 56},
      {112, 3, 2, 1, 1, true, 57},
      {5, 2, 2, 0, 1, false, 2},
      {5, 2, 2, 0, 1, true, 3},  // the partial last window is kept in ceil mode
      {4, 3, 2, 1, 1, true, 3},  // last window starts at 3, inside the image: no correction
      {3, 2, 2, 1, 1, true, 2},  // last window would start in the right padding: 3 -> 2
      {5, 2, 2, 1, 1, true, 3},  // same correction: 4 -> 3
      {1, 2, 2, 1, 1, true, 1},  // same correction: 2 -> 1
      {6, 3, 3, 1, 1, true, 3},
      {7, 3, 2, 0, 1, true, 3},
      {7, 3, 2, 0, 1, false, 3},
      {1, 3, 2, 1, 1, false, 1},
      {8, 3, 1, 1, 2, false, 6},  // dilation 2: effective kernel 5
      {9, 2, 2, 0, 1, false, 4},
      {9, 2, 2, 0, 1, true, 5},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("in=" + std::to_string(c.in) + " k=" + std::to_string(c.k) + " s=" + std::to_string(c.s) +
                 " p=" + std::to_string(c.p) + " d=" + std::to_string(c.d) + " ceil=" + std::to_string(c.ceil));
    EXPECT_EQ(nn::pool_output_size(c.in, c.k, c.s, c.p, c.d, c.ceil), c.expected);
    nn::MaxPool2d pool(c.k, c.s, c.p, c.d, c.ceil);
    EXPECT_EQ(infer1(pool, {2, 3, c.in, c.in}), (Shape{2, 3, c.expected, c.expected}));
  }
}

TEST(MaxPool2d, PoolOutputSizeUsesFloorDivision) {
  // in=2, k=3, s=2: numerator -1 -> floor(-1/2) + 1 = 0 (truncation would wrongly give 1).
  EXPECT_EQ(nn::pool_output_size(2, 3, 2, 0, 1, false), 0);
  EXPECT_EQ(nn::pool_output_size(1, 3, 1, 0, 1, false), -1);
}

TEST(MaxPool2d, OutputSmallerThanOneThrows) {
  // torch: "Given input size: (1x2x2). Calculated output size: (1x0x0). Output size is too small"
  nn::MaxPool2d pool(3, 2);
  EXPECT_THROW(infer1(pool, {1, 1, 2, 2}), pfv::ShapeError);
  EXPECT_THROW(infer1(pool, {1, 1, 8, 2}), pfv::ShapeError);
  const std::string msg = message_of<pfv::ShapeError>([&] { infer1(pool, {1, 1, 2, 2}); });
  EXPECT_TRUE(Contains(msg, "too small"));
  EXPECT_EQ(infer1(pool, {1, 1, 3, 3}), (Shape{1, 1, 1, 1}));
}

TEST(MaxPool2d, RectangularAndDefaultStride) {
  // torch: nn.MaxPool2d((3, 1), (2, 1)) on zeros(1, 8, 9, 5) -> [1, 8, 4, 5]
  nn::MaxPool2d pool(nn::Size2(3, 1), nn::Size2(2, 1));
  EXPECT_EQ(infer1(pool, {1, 8, 9, 5}), (Shape{1, 8, 4, 5}));
  // stride defaults to the kernel size
  nn::MaxPool2d p2(2);
  EXPECT_EQ(p2.stride(), nn::Size2(2));
  EXPECT_EQ(p2.padding(), nn::Size2(0));
  EXPECT_EQ(p2.dilation(), nn::Size2(1));
  EXPECT_FALSE(p2.ceil_mode());
  EXPECT_EQ(infer1(p2, {1, 3, 7, 7}), (Shape{1, 3, 3, 3}));
  EXPECT_EQ(infer1(p2, {0, 3, 4, 4}), (Shape{0, 3, 2, 2}));  // empty batch is fine in torch
}

TEST(MaxPool2d, RejectsBadInputs) {
  nn::MaxPool2d pool(2);
  EXPECT_THROW(infer1(pool, {3, 4, 4}), pfv::ShapeError);
  EXPECT_THROW(infer1(pool, {1, 0, 4, 4}), pfv::ShapeError);
  EXPECT_THROW(infer1(pool, {1, 3, 0, 4}), pfv::ShapeError);
  EXPECT_THROW(infer1(pool, {1, 3, 4, 0}), pfv::ShapeError);
}

TEST(MaxPool2d, ConstructorValidation) {
  EXPECT_THROW(nn::MaxPool2d(3, 2, 2), pfv::InvalidArgument);  // padding > kernel / 2
  EXPECT_THROW(nn::MaxPool2d(2, 2, 2), pfv::InvalidArgument);
  EXPECT_THROW(nn::MaxPool2d(nn::Size2(3, 1), 1, nn::Size2(1, 1)), pfv::InvalidArgument);  // 1 > 1/2 on w
  EXPECT_NO_THROW(nn::MaxPool2d(3, 2, 1));
  EXPECT_NO_THROW(nn::MaxPool2d(2, 2, 1));
  EXPECT_THROW(nn::MaxPool2d(0), pfv::InvalidArgument);
  EXPECT_THROW(nn::MaxPool2d(2, -1), pfv::InvalidArgument);
  EXPECT_THROW(nn::MaxPool2d(2, 2, -1), pfv::InvalidArgument);
  EXPECT_THROW(nn::MaxPool2d(2, 2, 0, 0), pfv::InvalidArgument);
}

TEST(MaxPool2d, PaddingLimitIsHalfTheKernelNotTheDilatedKernel) {
  // torch's pool2d_shape_check requires kernel/2 >= pad (in addition to the
  // effective-kernel check), and the header documents "padding <= kernel/2":
  //   nn.MaxPool2d(2, 2, padding=2, dilation=3)(zeros(1, 1, 8, 8))
  //   -> RuntimeError: pad should be smaller than or equal to half of kernel size,
  //      but got padW = 2, padH = 2, kW = 2, kH = 2
  //   nn.MaxPool2d(3, 1, padding=2, dilation=2) -> same error (kW = 3).
  EXPECT_THROW(nn::MaxPool2d(2, 2, 2, 3), pfv::InvalidArgument);
  EXPECT_THROW(nn::MaxPool2d(3, 1, 2, 2), pfv::InvalidArgument);
}

// ================================================================== AdaptiveAvgPool2d

TEST(AdaptiveAvgPool2d, Shapes) {
  nn::AdaptiveAvgPool2d gap(nn::Size2(1, 1));
  EXPECT_EQ(infer1(gap, {2, 512, 7, 7}), (Shape{2, 512, 1, 1}));
  EXPECT_EQ(infer1(gap, {0, 512, 7, 7}), (Shape{0, 512, 1, 1}));
  nn::AdaptiveAvgPool2d rect(nn::Size2(3, 5));
  EXPECT_EQ(infer1(rect, {1, 8, 20, 20}), (Shape{1, 8, 3, 5}));
  // torch allows an output larger than the input: [1, 8, 2, 2] -> [1, 8, 4, 4]
  nn::AdaptiveAvgPool2d up(4, true);
  EXPECT_EQ(infer1(up, {1, 8, 2, 2}), (Shape{1, 8, 4, 4}));
  EXPECT_EQ(up.output_size(), nn::Size2(4, 4));
  EXPECT_EQ(std::string(gap.op_name()), "adaptive_avg_pool2d");
  EXPECT_EQ(macs1(gap, {2, 512, 7, 7}), 0);
}

TEST(AdaptiveAvgPool2d, Errors) {
  nn::AdaptiveAvgPool2d gap(1, true);
  EXPECT_THROW(infer1(gap, {1, 8, 0, 4}), pfv::ShapeError);
  EXPECT_THROW(infer1(gap, {1, 0, 4, 4}), pfv::ShapeError);
  EXPECT_THROW(infer1(gap, {8, 4, 4}), pfv::ShapeError);
  EXPECT_THROW(nn::AdaptiveAvgPool2d(0), pfv::InvalidArgument);
  EXPECT_THROW(nn::AdaptiveAvgPool2d(nn::Size2(1, 0)), pfv::InvalidArgument);
  EXPECT_THROW(nn::AdaptiveAvgPool2d(nn::Size2(1, 2), true), pfv::InvalidArgument);
}

// ================================================================== Flatten

TEST(Flatten, StartAndEndDims) {
  // torch.flatten(zeros(2, 3, 4, 5), ...)
  EXPECT_EQ(infer1(nn::Flatten(), {2, 3, 4, 5}), (Shape{2, 60}));
  EXPECT_EQ(infer1(nn::Flatten(1, 2), {2, 3, 4, 5}), (Shape{2, 12, 5}));
  EXPECT_EQ(infer1(nn::Flatten(-3, -2), {2, 3, 4, 5}), (Shape{2, 12, 5}));
  EXPECT_EQ(infer1(nn::Flatten(0), {2, 3, 4, 5}), (Shape{120}));
  EXPECT_EQ(infer1(nn::Flatten(0, 0), {2, 3, 4, 5}), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(infer1(nn::Flatten(-1), {2, 3, 4, 5}), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(infer1(nn::Flatten(2, 3), {2, 3, 4, 5}), (Shape{2, 3, 20}));
  EXPECT_EQ(infer1(nn::Flatten(), {2, 512, 1, 1}), (Shape{2, 512}));
  EXPECT_EQ(infer1(nn::Flatten(), {0, 3, 4}), (Shape{0, 12}));
  EXPECT_EQ(infer1(nn::Flatten(0), {}), (Shape{1}));  // flatten of a scalar is 1-D
  EXPECT_EQ(nn::Flatten().infer({TensorSpec({2, 3, 4}, DType::int32)}).dtype(), DType::int32);
}

TEST(Flatten, InvalidDims) {
  EXPECT_THROW(infer1(nn::Flatten(2, 1), {2, 3, 4, 5}), pfv::ShapeError);
  EXPECT_THROW(infer1(nn::Flatten(4), {2, 3, 4, 5}), pfv::ShapeError);
  EXPECT_THROW(infer1(nn::Flatten(-5), {2, 3, 4, 5}), pfv::ShapeError);
  EXPECT_THROW(infer1(nn::Flatten(1), {7}), pfv::ShapeError);
  EXPECT_THROW(infer1(nn::Flatten(0, 4), {2, 3, 4, 5}), pfv::ShapeError);
}

// ================================================================== Linear

TEST(Linear, ShapesAndMacs) {
  nn::Linear fc(2048, 1000);
  EXPECT_EQ(infer1(fc, {2, 2048}), (Shape{2, 1000}));
  EXPECT_EQ(infer1(fc, {4, 5, 2048}), (Shape{4, 5, 1000}));
  EXPECT_EQ(infer1(fc, {2048}), (Shape{1000}));
  EXPECT_EQ(infer1(fc, {0, 2048}), (Shape{0, 1000}));
  EXPECT_EQ(macs1(fc, {1, 2048}), int64_t{2048000});
  EXPECT_EQ(macs1(fc, {4, 5, 2048}), int64_t{4} * 5 * 1000 * 2048);
  EXPECT_EQ(fc.in_features(), 2048);
  EXPECT_EQ(fc.out_features(), 1000);
  EXPECT_EQ(std::string(fc.op_name()), "linear");
}

TEST(Linear, LastDimensionCheck) {
  nn::Linear fc(2048, 1000);
  const std::string msg = message_of<pfv::ShapeError>([&] { infer1(fc, {2, 1000}); });
  EXPECT_TRUE(Contains(msg, "2048"));
  EXPECT_TRUE(Contains(msg, "1000"));
  EXPECT_THROW(infer1(fc, {2048, 2}), pfv::ShapeError);
  EXPECT_THROW(infer1(fc, {}), pfv::ShapeError);
}

TEST(Linear, Parameters) {
  nn::Linear fc(512, 10);
  const auto& p = fc.local_parameters();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[0].spec.shape(), (Shape{10, 512}));
  EXPECT_EQ(p[1].name, "bias");
  EXPECT_EQ(p[1].spec.shape(), (Shape{10}));
  EXPECT_EQ(fc.num_parameters(), 5130);
  nn::Linear nobias(512, 10, false);
  EXPECT_EQ(nobias.local_parameters().size(), 1u);
  EXPECT_EQ(nobias.num_parameters(), 5120);
  EXPECT_THROW(nn::Linear(0, 10), pfv::InvalidArgument);
  EXPECT_THROW(nn::Linear(10, 0), pfv::InvalidArgument);
}

// ================================================================== Dropout / Identity / StochasticDepth

TEST(Dropout, IdentityAndValidation) {
  nn::Dropout d(0.2, true);
  EXPECT_EQ(infer1(d, {3, 1280}), (Shape{3, 1280}));
  EXPECT_DOUBLE_EQ(d.p(), 0.2);
  EXPECT_EQ(std::string(d.op_name()), "dropout");
  EXPECT_NO_THROW(nn::Dropout(0.0));
  EXPECT_NO_THROW(nn::Dropout(1.0));
  EXPECT_THROW(nn::Dropout(-0.1), pfv::InvalidArgument);
  EXPECT_THROW(nn::Dropout(1.1), pfv::InvalidArgument);
  EXPECT_THROW(nn::Dropout(std::nan("")), pfv::InvalidArgument);
  const std::string msg = message_of<pfv::InvalidArgument>([] { nn::Dropout(1.5); });
  EXPECT_TRUE(Contains(msg, "between 0 and 1"));
}

TEST(Identity, PassesThrough) {
  nn::Identity id;
  EXPECT_EQ(infer1(id, {2, 3, 5, 7}), (Shape{2, 3, 5, 7}));
  EXPECT_EQ(id.infer({TensorSpec({4}, DType::uint8)}), TensorSpec({4}, DType::uint8));
  EXPECT_EQ(std::string(id.op_name()), "identity");
  EXPECT_EQ(id.num_parameters(), 0);
}

TEST(StochasticDepth, IdentityAndValidation) {
  nn::StochasticDepth sd(0.0125, "row");
  EXPECT_EQ(infer1(sd, {2, 24, 56, 56}), (Shape{2, 24, 56, 56}));
  EXPECT_DOUBLE_EQ(sd.p(), 0.0125);
  EXPECT_EQ(sd.mode(), "row");
  EXPECT_NO_THROW(nn::StochasticDepth(0.5, "batch"));
  const std::string msg = message_of<pfv::InvalidArgument>([] { nn::StochasticDepth(0.1, "col"); });
  EXPECT_TRUE(Contains(msg, "col"));
  EXPECT_THROW(nn::StochasticDepth(0.1, ""), pfv::InvalidArgument);
  EXPECT_THROW(nn::StochasticDepth(0.1, "Row"), pfv::InvalidArgument);
  EXPECT_THROW(nn::StochasticDepth(1.5, "row"), pfv::InvalidArgument);
  EXPECT_THROW(nn::StochasticDepth(-0.5, "row"), pfv::InvalidArgument);
}

// ================================================================== Add / Mul

TEST(Add, SameShapeOnly) {
  nn::Add add;
  EXPECT_EQ(add.num_inputs(), 2);
  EXPECT_EQ(std::string(add.op_name()), "add");
  EXPECT_EQ(infer2(add, {1, 64, 56, 56}, {1, 64, 56, 56}), (Shape{1, 64, 56, 56}));
  const std::string msg =
      message_of<pfv::ShapeError>([&] { infer2(add, {1, 64, 56, 56}, {1, 64, 28, 28}); });
  EXPECT_TRUE(Contains(msg, "[1, 64, 56, 56]"));
  EXPECT_TRUE(Contains(msg, "[1, 64, 28, 28]"));
  // The residual add is in-place and never broadcasts.
  EXPECT_THROW(infer2(add, {1, 64, 56, 56}, {1, 64, 1, 1}), pfv::ShapeError);
  EXPECT_THROW(infer2(add, {2, 3}, {3}), pfv::ShapeError);
}

TEST(Add, DtypeMismatchIsTypeError) {
  nn::Add add;
  EXPECT_THROW(add.infer({TensorSpec({2, 3}, DType::float32), TensorSpec({2, 3}, DType::float64)}), pfv::TypeError);
}

TEST(Mul, Broadcasting) {
  nn::Mul mul;
  EXPECT_EQ(mul.num_inputs(), 2);
  EXPECT_EQ(std::string(mul.op_name()), "mul");
  // Squeeze-excitation: scale [N, C, 1, 1] * x [N, C, H, W]; torch gives [2, 8, 5, 7].
  EXPECT_EQ(infer2(mul, {2, 8, 1, 1}, {2, 8, 5, 7}), (Shape{2, 8, 5, 7}));
  EXPECT_EQ(infer2(mul, {2, 8, 5, 7}, {2, 8, 1, 1}), (Shape{2, 8, 5, 7}));
  EXPECT_EQ(infer2(mul, {3, 1}, {4}), (Shape{3, 4}));  // torch: zeros(3,1) * zeros(4) -> [3, 4]
  EXPECT_EQ(infer2(mul, {5, 1, 7}, {6, 1}), (Shape{5, 6, 7}));
  EXPECT_EQ(infer2(mul, {}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(infer2(mul, {1, 3}, {0, 1}), (Shape{0, 3}));  // 1 broadcasts to 0
  EXPECT_EQ(infer2(mul, {2, 3}, {2, 3}), (Shape{2, 3}));
}

TEST(Mul, IncompatibleShapesThrow) {
  nn::Mul mul;
  const std::string msg = message_of<pfv::ShapeError>([&] { infer2(mul, {2, 8, 5, 7}, {2, 4, 5, 7}); });
  EXPECT_TRUE(Contains(msg, "[2, 8, 5, 7]"));
  EXPECT_TRUE(Contains(msg, "[2, 4, 5, 7]"));
  EXPECT_THROW(infer2(mul, {3}, {4}), pfv::ShapeError);
  EXPECT_THROW(infer2(mul, {2, 0}, {2, 3}), pfv::ShapeError);
  EXPECT_THROW(mul.infer({TensorSpec({2}, DType::float32), TensorSpec({2}, DType::int64)}), pfv::TypeError);
}
