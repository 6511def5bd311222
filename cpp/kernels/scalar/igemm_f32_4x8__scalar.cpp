// Portable indirect-GEMM microkernel, 4x8 tile (see microkernels.h).
#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

void igemm_f32_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                           float* c, size_t ldc, const float* res, size_t ldr, int relu) {
  constexpr size_t MR = 4, NR = 8;
  float acc[MR][NR];
  for (size_t i = 0; i < MR; ++i)
    for (size_t j = 0; j < NR; ++j) acc[i][j] = w[j];
  w += NR;
  for (size_t t = 0; t < ks; ++t) {
    const float* a0 = a[t * MR + 0];
    const float* a1 = a[t * MR + 1];
    const float* a2 = a[t * MR + 2];
    const float* a3 = a[t * MR + 3];
    for (size_t k = 0; k < kc; ++k) {
      const float v0 = a0[k], v1 = a1[k], v2 = a2[k], v3 = a3[k];
      for (size_t j = 0; j < NR; ++j) {
        const float b = w[j];
        acc[0][j] += v0 * b;
        acc[1][j] += v1 * b;
        acc[2][j] += v2 * b;
        acc[3][j] += v3 * b;
      }
      w += NR;
    }
  }
  for (size_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    const float* ri = res ? res + i * ldr : nullptr;
    for (size_t j = 0; j < nc; ++j) {
      float v = acc[i][j];
      if (ri) v += ri[j];
      if (relu && v < 0.0f) v = 0.0f;  // NaN < 0 is false: NaN kept
      ci[j] = v;
    }
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
