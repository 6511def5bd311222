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
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv_impls.h"
#include "kernels/indirection.h"

namespace pyflame_vision {
namespace kernels {

namespace {

class Winograd final : public ConvImpl {
 public:
  Winograd(const UkernelSet& uk, size_t cin, size_t cout)
      : uk_(uk), mr_(uk.igemm.mr), nr_(uk.igemm.nr), cin_(cin), cout_(cout) {}

  // weight: [cout][cin][3][3] (torch OIHW).
  void pack(const float* weight, const float* b) {
    nblocks_ = ceil_div(cout_, nr_);
    block_ = nr_ * (1 + cin_);
    packed_ = alloc_zeroed(16 * nblocks_ * block_);  // [16][nblocks][block]: zero bias row + [cin][nr]
    bias_ = alloc_zeroed(cout_ + 16);
    zero_ = alloc_zeroed(cin_ + 16);
    for (size_t o = 0; o < cout_; ++o) {
      if (b != nullptr) bias_.get()[o] = b[o];
      for (size_t c = 0; c < cin_; ++c) {
        const float* g = weight + (o * cin_ + c) * 9;
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
            float* dst = packed_.get() + (xi * nblocks_ + o / nr_) * block_;
            dst[nr_ + c * nr_ + o % nr_] = static_cast<float>(u[j]);
          }
        }
      }
    }
  }

  void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const override;

  std::string describe(const ConvShape&) const override {
    return std::string("winograd F(2x2,3x3) ") + uk_.igemm.name;
  }

  // 16 products per 2x2 tile per channel pair, tiles covering the output.
  int64_t macs_executed(const ConvShape& s) const override {
    return s.batch * ((s.out_h + 1) / 2) * ((s.out_w + 1) / 2) * 16 * s.in_c * s.out_c;
  }

 private:
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
    const size_t max_tb = 16 * mr_;
    if (16 * cin_ * cout_ * sizeof(float) > (size_t{8} << 20)) return std::min(max_tb, round_up(tiles, mr_));
    const size_t by_cache = (384 * 1024 / sizeof(float)) / (16 * (cin_ + cout_));
    const size_t tb = std::max(mr_, std::min(max_tb, by_cache / mr_ * mr_));
    const size_t for_balance = round_up(ceil_div(tiles, 8), mr_);
    return std::max(mr_, std::min(tb, for_balance));
  }

  const UkernelSet& uk_;
  size_t mr_, nr_, cin_, cout_, nblocks_ = 0, block_ = 0;
  AlignedFloats packed_, bias_, zero_;
};

