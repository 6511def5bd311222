// Graph / GraphBuilder: node paths, value numbering, taps, and the
// "[op] path: ... (input shape [..])" error context with exception types preserved.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "pyflame_vision/error.h"
#include "pyflame_vision/graph.h"
#include "pyflame_vision/models/registry.h"
#include "pyflame_vision/nn/layers.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace nn = pyflame_vision::nn;
using pfv::DType;
using pfv::GraphBuilder;
using pfv::Shape;
using pfv::TensorSpec;
using pfv::ValueId;
using pfv_test::Contains;
using pfv_test::EndsWith;
using pfv_test::message_of;
using pfv_test::StartsWith;

namespace {

/// conv1 (1x1, in -> 256) then relu, registered under torchvision-like names.
class ConvBlock : public nn::Module {
 public:
  explicit ConvBlock(int64_t in) {
    register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, 256, 1).bias(false)));
    register_module("relu", std::make_shared<nn::ReLU>(true));
  }
  std::string type_name() const override { return "ConvBlock"; }
  ValueId lower(nn::Lowering& g, ValueId x) const override {
    x = g.call_child(*this, "conv1", x);
    return g.call_child(*this, "relu", x);
  }
};

/// Records the builder's path while lowering.
class PathProbe : public nn::Module {
 public:
  explicit PathProbe(std::vector<std::string>* log) : log_(log) {}
  std::string type_name() const override { return "PathProbe"; }
  ValueId lower(nn::Lowering& g, ValueId x) const override {
    log_->push_back(g.path());
    return x;
  }

 private:
  std::vector<std::string>* log_;
};

/// A layer whose output is int64 (to provoke dtype errors downstream).
class CastToInt64 : public nn::Layer {
 public:
  std::string type_name() const override { return "Cast"; }
  const char* op_name() const override { return "cast"; }
  TensorSpec infer(const std::vector<TensorSpec>& in) const override { return TensorSpec(in.at(0).shape(), DType::int64); }
};

/// A layer that throws E("boom").
template <typename E>
class Thrower : public nn::Layer {
 public:
  std::string type_name() const override { return "Thrower"; }
  const char* op_name() const override { return "thrower"; }
  TensorSpec infer(const std::vector<TensorSpec>&) const override { throw E("boom"); }
};

template <typename E>
pfv::Graph single_thrower_graph() {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<Thrower<E>>());
  GraphBuilder b;
  const ValueId out = b.call("stage", *seq, b.input());
  return std::move(b).finish(out);
}

}  // namespace

TEST(GraphBuilder, PathsValuesAndInputs) {
  auto layer4 = std::make_shared<nn::Sequential>();
  layer4->push_back(std::make_shared<ConvBlock>(1024));
  GraphBuilder b;
  EXPECT_EQ(b.input(), 0);
  EXPECT_EQ(b.path(), "");
  const ValueId out = b.call("layer4", *layer4, b.input());
  EXPECT_EQ(b.path(), "");  // the path is restored after the call
  const pfv::Graph g = std::move(b).finish(out);

  ASSERT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.num_values(), 3u);
  EXPECT_EQ(g.output(), 2);
  EXPECT_TRUE(g.taps().empty());
  EXPECT_EQ(g.nodes()[0].path, "layer4.0.conv1");
  EXPECT_EQ(g.nodes()[1].path, "layer4.0.relu");
  EXPECT_EQ(g.nodes()[0].inputs, (std::vector<ValueId>{0}));
  EXPECT_EQ(g.nodes()[1].inputs, (std::vector<ValueId>{1}));
  EXPECT_EQ(std::string(g.nodes()[0].layer->op_name()), "conv2d");
  EXPECT_EQ(std::string(g.nodes()[1].layer->op_name()), "relu");
  // Nodes reference the module tree's own layer objects.
  EXPECT_EQ(g.nodes()[0].layer.get(), layer4->child("0")->child("conv1").get());

  const auto values = g.infer(TensorSpec({1, 1024, 7, 7}));
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], TensorSpec({1, 1024, 7, 7}));
  EXPECT_EQ(values[1], TensorSpec({1, 256, 7, 7}));
  EXPECT_EQ(values[2], TensorSpec({1, 256, 7, 7}));
  // Pure: same answer again, and for another input.
  EXPECT_EQ(g.infer(TensorSpec({1, 1024, 7, 7})), values);
  EXPECT_EQ(g.infer(TensorSpec({3, 1024, 2, 5}))[2], TensorSpec({3, 256, 2, 5}));
}

