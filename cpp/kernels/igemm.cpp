// GEMM-based convolutions: the 1x1 GEMM over NHWC rows, the implicit GEMM
// (indirection of tap pointers) per group or with several groups per tile,
// and the row-merged implicit GEMM for few input channels.
//
// Every output element is computed by exactly one microkernel call with the
// whole reduction in registers, in a fixed order (a 1x1's single row past its
// last full tile by the GEMV, then vadd: the tile row's operations), so
// results do not depend on the tile grid or on the number of threads.
#include <cstring>
#include <string>

#include "kernels/conv_impls.h"
#include "kernels/gemm.h"
#include "kernels/indirection.h"

namespace pyflame_vision {
namespace kernels {

namespace {

// Plan for `s` on the tier's plain igemm microkernel: one plan group per
// convolution group.
GemmPlan plain_plan(const ConvShape& s, const UkernelSet& uk) {
  GemmPlan p;
  p.ukernel_name = uk.igemm.name;
  p.ukernel = uk.igemm.fn;
  p.mr = uk.igemm.mr;
  p.nr = uk.igemm.nr;
  p.groups = static_cast<size_t>(s.groups);
  p.kc = static_cast<size_t>(s.in_c / s.groups);
  p.ks = static_cast<size_t>(s.kernel_h * s.kernel_w);
  p.n_pg = static_cast<size_t>(s.out_c / s.groups);
  p.a_group_stride = p.kc;
  if (s.groups == 1 && p.ks == 1) p.gemv = uk.gemv;
  return p;
}

// ---------------------------------------------------------------- 1x1 GEMM
// A single row past the last full MR-row tile runs as a GEMV row instead (see
// Gemm1x1::run): a tile costs the same for 1 and MR rows. Measured on Zen 2
// (AVX2, 7x7 maps: 49 = 8 * 6 + 1 rows): +3-10% on the layer; with 2 or 4
// rows left the GEMV rows were no faster (2) or slower (4) than one tile.
size_t gemv_tail_rows(size_t M, size_t mr) { return M > mr && M % mr == 1 ? 1 : 0; }

class Gemm1x1 final : public ConvImpl {
 public:
  Gemm1x1(GemmPlan p, vadd_ukernel_fn vadd) : p_(std::move(p)), vadd_(vadd) {}
  void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const override {
    const size_t C = static_cast<size_t>(s.in_c), N = static_cast<size_t>(s.out_c);
    const size_t M = static_cast<size_t>(s.batch * s.out_h * s.out_w);
    if (M == 1 && residual == nullptr && p_.gemv != nullptr) {  // [1, C, 1, 1]: squeeze-excitation at batch 1
      p_.run_row(in, out, act);
      return;
    }
    auto rows = [&](size_t, size_t m0, size_t mr, const float** ptrs, float*) {
      for (size_t i = 0; i < mr; ++i) ptrs[i] = in + (m0 + i) * C;
    };
    // The rows past the last full tile (49 = 8 * 6 + 1 at 7x7) as GEMV rows:
    // the same operations in the same order as the tile's rows (bias and
    // products by the GEMV, then + residual and the activation by vadd, as
    // the tile's epilogue does them), so the results are the same bits. Not
    // when the residual shares the output's memory (the GEMV would overwrite
    // it before it is added).
    size_t tail = p_.gemv != nullptr ? gemv_tail_rows(M, p_.mr) : 0;
    if (residual != nullptr && residual < out + M * N && out < residual + M * N) tail = 0;
    p_.run(M - tail, rows, out, N, residual, act);
    for (size_t r = M - tail; r < M; ++r) {
      float* y = out + r * N;
      if (residual == nullptr) {
        p_.run_row(in + r * C, y, act);
      } else {
        p_.run_row(in + r * C, y, kActNone);
        vadd_(N, y, residual + r * N, y, act);
      }
    }
  }
  std::string describe(const ConvShape& s) const override {
    const bool row = s.batch * s.out_h * s.out_w == 1 && p_.gemv != nullptr;
    return std::string("gemm 1x1 ") + p_.ukernel_name + (row ? " (one row: gemv)" : "");
  }
  bool unpacks() const override { return true; }
  void unpack(const ConvShape&, float* weight) const override {
    p_.unpack(weight, p_.kc, p_.ks);
  }

