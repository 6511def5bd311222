// Internal: the ISA-specific microkernels and the per-ISA table that the
// drivers (cpp/kernels/*.cpp, compiled for the baseline) choose from.
//
// Microkernels live in cpp/kernels/{scalar,avx2,avx512}/, each directory
// compiled with its own flags. They are plain functions: no templates or
// inline code shared through headers, no static initialisers, no exceptions,
// no STL. This header declares them with plain types only.
//
// igemm (indirect GEMM), tile MR x NR:
//   c[i][j] = act(bias[j] + sum_{t < ks} sum_{k < kc} a[t*MR + i][k] * w[t][k][j] + res[i][j])
//   for i < mr <= MR, j < nc <= NR.
//   a:   ks*MR row pointers, each to kc contiguous floats; rows i >= mr must
//        still be valid pointers (the driver repeats row 0); they are read
//        but their results are discarded.
//   w:   packed panel of one NR-column block: [bias NR][ks][kc][NR], zero
//        padded beyond nc.
//   c:   row i at c + i*ldc; only mr x nc elements are written.
//   res: null or like c with stride ldr; read before c is written, so it
//        may alias c.
//   relu != 0: max(0, x) with NaN kept.
//
// dwconv (depthwise, CB channels per vector):
//   for p < npix, c < channels:
//   out[p*out_stride + c] = act(bias[c] + sum_{t < ks} in[p*ks + t][c] * w[t][c] + res[p*out_stride + c])
//   w: [ceil(channels/CB)][bias CB][ks][CB], zero padded. Input pointers point
//   at channel 0 of a pixel (or at a zero buffer of >= channels floats).
//
// peak loops: `iters` iterations of independent multiply-add chains on full
// vectors of the tier; return a checksum so nothing is elided. Flops per
// iteration: scalar peak_muladd_f32__scalar_flops() (the baseline build's
// separate multiply and add: 12 SSE2 vectors where available, else 16 floats),
// avx2 192 (12 ymm FMA chains), avx512 768 (24 zmm FMA chains).
//
// vector activations (in place, n floats): silu(x) = x * sigmoid(x),
// sigmoid(x) = 1 / (1 + exp(-x)); NaN -> NaN.
#pragma once

#include <cstddef>

namespace pyflame_vision {

// Declared opaquely so that ISA files include nothing with inline code.
enum class Isa : int;

namespace kernels {

typedef void (*igemm_ukernel_fn)(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a,
                                 const float* w, float* c, size_t ldc, const float* res, size_t ldr,
                                 int relu);
// Pair variant for grouped convolutions with NR/2 output channels per group:
// columns [0, NR/2) read a[t*MR + i][k], columns [NR/2, NR) read
// a[t*MR + i][a_off2 + k] (the next group); padding taps point at >= kc +
// a_off2 zeros.
typedef void (*igemm_pair_ukernel_fn)(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a,
                                      size_t a_off2, const float* w, float* c, size_t ldc, const float* res,
                                      size_t ldr, int relu);
typedef void (*dwconv_ukernel_fn)(size_t channels, size_t npix, size_t ks, const float* const* in,
                                  const float* w, float* out, size_t out_stride, const float* res,
                                  int relu);
typedef void (*vact_ukernel_fn)(size_t n, float* x);
// Winograd F(2x2, 3x3) transforms over `channels` channels (see conv.cpp):
//   input:  d[16] point at channel 0 of the tile's 4x4 input pixels (row
//           major; padding points at zeros); writes V = B^T d B, element
//           (i, j) of channel c to v[(4i + j) * vs + c].
//   output: m holds the 16 products, element (i, j) of channel c at
//           m[(4i + j) * ms + c]; Y = A^T m A + bias (+ residual), relu if
//           set, stored for the tile's 2x2 outputs o[0..3] (row major; null:
//           outside the output, not stored). r[k] is the residual of o[k] or
//           null; it is read before o[k] is written, so it may alias it.
typedef void (*wino_in_ukernel_fn)(size_t channels, const float* const* d, float* v, size_t vs);
typedef void (*wino_out_ukernel_fn)(size_t channels, const float* m, size_t ms, const float* bias,
                                    float* const* o, const float* const* r, int relu);

// scalar
void igemm_f32_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                           float* c, size_t ldc, const float* res, size_t ldr, int relu);
void dwconv_f32_up4__scalar(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                            float* out, size_t out_stride, const float* res, int relu);
void vsilu_f32__scalar(size_t n, float* x);
float peak_muladd_f32__scalar(size_t iters);
size_t peak_muladd_f32__scalar_flops();
void vsigmoid_f32__scalar(size_t n, float* x);
void wino_in_f32_2x2_3x3__scalar(size_t channels, const float* const* d, float* v, size_t vs);
void wino_out_f32_2x2_3x3__scalar(size_t channels, const float* m, size_t ms, const float* bias, float* const* o,
                                  const float* const* r, int relu);

// avx2 + fma
void igemm_f32_6x16__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                          float* c, size_t ldc, const float* res, size_t ldr, int relu);
void igemm_f32_6x16p2__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_off2,
                            const float* w, float* c, size_t ldc, const float* res, size_t ldr, int relu);
void igemm_f32_6x16g4c4__avx2(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                              float* c, size_t ldc, const float* res, size_t ldr, int relu);
void dwconv_f32_up8__avx2(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                          float* out, size_t out_stride, const float* res, int relu);
void vsilu_f32__avx2(size_t n, float* x);
float peak_fma_f32__avx2(size_t iters);
void vsigmoid_f32__avx2(size_t n, float* x);
void wino_in_f32_2x2_3x3__avx2(size_t channels, const float* const* d, float* v, size_t vs);
void wino_out_f32_2x2_3x3__avx2(size_t channels, const float* m, size_t ms, const float* bias, float* const* o,
                                const float* const* r, int relu);

// avx512 f/bw/dq/vl
void igemm_f32_12x32__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, const float* w,
                             float* c, size_t ldc, const float* res, size_t ldr, int relu);
void dwconv_f32_up16__avx512(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w,
                             float* out, size_t out_stride, const float* res, int relu);
void vsilu_f32__avx512(size_t n, float* x);
float peak_fma_f32__avx512(size_t iters);
void vsigmoid_f32__avx512(size_t n, float* x);

struct IgemmUkernel {
  const char* name;
  size_t mr, nr;
  igemm_ukernel_fn fn;
};

struct IgemmPairUkernel {
  const char* name;  // null when the tier has none
  igemm_pair_ukernel_fn fn;
};

struct DwconvUkernel {
  const char* name;
  size_t cb;  // channels per block
  dwconv_ukernel_fn fn;
};

/// Every microkernel of one instruction-set tier.
struct UkernelSet {
  Isa isa;
  IgemmUkernel igemm;
  IgemmPairUkernel igemm_pair;  // same MR x NR as igemm
  // Four groups of 4 in / 4 out channels per NR = 16 tile (kc == 4); the A
  // row of a pixel covers the 16 channels of the four groups. Null if none.
  IgemmUkernel igemm_g4c4;
  DwconvUkernel dwconv;
  vact_ukernel_fn silu;
  vact_ukernel_fn sigmoid;
  wino_in_ukernel_fn wino_in;
  wino_out_ukernel_fn wino_out;
};

/// The table for `isa` (a constant; no initialisation at run time).
const UkernelSet& ukernels_for(Isa isa);

}  // namespace kernels
}  // namespace pyflame_vision