TEST(GraphBuilder, NestedPathsDuringLowering) {
  std::vector<std::string> log;
  auto inner = std::make_shared<nn::Sequential>();
  inner->push_back(std::make_shared<PathProbe>(&log));
  inner->push_back(std::make_shared<PathProbe>(&log));
  auto outer = std::make_shared<nn::Sequential>();
  outer->push_back(std::make_shared<PathProbe>(&log));
  outer->push_back(inner);
  GraphBuilder b;
  b.call("features", *outer, b.input());
  EXPECT_EQ(log, (std::vector<std::string>{"features.0", "features.1.0", "features.1.1"}));
}

TEST(GraphBuilder, NamedGraphOnlyOpsAndTaps) {
  auto relu = std::make_shared<const nn::ReLU>();
  auto flatten = std::make_shared<const nn::Flatten>(1);
  GraphBuilder b;
  const ValueId a = b.add(relu, {b.input()});
  b.tap(a);
  const ValueId f = b.add(flatten, {a}, "flatten");
  b.tap(f);
  const pfv::Graph g = std::move(b).finish(f);
  ASSERT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.nodes()[0].path, "");
  EXPECT_EQ(g.nodes()[1].path, "flatten");
  EXPECT_EQ(g.taps(), (std::vector<ValueId>{1, 2}));
  EXPECT_EQ(g.infer(TensorSpec({2, 3, 4, 5}))[2].shape(), (Shape{2, 60}));
}

TEST(GraphBuilder, LogicErrors) {
  auto add = std::make_shared<const nn::Add>();
  auto relu = std::make_shared<const nn::ReLU>();
  GraphBuilder b;
  EXPECT_THROW(b.add(add, {0}), std::logic_error);     // Add takes 2 inputs
  EXPECT_THROW(b.add(relu, {0, 0}), std::logic_error);  // ReLU takes 1
  EXPECT_THROW(b.add(relu, {1}), std::logic_error);     // value 1 does not exist yet
  EXPECT_THROW(b.add(relu, {-1}), std::logic_error);
  ConvBlock block(8);
  EXPECT_THROW(b.call_child(block, "conv9", 0), std::logic_error);
  EXPECT_EQ(b.add(relu, {0}), 1);
  EXPECT_EQ(b.add(add, {0, 1}), 2);
}

TEST(GraphInfer, ErrorCarriesOpPathAndInputShape) {
  auto layer4 = std::make_shared<nn::Sequential>();
  layer4->push_back(std::make_shared<ConvBlock>(1024));
  GraphBuilder b;
  const ValueId out = b.call("layer4", *layer4, b.input());
  const pfv::Graph g = std::move(b).finish(out);
  const std::string msg = message_of<pfv::ShapeError>([&] { g.infer(TensorSpec({1, 4, 7, 7})); });
  // The example from error.h.
  EXPECT_EQ(msg, "[conv2d] layer4.0.conv1: expected 1024 input channels, got 4 (input shape [1, 4, 7, 7])");
}

TEST(GraphInfer, RootPathIsShownAsModel) {
  auto conv = std::make_shared<const nn::Conv2d>(nn::Conv2dOptions(3, 8, 3));
  GraphBuilder b;
  const ValueId out = b.add(conv, {b.input()});
  const pfv::Graph g = std::move(b).finish(out);
  const std::string msg = message_of<pfv::ShapeError>([&] { g.infer(TensorSpec({1, 4, 8, 8})); });
  EXPECT_EQ(msg, "[conv2d] (model): expected 3 input channels, got 4 (input shape [1, 4, 8, 8])");
}

