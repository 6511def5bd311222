// Internal: tap pointers (the indirection of Dukhan, arXiv:1907.02129) for
// every algorithm that reads a convolution window: implicit GEMM, depthwise,
// the Winograd input tiles (a 4x4 window with stride 2) and the row-merged
// stem. One implementation: per output row it caches the input row of each
// kernel row; output columns whose window lies inside the input width then
// get their pointers without bounds checks (which cost as much as the
// arithmetic when channels are few), the others with them. Padding taps
// point at a caller-provided zero buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/conv.h"

namespace pyflame_vision {
namespace kernels {

/// NHWC window geometry of a convolution (or of any sliding window).
struct Window {
  size_t H = 0, W = 0, C = 0;  // input rows, columns, channels (pixel stride in floats)
  size_t OH = 0, OW = 0;       // output rows and columns
  size_t KH = 1, KW = 1;
  int64_t SH = 1, SW = 1, PH = 0, PW = 0, DH = 1, DW = 1;
  static Window of(const ConvShape& s);
  size_t taps() const { return KH * KW; }
};

class Indirection {
 public:
  /// `zero` must hold as many floats as a tap reads (zeros for convolutions;
  /// max pooling passes -inf).
  Indirection(const Window& w, const float* zero);
  Indirection(const Indirection&) = delete;  // rows_ may point into the object
  Indirection& operator=(const Indirection&) = delete;

  /// Selects output row `oy` of the image whose pixel (0, 0) starts at `img`
  /// (already offset to the first channel wanted).
  void set_row(const float* img, size_t oy);
  /// The KH*KW tap pointers of output column `ox` of the current row, tap t
  /// (row-major over the kernel) at dst[t * stride].
  void taps(size_t ox, const float** dst, size_t stride) const;
  /// Input row of kernel row ky for the current output row, or null (padding).
  const float* row(size_t ky) const { return rows_[ky]; }
  /// Whether output column ox's window lies inside the input width.
  bool interior(size_t ox) const { return ox >= ox_lo_ && ox < ox_hi_; }
  /// Column offset (in pixels) of output column ox's first tap; may be negative.
  int64_t first_col(size_t ox) const { return static_cast<int64_t>(ox) * w_.SW - w_.PW; }

 private:
  static constexpr size_t kInlineRows = 16;  // every kernel of the supported models; taller ones allocate
  Window w_;
  const float* zero_;
  const float* inline_rows_[kInlineRows] = {};
  std::vector<const float*> heap_rows_;
  const float** rows_;
  size_t ox_lo_ = 0, ox_hi_ = 0;
};

}  // namespace kernels
}  // namespace pyflame_vision
