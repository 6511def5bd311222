// repr()/extra_repr() of layers and blocks against torch's exact strings, and
// python_float_repr against Python's repr(float).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "pyflame_vision/nn/blocks.h"
#include "pyflame_vision/nn/layers.h"
#include "pyflame_vision/nn/module.h"

namespace nn = pyflame_vision::nn;

// ================================================================== python_float_repr

TEST(PythonFloatRepr, MatchesPythonRepr) {
  struct Case {
    double v;
    const char* expected;
  };
  // Each expected string is Python's repr(v).
  const Case cases[] = {
      {0.1, "0.1"},
      {1e-5, "1e-05"},
      {1.0, "1.0"},
      {0.0125, "0.0125"},
      {100.0, "100.0"},
      {1e16, "1e+16"},
      {1.5e-7, "1.5e-07"},
      {1e-4, "0.0001"},
      {1e-3, "0.001"},
      {0.3, "0.3"},
      {0.2, "0.2"},
      {0.19375, "0.19375"},
      {-0.5, "-0.5"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {2.0, "2.0"},
      {123456789.123, "123456789.123"},
      {1e15, "1000000000000000.0"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {2.5e-323, "2.5e-323"},
      {1.0 / 3.0, "0.3333333333333333"},
      {0.485, "0.485"},
  };
  for (const auto& c : cases) EXPECT_EQ(nn::python_float_repr(c.v), c.expected) << "repr of " << c.expected;
}

TEST(PythonFloatRepr, NonFinite) {
  EXPECT_EQ(nn::python_float_repr(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(nn::python_float_repr(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(nn::python_float_repr(std::nan("")), "nan");
}

// ================================================================== leaf layers

TEST(LayerRepr, Conv2d) {
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)).repr(),
            "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)");
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions(32, 8, 1)).repr(), "Conv2d(32, 8, kernel_size=(1, 1), stride=(1, 1))");
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions(16, 32, nn::Size2(3, 5))
                           .stride(nn::Size2(1, 2))
                           .padding(nn::Size2(1, 0))
                           .dilation(2)
                           .groups(4))
                .repr(),
            "Conv2d(16, 32, kernel_size=(3, 5), stride=(1, 2), padding=(1, 0), dilation=(2, 2), groups=4)");
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions(32, 32, 3).padding(1).groups(32).bias(false)).repr(),
            "Conv2d(32, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=32, bias=False)");
  nn::Conv2d c(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false));
  EXPECT_EQ(c.extra_repr(), "3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False");
}

TEST(LayerRepr, BatchNorm2d) {
  EXPECT_EQ(nn::BatchNorm2d(64).repr(),
            "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)");
  EXPECT_EQ(nn::BatchNorm2d(32, 1e-3).repr(),
            "BatchNorm2d(32, eps=0.001, momentum=0.1, affine=True, bias=True, track_running_stats=True)");
  EXPECT_EQ(nn::BatchNorm2d(64).extra_repr(),
            "64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True");
}

