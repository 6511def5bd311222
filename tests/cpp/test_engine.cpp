// The execution engine from C++: weights (init, state dict, load semantics),
// forward on a small ResNet against an independent float64 NCHW reference
// written here (conv, batch norm, relu, max-pool, residual add, average pool,
// linear), batch 0, strided input, determinism across thread counts and tiers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/models/registry.h"
#include "pyflame_vision/models/resnet.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace models = pyflame_vision::models;

namespace {

using Map = std::map<std::string, pfv::Tensor>;

// ---------------------------------------------------------------- reference (NCHW, float64)
struct T4 {
  int64_t n, c, h, w;
  std::vector<double> d;
  T4(int64_t n_, int64_t c_, int64_t h_, int64_t w_) : n(n_), c(c_), h(h_), w(w_), d(size_t(n_ * c_ * h_ * w_)) {}
  double& at(int64_t a, int64_t b, int64_t y, int64_t x) { return d[size_t(((a * c + b) * h + y) * w + x)]; }
  double at(int64_t a, int64_t b, int64_t y, int64_t x) const { return d[size_t(((a * c + b) * h + y) * w + x)]; }
};

T4 conv(const T4& x, const pfv::Tensor& wt, int64_t stride, int64_t pad) {
  const auto& s = wt.shape();
  const int64_t co = s[0], ci = s[1], k = s[2];
  const int64_t oh = (x.h + 2 * pad - k) / stride + 1, ow = (x.w + 2 * pad - k) / stride + 1;
  T4 y(x.n, co, oh, ow);
  const float* w = wt.data_f32();
  for (int64_t b = 0; b < x.n; ++b)
    for (int64_t o = 0; o < co; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = 0;
          for (int64_t c = 0; c < ci; ++c)
            for (int64_t u = 0; u < k; ++u)
              for (int64_t v = 0; v < k; ++v) {
                const int64_t iy = i * stride - pad + u, ix = j * stride - pad + v;
                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                acc += x.at(b, c, iy, ix) * w[((o * ci + c) * k + u) * k + v];
              }
          y.at(b, o, i, j) = acc;
        }
  return y;
}

T4 bn(const T4& x, const Map& m, const std::string& p, bool relu) {
  T4 y = x;
  const float* g = m.at(p + ".weight").data_f32();
  const float* be = m.at(p + ".bias").data_f32();
  const float* mu = m.at(p + ".running_mean").data_f32();
  const float* var = m.at(p + ".running_var").data_f32();
  for (int64_t b = 0; b < x.n; ++b)
    for (int64_t c = 0; c < x.c; ++c)
      for (int64_t i = 0; i < x.h; ++i)
        for (int64_t j = 0; j < x.w; ++j) {
          double v = (x.at(b, c, i, j) - mu[c]) / std::sqrt(double(var[c]) + 1e-5) * g[c] + be[c];
          y.at(b, c, i, j) = relu ? std::max(v, 0.0) : v;
        }
  return y;
}

T4 maxpool(const T4& x) {  // 3x3, stride 2, padding 1
  const int64_t oh = (x.h + 2 - 3) / 2 + 1, ow = (x.w + 2 - 3) / 2 + 1;
  T4 y(x.n, x.c, oh, ow);
  for (int64_t b = 0; b < x.n; ++b)
    for (int64_t c = 0; c < x.c; ++c)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t u = 0; u < 3; ++u)
            for (int64_t v = 0; v < 3; ++v) {
              const int64_t iy = i * 2 - 1 + u, ix = j * 2 - 1 + v;
              if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) m = std::max(m, x.at(b, c, iy, ix));
            }
          y.at(b, c, i, j) = m;
        }
  return y;
}

// ResNet(BASIC, {1, 1, 1, 1}) forward, torchvision's structure.
std::vector<double> reference_resnet(const T4& input, const Map& m, int64_t classes) {
  T4 x = maxpool(bn(conv(input, m.at("conv1.weight"), 2, 3), m, "bn1", true));
  for (int layer = 1; layer <= 4; ++layer) {
    const std::string p = "layer" + std::to_string(layer) + ".0";
    const int64_t stride = layer == 1 ? 1 : 2;
    T4 out = bn(conv(x, m.at(p + ".conv1.weight"), stride, 1), m, p + ".bn1", true);
    out = bn(conv(out, m.at(p + ".conv2.weight"), 1, 1), m, p + ".bn2", false);
    T4 id = m.count(p + ".downsample.0.weight")
                ? bn(conv(x, m.at(p + ".downsample.0.weight"), stride, 0), m, p + ".downsample.1", false)
                : x;
    for (size_t i = 0; i < out.d.size(); ++i) out.d[i] = std::max(out.d[i] + id.d[i], 0.0);
    x = out;
  }
  const float* fw = m.at("fc.weight").data_f32();
  const float* fb = m.at("fc.bias").data_f32();
  std::vector<double> y(size_t(x.n * classes));
  for (int64_t b = 0; b < x.n; ++b)
    for (int64_t o = 0; o < classes; ++o) {
      double acc = fb[o];
      for (int64_t c = 0; c < x.c; ++c) {
        double s = 0;
        for (int64_t i = 0; i < x.h; ++i)
          for (int64_t j = 0; j < x.w; ++j) s += x.at(b, c, i, j);
        acc += s / double(x.h * x.w) * fw[o * x.c + c];
      }
      y[size_t(b * classes + o)] = acc;
    }
  return y;
}

