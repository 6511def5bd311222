// Winograd F(2x2, 3x3) input and output transforms, one channel at a time
// (see microkernels.h for the contract, conv.cpp for the matrices).
#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

void wino_in_f32_2x2_3x3__scalar(size_t channels, const float* const* d, float* v, size_t vs) {
  for (size_t c = 0; c < channels; ++c) {
    float t[4][4];
    for (int r = 0; r < 4; ++r) {
      const float d0 = d[r * 4 + 0][c], d1 = d[r * 4 + 1][c], d2 = d[r * 4 + 2][c], d3 = d[r * 4 + 3][c];
      t[r][0] = d0 - d2;
      t[r][1] = d1 + d2;
      t[r][2] = d2 - d1;
      t[r][3] = d1 - d3;
    }
    for (int j = 0; j < 4; ++j) {
      v[(0 * 4 + j) * vs + c] = t[0][j] - t[2][j];
      v[(1 * 4 + j) * vs + c] = t[1][j] + t[2][j];
      v[(2 * 4 + j) * vs + c] = t[2][j] - t[1][j];
      v[(3 * 4 + j) * vs + c] = t[1][j] - t[3][j];
    }
  }
}

void wino_out_f32_2x2_3x3__scalar(size_t channels, const float* m, size_t ms, const float* bias, float* const* o,
                                  const float* const* r, int relu) {
  for (size_t c = 0; c < channels; ++c) {
    float s[4], t[4];
    for (int i = 0; i < 4; ++i) {
      const float m0 = m[(i * 4 + 0) * ms + c], m1 = m[(i * 4 + 1) * ms + c];
      const float m2 = m[(i * 4 + 2) * ms + c], m3 = m[(i * 4 + 3) * ms + c];
      s[i] = m0 + m1 + m2;
      t[i] = m1 - m2 - m3;
    }
    float y[4] = {s[0] + s[1] + s[2], t[0] + t[1] + t[2], s[1] - s[2] - s[3], t[1] - t[2] - t[3]};
    for (int k = 0; k < 4; ++k) {
      y[k] += bias[c];
      if (r[k] != nullptr) y[k] += r[k][c];
      if (relu) y[k] = (y[k] > 0.0f || y[k] != y[k]) ? y[k] : 0.0f;  // relu(NaN) = NaN
    }
    for (int k = 0; k < 4; ++k)
      if (o[k] != nullptr) o[k][c] = y[k];
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
