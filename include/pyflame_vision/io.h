// pyflame_vision/io.h - weight files: reading and writing .safetensors.
//
// The .safetensors format (the one the Python package `safetensors` writes):
//
//   bytes [0, 8)        N, the header length, a little-endian unsigned 64-bit integer
//   bytes [8, 8 + N)    a UTF-8 JSON object (optionally padded with trailing spaces):
//                         { "__metadata__": {"key": "value", ...},          (optional)
//                           "name": {"dtype": "F32", "shape": [64, 3, 7, 7],
//                                    "data_offsets": [begin, end]}, ... }
//   bytes [8 + N, end)  the data buffer; each tensor's bytes are [begin, end)
//                       relative to its start, row-major, little-endian.
//
// The reader is strict: the header must be exactly this grammar (objects,
// arrays, strings with JSON escapes, non-negative integers), every tensor
// needs exactly "dtype", "shape" and "data_offsets", end - begin must equal
// numel * itemsize (overflow-checked), and the tensors' byte ranges must not
// overlap and must cover the data buffer exactly, with no gap (the format's
// rules, which the `safetensors` package enforces too). Anything else throws
// WeightsError naming the file, the byte offset in the file, what was expected
// and what was found. A malformed file never crashes the reader and never
// makes it allocate more than the file's size plus the tensors it describes.
//
// Supported dtypes: F64, F32, F16, BF16, I64, I32, U8, BOOL (DType float64,
// float32, float16, bfloat16, int64, int32, uint8, bool_). Others (I8, I16,
// U16, U32, U64, F8_*) throw WeightsError naming the dtype and the tensor.
// Model::load_state_dict converts every float and integer dtype except bool to
// the model's float32 (int64 for num_batches_tracked).
//
// Thread safety: every function here may be called from many threads at once,
// as long as no two of them write the same path, and no other thread mutates
// the Model passed to load_weights.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "pyflame_vision/models/model.h"
#include "pyflame_vision/tensor.h"

namespace pyflame_vision {

/// Tensors in the order of the file's header, each with its own storage.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
/// The optional "__metadata__" entries, in the order of the file.
using Metadata = std::vector<std::pair<std::string, std::string>>;

/// Everything a .safetensors file holds.
struct SafetensorsFile {
  NamedTensors tensors;  ///< in the order of the header (the Python writer's data-layout order)
  Metadata metadata;     ///< empty if the file has no "__metadata__"
};

/// Reads a whole .safetensors file. The returned tensors own their memory (the
/// file is not kept open or mapped). Throws WeightsError if the file cannot be
/// opened or read (message has the path and the system's reason) or is
/// malformed (see above); std::bad_alloc if memory runs out.
SafetensorsFile read_safetensors(const std::string& path);

/// read_safetensors(path).tensors: the tensors in file order.
NamedTensors load_safetensors(const std::string& path);

/// Parses a .safetensors image already in memory (`size` bytes at `data`, which
/// the caller owns and which is only read during the call; tensors are copied
/// out). `source` names the data in error messages (e.g. a file name).
/// Throws as read_safetensors.
SafetensorsFile parse_safetensors(const void* data, size_t size, const std::string& source = "<memory>");

/// Writes `tensors` (and `metadata`) to `path` as .safetensors, readable by the
/// Python `safetensors` package (safetensors.numpy.load_file). The header lists
/// the tensors in the given order; the data is laid out by decreasing item size
/// so each tensor is aligned to its item size. Every tensor must be defined;
/// names must be unique, non-empty and not "__metadata__" (else
/// InvalidArgument, before anything is written). The file is written to
/// `path` + ".tmp" and then renamed, so a failed save never leaves a partial
/// file at `path`. Throws WeightsError if the file cannot be written.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

/// Loads a .safetensors file into `model` with model.load_state_dict(tensors,
/// strict), as Python's pyflame_vision.load_weights does. `path` must end in
/// ".safetensors" (else InvalidArgument; pickled PyTorch checkpoints such as
/// .pt/.pth are never read, and the message says how to convert one). Throws
/// WeightsError for an unreadable or malformed file or one that does not fit
/// the model; the model's previous weights are then unchanged. Returns the keys
/// skipped with strict = false. Must not run concurrently with other mutating
/// calls on `model`; concurrent forward() calls keep the weights they started with.
models::LoadResult load_weights(models::Model& model, const std::string& path, bool strict = true);

/// Writes model.state_dict() to `path` (.safetensors) with the metadata
/// {"format": "np", "model": model.name()}, as Python's save_weights does.
/// Throws WeightsError if the model has no weights or the file cannot be
/// written, InvalidArgument if `path` does not end in ".safetensors".
void save_weights(const models::Model& model, const std::string& path);

}  // namespace pyflame_vision
