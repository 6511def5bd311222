// The ordered convolution implementation list (cpp/kernels/conv_impls.h):
// every entry, forced with Conv2dKernel::with_impl, against the float64
// reference on every shape it accepts, at every tier this CPU has; the
// selection trace; and selection per input size (no compile history).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../../cpp/kernels/microkernels.h"
#include "pyflame_vision/error.h"
#include "test_helpers.h"
#include "test_kernels_util.h"

using namespace pfv_ktest;  // NOLINT
using pfv_test::Contains;

namespace {

// Shapes that reach every entry: depthwise, 1x1, Winograd-sized 3x3, grouped
// with 4 / 8 / 16 / 32 channels per group (and group counts that do not fill
// a multi-group tile), the 3-channel stem, strided, dilated, padded.
std::vector<ConvShape> shapes() {
  return {
      conv_shape(1, 9, 10, 24, 24, 3, 3, 1, 1, 1, 1, 1, 1, 24),      // depthwise
      conv_shape(2, 5, 7, 19, 37, 1, 1),                             // 1x1
      conv_shape(1, 10, 9, 16, 20, 3, 3, 1, 1, 1, 1),                // Winograd (8x... outputs)
      conv_shape(1, 9, 8, 24, 17, 3, 3, 1, 1, 1, 1),                 // 3x3, 9x8 output
      conv_shape(2, 6, 7, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 16),       // 4 channels per group
      conv_shape(1, 7, 6, 128, 128, 3, 3, 2, 2, 1, 1, 1, 1, 16),     // 8 per group, strided
      conv_shape(1, 5, 6, 96, 96, 3, 3, 1, 1, 1, 1, 1, 1, 6),        // 16 per group
      conv_shape(1, 5, 5, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2),        // 32 per group
      conv_shape(1, 6, 6, 24, 24, 3, 3, 1, 1, 1, 1, 1, 1, 6),        // 4 per group, 6 groups
      conv_shape(1, 15, 13, 3, 16, 7, 7, 2, 2, 3, 3),                // stem: few input channels
      conv_shape(1, 9, 9, 8, 12, 3, 3, 1, 1, 2, 2, 2, 2),            // dilated
      conv_shape(1, 8, 7, 12, 9, 1, 1, 2, 2),                        // strided 1x1
  };
}

class ConvImpls : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam()); }
};

TEST_P(ConvImpls, EveryEntryMatchesTheReferenceOnEveryShapeItAccepts) {
  const Isa isa = GetParam();
  std::map<std::string, int> ran;
  uint64_t seed = 100;
  for (const ConvShape& s : shapes()) {
    for (const std::string& name : kern::conv_impl_names()) {
      for (Epilogue e : {Epilogue::none, Epilogue::relu, Epilogue::silu}) {
        const ConvCase c = make_case(s, e, true, e == Epilogue::relu, Data::integer, seed++);
        std::string why_not;
        try {
          const kern::Conv2dKernel k =
              kern::Conv2dKernel::with_impl(name, s, c.weight.data(), c.bias_ptr(), e, isa);
          EXPECT_STREQ(k.impl_name(), name.c_str());
          Guarded out = run_kernel(k, c);
          auto r = check_conv(c, out.data());
          ASSERT_TRUE(r) << name << " [" << pfv::isa_name(isa) << "]";
          ++ran[name];
        } catch (const pfv::InvalidArgument& ex) {
          EXPECT_TRUE(Contains(ex.what(), "does not apply")) << ex.what();
        }
      }
    }
  }
  for (const std::string& name : kern::conv_impl_names()) {
    if (isa == Isa::scalar && name == "igemm_grouped") {
      EXPECT_EQ(ran[name], 0) << "the scalar tier has no multi-group tiles";
      continue;
    }
    EXPECT_GT(ran[name], 0) << name << " never applied on " << pfv::isa_name(isa) << ": the shapes must reach it";
  }
}

