// Portable depthwise microkernel, 4 channels per block (see microkernels.h).
#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

void dwconv_f32_up4__scalar(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                            float* out, size_t out_stride, const float* res, int relu) {
  constexpr size_t CB = 4;
  for (size_t p = 0; p < npix; ++p) {
    const float* const* ip = in + p * ks;
    float* o = out + p * out_stride;
    const float* r = res ? res + p * out_stride : nullptr;
    const float* wb = w;
    for (size_t c0 = 0; c0 < channels; c0 += CB) {
      const size_t cn = channels - c0 < CB ? channels - c0 : CB;
      float acc[CB];
      for (size_t j = 0; j < CB; ++j) acc[j] = wb[j];
      const float* wt = wb + CB;
      for (size_t t = 0; t < ks; ++t) {
        const float* x = ip[t] + c0;
        for (size_t j = 0; j < cn; ++j) acc[j] += x[j] * wt[j];
        wt += CB;
      }
      for (size_t j = 0; j < cn; ++j) {
        float v = acc[j];
        if (r) v += r[c0 + j];
        if (relu && v < 0.0f) v = 0.0f;
        o[c0 + j] = v;
      }
      wb += CB * (ks + 1);
    }
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
