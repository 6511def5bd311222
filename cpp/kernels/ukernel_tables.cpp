// The microkernel table of each tier (constant-initialised: no code runs at
// start-up). A tier lists only its own kernels: what a tier lacks, the
// implementation list (conv_impls.cpp) skips, saying so.
#include "kernels/microkernels.h"
#include "pyflame_vision/cpu.h"

namespace pyflame_vision {
namespace kernels {

namespace {

constexpr UkernelSet kScalar = {
    Isa::scalar,
    1,
    {"igemm_f32_4x8__scalar", 4, 8, igemm_f32_4x8__scalar},
    nullptr,
    nullptr,
    {{nullptr, 0, false, nullptr}},
    {"dwconv_f32_up4__scalar", 4, dwconv_f32_up4__scalar},
    wino_in_f32_2x2_3x3__scalar,
    wino_out_f32_2x2_3x3__scalar,
    vact_f32__scalar,
    vadd_f32__scalar,
    vmul_f32__scalar,
    vmax_f32__scalar,
    vmulc_f32__scalar,
    gavgpool_f32__scalar,
};
constexpr UkernelSet kAvx2 = {
    Isa::avx2,
    8,
    {"igemm_f32_6x16__avx2", 6, 16, igemm_f32_6x16__avx2},
    "gemv_f32_64__avx2",
    gemv_f32_64__avx2,
    {{"igemm_f32_6x16g4c4__avx2", 4, false, igemm_f32_6x16g4c4__avx2},
     {"igemm_f32_6x16g2c8__avx2", 8, true, igemm_f32_6x16g2c8__avx2},
     {nullptr, 0, false, nullptr}},
    {"dwconv_f32_up8__avx2", 8, dwconv_f32_up8__avx2},
    wino_in_f32_2x2_3x3__avx2,
    wino_out_f32_2x2_3x3__avx2,
    vact_f32__avx2,
    vadd_f32__avx2,
    vmul_f32__avx2,
    vmax_f32__avx2,
    vmulc_f32__avx2,
    gavgpool_f32__avx2,
};
constexpr UkernelSet kAvx512 = {
    Isa::avx512,
    16,
    {"igemm_f32_12x32__avx512", 12, 32, igemm_f32_12x32__avx512},
    "gemv_f32_128__avx512",
    gemv_f32_128__avx512,
    {{"igemm_f32_12x32g8c4__avx512", 4, false, igemm_f32_12x32g8c4__avx512},
     {"igemm_f32_12x32g4c8__avx512", 8, false, igemm_f32_12x32g4c8__avx512},
     {"igemm_f32_12x32g2c16__avx512", 16, true, igemm_f32_12x32g2c16__avx512},
     {nullptr, 0, false, nullptr}},
    {"dwconv_f32_up16__avx512", 16, dwconv_f32_up16__avx512},
    wino_in_f32_2x2_3x3__avx512,
    wino_out_f32_2x2_3x3__avx512,
    vact_f32__avx512,
    vadd_f32__avx512,
    vmul_f32__avx512,
    vmax_f32__avx512,
    vmulc_f32__avx512,
    gavgpool_f32__avx512,
};

}  // namespace

const UkernelSet& ukernels_for(Isa isa) {
  switch (isa) {
    case Isa::avx512: return kAvx512;
    case Isa::avx2: return kAvx2;
    case Isa::scalar: break;
  }
  return kScalar;
}

}  // namespace kernels
}  // namespace pyflame_vision