TEST_P(ConvImpls, SelectionTraceNamesEveryEntryTriedAndWhy) {
  const Isa isa = GetParam();
  const ConvShape s = conv_shape(1, 4, 4, 32, 32, 3, 3, 1, 1, 1, 1);  // 3x3, output 4x4: no Winograd
  std::vector<float> w(static_cast<size_t>(w_elems(s)), 1.0f);
  const kern::Conv2dKernel k(s, w.data(), nullptr, Epilogue::none, isa);
  EXPECT_STREQ(k.impl_name(), "igemm");
  const std::string why = k.why();
  EXPECT_TRUE(Contains(why, "skipped dwconv: ")) << why;
  EXPECT_TRUE(Contains(why, "skipped gemm_1x1: kernel 3x3 is not 1x1")) << why;
  EXPECT_TRUE(Contains(why, "skipped winograd_2x2_3x3: output 4x4 is smaller than 8x8")) << why;
  EXPECT_TRUE(Contains(why, "skipped igemm_grouped: not grouped")) << why;
  EXPECT_TRUE(Contains(why, "chose igemm: ")) << why;
  EXPECT_FALSE(Contains(why, "ref")) << "entries after the chosen one are not tried: " << why;
}

// The same layer at two input sizes straddling Winograd's threshold: each
// size selects for itself, and a kernel built after the other size equals a
// kernel built fresh (no compile history).
TEST_P(ConvImpls, SelectionRunsForEveryInputSize) {
  const Isa isa = GetParam();
  const ConvShape small = conv_shape(1, 4, 4, 32, 32, 3, 3, 1, 1, 1, 1);
  const ConvShape big = conv_shape(1, 14, 14, 32, 32, 3, 3, 1, 1, 1, 1);
  const ConvCase c = make_case(big, Epilogue::relu, true, false, Data::random, 7);
  kern::PackCache cache;
  auto source = [&] { return kern::ConvWeights{c.weight, c.bias}; };
  const kern::Conv2dKernel first(small, Epilogue::relu, isa, cache, "layer", source);
  const kern::Conv2dKernel second(big, Epilogue::relu, isa, cache, "layer", source);
  const kern::Conv2dKernel fresh(big, c.weight.data(), c.bias.data(), Epilogue::relu, isa);
  EXPECT_STREQ(first.impl_name(), "igemm");
  EXPECT_STREQ(second.impl_name(), fresh.impl_name());
  EXPECT_STREQ(second.impl_name(), "winograd_2x2_3x3");
  EXPECT_EQ(cache.size(), 2u) << "one packing per implementation";
  Guarded a = run_kernel(second, c), b = run_kernel(fresh, c);
  EXPECT_TRUE(bitwise_equal(std::vector<float>(a.data(), a.data() + out_elems(big)), b.data()));
  // The same implementation again shares the packed weights.
  int packed = 0;
  auto counting = [&] {
    ++packed;
    return kern::ConvWeights{c.weight, c.bias};
  };
  const kern::Conv2dKernel third(conv_shape(2, 20, 16, 32, 32, 3, 3, 1, 1, 1, 1), Epilogue::relu, isa, cache,
                                 "layer", counting);
  EXPECT_STREQ(third.impl_name(), "winograd_2x2_3x3");
  EXPECT_EQ(packed, 0);
  EXPECT_EQ(cache.size(), 2u);
  // A donor of another implementation cannot lend its weights.
  EXPECT_THROW(kern::Conv2dKernel(big, first), pfv::InvalidArgument);
}