Map as_map(const std::vector<std::pair<std::string, pfv::Tensor>>& sd) { return Map(sd.begin(), sd.end()); }

// Random BatchNorm statistics keep activations near unit scale.
void randomise_bn(models::Model& model, unsigned seed) {
  auto sd = model.state_dict();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(0.5f, 1.5f), sym(-0.2f, 0.2f);
  for (auto& kv : sd) {
    const std::string& k = kv.first;
    auto ends = [&](const char* suf) {
      const std::string s(suf);
      return k.size() > s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0;
    };
    if (kv.second.dtype() != pfv::DType::float32 || k.rfind("conv", 0) == 0 || ends("conv1.weight") ||
        ends("conv2.weight") || ends("downsample.0.weight") || k.rfind("fc.", 0) == 0)
      continue;
    float* d = kv.second.data_f32();
    const bool positive = ends(".weight") || ends("running_var");
    for (int64_t i = 0; i < kv.second.numel(); ++i) d[i] = positive ? pos(rng) : sym(rng);
  }
  model.load_state_dict(sd);
}

pfv::Tensor random_input(pfv::Shape shape, unsigned seed) {
  pfv::Tensor t{pfv::TensorSpec(shape)};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < t.numel(); ++i) t.data_f32()[i] = nd(rng);
  return t;
}

}  // namespace

TEST(Engine, SmallResNetMatchesFloat64ReferenceAtEveryTier) {
  models::ResNet model(models::ResNetBlockType::BASIC, {1, 1, 1, 1}, 5);
  model.init_weights(3);
  randomise_bn(model, 4);
  const Map weights = as_map(model.state_dict());
  const pfv::Tensor x = random_input({2, 3, 37, 45}, 5);
  T4 ref_in(2, 3, 37, 45);
  for (int64_t i = 0; i < x.numel(); ++i) ref_in.d[size_t(i)] = x.data_f32()[i];
  const auto ref = reference_resnet(ref_in, weights, 5);
  double max_ref = 0;
  for (double v : ref) max_ref = std::max(max_ref, std::abs(v));
  ASSERT_GT(max_ref, 1e-2) << "reference output vanishes; the comparison would prove nothing";

  for (pfv::Isa isa : {pfv::Isa::scalar, pfv::Isa::avx2, pfv::Isa::avx512}) {
    if (isa > pfv::detected_isa()) {
      ASSERT_GT(isa, pfv_test::required_isa()) << "PYFLAME_VISION_REQUIRE_ISA requires the " << pfv::isa_name(isa)
                                               << " tier, which this CPU lacks";
      std::printf("[   NOTE   ] tier %s not run: this CPU lacks it\n", pfv::isa_name(isa));
      continue;
    }
    pfv::set_max_isa(isa);
    const pfv::Tensor y = model.forward(models::InputView::of(x));
    ASSERT_EQ(y.shape(), (pfv::Shape{2, 5}));
    double err = 0;
    for (size_t i = 0; i < ref.size(); ++i) err = std::max(err, std::abs(double(y.data_f32()[i]) - ref[i]));
    EXPECT_LE(err, 1e-4 * max_ref) << "tier " << pfv::isa_name(isa);
  }
  pfv::set_max_isa(pfv::Isa::avx512);
}

TEST(Engine, StridedInputIsBitIdenticalAndThreadCountDoesNotMatter) {
  auto model = models::resnet18(7);
  model->init_weights(1);
  const pfv::Tensor x = random_input({2, 3, 33, 29}, 9);
  const pfv::Tensor y = model->forward(models::InputView::of(x));
  // The same data through a [N, H, W, C] buffer viewed with NCHW strides.
  pfv::Tensor nhwc{pfv::TensorSpec({2, 33, 29, 3})};
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 33; ++h)
        for (int64_t w = 0; w < 29; ++w)
          nhwc.data_f32()[((n * 33 + h) * 29 + w) * 3 + c] = x.data_f32()[((n * 3 + c) * 33 + h) * 29 + w];
  models::InputView v{nhwc.data_f32(), {2, 3, 33, 29}, {33 * 29 * 3, 1, 29 * 3, 3}};
  const pfv::Tensor y2 = model->forward(v);
  const int threads = pfv::get_num_threads();
  pfv::set_num_threads(1);
  const pfv::Tensor y1 = model->forward(models::InputView::of(x));
  pfv::set_num_threads(threads);
  for (int64_t i = 0; i < y.numel(); ++i) {
    ASSERT_EQ(y.data_f32()[i], y2.data_f32()[i]) << i;
    ASSERT_EQ(y.data_f32()[i], y1.data_f32()[i]) << i;
  }
}

