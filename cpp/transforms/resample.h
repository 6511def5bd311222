// Internal: the separable resampler behind transforms::resize_image, exposed
// for the tests (explicit instruction-set tier, weight tables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pyflame_vision/cpu.h"
#include "pyflame_vision/transforms.h"

namespace pyflame_vision {
namespace transforms {
namespace detail {

/// The taps of one resampled dimension: output i is
///   sum_{k < count[i]} weights[i * stride + k] * input[start[i] + k]
/// with start[i] + count[i] <= in, count[i] >= 1, and weights zero from
/// count[i] up to stride (a multiple of 16).
struct Taps {
  int64_t in = 0, out = 0;
  size_t stride = 0;
  std::vector<size_t> start, count;
  std::vector<float> weights;
  size_t max_count() const;
};

/// Bilinear or bicubic taps as torch computes them for float32 tensors
/// (aten/src/ATen/native/cpu/UpSampleKernel.cpp, UpSample.h):
///   antialias: scale = in / out; support = interp_size / 2 * max(scale, 1)
///     (interp_size 2 for bilinear, 4 for bicubic); centre c = scale * (i + 0.5);
///     taps j in [int(c - support + 0.5), int(c + support + 0.5)) clipped to
///     the image (at most ceil(support) * 2 + 1); weight filter((j - c + 0.5) /
///     max(scale, 1)) normalised to sum 1; filters: triangle, Keys cubic a = -0.5.
///   no antialias: source x = scale * (i + 0.5) - 0.5; bilinear clamps x at 0
///     and takes the two neighbours; bicubic takes four (Keys a = -0.75) with
///     indices clamped to the image, duplicates merged.
/// in == out gives the identity. Throws InvalidArgument for the nearest modes.
/// Multiply-adds that torch's vectorised (AVX2/AVX-512) builds contract into
/// FMAs are FMAs here too (source index, cubic polynomials).
Taps compute_taps(int64_t in, int64_t out, Interpolation mode, bool antialias);

/// Source index of each output index for the nearest modes (torch's float32
/// arithmetic, s = float(in) / out, clamped to in - 1): nearest floor(i * s);
/// nearest-exact floor((i + 0.5) * s) in torch's channels-last kernel
/// (`channels_last_kernel`, which torch takes for outputs with H + W <= 128),
/// else floor(max(fma(s, i + 0.5, -0.5), 0) + 0.5) as its generic kernel
/// computes it (the two differ on exact ties).
std::vector<int64_t> nearest_indices(int64_t in, int64_t out, Interpolation mode, bool channels_last_kernel);

/// resize_image computing only the output window [top, top + dst.h) x [left,
/// left + dst.w) of the full out_h x out_w resize (the same values a resize
/// followed by an in-bounds crop gives), with microkernels of tier `isa`.
/// The window must lie inside the full output (InvalidArgument otherwise).
void resize_window(const ImageView& src, const MutableImageView& dst, int64_t out_h, int64_t out_w, int64_t top,
                   int64_t left, Interpolation mode, bool antialias, Isa isa);

}  // namespace detail
}  // namespace transforms
}  // namespace pyflame_vision
