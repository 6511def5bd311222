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
          ukernel(mrows, nc, kc, ks, ptrs, a_off, packed.get() + (g * nblocks + j) * block, out + m0 * ldc + col, ldc,
                  rj, ldc, act);
        }
      }
    };
    detail::parallel_for(groups * per_group, detail::TaskFn(task));
  }
};

}  // namespace kernels
}  // namespace pyflame_vision
