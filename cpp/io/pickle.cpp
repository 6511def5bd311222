// Restricted pickle VM (see pickle.h). Opcode semantics follow CPython's
// Lib/pickle.py (_Unpickler) for the opcodes implemented; everything else is
// refused by name.
#include "io/pickle.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "io/io_util.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace io_detail {
namespace {

struct DTypeInfo {
  TorchDType dtype;
  const char* name;     // torch's dtype name (torch.<name>)
  const char* storage;  // legacy typed storage class, or null
  int64_t itemsize;
};
constexpr DTypeInfo kDTypes[] = {
    {TorchDType::float32, "float32", "FloatStorage", 4},
    {TorchDType::float64, "float64", "DoubleStorage", 8},
    {TorchDType::float16, "float16", "HalfStorage", 2},
    {TorchDType::bfloat16, "bfloat16", "BFloat16Storage", 2},
    {TorchDType::int64, "int64", "LongStorage", 8},
    {TorchDType::int32, "int32", "IntStorage", 4},
    {TorchDType::int16, "int16", "ShortStorage", 2},
    {TorchDType::int8, "int8", "CharStorage", 1},
    {TorchDType::uint8, "uint8", "ByteStorage", 1},
    {TorchDType::bool_, "bool", "BoolStorage", 1},
    {TorchDType::uint16, "uint16", nullptr, 2},
    {TorchDType::uint32, "uint32", nullptr, 4},
    {TorchDType::uint64, "uint64", nullptr, 8},
    {TorchDType::complex32, "complex32", "ComplexHalfStorage", 4},
    {TorchDType::complex64, "complex64", "ComplexFloatStorage", 8},
    {TorchDType::complex128, "complex128", "ComplexDoubleStorage", 16},
    {TorchDType::float8_e4m3fn, "float8_e4m3fn", nullptr, 1},
    {TorchDType::float8_e5m2, "float8_e5m2", nullptr, 1},
    {TorchDType::float8_e4m3fnuz, "float8_e4m3fnuz", nullptr, 1},
    {TorchDType::float8_e5m2fnuz, "float8_e5m2fnuz", nullptr, 1},
    {TorchDType::float8_e8m0fnu, "float8_e8m0fnu", nullptr, 1},
    {TorchDType::float4_e2m1fn_x2, "float4_e2m1fn_x2", nullptr, 1},
};

const DTypeInfo& info(TorchDType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e;
  return kDTypes[0];  // unreachable: every enumerator is listed
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

std::string hex_bytes(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

}  // namespace

const char* torch_dtype_name(TorchDType d) { return info(d).name; }
int64_t torch_dtype_itemsize(TorchDType d) { return info(d).itemsize; }

void PickleVM::fail(const std::string& msg) const {
  const uint64_t at = base_ + op_pos_;
  const uint8_t op = op_pos_ < size_ ? data_[op_pos_] : 0;
  const char* name = op_pos_ < size_ ? opcode_name(op) : nullptr;
  std::string where = source_ + ": pickle error at byte " + std::to_string(at);
  if (name) where += std::string(" (") + name + ")";
  throw WeightsError(where + ": " + msg);
}

uint32_t PickleVM::make(Kind kind) {
  if (objects_.size() >= kMaxObjects)
    fail("more than " + std::to_string(kMaxObjects) + " objects (the limit for a checkpoint's pickle)");
  objects_.emplace_back();
  objects_.back().kind = kind;
  return static_cast<uint32_t>(objects_.size() - 1);
}

void PickleVM::push(uint32_t v) {
  if (stack_.size() >= kMaxStack) fail("stack deeper than " + std::to_string(kMaxStack) + " values");
  stack_.push_back(v);
}

uint32_t PickleVM::pop() {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) fail("expected a value on the stack, found " + std::string(marks_.empty() ? "an empty stack" : "a MARK"));
  const uint32_t v = stack_.back();
  stack_.pop_back();
  return v;
}

uint32_t& PickleVM::top() {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) fail("expected a value on the stack, found " + std::string(marks_.empty() ? "an empty stack" : "a MARK"));
  return stack_.back();
}

std::vector<uint32_t> PickleVM::pop_mark() {
  if (marks_.empty()) fail("expected a MARK on the stack, found none");
  const size_t m = marks_.back();
  marks_.pop_back();
  std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
  stack_.resize(m);
  return items;
}