TEST(Engine, NoWeightsErrorSaysHowToGetThem) {
  auto model = models::resnet18();
  EXPECT_FALSE(model->has_weights());
  const pfv::Tensor x = random_input({1, 3, 32, 32}, 1);
  const std::string msg = pfv_test::message_of<pfv::WeightsError>([&] { model->forward(models::InputView::of(x)); });
  EXPECT_NE(msg.find("init_weights"), std::string::npos) << msg;
  EXPECT_NE(msg.find("load_state_dict"), std::string::npos) << msg;
  pfv_test::message_of<pfv::WeightsError>([&] { model->state_dict(); });
}

TEST(Engine, BatchZeroGivesEmptyOutputs) {
  auto model = models::efficientnet_b0(3);
  model->init_weights(0);
  pfv::Tensor x{pfv::TensorSpec({0, 3, 64, 64})};
  EXPECT_EQ(model->forward(models::InputView::of(x)).shape(), (pfv::Shape{0, 3}));
  const auto f = model->forward_features(models::InputView::of(x));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].shape(), (pfv::Shape{0, 1280, 2, 2}));
}

TEST(Engine, InitWeightsIsDeterministicAndFollowsTorchvision) {
  auto a = models::resnet50(), b = models::resnet50();
  a->init_weights(11);
  b->init_weights(11);
  const Map ma = as_map(a->state_dict()), mb = as_map(b->state_dict());
  const pfv::Tensor& w = ma.at("conv1.weight");
  double sq = 0;
  for (int64_t i = 0; i < w.numel(); ++i) sq += double(w.data_f32()[i]) * w.data_f32()[i];
  const double std_dev = std::sqrt(sq / double(w.numel()));
  EXPECT_NEAR(std_dev, std::sqrt(2.0 / (64 * 49)), 0.05 * std::sqrt(2.0 / (64 * 49)));  // kaiming fan_out
  EXPECT_EQ(ma.at("bn1.weight").data_f32()[5], 1.0f);
  EXPECT_EQ(ma.at("bn1.running_var").data_f32()[5], 1.0f);
  EXPECT_EQ(ma.at("bn1.num_batches_tracked").data_i64()[0], 0);
  const pfv::Tensor& fc = ma.at("fc.weight");
  const float bound = float(1.0 / std::sqrt(2048.0));
  for (int64_t i = 0; i < fc.numel(); ++i) ASSERT_LE(std::abs(fc.data_f32()[i]), bound);
  for (const auto& kv : ma)
    ASSERT_EQ(std::memcmp(kv.second.raw_data(), mb.at(kv.first).raw_data(), size_t(kv.second.nbytes())), 0)
        << kv.first;
  auto c = models::resnet50();
  c->init_weights(12);
  EXPECT_NE(std::memcmp(c->state_dict()[0].second.raw_data(), w.raw_data(), size_t(w.nbytes())), 0);

  models::ResNet z(models::ResNetBlockType::BOTTLENECK, {1, 1, 1, 1}, 10, /*zero_init_residual=*/true);
  z.init_weights(0);
  const Map mz = as_map(z.state_dict());
  EXPECT_EQ(mz.at("layer3.0.bn3.weight").data_f32()[0], 0.0f);
  EXPECT_EQ(mz.at("layer3.0.bn2.weight").data_f32()[0], 1.0f);
}

TEST(Engine, FailedLoadListsEveryProblemAndKeepsTheWeights) {
  auto model = models::resnet18(10);
  model->init_weights(0);
  auto sd = model->state_dict();
  const pfv::Tensor x = random_input({1, 3, 32, 32}, 2);
  const pfv::Tensor before = model->forward(models::InputView::of(x));

  std::vector<std::pair<std::string, pfv::Tensor>> bad;
  for (auto& kv : sd) {
    if (kv.first == "fc.bias") continue;  // missing
    if (kv.first == "conv1.weight") {
      bad.emplace_back(kv.first, pfv::Tensor(pfv::TensorSpec({64, 3, 3, 3})));  // mis-shaped
      continue;
    }
    pfv::Tensor z{kv.second.spec()};  // zeros everywhere else
    bad.emplace_back(kv.first, z);
  }
  bad.emplace_back("extra.weight", pfv::Tensor(pfv::TensorSpec({1})));
  const std::string msg = pfv_test::message_of<pfv::WeightsError>([&] { model->load_state_dict(bad); });
  EXPECT_NE(msg.find("Missing key(s) in state_dict: \"fc.bias\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("Unexpected key(s) in state_dict: \"extra.weight\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("size mismatch for conv1.weight"), std::string::npos) << msg;
  const pfv::Tensor after = model->forward(models::InputView::of(x));
  for (int64_t i = 0; i < before.numel(); ++i) ASSERT_EQ(before.data_f32()[i], after.data_f32()[i]);

  // Not strict: missing and unexpected are reported, size mismatches still raise.
  bad.erase(std::remove_if(bad.begin(), bad.end(), [](const auto& kv) { return kv.first == "conv1.weight"; }),
            bad.end());
  const auto r = model->load_state_dict(bad, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"conv1.weight", "fc.bias"}));
  EXPECT_EQ(r.unexpected_keys, (std::vector<std::string>{"extra.weight"}));
}