TEST(LayerRepr, Pooling) {
  EXPECT_EQ(nn::MaxPool2d(3, 2, 1).repr(), "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
  EXPECT_EQ(nn::MaxPool2d(2, 0, 0, 1, true).repr(),
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=True)");
  EXPECT_EQ(nn::MaxPool2d(nn::Size2(3, 1), nn::Size2(2, 1)).extra_repr(),
            "kernel_size=(3, 1), stride=(2, 1), padding=0, dilation=1, ceil_mode=False");
  EXPECT_EQ(nn::AdaptiveAvgPool2d(nn::Size2(1, 1)).repr(), "AdaptiveAvgPool2d(output_size=(1, 1))");
  EXPECT_EQ(nn::AdaptiveAvgPool2d(1, true).repr(), "AdaptiveAvgPool2d(output_size=1)");
}

TEST(LayerRepr, Others) {
  EXPECT_EQ(nn::ReLU(true).repr(), "ReLU(inplace=True)");
  EXPECT_EQ(nn::ReLU().repr(), "ReLU()");
  EXPECT_EQ(nn::SiLU(true).repr(), "SiLU(inplace=True)");
  EXPECT_EQ(nn::SiLU().repr(), "SiLU()");
  EXPECT_EQ(nn::Sigmoid().repr(), "Sigmoid()");
  EXPECT_EQ(nn::Flatten().repr(), "Flatten(start_dim=1, end_dim=-1)");
  EXPECT_EQ(nn::Flatten(0, 2).repr(), "Flatten(start_dim=0, end_dim=2)");
  EXPECT_EQ(nn::Linear(2048, 1000).repr(), "Linear(in_features=2048, out_features=1000, bias=True)");
  EXPECT_EQ(nn::Linear(8, 2, false).repr(), "Linear(in_features=8, out_features=2, bias=False)");
  EXPECT_EQ(nn::Dropout(0.2, true).repr(), "Dropout(p=0.2, inplace=True)");
  EXPECT_EQ(nn::Dropout().repr(), "Dropout(p=0.5, inplace=False)");
  EXPECT_EQ(nn::Identity().repr(), "Identity()");
  EXPECT_EQ(nn::StochasticDepth(0.0125, "row").repr(), "StochasticDepth(p=0.0125, mode=row)");
  EXPECT_EQ(nn::StochasticDepth(0.0, "batch").repr(), "StochasticDepth(p=0.0, mode=batch)");
  EXPECT_EQ(nn::Add().repr(), "Add()");
  EXPECT_EQ(nn::Mul().repr(), "Mul()");
}

// ================================================================== trees

TEST(ModuleRepr, SequentialTree) {
  // torch: print(nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(inplace=True)))
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 8, 3).bias(false)));
  seq->push_back(std::make_shared<nn::ReLU>(true));
  EXPECT_EQ(seq->size(), 2u);
  EXPECT_EQ(seq->repr(),
            "Sequential(\n"
            "  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), bias=False)\n"
            "  (1): ReLU(inplace=True)\n"
            ")");
  EXPECT_EQ(nn::Sequential().repr(), "Sequential()");
}

TEST(ModuleRepr, MBConvMatchesTorchvision) {
  // print(torchvision.models.efficientnet_b0().features[1][0])
  nn::MBConv block(nn::MBConvConfig{1, 3, 1, 32, 16, 1}, 0.0);
  EXPECT_EQ(block.repr(),
            "MBConv(\n"
            "  (block): Sequential(\n"
            "    (0): Conv2dNormActivation(\n"
            "      (0): Conv2d(32, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=32, bias=False)\n"
            "      (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
            "      (2): SiLU(inplace=True)\n"
            "    )\n"
            "    (1): SqueezeExcitation(\n"
            "      (avgpool): AdaptiveAvgPool2d(output_size=1)\n"
            "      (fc1): Conv2d(32, 8, kernel_size=(1, 1), stride=(1, 1))\n"
            "      (fc2): Conv2d(8, 32, kernel_size=(1, 1), stride=(1, 1))\n"
            "      (activation): SiLU(inplace=True)\n"
            "      (scale_activation): Sigmoid()\n"
            "    )\n"
            "    (2): Conv2dNormActivation(\n"
            "      (0): Conv2d(32, 16, kernel_size=(1, 1), stride=(1, 1), bias=False)\n"
            "      (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
            "    )\n"
            "  )\n"
            "  (stochastic_depth): StochasticDepth(p=0.0, mode=row)\n"
            ")");
}

TEST(ModuleRepr, BasicBlockMatchesTorchvision) {
  // print(torchvision.models.resnet18().layer2[0])
  auto ds = std::make_shared<nn::Sequential>();
  ds->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(64, 128, 1).stride(2).bias(false)));
  ds->push_back(std::make_shared<nn::BatchNorm2d>(128));
  nn::BasicBlock block(64, 128, 2, ds);
  EXPECT_EQ(block.repr(),
            "BasicBlock(\n"
            "  (conv1): Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
            "  (bn1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
            "  (relu): ReLU(inplace=True)\n"
            "  (conv2): Conv2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
            "  (bn2): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
            "  (downsample): Sequential(\n"
            "    (0): Conv2d(64, 128, kernel_size=(1, 1), stride=(2, 2), bias=False)\n"
            "    (1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
            "  )\n"
            ")");
}
