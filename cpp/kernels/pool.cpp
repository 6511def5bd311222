// Pooling on NHWC buffers: max pooling through the shared indirection
// (padding taps read -inf) and the tier's vmax; global average pooling on the
// tier's gavgpool, split over images and channel chunks.
#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/eltwise.h"
#include "kernels/indirection.h"
#include "kernels/parallel.h"

namespace pyflame_vision {
namespace kernels {

void max_pool(const UkernelSet& uk, const PoolShape& s, const float* x, float* y) {
  const size_t C = static_cast<size_t>(s.c);
  Window win;
  win.H = static_cast<size_t>(s.ih), win.W = static_cast<size_t>(s.iw), win.C = C;
  win.OH = static_cast<size_t>(s.oh), win.OW = static_cast<size_t>(s.ow);
  win.KH = static_cast<size_t>(s.kh), win.KW = static_cast<size_t>(s.kw);
  win.SH = s.sh, win.SW = s.sw, win.PH = s.ph, win.PW = s.pw, win.DH = s.dh, win.DW = s.dw;
  // Padding taps read -inf: they never win (torch pads max pooling with -inf).
  const std::vector<float> low(C, -std::numeric_limits<float>::infinity());
  parallel_rows(s.n * s.oh, s.ow * s.c, [&](int64_t r0, int64_t r1) {
    Indirection ind(win, low.data());
    std::vector<const float*> taps(win.taps());
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / s.oh, oy = r % s.oh;
      ind.set_row(x + b * s.ih * s.iw * s.c, static_cast<size_t>(oy));
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        float* o = y + ((b * s.oh + oy) * s.ow + ox) * s.c;
        std::copy(low.begin(), low.end(), o);
        ind.taps(static_cast<size_t>(ox), taps.data(), 1);
        for (const float* t : taps) uk.vmax(C, t, o);
      }
    }
  });
}

void adaptive_avg_pool(const UkernelSet& uk, const PoolShape& s, const float* x, float* y) {
  if (s.oh == 1 && s.ow == 1) {
    // Global pooling (EfficientNet's squeeze-excitation and every head): one
    // task per image and 64-channel chunk, so that the threads share it.
    constexpr int64_t kChunk = 64;
    const int64_t chunks = (s.c + kChunk - 1) / kChunk;
    parallel_rows(s.n * chunks, s.ih * s.iw * kChunk, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / chunks, c0 = (r % chunks) * kChunk, cn = std::min(kChunk, s.c - c0);
        uk.gavgpool(static_cast<size_t>(s.ih * s.iw), static_cast<size_t>(cn), x + b * s.ih * s.iw * s.c + c0,
                    static_cast<size_t>(s.c), y + b * s.c + c0);
      }
    });
    return;
  }
  parallel_rows(s.n * s.oh * s.ow, s.c, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (s.oh * s.ow), oy = (r / s.ow) % s.oh, ox = r % s.ow;
      const int64_t y0 = (oy * s.ih) / s.oh, y1 = ((oy + 1) * s.ih + s.oh - 1) / s.oh;
      const int64_t x0 = (ox * s.iw) / s.ow, x1 = ((ox + 1) * s.iw + s.ow - 1) / s.ow;
      float* o = y + r * s.c;
      std::fill(o, o + s.c, 0.0f);
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) {
          const float* p = x + ((b * s.ih + iy) * s.iw + ix) * s.c;
          for (int64_t j = 0; j < s.c; ++j) o[j] += p[j];
        }
      const float count = static_cast<float>((y1 - y0) * (x1 - x0));
      for (int64_t j = 0; j < s.c; ++j) o[j] /= count;
    }
  });
}

}  // namespace kernels
}  // namespace pyflame_vision