void Winograd::run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const {
  const size_t OH = static_cast<size_t>(s.out_h), OW = static_cast<size_t>(s.out_w);
  const size_t TH = ceil_div(OH, 2), TW = ceil_div(OW, 2);
  const size_t tiles = static_cast<size_t>(s.batch) * TH * TW;
  const size_t TB = tiles_per_block(tiles);
  const size_t nb = ceil_div(tiles, TB);
  // Few tile blocks (small maps at batch 1): also split the output channels,
  // so that every thread gets work; each part repeats the (cheap) input
  // transform of its block. The split depends only on the shape, never on the
  // thread count, so results do not either.
  const size_t nsplit = std::min(nblocks_, nb >= 8 ? size_t{1} : ceil_div(8, nb));
  const size_t jper = ceil_div(nblocks_, nsplit);
  const size_t C = cin_, OC = cout_, MR = mr_, NR = nr_;
  // The input patches: a 4x4 window with stride 2 over the padded input.
  Window win = Window::of(s);
  win.OH = TH, win.OW = TW, win.KH = win.KW = 4, win.SH = win.SW = 2, win.DH = win.DW = 1;
  auto task = [&](size_t idx) {
    const size_t blk = idx / nsplit;
    const size_t j0 = (idx % nsplit) * jper, j1 = std::min(nblocks_, j0 + jper);
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
    float* V = scratch.data();  // [16][vs]: TB rows of C
    float* Mp = V + 16 * vs;    // [16][ms]: TB rows of OC
    Indirection ind(win, zero_.get());
    size_t row = SIZE_MAX;
    for (size_t tt = 0; tt < nt; ++tt) {
      const size_t tile = t0 + tt;
      if (tile / TW != row) {
        row = tile / TW;
        ind.set_row(in + (row / TH) * win.H * win.W * C, row % TH);
      }
      const float* d[16];
      ind.taps(tile % TW, d, 1);
      uk_.wino_in(C, d, V + tt * C, vs);
    }
    // 16 GEMMs: M[xi][tile][:] = V[xi][tile][:] x U[xi].
    const float* ptrs[64];
    for (size_t xi = 0; xi < 16; ++xi) {
      const float* vx = V + xi * vs;
      float* mx = Mp + xi * ms;
      const float* ux = packed_.get() + xi * nblocks_ * block_;
      for (size_t m0 = 0; m0 < nt; m0 += MR) {
        const size_t mrows = std::min(MR, nt - m0);
        for (size_t i = 0; i < MR; ++i) ptrs[i] = vx + (m0 + (i < mrows ? i : 0)) * C;
        for (size_t j = j0; j < j1; ++j) {
          const size_t nc = std::min(NR, OC - j * NR);
          uk_.igemm.fn(mrows, nc, C, 1, ptrs, 0, ux + j * block_, mx + m0 * OC + j * NR, OC, nullptr, 0, kActNone);
        }
      }
    }
    // Output transform, bias, residual, activation.
    for (size_t tt = 0; tt < nt; ++tt) {
      const size_t tile = t0 + tt;
      const size_t b = tile / (TH * TW), ty = (tile / TW) % TH, tx = tile % TW;
      const size_t oy = 2 * ty, ox = 2 * tx;
      const bool has_y1 = oy + 1 < OH, has_x1 = ox + 1 < OW;
      const size_t off = ((b * OH + oy) * OW + ox) * OC + c0;
      const size_t offs[4] = {0, OC, OW * OC, OW * OC + OC};
      const bool inside[4] = {true, has_x1, has_y1, has_x1 && has_y1};
      float* o[4];
      const float* r[4];
      for (int k = 0; k < 4; ++k) {
        o[k] = inside[k] ? out + off + offs[k] : nullptr;
        r[k] = inside[k] && residual != nullptr ? residual + off + offs[k] : nullptr;
      }
      uk_.wino_out(c1 - c0, Mp + tt * OC + c0, ms, bias_.get() + c0, o, r, act);
    }
  };
  detail::parallel_for(nb * nsplit, detail::TaskFn(task));
}

// PYFLAME_VISION_WINOGRAD=0 turns Winograd off (read once).
bool winograd_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("PYFLAME_VISION_WINOGRAD");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled;
}

}  // namespace

// Dense 3x3 stride-1 convolutions with enough channels for its GEMMs, and
// outputs of at least 8x8 (smaller maps waste up to a quarter of each tile
// and have too few tiles to amortise the larger transformed weights).
std::string skip_winograd(const ConvShape& s, const UkernelSet&) {
  if (!winograd_enabled()) return "disabled by PYFLAME_VISION_WINOGRAD=0";
  if (s.kernel_h != 3 || s.kernel_w != 3)
    return "kernel " + std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) + " is not 3x3";
  if (s.stride_h != 1 || s.stride_w != 1) return "stride " + std::to_string(s.stride_h) + " is not 1";
  if (s.dilation_h != 1 || s.dilation_w != 1) return "dilated";
  if (s.groups != 1) return "grouped (" + std::to_string(s.groups) + " groups)";
  if (s.in_c < 16 || s.out_c < 16)
    return std::to_string(s.in_c) + " -> " + std::to_string(s.out_c) + " channels: fewer than 16 for its GEMMs";
  if (s.out_h < 8 || s.out_w < 8)
    return "output " + std::to_string(s.out_h) + "x" + std::to_string(s.out_w) +
           " is smaller than 8x8: too few tiles for the transformed weights";
  return {};
}

std::shared_ptr<const ConvImpl> create_winograd(const ConvShape& s, const float* w, const float* b,
                                                const UkernelSet& uk) {
  auto impl = std::make_shared<Winograd>(uk, static_cast<size_t>(s.in_c), static_cast<size_t>(s.out_c));
  impl->pack(w, b);
  return impl;
}

}  // namespace kernels
}  // namespace pyflame_vision
