// Convolution and linear drivers: ISA-agnostic (compiled for the baseline).
// They validate shapes, pack weights once for one microkernel tier, split the
// output into a fixed grid of tiles and hand the tiles to the thread pool.
//
// Algorithms (first that applies):
//   dwconv   groups == in_c == out_c: channels vectorised, per-pixel tap
//            pointers (padding taps point at a zero buffer).
//   gemm     1x1, stride 1, no padding, groups 1: A rows are the NHWC input
//            rows themselves (igemm microkernel with ks = 1).
//   igemm    everything else (KxK, strided, padded, dilated, grouped): an
//            indirection of row pointers built per MR-row tile, per group.
//
// Every output element is computed by exactly one microkernel call with the
// whole reduction in registers, in a fixed order, so results do not depend on
// the grid or on the number of threads.
#include "kernels/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/microkernels.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace kernels {

// ---------------------------------------------------------------------------
// Microkernel tables (constant-initialised: no code runs at start-up).

namespace {

constexpr UkernelSet kScalar = {
    Isa::scalar,
    {"igemm_f32_4x8__scalar", 4, 8, igemm_f32_4x8__scalar},
    {nullptr, nullptr},
    {nullptr, 0, 0, nullptr},
    {"dwconv_f32_up4__scalar", 4, dwconv_f32_up4__scalar},
    vsilu_f32__scalar,
    vsigmoid_f32__scalar,
    wino_in_f32_2x2_3x3__scalar,
    wino_out_f32_2x2_3x3__scalar,
};
constexpr UkernelSet kAvx2 = {
    Isa::avx2,
    {"igemm_f32_6x16__avx2", 6, 16, igemm_f32_6x16__avx2},
    {"igemm_f32_6x16p2__avx2", igemm_f32_6x16p2__avx2},
    {"igemm_f32_6x16g4c4__avx2", 6, 16, igemm_f32_6x16g4c4__avx2},
    {"dwconv_f32_up8__avx2", 8, dwconv_f32_up8__avx2},
    vsilu_f32__avx2,
    vsigmoid_f32__avx2,
    wino_in_f32_2x2_3x3__avx2,
    wino_out_f32_2x2_3x3__avx2,
};
constexpr UkernelSet kAvx512 = {
    Isa::avx512,
    {"igemm_f32_12x32__avx512", 12, 32, igemm_f32_12x32__avx512},
    {nullptr, nullptr},
    {nullptr, 0, 0, nullptr},
    {"dwconv_f32_up16__avx512", 16, dwconv_f32_up16__avx512},
    vsilu_f32__avx512,
    vsigmoid_f32__avx512,
    // AVX-512 CPUs have AVX2; the transforms are memory-bound.
    wino_in_f32_2x2_3x3__avx2,
    wino_out_f32_2x2_3x3__avx2,
};

}  // namespace

const UkernelSet& ukernels_for(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return kAvx512;
    case Isa::avx2:
      return kAvx2;
    case Isa::scalar:
      break;
  }
  return kScalar;
}

