// libFuzzer target: the .safetensors reader (header parser, offset and size
// validation, tensor copies) on arbitrary bytes. The contract under test: any
// input either parses or throws pyflame_vision::Error (WeightsError for a
// malformed file); anything else (a crash, a sanitizer report, an uncaught
// exception, an allocation beyond libFuzzer's -malloc_limit_mb) is a finding.
#include <cstddef>
#include <cstdint>

#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const pyflame_vision::SafetensorsFile f = pyflame_vision::parse_safetensors(data, size, "fuzz.safetensors");
    // A file that parses must describe tensors that fit it: touch every byte read.
    volatile uint8_t sink = 0;
    for (const auto& kv : f.tensors) {
      const auto* p = static_cast<const uint8_t*>(kv.second.raw_data());
      for (int64_t i = 0; i < kv.second.nbytes(); ++i) sink = sink ^ p[i];
    }
  } catch (const pyflame_vision::Error&) {
  }
  return 0;
}
