// Internal: a restricted pickle virtual machine for PyTorch checkpoints.
//
// It interprets the opcodes of pickle protocols 2-5 that torch.save's pickles
// use (and the plain-container ones around them), builds Python-like values in
// an arena (so nothing is recursive: deep nesting or reference cycles cannot
// overflow the C++ stack) and resolves GLOBAL / STACK_GLOBAL against an
// explicit allowlist of symbols it interprets itself:
//
//   collections.OrderedDict                    an empty dict (REDUCE with ())
//   torch._utils._rebuild_tensor_v2, _v3,      a tensor reference: storage, offset,
//               _rebuild_tensor                 size, stride (checked against the storage)
//   torch._utils._rebuild_parameter(_with_state) the tensor it wraps
//   torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage,
//   torch.storage.UntypedStorage / torch.UntypedStorage    storage types in persistent ids
//   torch.<dtype> (float32, int64, uint16, ...) dtypes (the argument of _rebuild_tensor_v3)
//
// Any other global is a WeightsError naming it ("module.name"); nothing is
// ever imported or called. BUILD is accepted only on a dict (torch's
// OrderedDict `_metadata` state) and ignored. Persistent ids must be torch's
// ('storage', type, key, location, numel[, view_metadata]) tuples; they become
// storage references whose bytes the caller locates and checks.
//
// Limits (each a WeightsError at the byte offset where it is exceeded): the
// pickle's size (kMaxPickleBytes), values on the stack, open MARKs, memo
// entries, arena objects, items per container, nesting depth, tensor rank.
// Every length read from the data is checked against the bytes that remain
// before anything is allocated for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pyflame_vision/tensor_spec.h"

namespace pyflame_vision {
namespace io_detail {

constexpr uint64_t kMaxPickleBytes = 256ull << 20;
constexpr size_t kMaxStack = 1u << 20;
constexpr size_t kMaxMarks = 1u << 16;
constexpr size_t kMaxMemo = 1u << 22;
constexpr size_t kMaxObjects = 1u << 21;
constexpr size_t kMaxContainerItems = 1u << 24;
constexpr uint32_t kMaxDepth = 1000;
constexpr size_t kMaxRank = 64;

/// Element types of torch storages and tensors (torch's names).
enum class TorchDType : uint8_t {
  float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool_,
  uint16, uint32, uint64, complex32, complex64, complex128,
  float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz, float8_e8m0fnu, float4_e2m1fn_x2,
};
const char* torch_dtype_name(TorchDType d);
int64_t torch_dtype_itemsize(TorchDType d);

enum class Kind : uint8_t { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

/// Symbols a GLOBAL may resolve to.
enum class Symbol : uint8_t {
  OrderedDict, RebuildTensorV2, RebuildTensorV3, RebuildTensor, RebuildParameter, RebuildParameterWithState,
  StorageType, DType,
};

/// One value in the arena. Containers refer to other values by index.
struct Object {
  Kind kind = Kind::None;
  bool ordered = false;  ///< Dict: built by collections.OrderedDict
  uint32_t depth = 0;    ///< nesting depth when last modified (a sanity bound, not exact after later mutation)
  int64_t i = 0;         ///< Bool/Int value; Global: Symbol; Storage/Tensor: index into storages()/tensors()
  uint8_t aux = 0;       ///< Global: TorchDType of a StorageType/DType symbol
  double f = 0;          ///< Float
  std::string s;         ///< Str/Bytes; BigInt: little-endian two's complement bytes; Global: "module.name"
  std::vector<uint32_t> items;  ///< Tuple/List elements; Dict: key0, value0, key1, value1, ...
  std::unique_ptr<std::unordered_map<std::string, size_t>> keys;  ///< Dict: hashable key -> position in items / 2
};

/// A storage named by a persistent id.
struct StorageRef {
  std::string key;        ///< the archive key ("0", "1", ... or the legacy format's root key)
  TorchDType dtype{};     ///< element type of the storage (uint8 for an untyped storage)
  std::string type_name;  ///< e.g. "FloatStorage", for messages
  int64_t numel = 0;      ///< declared element count
  // Legacy view_metadata: this storage is elements [view_offset, view_offset + numel) of `root`.
  bool is_view = false;
  std::string root;
  int64_t view_offset = 0;
  uint64_t pickle_pos = 0;  ///< byte offset of the persistent id (for messages)
};

/// A tensor built by a _rebuild_tensor* call: a strided view of a storage.
struct TensorRef {
  uint32_t storage = 0;  ///< index into storages()
  TorchDType dtype{};
  int64_t offset = 0;  ///< in elements of dtype
  Shape size, stride;
  uint64_t pickle_pos = 0;
};

/// Which persistent-id layout to accept.
enum class PidFormat { zip, legacy };

class PickleVM {
 public:
  /// `base` is the file offset of data[0] (for messages); `source` names the file.
  PickleVM(std::string source, PidFormat pid_format) : source_(std::move(source)), pid_format_(pid_format) {}

  /// Runs the pickle that starts at data[0] (at most `size` bytes) up to its
  /// STOP and returns the result's index; `consumed` receives the bytes read.
  /// `base` is data[0]'s offset in the file, used in messages. Storages and
  /// tensors accumulate across calls (the legacy format has several pickles).
  uint32_t run(const uint8_t* data, uint64_t size, uint64_t base, uint64_t* consumed = nullptr);

  const Object& at(uint32_t i) const { return objects_[i]; }
  const std::vector<StorageRef>& storages() const { return storages_; }
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  /// "dict", "int", "tensor", ... (Python's type names; "OrderedDict" for ordered dicts).
  std::string type_name(uint32_t i) const;
  /// A short repr for messages: strings quoted, ints, other values by type name.
  std::string repr(uint32_t i) const;
  /// "a list", "an int", "None": the type with its article, for messages.
  std::string a_type(uint32_t i) const;
  /// The value of `key` in the Dict `dict`, or -1.
  int64_t dict_get(uint32_t dict, const std::string& key) const;
  /// True if the last run failed because its data ended (the pickle may
  /// continue past the `size` bytes it was given).
  bool ran_out() const { return ran_out_; }

 private:
  [[noreturn]] void fail(const std::string& msg) const;
  uint32_t make(Kind kind);
  uint32_t pop();
  uint32_t& top();
  void push(uint32_t v);
  std::vector<uint32_t> pop_mark();
  const uint8_t* take(uint64_t n, const char* what);
  uint32_t global(const std::string& module, const std::string& name);
  uint32_t reduce(uint32_t callable, uint32_t args);
  uint32_t persistent_load(uint32_t pid);
  uint32_t rebuild_tensor(const Object& fn, const std::vector<uint32_t>& args);
  void set_items(uint32_t dict, const std::vector<uint32_t>& kv);
  void append_items(uint32_t list, const std::vector<uint32_t>& items);
  void bump_depth(uint32_t container, uint32_t child);
  int64_t as_int(uint32_t v, const std::string& what) const;
  Shape as_int_tuple(uint32_t v, const std::string& what) const;
  std::string hash_key(uint32_t v) const;

  std::string source_;
  PidFormat pid_format_;
  std::vector<Object> objects_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  std::vector<StorageRef> storages_;
  std::unordered_map<std::string, uint32_t> storage_index_;  // key -> index into storages_
  std::vector<TensorRef> tensors_;
  // The current run.
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0, pos_ = 0, base_ = 0, op_pos_ = 0;
  bool ran_out_ = false;
};

}  // namespace io_detail
}  // namespace pyflame_vision
