// Portable resampling microkernels (see kernels/resample.h): the reference the
// SIMD tiers are tested against, and what runs under PYFLAME_VISION_MAX_ISA=scalar.
#include <cmath>

#include "kernels/resample.h"

namespace pyflame_vision {
namespace kernels {

void resample_v_f32__scalar(size_t n, size_t taps, const float* const* rows, const float* w, float* out) {
  const float w0 = w[0];
  const float* r0 = rows[0];
  for (size_t i = 0; i < n; ++i) out[i] = r0[i] * w0;
  for (size_t k = 1; k < taps; ++k) {
    const float wk = w[k];
    const float* r = rows[k];
    for (size_t i = 0; i < n; ++i) out[i] += r[i] * wk;
  }
}

void resample_v_u8__scalar(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out) {
  const float w0 = w[0];
  const uint8_t* r0 = rows[0];
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(r0[i]) * w0;
  for (size_t k = 1; k < taps; ++k) {
    const float wk = w[k];
    const uint8_t* r = rows[k];
    for (size_t i = 0; i < n; ++i) out[i] += static_cast<float>(r[i]) * wk;
  }
}

void resample_h_f32__scalar(size_t out_w, size_t channels, const float* in, const size_t* start, const size_t* count,
                            const float* w, size_t wstride, float* out, size_t out_xs, size_t out_cs) {
  for (size_t x = 0; x < out_w; ++x) {
    const float* wx = w + x * wstride;
    const size_t cnt = count[x];
    for (size_t ch = 0; ch < channels; ++ch) {
      const float* p = in + start[x] * channels + ch;
      float acc = p[0] * wx[0];
      for (size_t k = 1; k < cnt; ++k) acc += p[k * channels] * wx[k];
      out[ch * out_cs + x * out_xs] = acc;
    }
  }
}

void resample_quant_u8__scalar(size_t n, const float* in, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    float v = in[i];
    if (!(v > 0.0f)) v = 0.0f;  // also NaN
    if (v > 255.0f) v = 255.0f;
    out[i] = static_cast<uint8_t>(std::nearbyint(v));  // the default rounding mode: half to even, like torch.round
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