// Batch 1 runs the classifier (and a 1x1 convolution on [1, C, 1, 1]) as a
// GEMV: bit-identical to the GEMM's row at any batch.
TEST_P(ConvImpls, OneRowGemvEqualsTheGemmRow) {
  const Isa isa = GetParam();
  Rng rng(5);
  const int64_t in = 130, out = 1000;
  std::vector<float> w(static_cast<size_t>(in * out)), b(static_cast<size_t>(out)), x(static_cast<size_t>(3 * in));
  for (auto& v : w) v = rng.sym();
  for (auto& v : b) v = rng.sym();
  for (auto& v : x) v = rng.sym();
  const kern::LinearKernel k(in, out, w.data(), b.data(), Epilogue::silu, isa);
  std::vector<float> one(static_cast<size_t>(out)), three(static_cast<size_t>(3 * out));
  k.run(x.data(), 1, one.data());
  k.run(x.data(), 3, three.data());
  EXPECT_TRUE(bitwise_equal(one, three.data())) << k.description();
  const ConvShape s1 = conv_shape(1, 1, 1, in, 96, 1, 1), s3 = conv_shape(3, 1, 1, in, 96, 1, 1);
  const kern::Conv2dKernel c1(s1, w.data(), b.data(), Epilogue::sigmoid, isa);
  const kern::Conv2dKernel c3(s3, w.data(), b.data(), Epilogue::sigmoid, isa);
  std::vector<float> o1(96), o3(3 * 96);
  c1.run(x.data(), o1.data(), nullptr);
  c3.run(x.data(), o3.data(), nullptr);
  EXPECT_TRUE(bitwise_equal(o1, o3.data())) << c1.description();
}

// A 1x1 convolution whose rows leave one past the last full tile (49 = 8 * 6
// + 1 at 7x7) runs that row as a GEMV (+ residual and activation by vadd):
// bit-identical to the same row inside a full tile, with and without a
// residual, for every epilogue and partial column panels.
TEST_P(ConvImpls, RowPastTheLastTileEqualsTheTileRow) {
  const Isa isa = GetParam();
  const int64_t mr = static_cast<int64_t>(kern::ukernels_for(isa).igemm.mr);
  Rng rng(9);
  for (const int64_t cin : {int64_t{37}, int64_t{130}})
    for (const int64_t cout : {int64_t{96}, int64_t{37}})
      for (const Epilogue e : {Epilogue::none, Epilogue::relu, Epilogue::silu, Epilogue::sigmoid})
        for (const bool with_res : {false, true}) {
          // M = mr + 1 rows (one past the first tile) and M = 2 * mr rows (full tiles),
          // the first mr + 1 input rows the same.
          const ConvShape tail = conv_shape(1, 1, mr + 1, cin, cout, 1, 1);
          const ConvShape full = conv_shape(1, 1, 2 * mr, cin, cout, 1, 1);
          std::vector<float> w(static_cast<size_t>(cin * cout)), b(static_cast<size_t>(cout));
          std::vector<float> x(static_cast<size_t>(2 * mr * cin)), r(static_cast<size_t>(2 * mr * cout));
          for (auto& v : w) v = rng.sym();
          for (auto& v : b) v = rng.sym();
          for (auto& v : x) v = rng.sym();
          for (auto& v : r) v = rng.sym();
          const kern::Conv2dKernel kt(tail, w.data(), b.data(), e, isa), kf(full, w.data(), b.data(), e, isa);
          std::vector<float> ot(static_cast<size_t>((mr + 1) * cout)), of(static_cast<size_t>(2 * mr * cout));
          kt.run(x.data(), ot.data(), with_res ? r.data() : nullptr);
          kf.run(x.data(), of.data(), with_res ? r.data() : nullptr);
          EXPECT_TRUE(bitwise_equal(ot, of.data()))
              << kt.description() << " cin=" << cin << " cout=" << cout << " residual=" << with_res;
        }
}

TEST(ConvImplList, ReferenceIsLastAndAlwaysApplies) {
  const auto names = kern::conv_impl_names();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "ref");
  const ConvShape s = conv_shape(1, 3, 3, 2, 2, 3, 3);
  std::vector<float> w(static_cast<size_t>(w_elems(s)), 1.0f);
  EXPECT_NO_THROW(kern::Conv2dKernel::with_impl("ref", s, w.data(), nullptr, Epilogue::none, Isa::scalar));
  const std::string m = pfv_test::message_of<pfv::InvalidArgument>(
      [&] { kern::Conv2dKernel::with_impl("nope", s, w.data(), nullptr, Epilogue::none, Isa::scalar); });
  EXPECT_TRUE(Contains(m, "no implementation called 'nope'")) << m;
  EXPECT_TRUE(Contains(m, "winograd_2x2_3x3")) << m;
}

