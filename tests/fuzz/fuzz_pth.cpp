// libFuzzer target: the PyTorch checkpoint reader (ZIP directory, restricted
// pickle VM, storage views, legacy format) on arbitrary bytes, with and
// without key= / strip_prefix=. The contract under test: any input either
// reads or throws pyflame_vision::Error (WeightsError, InvalidArgument);
// anything else (a crash, a sanitizer report, an uncaught exception, an
// allocation beyond libFuzzer's -malloc_limit_mb, a timeout) is a finding.
#include <cstddef>
#include <cstdint>

#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace pfv = pyflame_vision;
  try {
    const pfv::NamedTensors t = pfv::parse_pytorch_checkpoint(data, size, "fuzz.pth");
    volatile uint8_t sink = 0;
    for (const auto& kv : t) {
      const auto* p = static_cast<const uint8_t*>(kv.second.raw_data());
      for (int64_t i = 0; i < kv.second.nbytes(); ++i) sink = sink ^ p[i];
    }
  } catch (const pfv::Error&) {
  }
  // The state-dict selection paths (training checkpoints, DataParallel prefixes).
  pfv::CheckpointOptions o;
  o.key = "state_dict";
  o.strip_prefix = "module.";
  try {
    pfv::parse_pytorch_checkpoint(data, size, "fuzz.pth", o);
  } catch (const pfv::Error&) {
  }
  return 0;
}
