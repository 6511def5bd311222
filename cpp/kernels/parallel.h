// Internal: fixed task grids over rows for the non-convolution kernels (a
// function of the shape only, never of the thread count, so results do not
// depend on it). Baseline code.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/thread_pool.h"

namespace pyflame_vision {
namespace kernels {

/// f(r0, r1) over `rows` rows of `cols` floats, in tasks of whole rows of
/// about 32K floats each: large enough to amortise dispatch.
template <typename F>
void parallel_rows(int64_t rows, int64_t cols, F&& f) {
  if (rows <= 0) return;
  const int64_t per = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(cols, 1));
  const int64_t tasks = (rows + per - 1) / per;
  auto body = [&](size_t t) {
    const int64_t r0 = static_cast<int64_t>(t) * per, r1 = std::min(rows, r0 + per);
    f(r0, r1);
  };
  detail::parallel_for(static_cast<size_t>(tasks), detail::TaskFn(body));
}

/// f(begin, length) over a flat range of n floats, in chunks of 32K floats (a
/// multiple of every vector width).
template <typename F>
void parallel_flat(int64_t n, F&& f) {
  constexpr int64_t kChunk = int64_t{1} << 15;
  parallel_rows((n + kChunk - 1) / kChunk, kChunk, [&](int64_t r0, int64_t r1) {
    const int64_t b = r0 * kChunk, e = std::min(n, r1 * kChunk);
    f(static_cast<size_t>(b), static_cast<size_t>(e - b));
  });
}

}  // namespace kernels
}  // namespace pyflame_vision