namespace {

// ---------------------------------------------------------------------------
// Helpers.

// Shared and read-only once packed: kernels compiled for other input shapes
// of the same layer reuse the packed weights (see Conv2dKernel(shape, donor)).
using AlignedFloats = std::shared_ptr<float>;

AlignedFloats alloc_zeroed(size_t n) {
  const size_t bytes = ((std::max<size_t>(n, 1) * sizeof(float)) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return AlignedFloats(static_cast<float*>(p), [](float* q) { std::free(q); });
}

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
size_t round_up(size_t a, size_t b) { return ceil_div(a, b) * b; }

void check_isa(Isa isa, const char* who) {
  const int v = static_cast<int>(isa);
  if (v < 0 || v > static_cast<int>(Isa::avx512)) {
    throw InvalidArgument(std::string("[") + who + "] invalid instruction-set value " + std::to_string(v));
  }
  if (v > static_cast<int>(detected_isa())) {
    throw InvalidArgument(std::string("[") + who + "] instruction set " + isa_name(isa) +
                          " is not supported by this CPU (detected: " + isa_name(detected_isa()) + ")");
  }
}

const char* epilogue_suffix(Epilogue e) {
  switch (e) {
    case Epilogue::none:
      return "";
    case Epilogue::relu:
      return " +relu";
    case Epilogue::silu:
      return " +silu";
    case Epilogue::sigmoid:
      return " +sigmoid";
  }
  return "";
}

// Budget for one task's packed-weight block (kept in L2 while the task's
// row tiles stream past it; L2 is 512 KiB per core on the target machine).
constexpr size_t kWeightBlockBytes = 192 * 1024;
// Minimum number of tiles in the grid, so that threads stay balanced.
constexpr size_t kMinTasks = 24;

// ---------------------------------------------------------------------------
// Packed GEMM weights and the tile grid, shared by convolutions and Linear.

struct GemmPlan {
  const UkernelSet* uk = nullptr;
  size_t mr = 0, nr = 0;
  size_t groups = 1;
  size_t kc = 0;       // reduction per tap (input channels per group)
  size_t ks = 1;       // taps
  size_t n_pg = 0;     // output channels per group
  size_t nblocks = 0;  // NR blocks per group
  size_t block = 0;    // floats per packed block: nr * (1 + ks * kc)
  // Paired groups: each plan group is two conv groups of nr/2 channels
  // (pair kernel); A of plan group g starts at channel g * a_group_stride.
  bool paired = false;
  size_t a_group_stride = 0;
  // Quad groups of 4x4 channels (igemm_g4c4 kernel replaces igemm).
  bool quad = false;
  AlignedFloats packed;
  AlignedFloats zero;  // >= kc zeros, for padding taps
  Epilogue epilogue = Epilogue::none;

  // weight: [groups * n_pg][kc][ks] (torch OIHW with HW flattened to ks).
  void pack(const float* weight, const float* bias) {
    nblocks = ceil_div(n_pg, nr);
    block = nr * (1 + ks * kc);
    packed = alloc_zeroed(groups * nblocks * block);
    zero = alloc_zeroed(kc + 16);
    for (size_t g = 0; g < groups; ++g) {
      for (size_t j = 0; j < nblocks; ++j) {
        float* dst = packed.get() + (g * nblocks + j) * block;
        const size_t ncols = std::min(nr, n_pg - j * nr);
        for (size_t r = 0; r < ncols; ++r) {
          const size_t o = g * n_pg + j * nr + r;
          if (bias != nullptr) dst[r] = bias[o];
          const float* src = weight + o * kc * ks;
          for (size_t k = 0; k < kc; ++k) {
            for (size_t t = 0; t < ks; ++t) dst[nr + (t * kc + k) * nr + r] = src[k * ks + t];
          }
        }
      }
    }
  }

  struct Grid {
    size_t mc, nbt, m_tasks, n_tasks;
    size_t tasks() const { return m_tasks * n_tasks; }
  };

  Grid grid(size_t M) const {
    Grid gr;
    gr.nbt = std::max<size_t>(1, std::min(nblocks, kWeightBlockBytes / (block * sizeof(float))));
    gr.mc = std::min(round_up(M, mr), mr * 32);
    for (;;) {
      gr.m_tasks = ceil_div(M, gr.mc);
      gr.n_tasks = ceil_div(nblocks, gr.nbt);
      if (groups * gr.tasks() >= kMinTasks) break;
      if (gr.mc > mr) {
        gr.mc = round_up(gr.mc / 2, mr);
      } else if (gr.nbt > 1) {
        gr.nbt = ceil_div(gr.nbt, 2);
      } else {
        break;
      }
    }
    gr.m_tasks = ceil_div(M, gr.mc);
    gr.n_tasks = ceil_div(nblocks, gr.nbt);
    return gr;
  }

  // Runs the whole product. rows(g, m0, mr, ptrs, scratch) fills
  // ptrs[t * MR + i] for i < mr and t < ks (rows i >= mr are filled here);
  // scratch is a per-task buffer of scratch_floats floats.
  template <typename Rows>
  void run(size_t M, const Rows& rows, float* out, size_t ldc, const float* res, size_t scratch_floats = 0) const {
    if (M == 0) return;
    const Grid gr = grid(M);
    const size_t MR = mr, NR = nr;
    const int relu = epilogue == Epilogue::relu ? 1 : 0;
    const vact_ukernel_fn act =
        epilogue == Epilogue::silu ? uk->silu : (epilogue == Epilogue::sigmoid ? uk->sigmoid : nullptr);
    const igemm_ukernel_fn kernel = quad ? uk->igemm_g4c4.fn : uk->igemm.fn;
    const igemm_pair_ukernel_fn pair_kernel = uk->igemm_pair.fn;
    const size_t per_group = gr.tasks();
    auto task = [&](size_t idx) {
      const size_t g = idx / per_group;
      const size_t rem = idx % per_group;
      const size_t nt = rem / gr.m_tasks;
      const size_t mt = rem % gr.m_tasks;
      const size_t m_begin = mt * gr.mc;
      const size_t m_end = std::min(M, m_begin + gr.mc);
      const size_t j_begin = nt * gr.nbt;
      const size_t j_end = std::min(nblocks, j_begin + gr.nbt);
      const size_t col0 = g * n_pg + j_begin * NR;
      const size_t ncols = std::min(n_pg, j_end * NR) - j_begin * NR;

      constexpr size_t kStackPtrs = 1024;
      const float* stack_ptrs[kStackPtrs];
      std::vector<const float*> heap_ptrs;
      const float** ptrs = stack_ptrs;
      if (ks * MR > kStackPtrs) {
        heap_ptrs.resize(ks * MR);
        ptrs = heap_ptrs.data();
      }
      std::vector<float> scratch(scratch_floats);
      for (size_t m0 = m_begin; m0 < m_end; m0 += MR) {
        const size_t mrows = std::min(MR, m_end - m0);
        rows(g, m0, mrows, ptrs, scratch.data());
        for (size_t i = mrows; i < MR; ++i)
          for (size_t t = 0; t < ks; ++t) ptrs[t * MR + i] = ptrs[t * MR];
        for (size_t j = j_begin; j < j_end; ++j) {
          const size_t col = g * n_pg + j * NR;
          const size_t nc = std::min(NR, n_pg - j * NR);
          const float* wj = packed.get() + (g * nblocks + j) * block;
          float* cj = out + m0 * ldc + col;
          const float* rj = res != nullptr ? res + m0 * ldc + col : nullptr;
          if (paired) {
            pair_kernel(mrows, nc, kc, ks, ptrs, kc, wj, cj, ldc, rj, ldc, relu);
          } else {
            kernel(mrows, nc, kc, ks, ptrs, wj, cj, ldc, rj, ldc, relu);
          }
        }
        if (act != nullptr) {
          for (size_t i = 0; i < mrows; ++i) act(ncols, out + (m0 + i) * ldc + col0);
        }
      }
    };
    detail::parallel_for(groups * per_group, detail::TaskFn(task));
  }
};

// ---------------------------------------------------------------------------
// Depthwise weights and driver.

struct DwPlan {
  const UkernelSet* uk = nullptr;
  size_t cb = 0, channels = 0, ks = 0;
  AlignedFloats packed;
  AlignedFloats zero;
  Epilogue epilogue = Epilogue::none;

  // weight: [channels][ks]
  void pack(const float* weight, const float* bias) {
    const size_t blocks = ceil_div(channels, cb);
    packed = alloc_zeroed(blocks * cb * (ks + 1));
    zero = alloc_zeroed(channels + 16);
    for (size_t c = 0; c < channels; ++c) {
      float* dst = packed.get() + (c / cb) * cb * (ks + 1) + c % cb;
      if (bias != nullptr) dst[0] = bias[c];
      for (size_t t = 0; t < ks; ++t) dst[cb * (t + 1)] = weight[c * ks + t];
    }
  }
};

// ---------------------------------------------------------------------------
// Winograd F(2x2, 3x3) for 3x3 / stride 1 / dilation 1 / groups 1 (Lavin &
// Gray, arXiv:1509.09308): each 2x2 output tile costs 16 multiplies per
// (input, output) channel pair instead of 36. With d the 4x4 input patch of a
// tile and g a 3x3 filter,
//   Y = A^T [ (G g G^T) . (B^T d B) ] A,
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// The transforms use only 0, +-1 and +-1/2, so the rounding error stays close
// to the direct convolution's. The 16 element-wise products summed over input
// channels are 16 GEMMs, [tiles x C_in] x [C_in x C_out], run by the same
// packed microkernel as everything else. Tiles are processed in blocks: input
// transform into a per-thread buffer, 16 GEMMs, output transform with bias,
// residual and activation straight into the NHWC output.

struct WinogradPlan {
  const UkernelSet* uk = nullptr;
  size_t mr = 0, nr = 0, cin = 0, cout = 0, nblocks = 0, block = 0;
  AlignedFloats packed;  // [16][nblocks][block]: zero bias row + [cin][nr]
  AlignedFloats bias;    // [cout]
  AlignedFloats zero;    // >= cin zeros, for padding
  Epilogue epilogue = Epilogue::none;

  // weight: [cout][cin][3][3] (torch OIHW).
  void pack(const float* weight, const float* b) {
    nblocks = ceil_div(cout, nr);
    block = nr * (1 + cin);
    packed = alloc_zeroed(16 * nblocks * block);
    bias = alloc_zeroed(cout + 16);
    zero = alloc_zeroed(cin + 16);
    for (size_t o = 0; o < cout; ++o) {
      if (b != nullptr) bias.get()[o] = b[o];
      for (size_t c = 0; c < cin; ++c) {
        const float* g = weight + (o * cin + c) * 9;
        // G g G^T in double, rounded once.
        double gg[4][3];
        for (int k = 0; k < 3; ++k) {
          const double g0 = g[0 * 3 + k], g1 = g[1 * 3 + k], g2 = g[2 * 3 + k];
          gg[0][k] = g0;
          gg[1][k] = 0.5 * (g0 + g1 + g2);
          gg[2][k] = 0.5 * (g0 - g1 + g2);
          gg[3][k] = g2;
        }
        for (int i = 0; i < 4; ++i) {
          const double u[4] = {gg[i][0], 0.5 * (gg[i][0] + gg[i][1] + gg[i][2]),
                               0.5 * (gg[i][0] - gg[i][1] + gg[i][2]), gg[i][2]};
          for (int j = 0; j < 4; ++j) {
            const size_t xi = static_cast<size_t>(i * 4 + j);
            float* dst = packed.get() + (xi * nblocks + o / nr) * block;
            dst[nr + c * nr + o % nr] = static_cast<float>(u[j]);
          }
        }
      }
    }
  }

  // Tiles per block. Every block streams all 16 transformed weight matrices
  // (16 x cin x cout floats). Up to 8 MiB of them (256 channels and fewer),
  // they stay in L3 and the block is sized for its transformed inputs and
  // products (16 x tiles x (cin + cout) floats) to stay near 384 KiB of L2,
  // small enough that there are a few blocks per thread. Larger weights (16
  // MiB at 512 channels) would come from memory again for every block: then
  // blocks are as large as the microkernel tiling allows (96 tiles), the
  // buffers live in L3, and the run splits output channels instead to feed
  // the threads (measured on 14x14x512, batch 1: 13.4 ms with L2-sized
  // blocks, 6.1 ms so, 9.8 ms as implicit GEMM).
  size_t tiles_per_block(size_t tiles) const {
    const size_t max_tb = 16 * mr;
    if (16 * cin * cout * sizeof(float) > (size_t{8} << 20)) return std::min(max_tb, round_up(tiles, mr));
    const size_t by_cache = (384 * 1024 / sizeof(float)) / (16 * (cin + cout));
    const size_t tb = std::max(mr, std::min(max_tb, by_cache / mr * mr));
    const size_t for_balance = round_up(ceil_div(tiles, 8), mr);
    return std::max(mr, std::min(tb, for_balance));
  }

  void run(const ConvShape& s, const float* in, float* out, const float* residual) const;
};

void WinogradPlan::run(const ConvShape& s, const float* in, float* out, const float* residual) const {
  const size_t H = static_cast<size_t>(s.in_h), W = static_cast<size_t>(s.in_w);
  const size_t OH = static_cast<size_t>(s.out_h), OW = static_cast<size_t>(s.out_w);
  const int64_t PH = s.pad_h, PW = s.pad_w;
  const size_t TH = ceil_div(OH, 2), TW = ceil_div(OW, 2);
  const size_t tiles = static_cast<size_t>(s.batch) * TH * TW;
  const size_t TB = tiles_per_block(tiles);
  const size_t nb = ceil_div(tiles, TB);
  // Few tile blocks (small maps at batch 1): also split the output channels,
  // so that every thread gets work; each part repeats the (cheap) input
  // transform of its block. The split depends only on the shape, never on the
  // thread count, so results do not either.
  const size_t nsplit = std::min(nblocks, nb >= 8 ? size_t{1} : ceil_div(8, nb));
  const size_t jper = ceil_div(nblocks, nsplit);
  const size_t C = cin, OC = cout, MR = mr, NR = nr;
  const igemm_ukernel_fn kernel = uk->igemm.fn;
  const wino_in_ukernel_fn wino_in = uk->wino_in;
  const wino_out_ukernel_fn wino_out = uk->wino_out;
  const vact_ukernel_fn act =
      epilogue == Epilogue::silu ? uk->silu : (epilogue == Epilogue::sigmoid ? uk->sigmoid : nullptr);
  const bool relu = epilogue == Epilogue::relu;
  auto task = [&](size_t idx) {
    const size_t blk = idx / nsplit;
    const size_t j0 = (idx % nsplit) * jper, j1 = std::min(nblocks, j0 + jper);
    if (j0 >= j1) return;
    const size_t c0 = j0 * NR, c1 = std::min(OC, j1 * NR);
    const size_t t0 = blk * TB;
    const size_t nt = std::min(TB, tiles - t0);
    // The 16 slices of V and M are a cache line more than TB rows apart:
    // with strides that are multiples of 4 KiB, the transforms' 16 streams
    // would all map to one L1 set and evict each other (measured 3x slower).
    const size_t vs = TB * C + 16, ms = TB * OC + 16;
    thread_local std::vector<float> scratch;
    const size_t need = 16 * (vs + ms);
    if (scratch.size() < need) scratch.resize(need);
    float* V = scratch.data();          // [16][vs]: TB rows of C
    float* Mp = V + 16 * vs;            // [16][ms]: TB rows of OC
    // Input transform.
    for (size_t tt = 0; tt < nt; ++tt) {
      const size_t tile = t0 + tt;
      const size_t b = tile / (TH * TW), ty = (tile / TW) % TH, tx = tile % TW;
      const float* d[16];
      for (size_t r = 0; r < 4; ++r) {
        const int64_t iy = static_cast<int64_t>(2 * ty + r) - PH;
        for (size_t c = 0; c < 4; ++c) {
          const int64_t ix = static_cast<int64_t>(2 * tx + c) - PW;
          d[r * 4 + c] = (iy >= 0 && iy < static_cast<int64_t>(H) && ix >= 0 && ix < static_cast<int64_t>(W))
                             ? in + ((b * H + static_cast<size_t>(iy)) * W + static_cast<size_t>(ix)) * C
                             : zero.get();
        }
      }
      wino_in(C, d, V + tt * C, vs);
    }
    // 16 GEMMs: M[xi][tile][:] = V[xi][tile][:] x U[xi].
    const float* ptrs[64];
    for (size_t xi = 0; xi < 16; ++xi) {
      const float* vx = V + xi * vs;
      float* mx = Mp + xi * ms;
      const float* ux = packed.get() + xi * nblocks * block;
      for (size_t m0 = 0; m0 < nt; m0 += MR) {
        const size_t mrows = std::min(MR, nt - m0);
        for (size_t i = 0; i < MR; ++i) ptrs[i] = vx + (m0 + (i < mrows ? i : 0)) * C;
        for (size_t j = j0; j < j1; ++j) {
          const size_t nc = std::min(NR, OC - j * NR);
          kernel(mrows, nc, C, 1, ptrs, ux + j * block, mx + m0 * OC + j * NR, OC, nullptr, 0, 0);
        }
      }
    }
    // Output transform, bias, residual, activation.
    const float* bs = bias.get();
    for (size_t tt = 0; tt < nt; ++tt) {
      const size_t tile = t0 + tt;
      const size_t b = tile / (TH * TW), ty = (tile / TW) % TH, tx = tile % TW;
      const size_t oy = 2 * ty, ox = 2 * tx;
      const bool has_y1 = oy + 1 < OH, has_x1 = ox + 1 < OW;
      float* o00 = out + ((b * OH + oy) * OW + ox) * OC + c0;
      float* o[4] = {o00, has_x1 ? o00 + OC : nullptr, has_y1 ? o00 + OW * OC : nullptr,
                     (has_x1 && has_y1) ? o00 + OW * OC + OC : nullptr};
      const float* r[4] = {nullptr, nullptr, nullptr, nullptr};
      if (residual != nullptr) {
        const float* r00 = residual + ((b * OH + oy) * OW + ox) * OC + c0;
        r[0] = r00;
        r[1] = has_x1 ? r00 + OC : nullptr;
        r[2] = has_y1 ? r00 + OW * OC : nullptr;
        r[3] = (has_x1 && has_y1) ? r00 + OW * OC + OC : nullptr;
      }
      wino_out(c1 - c0, Mp + tt * OC + c0, ms, bs + c0, o, r, relu ? 1 : 0);
      if (act != nullptr) {
        for (int k = 0; k < 4; ++k)
          if (o[k] != nullptr) act(c1 - c0, o[k]);
      }
    }
  };
  detail::parallel_for(nb * nsplit, detail::TaskFn(task));
}

}  // namespace

// ---------------------------------------------------------------------------
// Conv2dKernel

enum class ConvAlgo { gemm, igemm, igemm_rows, dwconv, winograd };

struct Conv2dKernel::Impl {
  ConvShape shape;
  Epilogue epilogue = Epilogue::none;
  Isa isa = Isa::scalar;
  ConvAlgo algo = ConvAlgo::igemm;
  GemmPlan gemm;
  DwPlan dw;
  WinogradPlan wino;
};

namespace {

void validate(const ConvShape& s, const float* weight) {
  auto fail = [&](const std::string& what) {
    std::ostringstream os;
    os << "[conv2d] " << what << " (shape: batch " << s.batch << ", in " << s.in_h << "x" << s.in_w << "x"
       << s.in_c << ", out " << s.out_h << "x" << s.out_w << "x" << s.out_c << ", kernel " << s.kernel_h << "x"
       << s.kernel_w << ", stride " << s.stride_h << "x" << s.stride_w << ", padding " << s.pad_h << "x"
       << s.pad_w << ", dilation " << s.dilation_h << "x" << s.dilation_w << ", groups " << s.groups << ")";
    throw InvalidArgument(os.str());
  };
  if (s.batch < 0) fail("expected batch >= 0, got " + std::to_string(s.batch));
  if (s.in_h < 1 || s.in_w < 1 || s.in_c < 1) fail("expected positive input height, width and channels");
  if (s.out_c < 1) fail("expected out_c >= 1, got " + std::to_string(s.out_c));
  if (s.kernel_h < 1 || s.kernel_w < 1) fail("expected a kernel of at least 1x1");
  if (s.stride_h < 1 || s.stride_w < 1) fail("expected strides >= 1");
  if (s.dilation_h < 1 || s.dilation_w < 1) fail("expected dilations >= 1");
  if (s.pad_h < 0 || s.pad_w < 0) fail("expected paddings >= 0");
  if (s.groups < 1) fail("expected groups >= 1, got " + std::to_string(s.groups));
  if (s.in_c % s.groups != 0 || s.out_c % s.groups != 0) {
    fail("expected in_c and out_c divisible by groups");
  }
  const int64_t eff_h = s.dilation_h * (s.kernel_h - 1) + 1;
  const int64_t eff_w = s.dilation_w * (s.kernel_w - 1) + 1;
  const int64_t oh = (s.in_h + 2 * s.pad_h - eff_h) / s.stride_h + 1;
  const int64_t ow = (s.in_w + 2 * s.pad_w - eff_w) / s.stride_w + 1;
  if (s.in_h + 2 * s.pad_h < eff_h || s.in_w + 2 * s.pad_w < eff_w) {
    fail("padded input is smaller than the (dilated) kernel");
  }
  if (s.out_h != oh || s.out_w != ow) {
    fail("expected output " + std::to_string(oh) + "x" + std::to_string(ow) + ", got " + std::to_string(s.out_h) +
         "x" + std::to_string(s.out_w));
  }
  if (weight == nullptr) fail("weight is null");
}

}  // namespace

namespace {

// Winograd F(2x2, 3x3) replaces the implicit GEMM for dense 3x3 stride-1
// convolutions with enough channels for its GEMMs, and outputs of at least
// 8x8 (smaller maps waste up to a quarter of each tile and have too few tiles
// to amortise the larger transformed weights).
// PYFLAME_VISION_WINOGRAD=0 turns it off (read once).
bool winograd_applies(const ConvShape& s) {
  static const bool enabled = [] {
    const char* v = std::getenv("PYFLAME_VISION_WINOGRAD");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled && s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 &&
         s.dilation_h == 1 && s.dilation_w == 1 && s.groups == 1 && s.in_c >= 16 && s.out_c >= 16 &&
         s.out_h >= 8 && s.out_w >= 8;
}

}  // namespace

Conv2dKernel::Conv2dKernel(const ConvShape& shape, const float* weight, const float* bias, Epilogue epilogue,
                           Isa isa)
    : impl_(new Impl) {
  validate(shape, weight);
  check_isa(isa, "conv2d");
  Impl& m = *impl_;
  m.shape = shape;
  m.epilogue = epilogue;
  m.isa = isa;
  const UkernelSet& uk = ukernels_for(isa);
  const size_t ks = static_cast<size_t>(shape.kernel_h * shape.kernel_w);
  if (shape.groups == shape.in_c && shape.groups == shape.out_c && shape.groups > 1) {
    m.algo = ConvAlgo::dwconv;
    m.dw.uk = &uk;
    m.dw.cb = uk.dwconv.cb;
    m.dw.channels = static_cast<size_t>(shape.in_c);
    m.dw.ks = ks;
    m.dw.epilogue = epilogue;
    m.dw.pack(weight, bias);
    return;
  }
  if (winograd_applies(shape)) {
    m.algo = ConvAlgo::winograd;
    WinogradPlan& w = m.wino;
    w.uk = &uk;
    w.mr = uk.igemm.mr;
    w.nr = uk.igemm.nr;
    w.cin = static_cast<size_t>(shape.in_c);
    w.cout = static_cast<size_t>(shape.out_c);
    w.epilogue = epilogue;
    w.pack(weight, bias);
    return;
  }
  const bool pointwise = shape.kernel_h == 1 && shape.kernel_w == 1 && shape.stride_h == 1 && shape.stride_w == 1 &&
                         shape.pad_h == 0 && shape.pad_w == 0 && shape.groups == 1;
  m.algo = pointwise ? ConvAlgo::gemm : ConvAlgo::igemm;
  GemmPlan& p = m.gemm;
  p.uk = &uk;
  p.mr = uk.igemm.mr;
  p.nr = uk.igemm.nr;
  p.groups = static_cast<size_t>(shape.groups);
  p.kc = static_cast<size_t>(shape.in_c / shape.groups);
  p.ks = ks;
  p.n_pg = static_cast<size_t>(shape.out_c / shape.groups);
  p.epilogue = epilogue;
  p.a_group_stride = p.kc;
  // Grouped with NR/2 outputs per group (ResNeXt 32x4d layer2, 32x8d layer1):
  // two groups per NR-column tile with the pair kernel, full tile use. The
  // packing of (groups/2, 2*n_pg per group) is the same weight order.
  if (!pointwise && shape.groups > 1 && shape.groups % 2 == 0 && 2 * p.n_pg == p.nr && uk.igemm_pair.fn != nullptr) {
    p.paired = true;
    p.groups /= 2;
    p.n_pg *= 2;
    p.a_group_stride = 2 * p.kc;
  }
  // Grouped with 4 input and 4 output channels per group (ResNeXt x4d
  // layer1): four groups per tile with channel broadcasts inside 128-bit
  // halves; same packing as (groups/4, 16 outputs per group).
  if (!pointwise && shape.groups > 1 && shape.groups % 4 == 0 && p.kc == 4 && p.n_pg == 4 && p.nr == 16 &&
      uk.igemm_g4c4.fn != nullptr && uk.igemm_g4c4.mr == p.mr) {
    p.quad = true;
    p.groups /= 4;
    p.n_pg *= 4;
    p.a_group_stride = 4 * p.kc;
  }
  p.pack(weight, bias);
  if (p.paired) p.zero = alloc_zeroed(2 * p.kc + 16);
  if (p.quad) p.zero = alloc_zeroed(4 * p.kc + 16);
  // Few input channels (the 3-channel stem): per-tap reductions are too short
  // to amortise loading MR row pointers, so merge each kernel row's taps into
  // one reduction of KW * C contiguous floats. The packed layout
  // [KH][KW][C][NR] is the same.
  if (!pointwise && shape.groups == 1 && shape.dilation_w == 1 && shape.kernel_w > 1 && p.kc < 16) {
    m.algo = ConvAlgo::igemm_rows;
    p.kc = static_cast<size_t>(shape.kernel_w) * p.kc;
    p.ks = static_cast<size_t>(shape.kernel_h);
    p.zero = alloc_zeroed(p.kc + 16);
  }
}

Conv2dKernel::Conv2dKernel(const ConvShape& shape, const Conv2dKernel& donor) : impl_(new Impl(*donor.impl_)) {
  const ConvShape& d = donor.impl_->shape;
  if (shape.in_c != d.in_c || shape.out_c != d.out_c || shape.kernel_h != d.kernel_h || shape.kernel_w != d.kernel_w ||
      shape.stride_h != d.stride_h || shape.stride_w != d.stride_w || shape.pad_h != d.pad_h ||
      shape.pad_w != d.pad_w || shape.dilation_h != d.dilation_h || shape.dilation_w != d.dilation_w ||
      shape.groups != d.groups)
    throw InvalidArgument("[conv2d] a kernel can share packed weights only with the same layer at another input size");
  validate(shape, impl_->algo == ConvAlgo::dwconv     ? impl_->dw.packed.get()
                  : impl_->algo == ConvAlgo::winograd ? impl_->wino.packed.get()
                                                      : impl_->gemm.packed.get());
  impl_->shape = shape;
}

Conv2dKernel::~Conv2dKernel() = default;

const ConvShape& Conv2dKernel::shape() const { return impl_->shape; }

std::string Conv2dKernel::why() const {
  const Impl& m = *impl_;
  const ConvShape& s = m.shape;
  switch (m.algo) {
    case ConvAlgo::dwconv:
      return "depthwise: groups == in_c == out_c = " + std::to_string(s.groups);
    case ConvAlgo::gemm:
      return "not depthwise; 1x1, stride 1, no padding, groups 1: a plain GEMM over NHWC rows";
    case ConvAlgo::igemm_rows:
      return "not depthwise, not a plain 1x1; " + std::to_string(s.in_c) +
             " input channels are too few for per-tap reductions, so each kernel row's taps merge into one";
    case ConvAlgo::winograd:
      return "not depthwise; dense 3x3, stride 1, " + std::to_string(s.in_c) + " -> " + std::to_string(s.out_c) +
             " channels, output " + std::to_string(s.out_h) + "x" + std::to_string(s.out_w) +
             " >= 8x8: Winograd F(2x2,3x3), 16 GEMMs of 2x2 tiles (PYFLAME_VISION_WINOGRAD=0 disables)";
    case ConvAlgo::igemm:
      break;
  }
  std::string w = "not depthwise, not a plain 1x1";
  if (m.gemm.paired) return w + "; " + std::to_string(s.out_c / s.groups) + " outputs per group: two groups per tile";
  if (m.gemm.quad) return w + "; 4x4 channels per group: four groups per tile";
  if (s.groups > 1) return w + "; grouped: one implicit GEMM per group";
  return w + "; implicit GEMM with an indirection buffer (padding taps read a zero row)";
}

std::string Conv2dKernel::description() const {
  const Impl& m = *impl_;
  const ConvShape& s = m.shape;
  std::ostringstream os;
  auto geometry = [&] {
    os << s.kernel_h << "x" << s.kernel_w << "/s" << s.stride_h;
    if (s.stride_w != s.stride_h) os << "x" << s.stride_w;
    if (s.dilation_h != 1 || s.dilation_w != 1) {
      os << "/d" << s.dilation_h;
      if (s.dilation_w != s.dilation_h) os << "x" << s.dilation_w;
    }
  };
  switch (m.algo) {
    case ConvAlgo::dwconv:
      os << "dwconv ";
      geometry();
      os << " " << m.dw.uk->dwconv.name;
      break;
    case ConvAlgo::gemm:
      os << "gemm 1x1 " << m.gemm.uk->igemm.name;
      break;
    case ConvAlgo::winograd:
      os << "winograd F(2x2,3x3) " << m.wino.uk->igemm.name;
      break;
    case ConvAlgo::igemm_rows:
      os << "igemm ";
      geometry();
      os << " row-merged " << m.gemm.uk->igemm.name;
      break;
    case ConvAlgo::igemm:
      if (s.groups > 1) os << "grouped ";
      os << "igemm ";
      if (s.groups > 1) os << "g=" << s.groups << " ";
      geometry();
      os << " "
         << (m.gemm.paired ? m.gemm.uk->igemm_pair.name
                           : (m.gemm.quad ? m.gemm.uk->igemm_g4c4.name : m.gemm.uk->igemm.name));
      break;
  }
  os << epilogue_suffix(m.epilogue);
  return os.str();
}

void Conv2dKernel::run(const float* in, float* out, const float* residual) const {
  const Impl& m = *impl_;
  const ConvShape& s = m.shape;
  if (s.batch == 0) return;
  const size_t H = static_cast<size_t>(s.in_h), W = static_cast<size_t>(s.in_w), C = static_cast<size_t>(s.in_c);
  const size_t OH = static_cast<size_t>(s.out_h), OW = static_cast<size_t>(s.out_w);
  const size_t OC = static_cast<size_t>(s.out_c);
  const size_t KH = static_cast<size_t>(s.kernel_h), KW = static_cast<size_t>(s.kernel_w);
  const int64_t SH = s.stride_h, SW = s.stride_w, PH = s.pad_h, PW = s.pad_w, DH = s.dilation_h,
                DW = s.dilation_w;
  const size_t batch = static_cast<size_t>(s.batch);
  const size_t M = batch * OH * OW;
  if (m.algo == ConvAlgo::winograd) {
    m.wino.run(s, in, out, residual);
    return;
  }

  if (m.algo == ConvAlgo::gemm) {
    const GemmPlan& p = m.gemm;
    auto rows = [&](size_t, size_t m0, size_t mr, const float** ptrs, float*) {
      for (size_t i = 0; i < mr; ++i) ptrs[i] = in + (m0 + i) * C;
    };
    p.run(M, rows, out, OC, residual);
    return;
  }

  if (m.algo == ConvAlgo::igemm_rows) {
    // One "tap" per kernel row: KW * C contiguous floats starting at the
    // row's first input column. Rows that leave the image horizontally are
    // assembled (zeros + data) in the task's scratch buffer.
    const GemmPlan& p = m.gemm;
    const size_t MR = p.mr;
    const size_t seg = p.kc;  // KW * C
    const float* zero = p.zero.get();
    auto rows = [&](size_t, size_t m0, size_t mr, const float** ptrs, float* scratch) {
      size_t n = m0 / (OH * OW);
      size_t rem = m0 % (OH * OW);
      size_t oy = rem / OW, ox = rem % OW;
      for (size_t i = 0; i < mr; ++i) {
        const float* img = in + n * H * W * C;
        const int64_t ix0 = static_cast<int64_t>(ox) * SW - PW;
        const bool inside = ix0 >= 0 && ix0 + static_cast<int64_t>(KW) <= static_cast<int64_t>(W);
        for (size_t ky = 0; ky < KH; ++ky) {
          const int64_t iy = static_cast<int64_t>(oy) * SH - PH + static_cast<int64_t>(ky) * DH;
          const float* ptr = zero;
          if (iy >= 0 && iy < static_cast<int64_t>(H)) {
            const float* row = img + static_cast<size_t>(iy) * W * C;
            if (inside) {
              ptr = row + static_cast<size_t>(ix0) * C;
            } else {
              float* dst = scratch + (i * KH + ky) * seg;
              for (size_t kx = 0; kx < KW; ++kx) {
                const int64_t ix = ix0 + static_cast<int64_t>(kx);
                if (ix >= 0 && ix < static_cast<int64_t>(W)) {
                  std::memcpy(dst + kx * C, row + static_cast<size_t>(ix) * C, C * sizeof(float));
                } else {
                  std::memset(dst + kx * C, 0, C * sizeof(float));
                }
              }
              ptr = dst;
            }
          }
          ptrs[ky * MR + i] = ptr;
        }
        if (++ox == OW) {
          ox = 0;
          if (++oy == OH) {
            oy = 0;
            ++n;
          }
        }
      }
    };
    p.run(M, rows, out, OC, residual, MR * KH * seg);
    return;
  }

  if (m.algo == ConvAlgo::igemm) {
    const GemmPlan& p = m.gemm;
    const size_t MR = p.mr;
    const float* zero = p.zero.get();
    auto rows = [&](size_t g, size_t m0, size_t mr, const float** ptrs, float*) {
      const float* base = in + g * p.a_group_stride;
      size_t n = m0 / (OH * OW);
      size_t rem = m0 % (OH * OW);
      size_t oy = rem / OW, ox = rem % OW;
      for (size_t i = 0; i < mr; ++i) {
        const float* img = base + n * H * W * C;
        for (size_t ky = 0; ky < KH; ++ky) {
          const int64_t iy = static_cast<int64_t>(oy) * SH - PH + static_cast<int64_t>(ky) * DH;
          const bool row_ok = iy >= 0 && iy < static_cast<int64_t>(H);
          for (size_t kx = 0; kx < KW; ++kx) {
            const int64_t ix = static_cast<int64_t>(ox) * SW - PW + static_cast<int64_t>(kx) * DW;
            const size_t t = ky * KW + kx;
            ptrs[t * MR + i] = (row_ok && ix >= 0 && ix < static_cast<int64_t>(W))
                                   ? img + (static_cast<size_t>(iy) * W + static_cast<size_t>(ix)) * C
                                   : zero;
          }
        }
        if (++ox == OW) {
          ox = 0;
          if (++oy == OH) {
            oy = 0;
            ++n;
          }
        }
      }
    };
    p.run(M, rows, out, OC, residual);
    return;
  }

  // Depthwise.
  const DwPlan& d = m.dw;
  const size_t ks = d.ks;
  const size_t cb = d.cb;
  const size_t rows_total = batch * OH;
  // Channel chunks (multiples of the vector block) only when there are few
  // output rows, so that small spatial sizes still feed every thread.
  size_t cchunk = round_up(C, cb);
  if (rows_total < kMinTasks) {
    const size_t want = ceil_div(kMinTasks, rows_total);
    cchunk = std::max(cb, round_up(ceil_div(C, want), cb));
  }
  const size_t cchunks = ceil_div(C, cchunk);
  const int relu = d.epilogue == Epilogue::relu ? 1 : 0;
  const vact_ukernel_fn act =
      d.epilogue == Epilogue::silu ? d.uk->silu : (d.epilogue == Epilogue::sigmoid ? d.uk->sigmoid : nullptr);
  const dwconv_ukernel_fn kernel = d.uk->dwconv.fn;
  const float* zero = d.zero.get();
  auto task = [&](size_t idx) {
    const size_t row = idx / cchunks;
    const size_t cc = idx % cchunks;
    const size_t c0 = cc * cchunk;
    const size_t cn = std::min(cchunk, C - c0);
    const size_t n = row / OH, oy = row % OH;
    const float* img = in + n * H * W * C + c0;
    const float* wpk = d.packed.get() + (c0 / cb) * cb * (ks + 1);
    constexpr size_t kStackPtrs = 1024;
    const float* stack_ptrs[kStackPtrs];
    std::vector<const float*> heap_ptrs;
    const float** ptrs = stack_ptrs;
    size_t px_per_chunk = std::max<size_t>(1, kStackPtrs / ks);
    if (ks > kStackPtrs) {
      heap_ptrs.resize(ks);
      ptrs = heap_ptrs.data();
      px_per_chunk = 1;
    }
    // Input rows of this output row's taps (null: the row is padding), and
    // the output columns whose taps all fall inside the input width: there a
    // pixel's tap pointers are its row pointers plus fixed column offsets,
    // without bounds checks (which cost as much as the arithmetic when the
    // channel count is small).
    constexpr size_t kMaxTapRows = 64;
    const float* row_ptr[kMaxTapRows];
    const bool rows_cached = KH <= kMaxTapRows;
    for (size_t ky = 0; rows_cached && ky < KH; ++ky) {
      const int64_t iy = static_cast<int64_t>(oy) * SH - PH + static_cast<int64_t>(ky) * DH;
      row_ptr[ky] = (iy >= 0 && iy < static_cast<int64_t>(H)) ? img + static_cast<size_t>(iy) * W * C : nullptr;
    }
    // ox is interior iff ox*SW - PW >= 0 and ox*SW - PW + (KW-1)*DW <= W-1.
    const int64_t span = static_cast<int64_t>(KW - 1) * DW;
    const size_t ox_lo = static_cast<size_t>((PW + SW - 1) / SW);
    const int64_t hi_num = static_cast<int64_t>(W) - 1 - span + PW;
    const size_t ox_hi = hi_num < 0 ? 0 : std::min<size_t>(OW, static_cast<size_t>(hi_num / SW) + 1);
    for (size_t ox0 = 0; ox0 < OW; ox0 += px_per_chunk) {
      const size_t np = std::min(px_per_chunk, OW - ox0);
      for (size_t p = 0; p < np; ++p) {
        const size_t ox = ox0 + p;
        const float** pp = ptrs + p * ks;
        if (rows_cached && ox >= ox_lo && ox < ox_hi) {
          const size_t col = static_cast<size_t>(static_cast<int64_t>(ox) * SW - PW) * C;
          for (size_t ky = 0; ky < KH; ++ky) {
            const float* r = row_ptr[ky];
            if (r == nullptr) {
              for (size_t kx = 0; kx < KW; ++kx) pp[ky * KW + kx] = zero;
            } else {
              r += col;
              for (size_t kx = 0; kx < KW; ++kx) pp[ky * KW + kx] = r + kx * static_cast<size_t>(DW) * C;
            }
          }
          continue;
        }
        for (size_t ky = 0; ky < KH; ++ky) {
          const int64_t iy = static_cast<int64_t>(oy) * SH - PH + static_cast<int64_t>(ky) * DH;
          const bool row_ok = iy >= 0 && iy < static_cast<int64_t>(H);
          for (size_t kx = 0; kx < KW; ++kx) {
            const int64_t ix = static_cast<int64_t>(ox) * SW - PW + static_cast<int64_t>(kx) * DW;
            pp[ky * KW + kx] = (row_ok && ix >= 0 && ix < static_cast<int64_t>(W))
                                   ? img + (static_cast<size_t>(iy) * W + static_cast<size_t>(ix)) * C
                                   : zero;
          }
        }
      }
      const size_t o_off = ((n * OH + oy) * OW + ox0) * OC + c0;
      float* o = out + o_off;
      kernel(cn, np, ks, ptrs, wpk, o, OC, residual != nullptr ? residual + o_off : nullptr, relu);
      if (act != nullptr) {
        if (cn == OC) {
          act(np * OC, o);
        } else {
          for (size_t p = 0; p < np; ++p) act(cn, o + p * OC);
        }
      }
    }
  };
  detail::parallel_for(rows_total * cchunks, detail::TaskFn(task));
}

// ---------------------------------------------------------------------------
// LinearKernel

struct LinearKernel::Impl {
  size_t in_features = 0, out_features = 0;
  Isa isa = Isa::scalar;
  GemmPlan gemm;
};

LinearKernel::LinearKernel(int64_t in_features, int64_t out_features, const float* weight, const float* bias,
                           Epilogue epilogue, Isa isa)
    : impl_(new Impl) {
  if (in_features < 1 || out_features < 1) {
    throw InvalidArgument("[linear] expected in_features >= 1 and out_features >= 1, got " +
                          std::to_string(in_features) + " and " + std::to_string(out_features));
  }
  if (weight == nullptr) throw InvalidArgument("[linear] weight is null");
  check_isa(isa, "linear");
  Impl& m = *impl_;
  m.in_features = static_cast<size_t>(in_features);
  m.out_features = static_cast<size_t>(out_features);
  m.isa = isa;
  const UkernelSet& uk = ukernels_for(isa);
  GemmPlan& p = m.gemm;
  p.uk = &uk;
  p.mr = uk.igemm.mr;
  p.nr = uk.igemm.nr;
  p.groups = 1;
  p.kc = m.in_features;
  p.ks = 1;
  p.n_pg = m.out_features;
  p.epilogue = epilogue;
  p.pack(weight, bias);
}

LinearKernel::LinearKernel(const LinearKernel& donor, SharePacked) : impl_(new Impl(*donor.impl_)) {}

LinearKernel::~LinearKernel() = default;

std::string LinearKernel::description() const {
  return std::string("gemm linear ") + impl_->gemm.uk->igemm.name + epilogue_suffix(impl_->gemm.epilogue);
}

void LinearKernel::run(const float* x, int64_t rows, float* y) const {
  if (rows < 0) throw InvalidArgument("[linear] expected rows >= 0, got " + std::to_string(rows));
  if (rows == 0) return;
  const Impl& m = *impl_;
  const size_t K = m.in_features;
  auto row_ptrs = [&](size_t, size_t m0, size_t mr, const float** ptrs, float*) {
    for (size_t i = 0; i < mr; ++i) ptrs[i] = x + (m0 + i) * K;
  };
  m.gemm.run(static_cast<size_t>(rows), row_ptrs, y, m.out_features, nullptr);
}

}  // namespace kernels
}  // namespace pyflame_vision
