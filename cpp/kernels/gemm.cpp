#include "kernels/gemm.h"

namespace pyflame_vision {
namespace kernels {

void GemmPlan::pack(const float* weight, const float* bias) {
  nblocks = ceil_div(n_pg, nr);
  block = nr * (1 + ks * kc);
  packed = alloc_zeroed(groups * nblocks * block);
  zero = alloc_zeroed(a_group_stride + kc + 16);
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

void GemmPlan::unpack(float* weight, size_t pkc, size_t pks) const {
  for (size_t g = 0; g < groups; ++g) {
    for (size_t j = 0; j < nblocks; ++j) {
      const float* src = packed.get() + (g * nblocks + j) * block;
      const size_t ncols = std::min(nr, n_pg - j * nr);
      for (size_t r = 0; r < ncols; ++r) {
        float* dst = weight + (g * n_pg + j * nr + r) * pkc * pks;
        for (size_t k = 0; k < pkc; ++k) {
          for (size_t t = 0; t < pks; ++t) dst[k * pks + t] = src[nr + (t * pkc + k) * nr + r];
        }
      }
    }
  }
}

void GemmPlan::run_row(const float* x, float* y, int act) const {
  constexpr size_t kPanels = 4;  // the gemv microkernel's width
  const size_t tasks = ceil_div(nblocks, kPanels);
  auto task = [&](size_t t) {
    const size_t j0 = t * kPanels, j1 = std::min(nblocks, j0 + kPanels);
    const size_t nc_last = std::min(nr, n_pg - (j1 - 1) * nr);
    gemv(j1 - j0, nc_last, kc, x, packed.get() + j0 * block, block, y + j0 * nr, act);
  };
  detail::parallel_for(tasks, detail::TaskFn(task));
}

GemmPlan::Grid GemmPlan::grid(size_t M) const {
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
  // Bytes re-read: the input (M rows of ks * kc) once per column task, or the
  // packed weights (nblocks * block) once per row task.
  const double a_bytes = static_cast<double>(M) * static_cast<double>(ks * kc) * static_cast<double>(gr.n_tasks);
  const double b_bytes = static_cast<double>(nblocks * block) * static_cast<double>(gr.m_tasks);
  gr.n_inner = gr.n_tasks > 1 && a_bytes > b_bytes;
  return gr;
}

}  // namespace kernels
}  // namespace pyflame_vision
