#include "kernels/common.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace kernels {

AlignedFloats alloc_zeroed(size_t n) {
  const size_t bytes = ((std::max<size_t>(n, 1) * sizeof(float)) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return AlignedFloats(static_cast<float*>(p), [](float* q) { std::free(q); });
}

int ukernel_act(Epilogue e) {
  switch (e) {
    case Epilogue::relu: return kActRelu;
    case Epilogue::silu: return kActSilu;
    case Epilogue::sigmoid: return kActSigmoid;
    case Epilogue::none: break;
  }
  return kActNone;
}

const char* epilogue_suffix(Epilogue e) {
  switch (e) {
    case Epilogue::relu: return " +relu";
    case Epilogue::silu: return " +silu";
    case Epilogue::sigmoid: return " +sigmoid";
    case Epilogue::none: break;
  }
  return "";
}

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

}  // namespace kernels
}  // namespace pyflame_vision
