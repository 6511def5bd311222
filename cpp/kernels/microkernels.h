// Internal: the ISA-specific microkernels and the per-ISA table that the
// drivers (cpp/kernels/*.cpp, compiled for the baseline) choose from.
//
// Microkernels live in cpp/kernels/{scalar,avx2,avx512}/, each directory
// compiled with its own flags. They are plain functions: no inline code
// shared through headers, no static initialisers, no exceptions, no STL. This
// header declares them with plain types only. The AVX2 and AVX-512 files
// ukernels_f32__{avx2,avx512}.cpp are generated from one template
// (cpp/kernels/generate.py); the scalar ones are written by hand.
//
// Epilogue (every microkernel that produces outputs): v = acc + bias, then
// + res (when a residual pointer is given), then the activation `act`, inside
// the microkernel call (relu in registers before the store; silu and sigmoid,
// which need more registers than the accumulators leave, on the tile just
// stored):
//   kActNone     v
//   kActRelu     max(0, v), NaN kept
//   kActSilu     v * sigmoid(v) (silu(-inf) = NaN, like torch)
//   kActSigmoid  1 / (1 + exp(-v))
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
//   a_off: unused by the plain kernels.
// Grouped igemm gGcC (G groups of C output channels per NR tile, NR = G*C):
//   as igemm, but output column j belongs to group j / C and its A values
//   come from that group's input channels: vector v (VW lanes) of the tile
//   reads a[t*MR + i] + v * a_off. C == VW: any kc, a_off = the next group's
//   channel offset (kc). C < VW: kc == C and a_off == VW (one vector of A
//   holds the VW / C groups' channels). Padding taps point at zeros that
//   cover every group of the tile.
//
// dwconv (depthwise, CB channels per vector):
//   for p < npix, c < channels:
//   out[p*out_stride + c] = act(bias[c] + sum_{t < ks} in[p*ks + t][c] * w[t][c] + res[p*out_stride + c])
//   w: [ceil(channels/CB)][bias CB][ks][CB], zero padded. Input pointers point
//   at channel 0 of a pixel (or at a zero buffer of >= channels floats).
//
// Winograd F(2x2, 3x3) transforms over `channels` channels (kernels/winograd.cpp):
//   input:  d[16] point at channel 0 of the tile's 4x4 input pixels (row
//           major; padding points at zeros); writes V = B^T d B, element
//           (i, j) of channel c to v[(4i + j) * vs + c].
//   output: m holds the 16 products, element (i, j) of channel c at
//           m[(4i + j) * ms + c]; Y = act(A^T m A + bias (+ residual)),
//           stored for the tile's 2x2 outputs o[0..3] (row major; null:
//           outside the output, not stored). r[k] is the residual of o[k] or
//           null; it is read before o[k] is written, so it may alias it.
//
// elementwise (n floats; y may alias the inputs):
//   vact     y = act(x)
//   vadd     y = act(a + b)
//   vmul     y = a * b
//   vmulc    rows of c floats: y[r*c + j] = x[r*c + j] * s[j] (channel scaling)
//   vmax     y = x if x > y or x is NaN, else y (NaN in y stays): torch's max pooling step
//   gavgpool y[c] = (sum_{r < rows} x[r*stride + c]) / rows, summed in row order
//
// peak loops: `iters` iterations of independent multiply-add chains on full
// vectors of the tier; return a checksum so nothing is elided. Flops per
// iteration: scalar peak_muladd_f32__scalar_flops() (the baseline build's
// separate multiply and add: 12 SSE2 vectors where available, else 16 floats),
// avx2 192 (12 ymm FMA chains), avx512 768 (24 zmm FMA chains).
#pragma once

#include <cstddef>

