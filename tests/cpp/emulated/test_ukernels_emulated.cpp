// The AVX-512 microkernels (the generated ukernels_f32__avx512.cpp, compiled
// here against SIMDe's portable AVX-512: emulated/avx512_emulation.h) through
// the same testers as every real tier (ukernel_tester.h). This executable
// does not link the library: it holds the emulated kernels, the scalar tier
// (the Winograd reference) and the tests.
#include <gtest/gtest.h>

#include "../ukernel_tester.h"

namespace {

namespace kern = pyflame_vision::kernels;

TEST(EmulatedAvx512, Igemm12x32) {
  pfv_uktest::test_igemm({"igemm_f32_12x32__avx512 (emulated)", 12, 32, 16, 0, true, kern::igemm_f32_12x32__avx512});
}

TEST(EmulatedAvx512, GroupedIgemm4ChannelsPerGroup) {
  pfv_uktest::test_igemm(
      {"igemm_f32_12x32g8c4__avx512 (emulated)", 12, 32, 16, 4, false, kern::igemm_f32_12x32g8c4__avx512});
}

TEST(EmulatedAvx512, GroupedIgemm8ChannelsPerGroup) {
  pfv_uktest::test_igemm(
      {"igemm_f32_12x32g4c8__avx512 (emulated)", 12, 32, 16, 8, false, kern::igemm_f32_12x32g4c8__avx512});
}

TEST(EmulatedAvx512, GroupedIgemm16ChannelsPerGroup) {
  pfv_uktest::test_igemm(
      {"igemm_f32_12x32g2c16__avx512 (emulated)", 12, 32, 16, 16, true, kern::igemm_f32_12x32g2c16__avx512});
}

TEST(EmulatedAvx512, GemvEqualsTheIgemmRow) {
  pfv_uktest::test_gemv("gemv_f32_128__avx512 (emulated)", 32, 16, kern::gemv_f32_128__avx512, 12,
                        kern::igemm_f32_12x32__avx512);
}

TEST(EmulatedAvx512, Dwconv) { pfv_uktest::test_dwconv("dwconv_f32_up16__avx512 (emulated)", 16, kern::dwconv_f32_up16__avx512); }

TEST(EmulatedAvx512, WinogradTransforms) {
  pfv_uktest::test_winograd("avx512 (emulated)", 16, kern::wino_in_f32_2x2_3x3__avx512,
                            kern::wino_out_f32_2x2_3x3__avx512);
}

TEST(EmulatedAvx512, ElementwiseAndPooling) {
  pfv_uktest::test_eltwise({"avx512 (emulated)", 16, kern::vact_f32__avx512, kern::vadd_f32__avx512,
                            kern::vmul_f32__avx512, kern::vmax_f32__avx512, kern::vmulc_f32__avx512,
                            kern::gavgpool_f32__avx512});
}

}  // namespace
