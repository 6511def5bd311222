// Composite blocks (nn/blocks.h): parameter counts against torchvision,
// lowering/shape behaviour and constructor validation.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "pyflame_vision/error.h"
#include "pyflame_vision/graph.h"
#include "pyflame_vision/nn/blocks.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace nn = pyflame_vision::nn;
using pfv::Shape;
using pfv::TensorSpec;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

/// Lowers `m` under the name "blk" and runs shape inference on `in`.
Shape run_block(const nn::Module& m, const Shape& in) {
  pfv::GraphBuilder b;
  const pfv::ValueId out = b.call("blk", m, b.input());
  const pfv::Graph g = std::move(b).finish(out);
  return g.infer(TensorSpec(in))[static_cast<size_t>(out)].shape();
}

std::shared_ptr<nn::Sequential> downsample(int64_t in, int64_t out, int64_t stride) {
  auto ds = std::make_shared<nn::Sequential>();
  ds->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
  ds->push_back(std::make_shared<nn::BatchNorm2d>(out));
  return ds;
}

const nn::Conv2d& conv_child(const nn::Module& m, const std::string& name) {
  auto c = std::dynamic_pointer_cast<nn::Conv2d>(m.child(name));
  if (!c) throw std::logic_error("no Conv2d child " + name);
  return *c;
}

}  // namespace

// ================================================================== make_divisible

TEST(MakeDivisible, MatchesTorchvision) {
  // torchvision.models._utils._make_divisible
  EXPECT_EQ(nn::make_divisible(32 * 1.1, 8), 32);
  EXPECT_EQ(nn::make_divisible(16 * 1.4, 8), 24);
  EXPECT_EQ(nn::make_divisible(3, 8), 8);     // min_value defaults to the divisor
  EXPECT_EQ(nn::make_divisible(10, 8), 16);   // 8 would round down by more than 10%
  EXPECT_EQ(nn::make_divisible(320 * 1.4, 8), 448);
  EXPECT_EQ(nn::make_divisible(16 * 1.1, 8), 16);
  EXPECT_EQ(nn::make_divisible(24 * 1.2, 8), 32);
  EXPECT_EQ(nn::make_divisible(96, 8), 96);
  EXPECT_EQ(nn::make_divisible(3, 8, 4), 4);
}

// ================================================================== BasicBlock