const uint8_t* PickleVM::take(uint64_t n, const char* what) {
  if (n > size_ - pos_) {
    ran_out_ = true;
    fail("expected " + std::to_string(n) + " bytes of " + what + ", but only " + std::to_string(size_ - pos_) +
         " remain (a truncated or corrupt pickle)");
  }
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

void PickleVM::bump_depth(uint32_t container, uint32_t child) {
  const uint32_t d = objects_[child].depth + 1;
  if (d > objects_[container].depth) {
    if (d > kMaxDepth) fail("values nested deeper than " + std::to_string(kMaxDepth) + " levels");
    objects_[container].depth = d;
  }
}

std::string PickleVM::type_name(uint32_t i) const {
  const Object& o = objects_[i];
  switch (o.kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int:
    case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return o.ordered ? "OrderedDict" : "dict";
    case Kind::Global: return o.s;
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

std::string PickleVM::repr(uint32_t i) const {
  const Object& o = objects_[i];
  if (o.kind == Kind::Str) return quoted(o.s);
  if (o.kind == Kind::Int) return std::to_string(o.i);
  if (o.kind == Kind::Bool) return o.i ? "True" : "False";
  if (o.kind == Kind::None) return "None";
  return a_type(i);
}

std::string PickleVM::a_type(uint32_t i) const {
  const std::string t = type_name(i);
  if (t == "None") return t;
  return (std::string("aeiouAEIOU").find(t[0]) != std::string::npos ? "an " : "a ") + t;
}

// A key for dict lookups that is equal for values Python considers equal
// (1 == 1.0 == True); unhashable values are refused as Python does.
std::string PickleVM::hash_key(uint32_t v) const {
  const Object& o = objects_[v];
  switch (o.kind) {
    case Kind::None: return "n";
    case Kind::Bool:
    case Kind::Int: return "i" + std::to_string(o.i);
    case Kind::BigInt: return "b" + hex_bytes(o.s);
    case Kind::Float:
      if (std::isfinite(o.f) && o.f == std::floor(o.f) && std::fabs(o.f) < 9.2e18)
        return "i" + std::to_string(static_cast<int64_t>(o.f));
      {
        uint64_t bits;
        std::memcpy(&bits, &o.f, 8);
        return "f" + std::to_string(o.f == 0 ? 0 : bits);
      }
    case Kind::Str: return "s" + o.s;
    case Kind::Bytes: return "y" + o.s;
    case Kind::List:
    case Kind::Dict: fail("unhashable type '" + type_name(v) + "' used as a dict key");
    default: return "o" + std::to_string(v);  // tuples and the rest: by identity
  }
}

int64_t PickleVM::dict_get(uint32_t dict, const std::string& key) const {
  const Object& o = objects_[dict];
  if (o.kind != Kind::Dict || !o.keys) return -1;
  auto it = o.keys->find("s" + key);
  return it == o.keys->end() ? int64_t{-1} : static_cast<int64_t>(o.items[2 * it->second + 1]);
}

void PickleVM::set_items(uint32_t dict, const std::vector<uint32_t>& kv) {
  if (objects_[dict].kind != Kind::Dict) fail("expected a dict to set items on, found " + a_type(dict));
  if (kv.size() % 2) fail("expected key/value pairs, found an odd number (" + std::to_string(kv.size()) + ") of values");
  for (size_t k = 0; k < kv.size(); k += 2) {
    const std::string h = hash_key(kv[k]);
    Object& d = objects_[dict];
    if (!d.keys) d.keys = std::make_unique<std::unordered_map<std::string, size_t>>();
    auto it = d.keys->find(h);
    if (it != d.keys->end()) {
      d.items[2 * it->second + 1] = kv[k + 1];  // Python keeps the first key and its position
    } else {
      if (d.items.size() / 2 >= kMaxContainerItems) fail("a dict with more than " + std::to_string(kMaxContainerItems) + " items");
      d.keys->emplace(h, d.items.size() / 2);
      d.items.push_back(kv[k]);
      d.items.push_back(kv[k + 1]);
    }
    bump_depth(dict, kv[k]);
    bump_depth(dict, kv[k + 1]);
  }
}

void PickleVM::append_items(uint32_t list, const std::vector<uint32_t>& items) {
  if (objects_[list].kind != Kind::List) fail("expected a list to append to, found " + a_type(list));
  if (items.size() > kMaxContainerItems - objects_[list].items.size())
    fail("a list with more than " + std::to_string(kMaxContainerItems) + " items");
  for (uint32_t v : items) {
    objects_[list].items.push_back(v);
    bump_depth(list, v);
  }
}

int64_t PickleVM::as_int(uint32_t v, const std::string& what) const {
  const Object& o = objects_[v];
  if (o.kind != Kind::Int) fail("expected " + what + " to be an int, found " + repr(v));
  return o.i;
}

Shape PickleVM::as_int_tuple(uint32_t v, const std::string& what) const {
  const Object& o = objects_[v];
  if (o.kind != Kind::Tuple && o.kind != Kind::List) fail("expected " + what + " to be a tuple of ints, found " + repr(v));
  if (o.items.size() > kMaxRank)
    fail("expected " + what + " to have at most " + std::to_string(kMaxRank) + " dimensions, found " +
         std::to_string(o.items.size()));
  Shape s;
  for (uint32_t e : o.items) s.push_back(as_int(e, what + " entries"));
  return s;
}

uint32_t PickleVM::global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  auto make_global = [&](Symbol sym, TorchDType dt = TorchDType::float32) {
    const uint32_t g = make(Kind::Global);
    objects_[g].i = static_cast<int64_t>(sym);
    objects_[g].aux = static_cast<uint8_t>(dt);
    objects_[g].s = full;
    return g;
  };
  if (module == "collections" && name == "OrderedDict") return make_global(Symbol::OrderedDict);
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") return make_global(Symbol::RebuildTensorV2);
    if (name == "_rebuild_tensor_v3") return make_global(Symbol::RebuildTensorV3);
    if (name == "_rebuild_tensor") return make_global(Symbol::RebuildTensor);
    if (name == "_rebuild_parameter") return make_global(Symbol::RebuildParameter);
    if (name == "_rebuild_parameter_with_state") return make_global(Symbol::RebuildParameterWithState);
  }
  if ((module == "torch" || module == "torch.storage") && name == "UntypedStorage")
    return make_global(Symbol::StorageType, TorchDType::uint8);
  if (module == "torch" || module == "torch.cuda") {
    for (const auto& e : kDTypes) {
      if (e.storage && name == e.storage) return make_global(Symbol::StorageType, e.dtype);
      if (module == "torch" && name == e.name) return make_global(Symbol::DType, e.dtype);
    }
  }
  fail("global " + escaped(full) +
       " is not allowed: a weights file may only use collections.OrderedDict, torch._utils' tensor rebuild "
       "functions, torch's storage types and dtypes (nothing from the file is imported or run)");
}

uint32_t PickleVM::persistent_load(uint32_t pid) {
  const Object& t = objects_[pid];
  if (t.kind != Kind::Tuple || t.items.empty())
    fail("expected a persistent id ('storage', type, key, location, numel), found " + repr(pid));
  const Object& tag = objects_[t.items[0]];
  if ((tag.kind != Kind::Str && tag.kind != Kind::Bytes) || tag.s != "storage")
    fail("expected a persistent id of type 'storage', found " + repr(t.items[0]) +
         (tag.s == "module" ? " (a pickled nn.Module: save model.state_dict() instead)" : ""));
  const size_t want = pid_format_ == PidFormat::zip ? 5 : 6;
  if (t.items.size() != want)
    fail("expected a storage persistent id of " + std::to_string(want) + " entries, found " +
         std::to_string(t.items.size()));
  const std::vector<uint32_t> f = t.items;  // copy: make() below may reallocate objects_
  const Object& type = objects_[f[1]];
  if (type.kind != Kind::Global || static_cast<Symbol>(type.i) != Symbol::StorageType)
    fail("expected a storage type (e.g. torch.FloatStorage) in a persistent id, found " + repr(f[1]));
  const TorchDType dtype = static_cast<TorchDType>(type.aux);
  const std::string type_name = type.s.substr(type.s.rfind('.') + 1);
  if (objects_[f[2]].kind != Kind::Str) fail("expected a storage key (a str), found " + repr(f[2]));
  if (objects_[f[3]].kind != Kind::Str) fail("expected a storage location (a str such as 'cpu'), found " + repr(f[3]));
  const std::string key = objects_[f[2]].s;
  const int64_t numel = as_int(f[4], "a storage's element count");
  if (numel < 0) fail("storage " + quoted(key) + " declares " + std::to_string(numel) + " elements");
  int64_t nbytes;
  if (__builtin_mul_overflow(numel, info(dtype).itemsize, &nbytes))
    fail("storage " + quoted(key) + " declares " + std::to_string(numel) + " elements, more than 2^63 bytes");

  auto register_storage = [&](const StorageRef& s) -> uint32_t {
    auto it = storage_index_.find(s.key);
    if (it != storage_index_.end()) {
      const StorageRef& old = storages_[it->second];
      if (old.dtype != s.dtype || old.numel != s.numel || old.is_view != s.is_view || old.root != s.root ||
          old.view_offset != s.view_offset)
        fail("storage " + quoted(s.key) + " is declared twice, as " + std::to_string(old.numel) + " x " +
             old.type_name + " and as " + std::to_string(s.numel) + " x " + s.type_name);
      return it->second;
    }
    storage_index_.emplace(s.key, static_cast<uint32_t>(storages_.size()));
    storages_.push_back(s);
    return static_cast<uint32_t>(storages_.size() - 1);
  };
  StorageRef root;
  root.key = key;
  root.dtype = dtype;
  root.type_name = type_name;
  root.numel = numel;
  root.pickle_pos = base_ + op_pos_;
  uint32_t index = register_storage(root);
  if (pid_format_ == PidFormat::legacy && objects_[f[5]].kind != Kind::None) {
    const Object& vm = objects_[f[5]];
    if (vm.kind != Kind::Tuple || vm.items.size() != 3 || objects_[vm.items[0]].kind != Kind::Str)
      fail("expected view metadata (key, offset, size) or None, found " + repr(f[5]));
    StorageRef view = root;
    view.key = objects_[vm.items[0]].s;
    view.is_view = true;
    view.root = key;
    view.view_offset = as_int(vm.items[1], "a storage view's offset");
    view.numel = as_int(vm.items[2], "a storage view's size");
    if (view.view_offset < 0 || view.numel < 0 || view.view_offset > numel || view.numel > numel - view.view_offset)
      fail("storage view " + quoted(view.key) + " [" + std::to_string(view.view_offset) + ", +" +
           std::to_string(view.numel) + ") exceeds its storage " + quoted(key) + " of " + std::to_string(numel) +
           " elements");
    if (view.key == key) fail("storage view " + quoted(key) + " has the key of its own storage");
    index = register_storage(view);
  }
  const uint32_t s = make(Kind::Storage);
  objects_[s].i = index;
  return s;
}

uint32_t PickleVM::rebuild_tensor(const Object& fn, const std::vector<uint32_t>& a) {
  const Symbol sym = static_cast<Symbol>(fn.i);
  const std::string name = fn.s;
  size_t min_args = 6, max_args = 7;
  if (sym == Symbol::RebuildTensor) min_args = max_args = 4;
  if (sym == Symbol::RebuildTensorV3) min_args = 7, max_args = 8;
  if (a.size() < min_args || a.size() > max_args)
    fail(name + " expects " + std::to_string(min_args) + (min_args == max_args ? "" : "-" + std::to_string(max_args)) +
         " arguments, got " + std::to_string(a.size()));
  if (objects_[a[0]].kind != Kind::Storage) fail(name + ": expected a storage, found " + repr(a[0]));
  TensorRef t;
  t.storage = static_cast<uint32_t>(objects_[a[0]].i);
  const StorageRef& st = storages_[t.storage];
  t.dtype = st.dtype;
  t.offset = as_int(a[1], "the storage offset");
  t.size = as_int_tuple(a[2], "the size");
  t.stride = as_int_tuple(a[3], "the stride");
  t.pickle_pos = base_ + op_pos_;
  if (a.size() > 4 && objects_[a[4]].kind != Kind::Bool) fail(name + ": expected requires_grad (a bool), found " + repr(a[4]));
  if (a.size() > 5 && objects_[a[5]].kind != Kind::Dict)
    fail(name + ": expected backward hooks (an OrderedDict), found " + repr(a[5]));
  size_t meta = sym == Symbol::RebuildTensorV2 ? 6 : 7;
  if (sym == Symbol::RebuildTensorV3) {
    const Object& d = objects_[a[6]];
    if (d.kind != Kind::Global || static_cast<Symbol>(d.i) != Symbol::DType)
      fail(name + ": expected a dtype (e.g. torch.float32), found " + repr(a[6]));
    t.dtype = static_cast<TorchDType>(d.aux);
  }
  if (sym != Symbol::RebuildTensor && a.size() > meta) {
    const Object& m = objects_[a[meta]];
    if (m.kind != Kind::None) {
      if (m.kind != Kind::Dict) fail(name + ": expected tensor metadata (a dict), found " + repr(a[meta]));
      for (size_t k = 0; k + 1 < m.items.size(); k += 2) {
        const Object& v = objects_[m.items[k + 1]];
        if (v.kind != Kind::Bool || v.i != 0)
          fail(name + ": tensor metadata " + repr(m.items[k]) + " = " + repr(m.items[k + 1]) +
               " (a conjugate or negative view) is not supported");
      }
    }
  }
  if (t.size.size() != t.stride.size())
    fail(name + ": size " + shape_to_string(t.size) + " and stride " + shape_to_string(t.stride) +
         " have different lengths");
  for (size_t d = 0; d < t.size.size(); ++d)
    if (t.size[d] < 0 || t.stride[d] < 0)
      fail(name + ": size " + shape_to_string(t.size) + " and stride " + shape_to_string(t.stride) +
           " must not be negative");
  if (t.offset < 0) fail(name + ": negative storage offset " + std::to_string(t.offset));
  // Bounds: the last element the view reaches must lie inside the storage.
  const int64_t item = info(t.dtype).itemsize;
  const int64_t storage_bytes = st.numel * info(st.dtype).itemsize;  // checked in persistent_load
  int64_t numel = 1, last = t.offset;
  bool overflow = false;
  for (size_t d = 0; d < t.size.size(); ++d) {
    int64_t step;
    overflow |= __builtin_mul_overflow(numel, t.size[d], &numel);
    if (t.size[d] > 0) {
      overflow |= __builtin_mul_overflow(t.size[d] - 1, t.stride[d], &step);
      overflow |= __builtin_add_overflow(last, step, &last);
    }
  }
  int64_t end_bytes = 0;
  if (!overflow && numel > 0) overflow |= __builtin_mul_overflow(last + 1, item, &end_bytes);
  if (overflow)
    fail(name + ": a view with size " + shape_to_string(t.size) + ", stride " + shape_to_string(t.stride) +
         " and offset " + std::to_string(t.offset) + " overflows 64-bit arithmetic");
  if (numel > 0 && end_bytes > storage_bytes)
    fail(name + ": a view with size " + shape_to_string(t.size) + ", stride " + shape_to_string(t.stride) +
         " and offset " + std::to_string(t.offset) + " reads element " + std::to_string(last) + " of " +
         torch_dtype_name(t.dtype) + ", past the end of storage " + quoted(st.key) + " (" +
         std::to_string(st.numel) + " x " + st.type_name + ", " + std::to_string(storage_bytes) + " bytes)");
  tensors_.push_back(std::move(t));
  const uint32_t r = make(Kind::Tensor);
  objects_[r].i = static_cast<int64_t>(tensors_.size() - 1);
  return r;
}

uint32_t PickleVM::reduce(uint32_t callable, uint32_t args) {
  const Object& fn = objects_[callable];
  if (fn.kind != Kind::Global) fail("REDUCE calls " + a_type(callable) + ", expected an allowed global");
  if (objects_[args].kind != Kind::Tuple) fail("REDUCE expects an argument tuple, found " + repr(args));
  const std::vector<uint32_t> a = objects_[args].items;
  switch (static_cast<Symbol>(fn.i)) {
    case Symbol::OrderedDict: {
      if (!a.empty()) fail("collections.OrderedDict is only accepted without arguments, got " + std::to_string(a.size()));
      const uint32_t d = make(Kind::Dict);
      objects_[d].ordered = true;
      return d;
    }
    case Symbol::RebuildTensorV2:
    case Symbol::RebuildTensorV3:
    case Symbol::RebuildTensor: return rebuild_tensor(objects_[callable], a);
    case Symbol::RebuildParameter:
    case Symbol::RebuildParameterWithState: {
      const size_t n = static_cast<Symbol>(fn.i) == Symbol::RebuildParameter ? 3 : 4;
      if (a.size() != n)
        fail(fn.s + " expects " + std::to_string(n) + " arguments, got " + std::to_string(a.size()));
      if (objects_[a[0]].kind != Kind::Tensor) fail(fn.s + ": expected a tensor, found " + repr(a[0]));
      return a[0];
    }
    case Symbol::StorageType:
    case Symbol::DType: break;
  }
  fail("calling " + fn.s + " is not supported (it may only name a type)");
}

uint32_t PickleVM::run(const uint8_t* data, uint64_t size, uint64_t base, uint64_t* consumed) {
  data_ = data;
  size_ = std::min<uint64_t>(size, kMaxPickleBytes);
  pos_ = 0;
  base_ = base;
  op_pos_ = 0;
  ran_out_ = false;
  stack_.clear();
  marks_.clear();
  memo_.clear();
  // Shared immutable singletons.
  const uint32_t none = make(Kind::None);
  const uint32_t yes = make(Kind::Bool), no = make(Kind::Bool);
  objects_[yes].i = 1;
  for (;;) {
    op_pos_ = pos_;
    if (pos_ >= size_) {
      if (size > kMaxPickleBytes)
        fail("the pickle is longer than the limit of " + std::to_string(kMaxPickleBytes) + " bytes");
      ran_out_ = true;
      fail("the pickle ends without a STOP opcode (a truncated file?)");
    }
    const uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t proto = *take(1, "the protocol number");
        if (proto < 2 || proto > 5) fail("unsupported pickle protocol " + std::to_string(proto) + " (expected 2-5)");
        break;
      }
      case 0x95: {  // FRAME: a length prefix for buffering; the data is read as it comes
        const uint64_t n = le(take(8, "the frame length"), 8);
        if (n > size_ - pos_) {
          ran_out_ = true;
          fail("a frame of " + std::to_string(n) + " bytes, but only " + std::to_string(size_ - pos_) + " remain");
        }
        break;
      }
      case '.': {  // STOP
        const uint32_t result = pop();
        if (consumed) *consumed = pos_;
        return result;
      }
      case '(':
        if (marks_.size() >= kMaxMarks) fail("more than " + std::to_string(kMaxMarks) + " nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP: the top value, or the MARK above an empty frame (as CPython)
        if (stack_.size() > (marks_.empty() ? 0 : marks_.back())) {
          stack_.pop_back();
        } else if (!marks_.empty()) {
          marks_.pop_back();
        } else {
          fail("POP on an empty stack");
        }
        break;
      case '1': pop_mark(); break;
      case '2': push(top()); break;
      case 'N': push(none); break;
      case 0x88: push(yes); break;
      case 0x89: push(no); break;
      case 'J': {
        const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(le(take(4, "BININT"), 4)));
        const uint32_t o = make(Kind::Int);
        objects_[o].i = v;
        push(o);
        break;
      }
      case 'K':
      case 'M': {
        const uint64_t v = op == 'K' ? *take(1, "BININT1") : le(take(2, "BININT2"), 2);
        const uint32_t o = make(Kind::Int);
        objects_[o].i = static_cast<int64_t>(v);
        push(o);
        break;
      }
      case 0x8a:
      case 0x8b: {  // LONG1 / LONG4: little-endian two's complement
        const uint64_t n = op == 0x8a ? *take(1, "the LONG1 length") : le(take(4, "the LONG4 length"), 4);
        const uint8_t* p = take(n, "a long integer");
        uint32_t o;
        if (n <= 8) {
          uint64_t v = n ? le(p, static_cast<int>(n)) : 0;
          if (n && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
          o = make(Kind::Int);
          std::memcpy(&objects_[o].i, &v, 8);
        } else {
          o = make(Kind::BigInt);
          objects_[o].s.assign(reinterpret_cast<const char*>(p), n);
        }
        push(o);
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const uint8_t* p = take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
        const uint32_t o = make(Kind::Float);
        std::memcpy(&objects_[o].f, &bits, 8);
        push(o);
        break;
      }
      case 'X':
      case 0x8c:
      case 0x8d:
      case 'T':
      case 'U':
      case 'B':
      case 'C':
      case 0x8e: {
        uint64_t n;
        if (op == 0x8c || op == 'U' || op == 'C') {
          n = *take(1, "a string length");
        } else if (op == 0x8d || op == 0x8e) {
          n = le(take(8, "a string length"), 8);
        } else {
          n = le(take(4, "a string length"), 4);
        }
        const uint8_t* p = take(n, "string data");
        const bool bytes = op == 'B' || op == 'C' || op == 0x8e;
        const uint32_t o = make(bytes ? Kind::Bytes : Kind::Str);
        objects_[o].s.assign(reinterpret_cast<const char*>(p), n);
        if (!bytes && !valid_utf8(objects_[o].s)) fail("a string that is not valid UTF-8");
        push(o);
        break;
      }
      case ')': push(make(Kind::Tuple)); break;
      case 't':
      case 0x85:
      case 0x86:
      case 0x87: {
        std::vector<uint32_t> items;
        if (op == 't') {
          items = pop_mark();
        } else {
          items.resize(static_cast<size_t>(op - 0x84));
          for (size_t k = items.size(); k-- > 0;) items[k] = pop();
        }
        if (items.size() > kMaxContainerItems) fail("a tuple with more than " + std::to_string(kMaxContainerItems) + " items");
        const uint32_t o = make(Kind::Tuple);
        for (uint32_t v : items) bump_depth(o, v);
        objects_[o].items = std::move(items);
        push(o);
        break;
      }
      case ']': push(make(Kind::List)); break;
      case 'l': {
        std::vector<uint32_t> items = pop_mark();
        const uint32_t o = make(Kind::List);
        append_items(o, items);
        push(o);
        break;
      }
      case 'a': {
        const uint32_t v = pop();
        append_items(top(), {v});
        break;
      }
      case 'e': {
        std::vector<uint32_t> items = pop_mark();
        append_items(top(), items);
        break;
      }
      case '}': push(make(Kind::Dict)); break;
      case 'd': {
        std::vector<uint32_t> kv = pop_mark();
        const uint32_t o = make(Kind::Dict);
        set_items(o, kv);
        push(o);
        break;
      }
      case 's': {
        const uint32_t v = pop(), k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {
        std::vector<uint32_t> kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'q':
      case 'r':
      case 0x94: {
        const uint32_t idx = op == 'q'   ? *take(1, "a memo index")
                             : op == 'r' ? static_cast<uint32_t>(le(take(4, "a memo index"), 4))
                                         : static_cast<uint32_t>(memo_.size());
        const uint32_t v = top();
        if (memo_.size() >= kMaxMemo && !memo_.count(idx)) fail("more than " + std::to_string(kMaxMemo) + " memo entries");
        memo_[idx] = v;
        break;
      }
      case 'h':
      case 'j': {
        const uint32_t idx = op == 'h' ? *take(1, "a memo index") : static_cast<uint32_t>(le(take(4, "a memo index"), 4));
        auto it = memo_.find(idx);
        if (it == memo_.end()) fail("memo entry " + std::to_string(idx) + " is read before it is written");
        push(it->second);
        break;
      }
      case 'c': {  // GLOBAL: "module\nname\n"
        std::string parts[2];
        for (auto& part : parts) {
          const uint8_t* start = data_ + pos_;
          const uint64_t avail = std::min<uint64_t>(size_ - pos_, 1024);
          const void* nl = std::memchr(start, '\n', static_cast<size_t>(avail));
          if (!nl) {
            ran_out_ = avail < 1024;
            fail("expected a newline-terminated module or name of at most 1024 bytes");
          }
          const uint64_t n = static_cast<uint64_t>(static_cast<const uint8_t*>(nl) - start);
          part.assign(reinterpret_cast<const char*>(start), n);
          pos_ += n + 1;
        }
        push(global(parts[0], parts[1]));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const uint32_t name = pop(), module = pop();
        if (objects_[module].kind != Kind::Str || objects_[name].kind != Kind::Str)
          fail("STACK_GLOBAL expects two str values, found " + repr(module) + " and " + repr(name));
        push(global(objects_[module].s, objects_[name].s));
        break;
      }
      case 'R': {
        const uint32_t args = pop(), fn = pop();
        push(reduce(fn, args));
        break;
      }
      case 'b': {  // BUILD: only torch's OrderedDict `_metadata` state, ignored
        const uint32_t state = pop();
        const uint32_t obj = top();
        if (objects_[obj].kind != Kind::Dict || !objects_[obj].ordered)
          fail("BUILD (setting an object's state) is only accepted on an OrderedDict, found " + a_type(obj) +
               " with state " + repr(state));
        break;
      }
      case 'Q': {
        const uint32_t pid = pop();
        push(persistent_load(pid));
        break;
      }
      default: {
        const char* name = opcode_name(op);
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        if (name)
          fail(std::string("opcode ") + buf + " " + name +
               " is not supported (weights files use pickle protocol 2-5 containers, tensors and storages only)");
        fail(std::string("unknown opcode ") + buf + " (not a pickle, or a corrupt one)");
      }
    }
  }
}

}  // namespace io_detail
}  // namespace pyflame_vision
