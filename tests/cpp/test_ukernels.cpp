// Every microkernel of every tier's table, called directly (ukernel_tester.h),
// at each tier this CPU has; a tier it lacks is skipped by name, or fails
// under PYFLAME_VISION_REQUIRE_ISA. The AVX-512 instance also runs under
// emulation on every machine (test_ukernels_emulated.cpp).
#include <gtest/gtest.h>

#include <string>

#include "../../cpp/kernels/microkernels.h"
#include "pyflame_vision/cpu.h"
#include "test_helpers.h"
#include "ukernel_tester.h"

namespace {

namespace pfv = pyflame_vision;
namespace kern = pyflame_vision::kernels;
using pfv::Isa;

class Ukernels : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { PFV_REQUIRE_TIER(GetParam()); }
  const kern::UkernelSet& uk() const { return kern::ukernels_for(GetParam()); }
};

TEST_P(Ukernels, TableIsTheTiers) {
  const kern::UkernelSet& u = uk();
  EXPECT_EQ(u.isa, GetParam());
  const std::string suffix = std::string("__") + pfv::isa_name(GetParam());
  EXPECT_NE(std::string(u.igemm.name).find(suffix), std::string::npos) << u.igemm.name;
  EXPECT_NE(std::string(u.dwconv.name).find(suffix), std::string::npos) << u.dwconv.name;
  EXPECT_EQ(u.igemm.nr % u.vw, 0u);
  for (const auto& g : u.grouped) {
    if (g.name == nullptr) break;
    EXPECT_NE(std::string(g.name).find(suffix), std::string::npos) << g.name;
    EXPECT_EQ(u.igemm.nr % g.c, 0u) << g.name;
    EXPECT_TRUE(g.c == u.vw || !g.any_kc) << g.name << ": kernels narrower than a vector need kc == c";
  }
}

TEST_P(Ukernels, Igemm) {
  const kern::UkernelSet& u = uk();
  pfv_uktest::test_igemm({u.igemm.name, u.igemm.mr, u.igemm.nr, u.vw, 0, true, u.igemm.fn});
}

TEST_P(Ukernels, GroupedIgemm) {
  const kern::UkernelSet& u = uk();
  int n = 0;
  for (const auto& g : u.grouped) {
    if (g.name == nullptr) break;
    pfv_uktest::test_igemm({g.name, u.igemm.mr, u.igemm.nr, u.vw, g.c, g.any_kc, g.fn});
    ++n;
  }
  if (GetParam() != Isa::scalar) {
    EXPECT_GE(n, 2) << "vector tiers have grouped kernels for 4 and 8 channels per group";
  }
}

TEST_P(Ukernels, GemvEqualsTheIgemmRow) {
  const kern::UkernelSet& u = uk();
  if (u.gemv == nullptr) {
    EXPECT_EQ(GetParam(), Isa::scalar) << "vector tiers have a GEMV";
    return;
  }
  pfv_uktest::test_gemv(u.gemv_name, u.igemm.nr, u.vw, u.gemv, u.igemm.mr, u.igemm.fn);
}

TEST_P(Ukernels, Dwconv) { pfv_uktest::test_dwconv(uk().dwconv.name, uk().dwconv.cb, uk().dwconv.fn); }

TEST_P(Ukernels, WinogradTransforms) {
  pfv_uktest::test_winograd(pfv::isa_name(GetParam()), uk().vw, uk().wino_in, uk().wino_out);
}

TEST_P(Ukernels, ElementwiseAndPooling) {
  const kern::UkernelSet& u = uk();
  pfv_uktest::test_eltwise({pfv::isa_name(GetParam()), u.vw, u.vact, u.vadd, u.vmul, u.vmax, u.vmulc, u.gavgpool});
}

INSTANTIATE_TEST_SUITE_P(Tiers, Ukernels, ::testing::Values(Isa::scalar, Isa::avx2, Isa::avx512),
                         [](const ::testing::TestParamInfo<Isa>& i) { return pfv::isa_name(i.param); });

// The tier PYFLAME_VISION_REQUIRE_ISA names must be present: a machine that
// reports less (or a detection that misses it) fails here even if no other
// test of that tier exists.
TEST(RequireIsa, TheRequiredTierIsDetected) {
  EXPECT_GE(pfv::detected_isa(), pfv_test::required_isa())
      << "PYFLAME_VISION_REQUIRE_ISA=" << pfv::isa_name(pfv_test::required_isa()) << ", detected "
      << pfv::isa_name(pfv::detected_isa());
}

}  // namespace
