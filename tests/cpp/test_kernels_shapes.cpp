// Every real Conv2d / Linear layer shape of the supported models
// (benchmarks/shapes/*.txt, written by benchmarks/extract_shapes.py; the same
// list drives benchmarks/kernel_bench.cpp), at every tier this CPU supports.
//
// Each conv shape runs twice: integer data (exact comparison) and random data
// (rounding-error bound), with the epilogue cycling through none + residual,
// relu, silu, sigmoid. The output is NaN-prefilled; every element must be
// written, and a deterministic sample (all channels of the corner and centre
// pixels plus 512 random elements) is compared with the float64 reference, so
// the whole list stays fast even at the scalar tier.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "../../benchmarks/shape_list.h"
#include "pyflame_vision/cpu.h"
#include "test_kernels_util.h"

using namespace pfv_ktest;  // NOLINT

namespace {

/// benchmarks/shapes, found from this source file's path.
std::string shapes_dir() {
  std::string here = __FILE__;
  const auto slash = here.find_last_of("/\\");
  const std::string dir = slash == std::string::npos ? "." : here.substr(0, slash);
  return dir + "/../../benchmarks/shapes";
}

std::vector<pfv_shapes::LayerCase> load_family(const std::string& family) {
  const std::string path = shapes_dir() + "/" + family + ".txt";
  std::ifstream probe(path);
  if (!probe) {
    ADD_FAILURE() << "missing shape list " << path << " (regenerate with python3 benchmarks/extract_shapes.py)";
    return {};
  }
  try {
    auto cases = pfv_shapes::parse_shape_file(path, family);
    if (cases.empty()) ADD_FAILURE() << path << " lists no shapes";
    return cases;
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
    return {};
  }
}

TEST(KernelShapeList, AllFamiliesPresentWithExpectedLayerCounts) {
  std::map<std::string, int64_t> convs, linears;
  for (const auto& fam : pfv_shapes::family_names()) {
    for (const auto& c : load_family(fam)) {
      for (const auto& u : c.users)
        (c.kind == pfv_shapes::LayerCase::Kind::conv ? convs : linears)[u.first] +=
            static_cast<int64_t>(u.second.size());
    }
  }
  // Conv2d layers per model in torchvision (the lists are complete, not samples).
  const std::map<std::string, int64_t> expected{
      {"resnet18", 20},         {"resnet34", 36},         {"resnet50", 53},          {"resnet101", 104},
      {"resnet152", 155},       {"resnext50_32x4d", 53},  {"resnext101_32x8d", 104}, {"wide_resnet50_2", 53},
      {"wide_resnet101_2", 104}, {"efficientnet_b0", 81}, {"efficientnet_b1", 115},  {"efficientnet_b2", 115},
      {"efficientnet_b3", 130}, {"efficientnet_b4", 160}, {"resnet50_dilated", 53}};
  EXPECT_EQ(convs, expected);
  for (const auto& m : expected) EXPECT_EQ(linears[m.first], 1) << m.first;
}

struct ShapeParam {
  Isa isa;
  std::string family;
};

std::vector<ShapeParam> shape_params() {
  std::vector<ShapeParam> v;
  for (Isa isa : all_tiers())
    for (const auto& fam : pfv_shapes::family_names()) v.push_back({isa, fam});
  return v;
}

class KernelRealShapes : public ::testing::TestWithParam<ShapeParam> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam().isa); }
};

TEST_P(KernelRealShapes, MatchReference) {
  const Isa isa = GetParam().isa;
  const auto cases = load_family(GetParam().family);
  ASSERT_FALSE(cases.empty());
  std::map<std::string, int> algorithms;
  int failures = 0;
  uint64_t seed = 10000;
  for (size_t i = 0; i < cases.size() && failures < 5; ++i) {
    const auto& lc = cases[i];
    SCOPED_TRACE(lc.where() + " [" + pfv::isa_name(isa) + "]");
    if (lc.kind == pfv_shapes::LayerCase::Kind::linear) {
      for (Data data : {Data::integer, Data::random}) {
        ConvCase c = make_case(conv_shape(1, lc.rows, 1, lc.in_features, lc.out_features, 1, 1), Epilogue::none, true,
                               false, data, seed++);
        kern::LinearKernel k(lc.in_features, lc.out_features, c.weight.data(), c.bias.data(), Epilogue::none, isa);
        Guarded out(static_cast<size_t>(lc.rows * lc.out_features));
        k.run(c.in.data(), lc.rows, out.data());
        EXPECT_TRUE(out.guards_intact());
        auto r = check_conv(c, out.data());
        EXPECT_TRUE(r);
        failures += !r;
        if (data == Data::integer) ++algorithms["linear: " + k.description()];
      }
      continue;
    }
    ASSERT_LT(integer_bound(lc.conv), 16777216.0) << "integer data would not be exact";
    const Epilogue epilogues[] = {Epilogue::none, Epilogue::relu, Epilogue::silu, Epilogue::sigmoid};
    const Epilogue e = epilogues[i % 4];
    for (Data data : {Data::integer, Data::random}) {
      const ConvCase c = make_case(lc.conv, e, true, e == Epilogue::none || i % 3 == 0, data, seed++);
      kern::Conv2dKernel k(c.shape, c.weight.data(), c.bias_ptr(), c.epilogue, isa);
      if (data == Data::integer) ++algorithms[k.description()];
      Guarded out(static_cast<size_t>(out_elems(c.shape)));
      k.run(c.in.data(), out.data(), c.residual_ptr());
      EXPECT_TRUE(out.guards_intact()) << "wrote outside the output";
      const auto idx = sample_indices(c.shape, 512, seed);
      auto r = check_conv(c, out.data(), &idx);
      EXPECT_TRUE(r);
      failures += !r;
    }
  }
  EXPECT_LT(failures, 5) << "stopped after 5 failing shapes";
  std::cout << "[ algorithms ] " << GetParam().family << " at " << pfv::isa_name(isa) << ":\n";
  for (const auto& a : algorithms) std::cout << "    " << a.second << "x " << a.first << "\n";
}

INSTANTIATE_TEST_SUITE_P(Tiers, KernelRealShapes, ::testing::ValuesIn(shape_params()),
                         [](const ::testing::TestParamInfo<ShapeParam>& info) {
                           return std::string(pfv::isa_name(info.param.isa)) + "_" + info.param.family;
                         });

}  // namespace
