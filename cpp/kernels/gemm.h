// Internal: packed GEMM weights and the tile grid that runs them, shared by
// the GEMM-based convolution implementations and Linear.
//
// A GemmPlan is shape-independent (it depends on the layer, the tier and the
// microkernel only), so the kernels of several input shapes share one. run()
// is const and thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/common.h"

namespace pyflame_vision {
namespace kernels {

/// A hint to bring p's cache line in (no effect on results).
inline void prefetch(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 1);
#else
  (void)p;
#endif
}

struct GemmPlan {
  const char* ukernel_name = nullptr;
  igemm_ukernel_fn ukernel = nullptr;
  gemv_ukernel_fn gemv = nullptr;  // one-row kernel over the same panels (null: run() for one row too)
  size_t mr = 0, nr = 0;
  size_t groups = 1;   // plan groups (each may hold several convolution groups)
  size_t kc = 0;       // reduction per tap (input channels per convolution group)
  size_t ks = 1;       // taps
  size_t n_pg = 0;     // output channels per plan group
  size_t nblocks = 0;  // NR blocks per plan group
  size_t block = 0;    // floats per packed block: nr * (1 + ks * kc)
  size_t a_off = 0;    // the microkernel's a_off (grouped kernels)
  size_t a_group_stride = 0;  // A of plan group g starts at channel g * a_group_stride
  AlignedFloats packed;
  AlignedFloats zero;  // zeros for padding taps: >= a_group_stride + kc floats

  /// Packs `weight` ([groups * n_pg][kc][ks], torch's OIHW with HW flattened)
  /// and `bias` ([groups * n_pg] or null).
  void pack(const float* weight, const float* bias);
  /// The inverse of pack() for the weights: writes them back in pack()'s
  /// input layout, for the kc and ks that pack() saw (`kc`, `ks` here).
  void unpack(float* weight, size_t kc, size_t ks) const;

  struct Grid {
    size_t mc, nbt, m_tasks, n_tasks;
    // Task order: column blocks vary faster than row blocks (each row block's
    // input is read once, the weights m_tasks times) or slower (the weights
    // once, the input n_tasks times): whichever re-reads fewer bytes.
    bool n_inner;
    size_t tasks() const { return m_tasks * n_tasks; }
  };
  /// The tile grid for M rows: a function of the shape only, never of the
  /// thread count, so results do not depend on it.
  Grid grid(size_t M) const;

  /// One row, y = act(x . W + b), on the gemv microkernel, four panels per
  /// task (bit-identical to run() for that row). Needs gemv, groups == 1, ks == 1.
  void run_row(const float* x, float* y, int act) const;

  /// Runs the whole product. rows(g, m0, mr, ptrs, scratch) fills
  /// ptrs[t * MR + i] for i < mr and t < ks (rows i >= mr are filled here);
  /// scratch is a per-task buffer of scratch_floats floats.
  template <typename Rows>
  void run(size_t M, const Rows& rows, float* out, size_t ldc, const float* res, int act,
           size_t scratch_floats = 0) const {
    if (M == 0) return;
    const Grid gr = grid(M);
    auto task = [&](size_t idx) {
      // Groups vary fastest: consecutive tasks (on every thread) read the
      // same input rows, each its own group's channels, while those rows are
      // in cache. Group-major order streamed the whole input once per group
      // (from DRAM at batch 8: 2.4x slower on ResNeXt's strided 3x3).
      const size_t g = idx % groups;
      const size_t rest = idx / groups;
      const size_t mt = gr.n_inner ? rest / gr.n_tasks : rest % gr.m_tasks;
      const size_t nt = gr.n_inner ? rest % gr.n_tasks : rest / gr.m_tasks;
      const size_t m_begin = mt * gr.mc;
      const size_t m_end = std::min(M, m_begin + gr.mc);
      const size_t j_begin = nt * gr.nbt;
      const size_t j_end = std::min(nblocks, j_begin + gr.nbt);
      constexpr size_t kStackPtrs = 1024;
      const float* stack_ptrs[kStackPtrs];
      std::vector<const float*> heap_ptrs;
      const float** ptrs = stack_ptrs;
      if (ks * mr > kStackPtrs) {
        heap_ptrs.resize(ks * mr);
        ptrs = heap_ptrs.data();
      }
      std::vector<float> scratch(scratch_floats);
      for (size_t m0 = m_begin; m0 < m_end; m0 += mr) {
        const size_t mrows = std::min(mr, m_end - m0);
        rows(g, m0, mrows, ptrs, scratch.data());
        for (size_t i = mrows; i < mr; ++i)
          for (size_t t = 0; t < ks; ++t) ptrs[t * mr + i] = ptrs[t * mr];
        for (size_t j = j_begin; j < j_end; ++j) {
          const size_t col = g * n_pg + j * nr;
          const size_t nc = std::min(nr, n_pg - j * nr);
          const float* rj = res != nullptr ? res + m0 * ldc + col : nullptr;
          // The tile's output lines, requested before its reduction: they
          // arrive while it runs, so the epilogue's stores do not wait for
          // them (+2-3% on ResNeXt-50 at batch 8, AVX2; prefetching the
          // residual lines as well measured no further gain).
          float* oj = out + m0 * ldc + col;
          for (size_t i = 0; i < mrows; ++i) {
            prefetch(oj + i * ldc);
            prefetch(oj + i * ldc + nc - 1);
          }
          ukernel(mrows, nc, kc, ks, ptrs, a_off, packed.get() + (g * nblocks + j) * block, oj, ldc, rj, ldc, act);
        }
      }
    };
    detail::parallel_for(groups * gr.tasks(), detail::TaskFn(task));
  }
};

}  // namespace kernels
}  // namespace pyflame_vision