 private:
  GemmPlan p_;
  vadd_ukernel_fn vadd_;
};

// ---------------------------------------------------------------- implicit GEMM
class Igemm final : public ConvImpl {
 public:
  Igemm(GemmPlan p, size_t groups_per_tile) : p_(std::move(p)), groups_per_tile_(groups_per_tile) {}
  void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const override {
    const Window win = Window::of(s);
    const size_t MR = p_.mr;
    const size_t img_floats = win.H * win.W * win.C;
    auto rows = [&](size_t g, size_t m0, size_t mr, const float** ptrs, float*) {
      Indirection ind(win, p_.zero.get());
      const float* base = in + g * p_.a_group_stride;
      size_t n = m0 / (win.OH * win.OW), rem = m0 % (win.OH * win.OW);
      size_t oy = rem / win.OW, ox = rem % win.OW;
      ind.set_row(base + n * img_floats, oy);
      for (size_t i = 0; i < mr; ++i) {
        ind.taps(ox, ptrs + i, MR);
        if (++ox == win.OW) {
          ox = 0;
          if (++oy == win.OH) oy = 0, ++n;
          if (i + 1 < mr) ind.set_row(base + n * img_floats, oy);
        }
      }
    };
    p_.run(static_cast<size_t>(s.batch * s.out_h * s.out_w), rows, out, static_cast<size_t>(s.out_c), residual, act);
  }
  std::string describe(const ConvShape& s) const override {
    if (s.groups == 1) return "igemm " + geometry(s) + " " + p_.ukernel_name;
    return "grouped igemm g=" + std::to_string(s.groups) + " " + geometry(s) + " " + p_.ukernel_name +
           (groups_per_tile_ > 1 ? " (" + std::to_string(groups_per_tile_) + " groups per tile)" : "");
  }
  bool unpacks() const override { return true; }
  void unpack(const ConvShape&, float* weight) const override {
    p_.unpack(weight, p_.kc, p_.ks);
  }

 private:
  GemmPlan p_;
  size_t groups_per_tile_;
};

// ---------------------------------------------------------------- row-merged implicit GEMM
// One "tap" per kernel row: KW * C contiguous floats starting at the row's
// first input column (the packed layout [KH][KW][C][NR] is the same). Rows
// that leave the image horizontally are assembled (zeros + data) in the
// task's scratch buffer.
class IgemmRows final : public ConvImpl {
 public:
  explicit IgemmRows(GemmPlan p) : p_(std::move(p)) {}
  void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const override {
    const Window win = Window::of(s);
    const size_t MR = p_.mr, C = win.C, KH = win.KH, KW = win.KW;
    const size_t seg = p_.kc;  // KW * C
    const size_t img_floats = win.H * win.W * C;
    auto rows = [&](size_t, size_t m0, size_t mr, const float** ptrs, float* scratch) {
      Indirection ind(win, p_.zero.get());
      size_t n = m0 / (win.OH * win.OW), rem = m0 % (win.OH * win.OW);
      size_t oy = rem / win.OW, ox = rem % win.OW;
      ind.set_row(in + n * img_floats, oy);
      for (size_t i = 0; i < mr; ++i) {
        const int64_t ix0 = ind.first_col(ox);
        for (size_t ky = 0; ky < KH; ++ky) {
          const float* row = ind.row(ky);
          const float* ptr = p_.zero.get();
          if (row != nullptr && ind.interior(ox)) {
            ptr = row + static_cast<size_t>(ix0) * C;
          } else if (row != nullptr) {
            float* dst = scratch + (i * KH + ky) * seg;
            for (size_t kx = 0; kx < KW; ++kx) {
              const int64_t ix = ix0 + static_cast<int64_t>(kx);
              if (ix >= 0 && ix < static_cast<int64_t>(win.W)) {
                std::memcpy(dst + kx * C, row + static_cast<size_t>(ix) * C, C * sizeof(float));
              } else {
                std::memset(dst + kx * C, 0, C * sizeof(float));
              }
            }
            ptr = dst;
          }
          ptrs[ky * MR + i] = ptr;
        }
        if (++ox == win.OW) {
          ox = 0;
          if (++oy == win.OH) oy = 0, ++n;
          if (i + 1 < mr) ind.set_row(in + n * img_floats, oy);
        }
      }
    };
    p_.run(static_cast<size_t>(s.batch * s.out_h * s.out_w), rows, out, static_cast<size_t>(s.out_c), residual, act,
           MR * KH * seg);
  }
  std::string describe(const ConvShape& s) const override {
    return "igemm " + geometry(s) + " row-merged " + p_.ukernel_name;
  }
  bool unpacks() const override { return true; }
  void unpack(const ConvShape& s, float* weight) const override {  // packed as [KH][KW][C][NR] before merging
    p_.unpack(weight, static_cast<size_t>(s.in_c), static_cast<size_t>(s.kernel_h * s.kernel_w));
  }

