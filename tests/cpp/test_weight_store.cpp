// Weights held once (cpp/graph/weight_store.h): a weight whose packed copy
// (W * BatchNorm scale, permuted) rebuilds it bit for bit leaves the
// resident set; anything that cannot be rebuilt exactly stays resident.
// The packed side is a stand-in here (a permutation of W * scale computed
// as select_kernels folds it); test_engine.cpp and the Python tests run the
// real kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "../../cpp/graph/weight_store.h"
#include "../../cpp/kernels/conv.h"
#include "test_helpers.h"

namespace {

namespace pfv = pyflame_vision;
using pfv::DType;
using pfv::Tensor;
using pfv::TensorSpec;
using pfv::WeightStore;

// Packs W' = float(W * scale[o]) (in double, as select_kernels folds BatchNorm)
// reversed in order, so unpack() must undo a permutation.
class FoldedReversed final : public pfv::kernels::PackedWeights {
 public:
  FoldedReversed(const Tensor& w, const std::vector<double>& scale) : data_(static_cast<size_t>(w.numel())) {
    const size_t n = data_.size(), per = scale.empty() ? n : n / scale.size();
    for (size_t i = 0; i < n; ++i) {
      const double s = scale.empty() ? 1.0 : scale[i / per];
      data_[n - 1 - i] = static_cast<float>(static_cast<double>(w.data_f32()[i]) * s);
    }
  }
  size_t size() const override { return data_.size(); }
  void unpack(float* weight) const override {
    for (size_t i = 0; i < data_.size(); ++i) weight[i] = data_[data_.size() - 1 - i];
  }
  const void* id() const override { return data_.data(); }

 private:
  std::vector<float> data_;
};

Tensor random_weight(int64_t out, int64_t per, uint64_t seed) {
  Tensor t{TensorSpec({out, per, 1, 1}, DType::float32)};
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 7;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    t.data_f32()[i] = static_cast<float>(static_cast<double>(s % 2000001) / 1e6 - 1.0) * 0.05f;
  }
  return t;
}

std::vector<double> bn_scales(int64_t out, uint64_t seed) {
  std::vector<double> s(static_cast<size_t>(out));
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = (0.3 + 1.7 * static_cast<double>((i * 7919 + seed * 104729) % 1000) / 1000.0) / std::sqrt(0.9 + 1e-5);
  return s;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.spec() == b.spec() &&
         std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.nbytes())) == 0;
}

TEST(WeightStore, DerivedWeightsRebuildBitForBitAndLeaveTheResidentSet) {
  WeightStore store;
  const Tensor w = random_weight(64, 147, 1);
  const Tensor keep = w.clone();
  store.set("conv.weight", w);
  store.set("bn.weight", random_weight(64, 1, 2));
  const int64_t before = store.resident_bytes();
  const auto scale = bn_scales(64, 3);
  ASSERT_TRUE(store.derive("conv.weight", std::make_shared<FoldedReversed>(w, scale), scale));
  EXPECT_FALSE(store.resident("conv.weight"));
  EXPECT_TRUE(store.has("conv.weight"));
  EXPECT_EQ(store.resident_bytes(), before - keep.nbytes());
  // Dividing the scale back out misses by one float step for some elements: they carry corrections.
  EXPECT_GT(store.derived_bytes(), 0);
  EXPECT_LE(store.derived_bytes(), (keep.numel() + 3) / 4);
  EXPECT_TRUE(same_bits(store.get("conv.weight"), keep));
  const Tensor copy = store.get_copy("conv.weight");
  EXPECT_TRUE(same_bits(copy, keep));
}

TEST(WeightStore, WithoutAScaleThePackedCopyIsTheWeight) {
  WeightStore store;
  const Tensor w = random_weight(10, 33, 4);
  const Tensor keep = w.clone();
  store.set("fc.weight", w);
  ASSERT_TRUE(store.derive("fc.weight", std::make_shared<FoldedReversed>(w, std::vector<double>{}), {}));
  EXPECT_EQ(store.derived_bytes(), 0) << "no corrections when nothing was folded";
  EXPECT_TRUE(same_bits(store.get("fc.weight"), keep));
}