TEST(GraphInfer, TwoInputOpsListBothShapes) {
  auto cast = std::make_shared<const CastToInt64>();
  auto add = std::make_shared<const nn::Add>();
  GraphBuilder b;
  const ValueId c = b.add(cast, {b.input()}, "cast");
  const ValueId s = b.add(add, {b.input(), c}, "add");
  const pfv::Graph g = std::move(b).finish(s);
  const std::string msg = message_of<pfv::TypeError>([&] { g.infer(TensorSpec({1, 3, 8, 8})); });
  EXPECT_TRUE(StartsWith(msg, "[add] add: "));
  EXPECT_TRUE(Contains(msg, "float32"));
  EXPECT_TRUE(Contains(msg, "int64"));
  EXPECT_TRUE(EndsWith(msg, "(input shapes [1, 3, 8, 8] and [1, 3, 8, 8])"));
}

TEST(GraphInfer, ExceptionTypesArePreserved) {
  {
    const auto g = single_thrower_graph<pfv::ShapeOverflowError>();
    try {
      g.infer(TensorSpec({1, 2}));
      ADD_FAILURE() << "no exception";
    } catch (const pfv::ShapeError& e) {
      EXPECT_EQ(typeid(e), typeid(pfv::ShapeOverflowError));
      EXPECT_EQ(std::string(e.what()), "[thrower] stage.0: boom (input shape [1, 2])");
    }
  }
  {
    const auto g = single_thrower_graph<pfv::ShapeError>();
    try {
      g.infer(TensorSpec({1, 2}));
      ADD_FAILURE() << "no exception";
    } catch (const pfv::Error& e) {
      EXPECT_EQ(typeid(e), typeid(pfv::ShapeError));
      EXPECT_EQ(std::string(e.what()), "[thrower] stage.0: boom (input shape [1, 2])");
    }
  }
  {
    const auto g = single_thrower_graph<pfv::TypeError>();
    try {
      g.infer(TensorSpec({1, 2}));
      ADD_FAILURE() << "no exception";
    } catch (const pfv::Error& e) {
      EXPECT_EQ(typeid(e), typeid(pfv::TypeError));
      EXPECT_EQ(std::string(e.what()), "[thrower] stage.0: boom (input shape [1, 2])");
    }
  }
}

TEST(GraphInfer, RealOverflowFromAConvIsWrappedAsOverflow) {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 8, 1).padding(int64_t{1} << 40)));
  GraphBuilder b;
  const ValueId out = b.call("head", *seq, b.input());
  const pfv::Graph g = std::move(b).finish(out);
  const std::string msg = message_of<pfv::ShapeOverflowError>([&] { g.infer(TensorSpec({1, 3, 8, 8})); });
  EXPECT_TRUE(StartsWith(msg, "[conv2d] head.0: "));
  EXPECT_TRUE(EndsWith(msg, "(input shape [1, 3, 8, 8])"));
}

TEST(GraphInfer, ResNet50GraphStructure) {
  auto m = pfv::models::resnet50();
  auto g = m->graph();
  ASSERT_NE(g, nullptr);
  // stem 4 + 16 bottlenecks * 10 (conv/bn/relu x3 minus one relu, add, relu) + 4 downsamples * 2 + head 3
  EXPECT_EQ(g->nodes().size(), 175u);
  EXPECT_EQ(g->taps().size(), 5u);
  EXPECT_EQ(static_cast<size_t>(g->output()), g->nodes().size());
  bool saw_conv = false, saw_add = false, saw_ds = false;
  for (const auto& n : g->nodes()) {
    if (n.path == "layer4.0.conv1") {
      saw_conv = true;
      EXPECT_EQ(std::string(n.layer->op_name()), "conv2d");
    }
    if (n.path == "layer4.0" && std::string(n.layer->op_name()) == "add") {
      saw_add = true;
      EXPECT_EQ(n.inputs.size(), 2u);
    }
    if (n.path == "layer1.0.downsample.0") saw_ds = true;
  }
  EXPECT_TRUE(saw_conv);
  EXPECT_TRUE(saw_add);
  EXPECT_TRUE(saw_ds);
  EXPECT_EQ(g->nodes().front().path, "conv1");
  EXPECT_EQ(g->nodes().back().path, "fc");
  EXPECT_EQ(g->nodes()[g->nodes().size() - 2].path, "flatten");
}