 private:
  GemmPlan p_;
};

bool pointwise(const ConvShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// The tier's grouped microkernel for `s`, or null.
const GroupedUkernel* grouped_ukernel(const ConvShape& s, const UkernelSet& uk) {
  const size_t in_pg = static_cast<size_t>(s.in_c / s.groups), out_pg = static_cast<size_t>(s.out_c / s.groups);
  for (const GroupedUkernel& g : uk.grouped) {
    if (g.name == nullptr) break;
    if (g.c == out_pg && (g.any_kc || in_pg == g.c)) return &g;
  }
  return nullptr;
}

}  // namespace

std::string skip_gemm_1x1(const ConvShape& s, const UkernelSet&) {
  if (s.kernel_h != 1 || s.kernel_w != 1)
    return "kernel " + std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) + " is not 1x1";
  if (!pointwise(s)) return "1x1 with stride or padding: its input rows are not the output rows";
  if (s.groups != 1) return "grouped (" + std::to_string(s.groups) + " groups)";
  return {};
}

std::shared_ptr<const ConvImpl> create_gemm_1x1(const ConvShape& s, const float* w, const float* b,
                                                const UkernelSet& uk) {
  GemmPlan p = plain_plan(s, uk);
  p.pack(w, b);
  return std::make_shared<Gemm1x1>(std::move(p), uk.vadd);
}

std::string skip_igemm_grouped(const ConvShape& s, const UkernelSet& uk) {
  if (s.groups == 1) return "not grouped";
  const size_t in_pg = static_cast<size_t>(s.in_c / s.groups), out_pg = static_cast<size_t>(s.out_c / s.groups);
  const GroupedUkernel* g = grouped_ukernel(s, uk);
  if (g == nullptr) {
    std::string have;
    for (const GroupedUkernel& k : uk.grouped) {
      if (k.name == nullptr) break;
      have += (have.empty() ? "" : ", ") + std::to_string(k.c) + (k.any_kc ? "" : "x" + std::to_string(k.c));
    }
    return std::to_string(in_pg) + " -> " + std::to_string(out_pg) + " channels per group: the " + isa_name(uk.isa) +
           " tier's multi-group tiles take " + (have.empty() ? std::string("none") : have) +
           " (in x out) channels per group";
  }
  const size_t per_tile = uk.igemm.nr / g->c;
  if (static_cast<size_t>(s.groups) % per_tile != 0)
    return std::to_string(s.groups) + " groups do not fill tiles of " + std::to_string(per_tile) + " groups";
  return {};
}

std::shared_ptr<const ConvImpl> create_igemm_grouped(const ConvShape& s, const float* w, const float* b,
                                                     const UkernelSet& uk) {
  const GroupedUkernel* g = grouped_ukernel(s, uk);
  GemmPlan p = plain_plan(s, uk);
  const size_t per_tile = p.nr / g->c;
  p.ukernel_name = g->name;
  p.ukernel = g->fn;
  p.groups /= per_tile;
  p.n_pg *= per_tile;
  p.a_group_stride = per_tile * p.kc;
  // Vector v of a tile reads its groups' channels v * a_off floats further.
  p.a_off = g->c == uk.vw ? p.kc : uk.vw;
  p.pack(w, b);
  return std::make_shared<Igemm>(std::move(p), per_tile);
}

std::string skip_igemm_rows(const ConvShape& s, const UkernelSet&) {
  if (s.groups != 1) return "grouped";
  if (s.kernel_w == 1) return "kernel width 1: nothing to merge";
  if (s.dilation_w != 1) return "dilated columns are not contiguous";
  if (s.in_c >= 16)
    return std::to_string(s.in_c) + " input channels (>= 16) are enough for per-tap reductions";
  return {};
}

std::shared_ptr<const ConvImpl> create_igemm_rows(const ConvShape& s, const float* w, const float* b,
                                                  const UkernelSet& uk) {
  GemmPlan p = plain_plan(s, uk);
  p.pack(w, b);
  // [KH][KW][C][NR] read as [KH][KW * C][NR].
  p.kc = static_cast<size_t>(s.kernel_w) * p.kc;
  p.ks = static_cast<size_t>(s.kernel_h);
  p.zero = alloc_zeroed(p.kc + 16);
  return std::make_shared<IgemmRows>(std::move(p));
}

std::string skip_igemm(const ConvShape&, const UkernelSet&) { return {}; }  // any shape

std::shared_ptr<const ConvImpl> create_igemm(const ConvShape& s, const float* w, const float* b, const UkernelSet& uk) {
  GemmPlan p = plain_plan(s, uk);
  p.pack(w, b);
  return std::make_shared<Igemm>(std::move(p), 1);
}

}  // namespace kernels
}  // namespace pyflame_vision
