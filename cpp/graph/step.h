// Internal: one step of an Executable. A step reads its inputs and writes its
// output, all NHWC buffers inside the arena; run() is const and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyflame_vision {

struct Step {
  virtual ~Step() = default;
  virtual void run(const float* const* in, float* out) const = 0;
  std::vector<int> inputs;  // value ids
  int output = -1;
  std::string label;  // node paths, e.g. "layer1.0.conv1+bn1+relu"
  std::string algo;   // kernel, e.g. "gemm 1x1 igemm_f32_6x16__avx2 +relu"
  std::string why;    // selection trace (PYFLAME_VISION_VERBOSE), one line per candidate
  int64_t macs = 0;   // multiply-adds the kernel executes per run (Winograd's fewer)
};

}  // namespace pyflame_vision
