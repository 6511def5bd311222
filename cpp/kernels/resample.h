// Internal: the ISA-specific microkernels of the separable image resampler
// (cpp/transforms/resample.cpp is their driver) and the per-tier table.
//
// Kept apart from microkernels.h (the convolution kernels) on purpose: the two
// families share nothing. The same rules hold: the kernels live in
// cpp/kernels/{scalar,avx2,avx512}/resample_f32__<tier>.cpp, each directory
// compiled with its own flags; plain functions, no shared inline code, no
// static initialisers, no exceptions, no STL.
//
// Vertical pass (one output row from `taps` input rows; taps >= 1):
//   out[i] = sum_{k < taps} w[k] * rows[k][i]            for i < n
//   resample_v_f32: rows of float; resample_v_u8: rows of uint8 (converted
//   exactly to float first). Taps are summed in order k = 0, 1, ...
//
// Horizontal pass (one output row of `out_w` pixels with `channels`
// interleaved channels per input pixel; channels = 1 for planar rows):
//   out[ch * out_cs + x * out_xs] =
//       sum_{k < count[x]} w[x * wstride + k] * in[(start[x] + k) * channels + ch]
//   for x < out_w, ch < channels. Only in[0 .. (start[x] + count[x]) *
//   channels) is read; w rows are zero beyond count[x] up to wstride, and
//   wstride is a multiple of 16 (kernels may load whole vectors of weights).
//
// Quantisation to uint8 (torch's round() then the cast, with the clamp of
// the bicubic path): out[i] = min(max(round_half_even(in[i]), 0), 255); NaN
// gives 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyflame_vision {

enum class Isa : int;

namespace kernels {

typedef void (*resample_v_f32_fn)(size_t n, size_t taps, const float* const* rows, const float* w, float* out);
typedef void (*resample_v_u8_fn)(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out);
typedef void (*resample_h_f32_fn)(size_t out_w, size_t channels, const float* in, const size_t* start,
                                  const size_t* count, const float* w, size_t wstride, float* out, size_t out_xs,
                                  size_t out_cs);
typedef void (*resample_quant_u8_fn)(size_t n, const float* in, uint8_t* out);

// scalar
void resample_v_f32__scalar(size_t n, size_t taps, const float* const* rows, const float* w, float* out);
void resample_v_u8__scalar(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out);
void resample_h_f32__scalar(size_t out_w, size_t channels, const float* in, const size_t* start, const size_t* count,
                            const float* w, size_t wstride, float* out, size_t out_xs, size_t out_cs);
void resample_quant_u8__scalar(size_t n, const float* in, uint8_t* out);

// avx2 + fma
void resample_v_f32__avx2(size_t n, size_t taps, const float* const* rows, const float* w, float* out);
void resample_v_u8__avx2(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out);
void resample_h_f32__avx2(size_t out_w, size_t channels, const float* in, const size_t* start, const size_t* count,
                          const float* w, size_t wstride, float* out, size_t out_xs, size_t out_cs);
void resample_quant_u8__avx2(size_t n, const float* in, uint8_t* out);

// avx512 f/bw/dq/vl
void resample_v_f32__avx512(size_t n, size_t taps, const float* const* rows, const float* w, float* out);
void resample_v_u8__avx512(size_t n, size_t taps, const uint8_t* const* rows, const float* w, float* out);
void resample_h_f32__avx512(size_t out_w, size_t channels, const float* in, const size_t* start, const size_t* count,
                            const float* w, size_t wstride, float* out, size_t out_xs, size_t out_cs);
void resample_quant_u8__avx512(size_t n, const float* in, uint8_t* out);

/// Every resampling microkernel of one instruction-set tier.
struct ResampleUkernels {
  Isa isa;
  const char* name;  // the tier's suffix, e.g. "avx2"
  resample_v_f32_fn v_f32;
  resample_v_u8_fn v_u8;
  resample_h_f32_fn h_f32;
  resample_quant_u8_fn quant_u8;
};

/// The table for `isa` (a constant; no initialisation at run time).
const ResampleUkernels& resample_ukernels_for(Isa isa);

}  // namespace kernels
}  // namespace pyflame_vision
