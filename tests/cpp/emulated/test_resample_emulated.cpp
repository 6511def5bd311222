// The AVX-512 image resampling microkernels (cpp/kernels/avx512/resample_f32__avx512.cpp,
// compiled here against SIMDe's portable AVX-512) through the same testers as the
// real tiers (resample_tester.h).
#include <gtest/gtest.h>

#include "../resample_tester.h"

namespace {

namespace kern = pyflame_vision::kernels;

const kern::ResampleUkernels kEmulated = {static_cast<pyflame_vision::Isa>(2), "avx512 (emulated)",
                                          kern::resample_v_f32__avx512, kern::resample_v_u8__avx512,
                                          kern::resample_h_f32__avx512, kern::resample_quant_u8__avx512};

TEST(EmulatedAvx512Resample, VerticalFloatAndByteRows) { pfv_resample_test::check_vertical(kEmulated); }
TEST(EmulatedAvx512Resample, HorizontalAllChannelCounts) { pfv_resample_test::check_horizontal(kEmulated); }
TEST(EmulatedAvx512Resample, QuantiseRoundsHalfToEvenAndClamps) { pfv_resample_test::check_quantise(kEmulated); }

}  // namespace
