// Internal: entry points shared between the weight-file readers.
#pragma once

#include "io/byte_source.h"
#include "pyflame_vision/io.h"

namespace pyflame_vision {
namespace io_detail {

/// Reads the state dict of a PyTorch checkpoint from `src`, whose format
/// detect_weight_format gave as `format`; any other format throws
/// WeightsError saying what the data is instead.
NamedTensors read_checkpoint(const ByteSource& src, WeightFormat format, const CheckpointOptions& options);

/// detect_weight_format on the first bytes of `src`.
WeightFormat detect_weight_format(const ByteSource& src);

/// Reads a whole .safetensors image from `src` (rules: pyflame_vision/io.h).
SafetensorsFile read_safetensors(const ByteSource& src);

}  // namespace io_detail
}  // namespace pyflame_vision