// Weights held once (cpp/graph/weight_store.h) rely on every packing but
// Winograd's being a permutation that unpack() inverts bit for bit. Every
// entry of the list is checked on every shape it accepts, with values that a
// conversion would alter (-0, NaN payloads, infinities, subnormals): an entry
// whose packed layout changes without its unpack() fails here, and a new
// entry that does not unpack must be added to the list below on purpose.
std::vector<float> awkward_weights(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> w(n);
  for (auto& v : w) v = rng.sym();
  const uint32_t specials[] = {0x80000000u, 0x7FC01234u, 0xFFA00001u, 0x7F800000u, 0xFF800000u, 0x00000001u,
                               0x807FFFFFu, 0x3F800001u};
  for (size_t i = 0; i < n; i += 7) std::memcpy(&w[i], &specials[(i / 7) % 8], 4);
  return w;
}

TEST_P(ConvImpls, EveryPermutingEntryUnpacksItsWeightsBitForBit) {
  const Isa isa = GetParam();
  const std::vector<std::string> not_unpacking = {"winograd_2x2_3x3"};  // transformed, not permuted
  std::map<std::string, int> checked;
  uint64_t seed = 500;
  for (const ConvShape& s : shapes()) {
    for (const std::string& name : kern::conv_impl_names()) {
      const std::vector<float> w = awkward_weights(static_cast<size_t>(w_elems(s)), seed++);
      std::vector<float> b(static_cast<size_t>(s.out_c), 0.25f);
      std::optional<kern::Conv2dKernel> k;
      try {
        k.emplace(kern::Conv2dKernel::with_impl(name, s, w.data(), b.data(), Epilogue::relu, isa));
      } catch (const pfv::InvalidArgument&) {
        continue;  // does not apply to this shape
      }
      auto packed = k->packed_weights();
      if (std::find(not_unpacking.begin(), not_unpacking.end(), name) != not_unpacking.end()) {
        EXPECT_EQ(packed, nullptr) << name;
        continue;
      }
      ASSERT_NE(packed, nullptr) << name << ": every entry but " << not_unpacking[0] << " must unpack";
      ASSERT_EQ(packed->size(), w.size()) << name;
      std::vector<float> back(w.size(), 1.0f);
      packed->unpack(back.data());
      EXPECT_EQ(std::memcmp(back.data(), w.data(), w.size() * 4), 0)
          << name << " [" << pfv::isa_name(isa) << "] " << str(s) << ": " << k->description();
      ++checked[name];
    }
  }
  for (const std::string& name : kern::conv_impl_names()) {
    if (std::find(not_unpacking.begin(), not_unpacking.end(), name) != not_unpacking.end()) continue;
    if (isa == Isa::scalar && name == "igemm_grouped") continue;  // no multi-group tiles on scalar
    EXPECT_GT(checked[name], 0) << name << " was never checked on " << pfv::isa_name(isa);
  }
  // Linear: the classifier's packed panels, with widths that leave partial panels.
  for (const auto& io : std::vector<std::pair<int64_t, int64_t>>{{130, 1000}, {7, 5}, {64, 16}, {1280, 10}}) {
    const std::vector<float> w = awkward_weights(static_cast<size_t>(io.first * io.second), seed++);
    const kern::LinearKernel lk(io.first, io.second, w.data(), nullptr, Epilogue::none, isa);
    auto packed = lk.packed_weights();
    ASSERT_NE(packed, nullptr);
    ASSERT_EQ(packed->size(), w.size());
    std::vector<float> back(w.size(), 1.0f);
    packed->unpack(back.data());
    EXPECT_EQ(std::memcmp(back.data(), w.data(), w.size() * 4), 0)
        << "linear " << io.first << "->" << io.second << " [" << pfv::isa_name(isa) << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, ConvImpls, ::testing::ValuesIn(all_tiers()), IsaName());

}  // namespace
