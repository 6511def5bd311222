#include "kernels/indirection.h"

#include <algorithm>

namespace pyflame_vision {
namespace kernels {

Window Window::of(const ConvShape& s) {
  Window w;
  w.H = static_cast<size_t>(s.in_h), w.W = static_cast<size_t>(s.in_w), w.C = static_cast<size_t>(s.in_c);
  w.OH = static_cast<size_t>(s.out_h), w.OW = static_cast<size_t>(s.out_w);
  w.KH = static_cast<size_t>(s.kernel_h), w.KW = static_cast<size_t>(s.kernel_w);
  w.SH = s.stride_h, w.SW = s.stride_w, w.PH = s.pad_h, w.PW = s.pad_w, w.DH = s.dilation_h, w.DW = s.dilation_w;
  return w;
}

Indirection::Indirection(const Window& w, const float* zero) : w_(w), zero_(zero), rows_(inline_rows_) {
  if (w.KH > kInlineRows) {
    heap_rows_.resize(w.KH);
    rows_ = heap_rows_.data();
  }
  // ox is interior iff ox*SW - PW >= 0 and ox*SW - PW + (KW-1)*DW <= W-1.
  const int64_t span = static_cast<int64_t>(w.KW - 1) * w.DW;
  ox_lo_ = static_cast<size_t>((w.PW + w.SW - 1) / w.SW);
  const int64_t hi_num = static_cast<int64_t>(w.W) - 1 - span + w.PW;
  ox_hi_ = hi_num < 0 ? 0 : std::min<size_t>(w.OW, static_cast<size_t>(hi_num / w.SW) + 1);
}

void Indirection::set_row(const float* img, size_t oy) {
  for (size_t ky = 0; ky < w_.KH; ++ky) {
    const int64_t iy = static_cast<int64_t>(oy) * w_.SH - w_.PH + static_cast<int64_t>(ky) * w_.DH;
    rows_[ky] = (iy >= 0 && iy < static_cast<int64_t>(w_.H)) ? img + static_cast<size_t>(iy) * w_.W * w_.C : nullptr;
  }
}

void Indirection::taps(size_t ox, const float** dst, size_t stride) const {
  const size_t KW = w_.KW;
  const size_t dcol = static_cast<size_t>(w_.DW) * w_.C;
  const int64_t ix0 = first_col(ox);
  if (interior(ox)) {
    const size_t col = static_cast<size_t>(ix0) * w_.C;
    for (size_t ky = 0; ky < w_.KH; ++ky) {
      const float* r = rows_[ky];
      for (size_t kx = 0; kx < KW; ++kx) dst[(ky * KW + kx) * stride] = r ? r + col + kx * dcol : zero_;
    }
    return;
  }
  for (size_t ky = 0; ky < w_.KH; ++ky) {
    const float* r = rows_[ky];
    for (size_t kx = 0; kx < KW; ++kx) {
      const int64_t ix = ix0 + static_cast<int64_t>(kx) * w_.DW;
      dst[(ky * KW + kx) * stride] =
          (r != nullptr && ix >= 0 && ix < static_cast<int64_t>(w_.W)) ? r + static_cast<size_t>(ix) * w_.C : zero_;
    }
  }
}

}  // namespace kernels
}  // namespace pyflame_vision