// Scales that lose information, and values that do not survive the round
// trip, keep the weight resident; every value stays exactly what was set.
TEST(WeightStore, WhatCannotBeRebuiltExactlyStaysResident) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  uint32_t payload_bits = 0x7FC01234u;  // a NaN with a payload
  float payload_nan;
  std::memcpy(&payload_nan, &payload_bits, 4);
  enum Expect { kResident, kDerived, kEither };
  struct Case {
    const char* what;
    std::vector<double> scale;
    bool write;     // write `special` at element 5
    float special;
    Expect expect;
  };
  const std::vector<Case> cases = {
      {"scale 0 (BatchNorm weight 0)", {1.0, 0.0, 1.3, 0.7}, false, 0.0f, kResident},
      {"infinite scale", {1.0, inf, 1.3, 0.7}, false, 0.0f, kResident},
      {"NaN scale", {1.0, 1.1, nan, 0.7}, false, 0.0f, kResident},
      {"tiny scale: products lose their precision", {1e-42, 1.0, 1.0, 1.0}, false, 0.0f, kResident},
      // Whether the arithmetic keeps a NaN's payload depends on the target; the value must be exact either way.
      {"NaN weight with a payload", {1.0, 1.1, 1.3, 0.7}, true, payload_nan, kEither},
      {"negative scales and an infinite weight", {-1.0, -0.37, 2.9, -1e-3}, true, -inf, kDerived},
      {"negative zero", {-1.5, 0.8, 1.3, 0.7}, true, -0.0f, kDerived},
  };
  for (const Case& c : cases) {
    WeightStore store;
    Tensor w = random_weight(4, 6, 9);
    if (c.write) w.data_f32()[5] = c.special;
    const Tensor keep = w.clone();
    store.set("w", w);
    const bool got = store.derive("w", std::make_shared<FoldedReversed>(w, c.scale), c.scale);
    if (c.expect != kEither) {
      EXPECT_EQ(got, c.expect == kDerived) << c.what;
    }
    EXPECT_EQ(store.resident("w"), !got) << c.what;
    EXPECT_TRUE(same_bits(store.get("w"), keep)) << c.what;
  }
}

TEST(WeightStore, RefusesPackedWeightsOfAnotherSize) {
  WeightStore store;
  const Tensor w = random_weight(4, 6, 1);
  store.set("w", w);
  EXPECT_FALSE(store.derive("w", std::make_shared<FoldedReversed>(random_weight(4, 5, 1), std::vector<double>{}),
                            {}));
  EXPECT_FALSE(store.derive("w", nullptr, {}));
  EXPECT_FALSE(store.derive("absent", std::make_shared<FoldedReversed>(w, std::vector<double>{}), {}));
  EXPECT_TRUE(store.resident("w"));
}

// A copy shares values; setting a key in the copy leaves the original alone.
TEST(WeightStore, CopiesShareDerivedValuesAndDiverge) {
  WeightStore store;
  const Tensor w = random_weight(8, 12, 5);
  const Tensor keep = w.clone();
  const auto scale = bn_scales(8, 1);
  store.set("w", w);
  ASSERT_TRUE(store.derive("w", std::make_shared<FoldedReversed>(w, scale), scale));
  auto copy = store.copy();
  EXPECT_TRUE(same_bits(copy->get("w"), keep));
  copy->set("w", random_weight(8, 12, 6));
  EXPECT_TRUE(same_bits(store.get("w"), keep));
  EXPECT_FALSE(same_bits(copy->get("w"), keep));
}

// A derived weight follows the newest packing that rebuilds it, so an older
// packing (another implementation, weights kept across load_state_dict) is
// freed once its kernels are gone; a packing of other values is refused.
TEST(WeightStore, ADerivedWeightMovesToTheNewestPackingAndReleasesTheOld) {
  WeightStore store;
  const Tensor w = random_weight(16, 20, 3);
  const Tensor keep = w.clone();
  const auto scale = bn_scales(16, 4);
  store.set("w", w);
  auto first = std::make_shared<FoldedReversed>(w, scale);
  std::weak_ptr<FoldedReversed> first_alive = first;
  ASSERT_TRUE(store.derive("w", first, scale));
  EXPECT_TRUE(store.derive("w", first, scale)) << "the same packing again";
  first.reset();
  EXPECT_FALSE(first_alive.expired()) << "the store holds the packing it rebuilds from";
  ASSERT_TRUE(store.derive("w", std::make_shared<FoldedReversed>(keep, scale), scale));
  EXPECT_TRUE(first_alive.expired()) << "the old packing is released";
  EXPECT_TRUE(same_bits(store.get("w"), keep));
  const Tensor other = random_weight(16, 20, 4);
  auto foreign = std::make_shared<FoldedReversed>(other, scale);
  std::weak_ptr<FoldedReversed> foreign_alive = foreign;
  EXPECT_FALSE(store.derive("w", std::move(foreign), scale)) << "packed from other values";
  EXPECT_TRUE(foreign_alive.expired());
  EXPECT_TRUE(same_bits(store.get("w"), keep));
  EXPECT_FALSE(store.resident("w"));
}

TEST(WeightStore, ConcurrentReadersSeeTheSameValuesWhileAWeightIsDerived) {
  WeightStore store;
  const Tensor w = random_weight(32, 64, 8);
  const Tensor keep = w.clone();
  const auto scale = bn_scales(32, 2);
  store.set("w", w);
  std::vector<std::thread> readers;
  std::vector<int> ok(4, 1);
  for (int r = 0; r < 4; ++r)
    readers.emplace_back([&, r] {
      for (int i = 0; i < 200; ++i)
        if (!same_bits(store.get_copy("w"), keep)) ok[static_cast<size_t>(r)] = 0;
    });
  EXPECT_TRUE(store.derive("w", std::make_shared<FoldedReversed>(w, scale), scale));
  for (auto& t : readers) t.join();
  for (int v : ok) EXPECT_EQ(v, 1);
}

}  // namespace
