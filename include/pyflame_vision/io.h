// pyflame_vision/io.h - weight files: .safetensors (read and write) and
// PyTorch checkpoints (.pth/.pt/.bin/.ckpt, read only).
//
// ---------------------------------------------------------------- .safetensors
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
// ---------------------------------------------------------------- PyTorch checkpoints
//
// read_pytorch_checkpoint reads both formats torch.save writes, without torch
// and without running anything from the file:
//
//   zip (torch >= 1.6, the default): <archive>/data.pkl (the pickled object),
//     <archive>/data/<key> (each storage's raw bytes), <archive>/byteorder
//     ("little" or "big"; absent = little), <archive>/version (or
//     .data/version). Entries must be stored uncompressed (torch.save writes
//     them so); ZIP64 archives are read. Non-zero CRC-32s are checked.
//   legacy (_use_new_zipfile_serialization=False): five pickles (magic number,
//     protocol 1001, system info, the object, the storage keys) followed by
//     each storage as an 8-byte little-endian element count and its
//     little-endian bytes.
//
// The pickle is interpreted by a restricted VM that knows only the opcodes of
// protocols 2-5 that these files use and an allowlist of globals it
// interprets itself (collections.OrderedDict; torch._utils._rebuild_tensor,
// _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter,
// _rebuild_parameter_with_state; torch's storage types and dtypes). Any other
// global (os.system, builtins.eval, torch.nn.Module, collections.Counter, ...)
// is a WeightsError naming it. Nothing is ever imported or called. Limits:
// data.pkl at most 256 MiB, 2^21 pickle objects, 2^20 stack values, 2^16 open
// MARKs, 2^22 memo entries, 2^24 items per container, nesting depth 1000,
// tensor rank 64.
// TorchScript archives (torch.jit.save), the pre-1.0 tar format and pickled
// nn.Module objects are refused with a message saying what to save instead.
//
// Every offset, size and view read from the file is checked against the file
// before use: a storage larger than its record, a view past its storage, a
// truncated or garbage opcode stream, or a malformed archive throws
// WeightsError naming the file, the byte offset or the record, and the rule
// broken. Nothing reads outside the file, whatever its content.
//
// The state dict: the checkpoint's top level must be a dict of tensors with
// string keys (torch's OrderedDict or a plain dict), or CheckpointOptions::key
// must name a top-level entry that is one (e.g. "state_dict" or "model" in
// training checkpoints). A non-tensor value in the state dict (an int, a
// nested dict, ...) is a WeightsError naming the key, as is a top level that
// is not a dict of tensors; that message lists the top-level keys and
// suggests key= (and strip_prefix="module." when every key of the candidate
// starts with it, as DataParallel saves them). strip_prefix removes a prefix
// from every key that starts with it (other keys stay as they are, as torch's
// consume_prefix_in_state_dict_if_present does).
//
// Tensors: float32, float64, float16 and bfloat16 become float32 (float64
// rounds to nearest, as torch's .float()); int64, int32, uint8 and bool keep
// their dtype; other dtypes (int16, int8, complex, float8, ...) throw
// WeightsError naming the tensor. Shared storages, storage offsets, arbitrary
// strides and non-contiguous views are materialised as row-major tensors,
// each with its own storage. Big-endian data is byte-swapped.
//
// Memory: the file is read with pread, not memory-mapped: the pickle and the
// archive's directory are read into memory, and each tensor's bytes straight
// into the tensor (or, when converted or gathered from a view, through one
// scratch buffer of that view's extent), so reading needs about the tensors'
// float32 size plus the largest view. A file that is truncated or replaced
// while it is read is a WeightsError saying so (a memory map would die of
// SIGBUS instead).
//
// Thread safety: every function here may be called from many threads at once,
// as long as no two of them write the same path, and no other thread mutates
// the Model passed to load_weights.
#pragma once

#include <cstddef>
#include <optional>
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
/// malformed (see above); OutOfMemory if memory for the tensors runs out.
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

/// How to find the state dict in a checkpoint.
struct CheckpointOptions {
  /// The top-level entry that holds the state dict (e.g. "state_dict",
  /// "model"); unset: the top level itself.
  std::optional<std::string> key;
  /// Removed from the start of every key that has it (e.g. "module."); empty:
  /// keys stay as they are.
  std::string strip_prefix;
};

/// Reads the state dict of a PyTorch checkpoint (zip or legacy format, see
/// above). Returns the tensors in the order of the
/// state dict, each owning its storage. Throws WeightsError if the file cannot
/// be opened or read, is not a PyTorch checkpoint, breaks a rule above, or
/// its state dict cannot be found, or if strip_prefix makes two keys equal.
/// OutOfMemory if memory for the tensors runs out.
NamedTensors read_pytorch_checkpoint(const std::string& path, const CheckpointOptions& options = {});

/// The same for a checkpoint image in memory (`size` bytes at `data`, owned by
/// the caller, only read during the call). `source` names it in messages.
NamedTensors parse_pytorch_checkpoint(const void* data, size_t size, const std::string& source = "<memory>",
                                      const CheckpointOptions& options = {});

/// What a weight file holds, judged from its first bytes.
enum class WeightFormat {
  unknown,
  safetensors,        ///< an 8-byte header length followed by '{'
  pytorch_zip,        ///< a ZIP archive (torch.save's default format, or TorchScript)
  pytorch_legacy,     ///< a pickle (torch.save with _use_new_zipfile_serialization=False)
  pytorch_tar,        ///< the pre-1.0 tar format (refused)
};
/// The format of `size` bytes at `data` (only the first 263 are looked at).
WeightFormat detect_weight_format(const void* data, size_t size);

/// Reads a weight file: a name ending in .safetensors (any case) is read as
/// .safetensors; any other name by its content (.safetensors, or a PyTorch
/// checkpoint; .npz is read by the Python package only). options.key applies to PyTorch checkpoints only (InvalidArgument
/// for a .safetensors file); options.strip_prefix to every format. Throws as
/// read_safetensors / read_pytorch_checkpoint, and WeightsError for a file of
/// no known format (the message shows its first bytes).
NamedTensors read_weights(const std::string& path, const CheckpointOptions& options = {});

/// Loads a weight file into `model` with model.load_state_dict(tensors,
/// strict): a .safetensors file or a PyTorch checkpoint (.pth, .pt, .bin,
/// .ckpt, ...; the format is chosen as read_weights chooses it). The
/// model takes over the float32 tensors it reads without copying them, so it
/// holds its weights once. A name ending in .npz is InvalidArgument (NumPy
/// archives are read by the Python package). Throws WeightsError for an
/// unreadable or malformed file or one that does not fit the model (the
/// message starts with the path; when every key starts with "module." it
/// suggests strip_prefix); the model's previous weights are then unchanged.
/// Returns the keys skipped with strict = false. Must not run concurrently
/// with other mutating calls on `model`; concurrent forward() calls keep the
/// weights they started with.
models::LoadResult load_weights(models::Model& model, const std::string& path, bool strict = true,
                                const CheckpointOptions& options = {});

/// Writes model.state_dict() to `path` (.safetensors) with the metadata
/// {"format": "np", "model": model.name()}, as Python's save_weights does.
/// Throws WeightsError if the model has no weights or the file cannot be
/// written, InvalidArgument if `path` does not end in ".safetensors" (PyTorch
/// checkpoints are read, never written).
void save_weights(const models::Model& model, const std::string& path);

}  // namespace pyflame_vision
