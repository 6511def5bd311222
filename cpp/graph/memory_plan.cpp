// Pass 5: the memory plan. Lifetimes in step order (outputs live to the end),
// then greedy first fit by size, largest first.
#include <algorithm>
#include <utility>

#include "graph/program.h"

namespace pyflame_vision {

int64_t plan_memory(const std::vector<std::unique_ptr<Step>>& steps, const std::vector<int>& outputs,
                    std::vector<Value>& values) {
  const int nv = static_cast<int>(values.size());
  const int ns = static_cast<int>(steps.size());
  std::vector<int> def(static_cast<size_t>(nv), -2), last(static_cast<size_t>(nv), -2);
  def[0] = -1;
  last[0] = -1;
  for (int i = 0; i < ns; ++i) {
    const Step& s = *steps[static_cast<size_t>(i)];
    def[static_cast<size_t>(s.output)] = i;
    last[static_cast<size_t>(s.output)] = std::max(last[static_cast<size_t>(s.output)], i);
    for (int in : s.inputs) last[static_cast<size_t>(in)] = std::max(last[static_cast<size_t>(in)], i);
  }
  for (int o : outputs) last[static_cast<size_t>(o)] = ns;
  std::vector<int> order;
  for (int v = 0; v < nv; ++v)
    if (def[static_cast<size_t>(v)] >= -1) order.push_back(v);
  auto floats_of = [&](int v) { return (values[static_cast<size_t>(v)].floats() + 15) / 16 * 16; };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return floats_of(a) > floats_of(b); });
  int64_t arena = 0;
  std::vector<int> placed;
  for (int v : order) {
    const int64_t size = floats_of(v);
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int p : placed) {
      const bool overlap = !(last[static_cast<size_t>(p)] < def[static_cast<size_t>(v)] ||
                             last[static_cast<size_t>(v)] < def[static_cast<size_t>(p)]);
      if (overlap) busy.emplace_back(values[static_cast<size_t>(p)].offset, floats_of(p));
    }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (const auto& b : busy) {
      if (off + size <= b.first) break;
      off = std::max(off, b.first + b.second);
    }
    values[static_cast<size_t>(v)].offset = off;
    arena = std::max(arena, off + size);
    placed.push_back(v);
  }
  return std::max<int64_t>(arena, 16);
}

}  // namespace pyflame_vision
