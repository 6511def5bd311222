// The C++ SDK as an application sees it: only the umbrella header, the
// factories, shape inference, the forward overloads, and many std::threads
// running one model with bit-identical results.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "pyflame_vision/pyflame_vision.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace models = pyflame_vision::models;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

std::vector<float> pattern(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
  return v;
}

bool bit_identical(const pfv::Tensor& a, const pfv::Tensor& b) {
  return a.spec() == b.spec() && std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.nbytes())) == 0;
}

}  // namespace

TEST(Sdk, EveryFactoryInfersItsShapes) {
  using Factory = std::shared_ptr<models::Model> (*)(int64_t);
  struct Row {
    const char* name;
    Factory make;
    int64_t features, resolution;
  };
  const Row rows[] = {
      {"resnet18", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnet18(n); }, 512, 224},
      {"resnet34", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnet34(n); }, 512, 224},
      {"resnet50", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnet50(n); }, 2048, 224},
      {"resnet101", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnet101(n); }, 2048, 224},
      {"resnet152", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnet152(n); }, 2048, 224},
      {"resnext50_32x4d", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnext50_32x4d(n); }, 2048, 224},
      {"resnext101_32x8d", [](int64_t n) -> std::shared_ptr<models::Model> { return models::resnext101_32x8d(n); }, 2048, 224},
      {"wide_resnet50_2", [](int64_t n) -> std::shared_ptr<models::Model> { return models::wide_resnet50_2(n); }, 2048, 224},
      {"wide_resnet101_2", [](int64_t n) -> std::shared_ptr<models::Model> { return models::wide_resnet101_2(n); }, 2048, 224},
      {"efficientnet_b0", [](int64_t n) -> std::shared_ptr<models::Model> { return models::efficientnet_b0(n); }, 1280, 224},
      {"efficientnet_b1", [](int64_t n) -> std::shared_ptr<models::Model> { return models::efficientnet_b1(n); }, 1280, 240},
      {"efficientnet_b2", [](int64_t n) -> std::shared_ptr<models::Model> { return models::efficientnet_b2(n); }, 1408, 260},
      {"efficientnet_b3", [](int64_t n) -> std::shared_ptr<models::Model> { return models::efficientnet_b3(n); }, 1536, 300},
      {"efficientnet_b4", [](int64_t n) -> std::shared_ptr<models::Model> { return models::efficientnet_b4(n); }, 1792, 380},
  };
  ASSERT_EQ(models::list_models().size(), 14u);
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto m = r.make(7);
    EXPECT_EQ(m->name(), r.name);
    EXPECT_EQ(m->num_features(), r.features);
    EXPECT_EQ(m->default_input_shape(), (pfv::Shape{1, 3, r.resolution, r.resolution}));
    EXPECT_EQ(m->get_output_shape({3, 3, 224, 224}), (pfv::Shape{3, 7}));
    EXPECT_EQ(models::create_model(r.name, 11)->get_output_shape({2, 3, 97, 131}), (pfv::Shape{2, 11}));
    EXPECT_FALSE(m->has_weights());
    ASSERT_TRUE(m->has_head());
    m->remove_head();
    m->remove_head();  // idempotent
    EXPECT_FALSE(m->has_head());
    EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (pfv::Shape{1, r.features, 7, 7}));
    EXPECT_EQ(m->named_parameters().size(), m->state_dict_spec().size() - m->named_buffers().size());
  }
}

TEST(Sdk, FeaturesNamesAndErrorsThroughThePublicApi) {
  auto m = models::resnet50();
  const auto feats = m->forward_features(pfv::TensorSpec({1, 3, 224, 224}));
  ASSERT_EQ(feats.size(), 5u);
  EXPECT_EQ(feats[0].shape(), (pfv::Shape{1, 64, 56, 56}));
  EXPECT_EQ(feats[4].shape(), (pfv::Shape{1, 2048, 7, 7}));
  const auto params = m->named_parameters();
  EXPECT_EQ(params.front().name, "conv1.weight");
  EXPECT_EQ(params.front().spec.shape(), (pfv::Shape{64, 3, 7, 7}));
  EXPECT_EQ(params.back().name, "fc.bias");
  EXPECT_EQ(m->num_parameters(), 25557032);
  m->remove_fc();
  EXPECT_EQ(m->named_parameters().back().name, "layer4.2.bn3.bias");

  auto e = models::efficientnet_b0();
  EXPECT_EQ(e->forward_features(pfv::TensorSpec({2, 3, 224, 224})).back().shape(), (pfv::Shape{2, 1280, 7, 7}));
  e->remove_classifier();
  EXPECT_FALSE(e->has_classifier());

  EXPECT_EQ(message_of<pfv::ShapeError>([] { models::resnet50()->get_output_shape({1, 4, 224, 224}); }),
            "[conv2d] conv1: expected 3 input channels, got 4 (input shape [1, 4, 224, 224])");
  EXPECT_TRUE(Contains(message_of<pfv::ShapeError>([] { models::resnet18()->get_output_shape({3, 224, 224}); }),
                       "expected a 4-D input [N, C, H, W], got a 3-D input"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { models::create_model("resnet51"); }), "resnet50"));
  EXPECT_THROW(models::resnet18(-1), pfv::InvalidArgument);
  EXPECT_THROW(pfv::set_num_threads(0), pfv::InvalidArgument);
  const std::string v = pfv::version();
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