namespace pyflame_vision {

// Declared opaquely so that ISA files include nothing with inline code.
enum class Isa : int;

namespace kernels {

enum UkernelAct { kActNone = 0, kActRelu = 1, kActSilu = 2, kActSigmoid = 3 };

typedef void (*igemm_ukernel_fn)(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_off,
                                 const float* w, float* c, size_t ldc, const float* res, size_t ldr, int act);
// gemv: one row against 1 to 4 packed panels (igemm's layout with ks = 1,
// `panel_stride` floats apart): y[p*NR + j] = act(bias + sum_k x[k] * w[k][j])
// for panel p < panels, j < NR (j < nc_last in the last panel).
typedef void (*gemv_ukernel_fn)(size_t panels, size_t nc_last, size_t kc, const float* x, const float* w,
                                size_t panel_stride, float* y, int act);
typedef void (*dwconv_ukernel_fn)(size_t channels, size_t npix, size_t ks, const float* const* in,
                                  const float* w, float* out, size_t out_stride, const float* res, int act);
typedef void (*wino_in_ukernel_fn)(size_t channels, const float* const* d, float* v, size_t vs);
typedef void (*wino_out_ukernel_fn)(size_t channels, const float* m, size_t ms, const float* bias,
                                    float* const* o, const float* const* r, int act);
typedef void (*vact_ukernel_fn)(size_t n, const float* x, float* y, int act);
typedef void (*vadd_ukernel_fn)(size_t n, const float* a, const float* b, float* y, int act);
typedef void (*vbinary_ukernel_fn)(size_t n, const float* a, const float* b, float* y);
typedef void (*vmax_ukernel_fn)(size_t n, const float* x, float* y);
typedef void (*vmulc_ukernel_fn)(size_t rows, size_t c, const float* x, const float* s, float* y);
typedef void (*gavgpool_ukernel_fn)(size_t rows, size_t channels, const float* x, size_t stride, float* y);

#define PFV_DECLARE_UKERNELS(isa, MRxNR, CB)                                                                       \
  void igemm_f32_##MRxNR##__##isa(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_off, \
                                  const float* w, float* c, size_t ldc, const float* res, size_t ldr, int act);   \
  void dwconv_f32_up##CB##__##isa(size_t channels, size_t npix, size_t ks, const float* const* in, const float* w, \
                                  float* out, size_t out_stride, const float* res, int act);                      \
  void wino_in_f32_2x2_3x3__##isa(size_t channels, const float* const* d, float* v, size_t vs);                   \
  void wino_out_f32_2x2_3x3__##isa(size_t channels, const float* m, size_t ms, const float* bias,                 \
                                   float* const* o, const float* const* r, int act);                              \
  void vact_f32__##isa(size_t n, const float* x, float* y, int act);                                              \
  void vadd_f32__##isa(size_t n, const float* a, const float* b, float* y, int act);                              \
  void vmul_f32__##isa(size_t n, const float* a, const float* b, float* y);                                       \
  void vmax_f32__##isa(size_t n, const float* x, float* y);                                                       \
  void vmulc_f32__##isa(size_t rows, size_t c, const float* x, const float* s, float* y);                        \
  void gavgpool_f32__##isa(size_t rows, size_t channels, const float* x, size_t stride, float* y);
#define PFV_DECLARE_GEMV(isa, NR4)                                                                               \
  void gemv_f32_##NR4##__##isa(size_t panels, size_t nc_last, size_t kc, const float* x, const float* w,          \
                               size_t panel_stride, float* y, int act);
#define PFV_DECLARE_GROUPED(isa, name)                                                                          \
  void igemm_f32_##name##__##isa(size_t mr, size_t nc, size_t kc, size_t ks, const float* const* a, size_t a_off, \
                                 const float* w, float* c, size_t ldc, const float* res, size_t ldr, int act);

// scalar (portable C++)
PFV_DECLARE_UKERNELS(scalar, 4x8, 4)
float peak_muladd_f32__scalar(size_t iters);
size_t peak_muladd_f32__scalar_flops();
// avx2 + fma
PFV_DECLARE_UKERNELS(avx2, 6x16, 8)
PFV_DECLARE_GROUPED(avx2, 6x16g4c4)
PFV_DECLARE_GROUPED(avx2, 6x16g2c8)
PFV_DECLARE_GEMV(avx2, 64)
float peak_fma_f32__avx2(size_t iters);
// avx512 f/bw/dq/vl
PFV_DECLARE_UKERNELS(avx512, 12x32, 16)
PFV_DECLARE_GROUPED(avx512, 12x32g8c4)
PFV_DECLARE_GROUPED(avx512, 12x32g4c8)
PFV_DECLARE_GROUPED(avx512, 12x32g2c16)
PFV_DECLARE_GEMV(avx512, 128)
float peak_fma_f32__avx512(size_t iters);

#undef PFV_DECLARE_UKERNELS
#undef PFV_DECLARE_GROUPED
#undef PFV_DECLARE_GEMV

struct IgemmUkernel {
  const char* name;  // null: the tier has none
  size_t mr, nr;
  igemm_ukernel_fn fn;
};

/// A grouped igemm: `groups` groups of `c` output channels per NR-column tile.
struct GroupedUkernel {
  const char* name;
  size_t c;       // output channels per group
  bool any_kc;    // true: any input channels per group; false: kc must equal c
  igemm_ukernel_fn fn;
};

struct DwconvUkernel {
  const char* name;
  size_t cb;  // channels per vector block
  dwconv_ukernel_fn fn;
};

constexpr int kMaxGroupedUkernels = 4;

/// Every microkernel of one instruction-set tier.
struct UkernelSet {
  Isa isa;
  size_t vw;  // floats per vector
  IgemmUkernel igemm;
  // One-row GEMV over up to 4 igemm panels (null: the tier uses igemm for one row too).
  const char* gemv_name;
  gemv_ukernel_fn gemv;
  // Grouped kernels (mr, nr as igemm), by channels per group; name null ends the list.
  GroupedUkernel grouped[kMaxGroupedUkernels];
  DwconvUkernel dwconv;
  wino_in_ukernel_fn wino_in;
  wino_out_ukernel_fn wino_out;
  vact_ukernel_fn vact;
  vadd_ukernel_fn vadd;
  vbinary_ukernel_fn vmul;
  vmax_ukernel_fn vmax;
  vmulc_ukernel_fn vmulc;
  gavgpool_ukernel_fn gavgpool;
};

/// The table for `isa` (a constant; no initialisation at run time).
const UkernelSet& ukernels_for(Isa isa);

}  // namespace kernels
}  // namespace pyflame_vision