TEST(BasicBlock, ChildrenAndParameters) {
  nn::BasicBlock block(64, 128, 2, downsample(64, 128, 2));
  const char* names[] = {"conv1", "bn1", "relu", "conv2", "bn2", "downsample"};
  ASSERT_EQ(block.children().size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(block.children()[i].first, names[i]);
  EXPECT_EQ(conv_child(block, "conv1").options().stride_, nn::Size2(2));
  // torchvision resnet18().layer2[0]: 3*3*64*128 + 3*3*128*128 + 64*128 + 3 * 2*128
  EXPECT_EQ(block.num_parameters(), 73728 + 147456 + 8192 + 768);
  EXPECT_EQ(run_block(block, {1, 64, 56, 56}), (Shape{1, 128, 28, 28}));
  EXPECT_EQ(run_block(block, {1, 64, 57, 57}), (Shape{1, 128, 29, 29}));
}

TEST(BasicBlock, IdentityShortcut) {
  nn::BasicBlock block(64, 64);
  EXPECT_EQ(block.child("downsample"), nullptr);
  EXPECT_EQ(run_block(block, {2, 64, 56, 56}), (Shape{2, 64, 56, 56}));
}

TEST(BasicBlock, ShortcutShapeMismatchIsReportedAtTheAdd) {
  // Without a downsample the residual add sees [1, 128, 28, 28] and [1, 64, 56, 56].
  nn::BasicBlock block(64, 128, 2);
  const std::string msg = message_of<pfv::ShapeError>([&] { run_block(block, {1, 64, 56, 56}); });
  EXPECT_TRUE(pfv_test::StartsWith(msg, "[add] blk: "));
  EXPECT_TRUE(pfv_test::EndsWith(msg, "(input shapes [1, 128, 28, 28] and [1, 64, 56, 56])"));
}

TEST(BasicBlock, Validation) {
  EXPECT_THROW(nn::BasicBlock(64, 64, 1, nullptr, 2), pfv::InvalidArgument);
  EXPECT_THROW(nn::BasicBlock(64, 64, 1, nullptr, 1, 32), pfv::InvalidArgument);
  const std::string msg = message_of<pfv::Unsupported>([] { nn::BasicBlock(64, 64, 1, nullptr, 1, 64, 2); });
  EXPECT_TRUE(Contains(msg, "Dilation > 1 not supported in BasicBlock"));
}

// ================================================================== Bottleneck

TEST(Bottleneck, ResNet50FirstBlock) {
  nn::Bottleneck block(64, 64, 1, downsample(64, 256, 1));
  const char* names[] = {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "downsample"};
  ASSERT_EQ(block.children().size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(block.children()[i].first, names[i]);
  EXPECT_EQ(block.num_parameters(), 75008);  // sum(p.numel() for p in resnet50().layer1[0].parameters())
  EXPECT_EQ(run_block(block, {1, 64, 56, 56}), (Shape{1, 256, 56, 56}));
}

TEST(Bottleneck, GroupedWidth) {
  // resnext50_32x4d layer1[0]: width = int(64 * 4 / 64) * 32 = 128
  nn::Bottleneck block(64, 64, 1, downsample(64, 256, 1), 32, 4);
  const auto& c2 = conv_child(block, "conv2");
  EXPECT_EQ(c2.options().in_channels_, 128);
  EXPECT_EQ(c2.options().groups_, 32);
  EXPECT_EQ(c2.local_parameters()[0].spec.shape(), (Shape{128, 4, 3, 3}));
  EXPECT_EQ(conv_child(block, "conv3").options().out_channels_, 256);
  EXPECT_EQ(run_block(block, {1, 64, 56, 56}), (Shape{1, 256, 56, 56}));
}

TEST(Bottleneck, StrideAndDilation) {
  nn::Bottleneck strided(256, 128, 2, downsample(256, 512, 2));
  EXPECT_EQ(run_block(strided, {1, 256, 56, 56}), (Shape{1, 512, 28, 28}));
  // Dilated 3x3: padding = dilation, so the spatial size is kept.
  nn::Bottleneck dilated(2048, 512, 1, nullptr, 1, 64, 4);
  const auto& c2 = conv_child(dilated, "conv2");
  EXPECT_EQ(c2.options().dilation_, nn::Size2(4));
  EXPECT_EQ(c2.options().padding_, nn::Size2(4));
  EXPECT_EQ(run_block(dilated, {1, 2048, 28, 28}), (Shape{1, 2048, 28, 28}));
}

// ================================================================== SqueezeExcitation / MBConv

TEST(SqueezeExcitation, ParametersAndScaling) {
  nn::SqueezeExcitation se(96, 4, nn::Activation::SiLU);
  EXPECT_EQ(se.num_parameters(), 868);  // torchvision.ops.SqueezeExcitation(96, 4)
  EXPECT_EQ(run_block(se, {2, 96, 56, 56}), (Shape{2, 96, 56, 56}));
  const char* names[] = {"avgpool", "fc1", "fc2", "activation", "scale_activation"};
  ASSERT_EQ(se.children().size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(se.children()[i].first, names[i]);
}

TEST(ConvNormActivation, Structure) {
  auto cna = nn::conv_norm_activation(16, 96, 3, 2, 1, true, nn::Activation::SiLU);
  EXPECT_EQ(cna->type_name(), "Conv2dNormActivation");
  ASSERT_EQ(cna->size(), 3u);
  const auto& conv = conv_child(*cna, "0");
  EXPECT_EQ(conv.options().padding_, nn::Size2(1));
  EXPECT_FALSE(conv.options().bias_);
  EXPECT_EQ(run_block(*cna, {1, 16, 112, 112}), (Shape{1, 96, 56, 56}));
  auto no_act = nn::conv_norm_activation(96, 24, 1, 1, 1, false);
  EXPECT_EQ(no_act->size(), 2u);
  auto k5 = nn::conv_norm_activation(8, 8, 5, 1, 8, true);
  EXPECT_EQ(conv_child(*k5, "0").options().padding_, nn::Size2(2));
}

TEST(MBConv, EfficientNetB0Features2Block0) {
  // torchvision efficientnet_b0().features[2][0]: 16 -> 24, expand 6, stride 2.
  nn::MBConv block(nn::MBConvConfig{6, 3, 2, 16, 24, 2}, 0.0125);
  EXPECT_FALSE(block.use_res_connect());
  EXPECT_EQ(block.num_parameters(), 6004);
  EXPECT_EQ(run_block(block, {1, 16, 112, 112}), (Shape{1, 24, 56, 56}));
  auto sd = std::dynamic_pointer_cast<nn::StochasticDepth>(block.child("stochastic_depth"));
  ASSERT_NE(sd, nullptr);
  EXPECT_DOUBLE_EQ(sd->p(), 0.0125);
}

TEST(MBConv, ResidualWhenShapesAgree) {
  nn::MBConv block(nn::MBConvConfig{6, 3, 1, 24, 24, 2}, 0.025);
  EXPECT_TRUE(block.use_res_connect());
  EXPECT_EQ(run_block(block, {1, 24, 56, 56}), (Shape{1, 24, 56, 56}));
  // expand_ratio 1 has no expansion conv: block = [depthwise, se, project]
  nn::MBConv first(nn::MBConvConfig{1, 3, 1, 32, 16, 1}, 0.0);
  EXPECT_FALSE(first.use_res_connect());
  EXPECT_EQ(first.child("block")->children().size(), 3u);
  EXPECT_EQ(block.child("block")->children().size(), 4u);
}

TEST(MBConv, Validation) {
  EXPECT_THROW(nn::MBConv(nn::MBConvConfig{6, 3, 3, 16, 24, 1}, 0.0), pfv::InvalidArgument);
  EXPECT_THROW(nn::MBConv(nn::MBConvConfig{6, 3, 0, 16, 24, 1}, 0.0), pfv::InvalidArgument);
  EXPECT_THROW(nn::MBConv(nn::MBConvConfig{6, 3, 1, 16, 24, 1}, 1.5), pfv::InvalidArgument);
}