TEST(Sdk, ForwardOverloadsAgreeBitForBit) {
  auto m = models::resnet18(10);
  m->init_weights(5);
  const pfv::Shape shape{2, 3, 48, 40};
  const auto x = pattern(2 * 3 * 48 * 40, 1);
  const pfv::Tensor from_buffer = m->forward(x.data(), shape);
  EXPECT_EQ(from_buffer.shape(), (pfv::Shape{2, 10}));
  const pfv::Tensor t = pfv::Tensor::from_data(pfv::TensorSpec(shape), x.data());
  EXPECT_TRUE(bit_identical(m->forward(t), from_buffer));
  EXPECT_TRUE(bit_identical(m->forward(pfv::models::InputView::of(t)), from_buffer));
  // A channels-last buffer described by strides gives the same result.
  std::vector<float> nhwc(x.size());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 48; ++h)
        for (int64_t w = 0; w < 40; ++w)
          nhwc[size_t(((n * 48 + h) * 40 + w) * 3 + c)] = x[size_t(((n * 3 + c) * 48 + h) * 40 + w)];
  models::InputView v{nhwc.data(), shape, {48 * 40 * 3, 1, 40 * 3, 3}};
  EXPECT_TRUE(bit_identical(m->forward(v), from_buffer));
  // Features: one per stage, the last equals layer4 of a model without head.
  const auto feats = m->forward_features(t);
  ASSERT_EQ(feats.size(), 5u);
  EXPECT_EQ(feats[4].shape(), (pfv::Shape{2, 512, 2, 2}));

  EXPECT_TRUE(Contains(message_of<pfv::TypeError>([&] {
                         m->forward(pfv::Tensor(pfv::TensorSpec(shape, pfv::DType::float64)));
                       }),
                       "expected a float32 input, got float64"));
  EXPECT_THROW(m->forward(pfv::Tensor()), pfv::InvalidArgument);
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { m->forward(nullptr, shape); }), "input data is null"));
  EXPECT_THROW(m->forward(x.data(), {2, -3, 48, 40}), pfv::ShapeError);
  EXPECT_TRUE(Contains(message_of<pfv::ShapeError>([&] { m->forward(x.data(), {2, 4, 48, 30}); }),
                       "expected 3 input channels, got 4"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([&] { models::resnet18()->forward(x.data(), shape); }),
                       "resnet18 has no weights"));
}

// Many application threads share one model. Each thread alternates between
// two input shapes, so compiles for new shapes race with runs of cached ones.
TEST(Sdk, ManyThreadsOnOneModelAreBitIdentical) {
  auto m = models::efficientnet_b0(16);
  m->init_weights(11);
  const pfv::Shape sa{1, 3, 64, 64}, sb{2, 3, 48, 56};
  const auto xa = pattern(1 * 3 * 64 * 64, 2), xb = pattern(2 * 3 * 48 * 56, 3);

  // References, single-threaded, on a separate model with the same weights.
  auto ref_model = models::efficientnet_b0(16);
  ref_model->init_weights(11);
  const int saved = pfv::get_num_threads();
  pfv::set_num_threads(1);
  const pfv::Tensor ra = ref_model->forward(xa.data(), sa), rb = ref_model->forward(xb.data(), sb);
  pfv::set_num_threads(saved);

  constexpr int kThreads = 8, kIters = 6;
  std::atomic<int> mismatches{0}, errors{0}, runs{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kIters; ++i) {
        try {
          const bool a = (t + i) % 2 == 0;
          const pfv::Tensor y = a ? m->forward(xa.data(), sa) : m->forward(xb.data(), sb);
          if (!bit_identical(y, a ? ra : rb)) ++mismatches;
          ++runs;
        } catch (const std::exception&) {
          ++errors;
        }
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(runs.load(), kThreads * kIters);
}

// Loading new weights while other threads run: each result equals the output
// for either the old or the new weights, never a mixture.
TEST(Sdk, ReloadingWeightsDuringForwardNeverMixesThem) {
  auto m = models::resnet18(4);
  m->init_weights(1);
  auto other = models::resnet18(4);
  other->init_weights(2);
  const auto new_state = other->state_dict();
  const pfv::Shape s{1, 3, 32, 32};
  const auto x = pattern(3 * 32 * 32, 4);
  const pfv::Tensor y_old = m->forward(x.data(), s), y_new = other->forward(x.data(), s);
  ASSERT_FALSE(bit_identical(y_old, y_new));

  std::atomic<int> bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      while (!stop.load()) {
        const pfv::Tensor y = m->forward(x.data(), s);
        if (!bit_identical(y, y_old) && !bit_identical(y, y_new)) ++bad;
      }
    });
  m->load_state_dict(new_state);
  for (int i = 0; i < 3; ++i) std::this_thread::yield();
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(bit_identical(m->forward(x.data(), s), y_new));
}
