// PyTorch checkpoint reader: torch.save's zip and legacy formats (layout,
// rules and limits: include/pyflame_vision/io.h). The pickle runs in the
// restricted VM of pickle.h; this file finds it, locates the storages it
// names, picks the state dict and copies the tensors out of the mapping.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "io/byte_source.h"
#include "io/io_util.h"
#include "io/pickle.h"
#include "io/readers.h"
#include "io/zip.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"

namespace pyflame_vision {
namespace {

using io_detail::ByteSource;
using io_detail::Kind;
using io_detail::PickleVM;
using io_detail::quoted;
using io_detail::StorageRef;
using io_detail::TensorRef;
using io_detail::TorchDType;
using io_detail::ZipEntry;
using io_detail::ZipReader;

// torch.serialization.MAGIC_NUMBER, 0x1950a86a20f9469cfc6c, as the
// little-endian bytes of its LONG1 encoding.
constexpr uint8_t kLegacyMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocol = 1001;       // torch.serialization.PROTOCOL_VERSION
constexpr int64_t kMaxArchiveVersion = 10;      // the newest zip format version torch itself reads
constexpr size_t kKeysShown = 20;

bool host_little_endian() {
  const uint16_t probe = 1;
  uint8_t b;
  std::memcpy(&b, &probe, 1);
  return b == 1;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------- element conversion

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: every half subnormal is a normal float
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while (!(mant & 0x400u));
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename U, bool Swap>
U load_bits(const uint8_t* p) {
  U v;
  std::memcpy(&v, p, sizeof v);
  if (Swap) {
    if (sizeof v == 2) v = static_cast<U>(__builtin_bswap16(static_cast<uint16_t>(v)));
    if (sizeof v == 4) v = static_cast<U>(__builtin_bswap32(static_cast<uint32_t>(v)));
    if (sizeof v == 8) v = static_cast<U>(__builtin_bswap64(static_cast<uint64_t>(v)));
  }
  return v;
}

template <bool Swap>
struct LoadF32 {
  float operator()(const uint8_t* p) const {
    const uint32_t b = load_bits<uint32_t, Swap>(p);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
};
template <bool Swap>
struct LoadF64 {
  float operator()(const uint8_t* p) const {
    const uint64_t b = load_bits<uint64_t, Swap>(p);
    double d;
    std::memcpy(&d, &b, 8);
    return static_cast<float>(d);  // round to nearest, as torch's .float()
  }
};
template <bool Swap>
struct LoadF16 {
  float operator()(const uint8_t* p) const { return half_to_float(load_bits<uint16_t, Swap>(p)); }
};
template <bool Swap>
struct LoadBF16 {
  float operator()(const uint8_t* p) const {
    const uint32_t b = static_cast<uint32_t>(load_bits<uint16_t, Swap>(p)) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
};
template <typename T, bool Swap>
struct LoadRaw {
  T operator()(const uint8_t* p) const { return load_bits<T, Swap>(p); }
};
struct LoadBool {
  uint8_t operator()(const uint8_t* p) const { return *p != 0; }
};

// Writes the strided view `t` of the storage at `base` (elements of `item`
// bytes) to `out` in row-major order.
template <typename Out, typename Load>
void gather(const TensorRef& t, const uint8_t* base, int64_t item, Out* out, Load load) {
  const size_t rank = t.size.size();
  int64_t numel = 1;
  for (int64_t d : t.size) numel *= d;
  if (numel == 0) return;
  if (rank == 0) {
    out[0] = load(base + t.offset * item);
    return;
  }
  const int64_t inner = t.size[rank - 1], step = t.stride[rank - 1] * item;
  std::vector<int64_t> idx(rank - 1, 0);
  int64_t at = t.offset;  // element index of the current row's first element
  for (int64_t row = 0, rows = numel / inner; row < rows; ++row) {
    const uint8_t* p = base + at * item;
    for (int64_t k = 0; k < inner; ++k, p += step) out[k] = load(p);
    out += inner;
    for (size_t d = rank - 1; d-- > 0;) {
      if (++idx[d] < t.size[d]) {
        at += t.stride[d];
        break;
      }
      at -= (t.size[d] - 1) * t.stride[d];
      idx[d] = 0;
    }
  }
}

template <template <bool> class Load>
void gather_float(const TensorRef& t, const uint8_t* base, int64_t item, float* out, bool swap) {
  if (swap) {
    gather(t, base, item, out, Load<true>{});
  } else {
    gather(t, base, item, out, Load<false>{});
  }
}

template <typename T>
void gather_raw(const TensorRef& t, const uint8_t* base, T* out, bool swap) {
  if (swap) {
    gather(t, base, sizeof(T), out, LoadRaw<T, true>{});
  } else {
    gather(t, base, sizeof(T), out, LoadRaw<T, false>{});
  }
}

bool row_major(const TensorRef& t) {
  int64_t expect = 1;
  for (size_t d = t.size.size(); d-- > 0;) {
    if (t.size[d] != 1 && t.stride[d] != expect) return false;
    expect *= t.size[d];
  }
  return true;
}

// The dtype a tensor of `d` is read as, or false if pyflame_vision has none.
bool output_dtype(TorchDType d, DType& out) {
  switch (d) {
    case TorchDType::float32:
    case TorchDType::float64:
    case TorchDType::float16:
    case TorchDType::bfloat16: out = DType::float32; return true;
    case TorchDType::int64: out = DType::int64; return true;
    case TorchDType::int32: out = DType::int32; return true;
    case TorchDType::uint8: out = DType::uint8; return true;
    case TorchDType::bool_: out = DType::bool_; return true;
    default: return false;
  }
}

// ---------------------------------------------------------------- the reader

struct StorageData {
  uint64_t offset = 0, size = 0;  // the bytes of a root storage's record
  std::string where;              // for messages
};

class CheckpointReader {
 public:
  CheckpointReader(const ByteSource& src, const CheckpointOptions& options) : src_(src), options_(options) {}

  NamedTensors read(WeightFormat format) {
    uint32_t root;
    if (format == WeightFormat::pytorch_zip) {
      root = read_zip();
    } else if (format == WeightFormat::pytorch_legacy) {
      root = read_legacy();
    } else {
      throw WeightsError(src_.name() + ": not a PyTorch checkpoint");
    }
    auto entries = select(root);
    return materialize(entries);
  }

 private:
  const std::string& name() const { return src_.name(); }

  uint32_t read_zip();
  uint32_t read_legacy();
  uint32_t read_legacy_pickles(uint64_t window);
  std::vector<std::pair<std::string, uint32_t>> select(uint32_t root) const;
  NamedTensors materialize(const std::vector<std::pair<std::string, uint32_t>>& entries);
  const StorageData& locate(const StorageRef& s);
  std::string record_text(const ZipEntry& e, uint64_t max_size, const char* what);

  bool is_state_dict(uint32_t v) const;
  std::string list_keys(uint32_t dict) const;
  std::string suggestion(uint32_t root) const;

  const ByteSource& src_;
  const CheckpointOptions& options_;
  std::unique_ptr<PickleVM> vm_;
  std::unique_ptr<ZipReader> zip_;
  std::string prefix_;
  bool swap_ = false;  // the data's byte order differs from the host's
  std::vector<uint8_t> pickle_buf_;  // the pickle's bytes (file sources)
  std::unordered_map<std::string, StorageData> data_;  // root storage key -> its bytes
};

std::string CheckpointReader::record_text(const ZipEntry& e, uint64_t max_size, const char* what) {
  if (e.size > max_size)
    throw WeightsError(name() + ": record " + e.name + " (" + what + ") has " + std::to_string(e.size) +
                       " bytes, expected at most " + std::to_string(max_size));
  zip_->verify_crc(e);
  std::vector<uint8_t> buf;
  const uint8_t* p = src_.view(e.data, e.size, buf);
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(e.size));
}

uint32_t CheckpointReader::read_zip() {
  zip_ = std::make_unique<ZipReader>(src_);
  // torch writes every record under one directory, "<archive>/".
  const ZipEntry* pkl = nullptr;
  for (const auto& e : zip_->entries()) {
    if (e.name != "data.pkl" && !(ends_with(e.name, "/data.pkl") && e.name.find('/') == e.name.size() - 9)) continue;
    if (pkl)
      throw WeightsError(name() + ": the archive has two pickles, " + pkl->name + " and " + e.name +
                         "; expected one <archive>/data.pkl");
    pkl = &e;
  }
  if (pkl) prefix_ = pkl->name.substr(0, pkl->name.size() - 8);
  // TorchScript (torch.jit.save) archives hold a data.pkl too, next to constants.pkl and code/.
  const ZipEntry* script = pkl ? zip_->find(prefix_ + "constants.pkl") : nullptr;
  for (const auto& e : zip_->entries())
    if (!script && pkl && starts_with(e.name, prefix_ + "code/")) script = &e;
  if (script)
    throw WeightsError(name() + ": a TorchScript archive (it has " + script->name +
                       "), not a state dict; save model.state_dict() instead (torch.save(model.state_dict(), path))");
  if (!pkl) {
    std::string listing;
    bool npy = false;
    size_t shown = 0;
    for (const auto& e : zip_->entries()) {
      npy |= ends_with(e.name, ".npy");
      if (shown++ < 5) listing += (listing.empty() ? "" : ", ") + e.name;
    }
    if (zip_->entries().size() > 5) listing += ", ...";
    if (npy)
      throw WeightsError(name() + ": a NumPy .npz archive, not a PyTorch checkpoint; give it a name ending in .npz "
                         "(Python's read_weights / load_weights read .npz files)");
    throw WeightsError(name() + ": a ZIP archive without data.pkl, so not a PyTorch checkpoint (entries: " +
                       (listing.empty() ? "none" : listing) + ")");
  }

  for (const char* v : {"version", ".data/version"}) {
    if (!zip_->find(prefix_ + v)) continue;
    const std::string text = record_text(zip_->open(prefix_ + v), 32, "the format version");
    size_t i = 0;
    int64_t version = 0;
    bool digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      version = version * 10 + (text[i++] - '0');
      digits = true;
    }
    while (i < text.size() && (text[i] == '\n' || text[i] == '\r' || text[i] == ' ')) ++i;
    if (!digits || i != text.size() || version < 1 || version > kMaxArchiveVersion)
      throw WeightsError(name() + ": record " + prefix_ + v + " holds " + quoted(text) +
                         ", expected a format version from 1 to " + std::to_string(kMaxArchiveVersion));
    break;
  }
  bool file_little = true;
  if (zip_->find(prefix_ + "byteorder")) {
    const std::string order = record_text(zip_->open(prefix_ + "byteorder"), 16, "the byte order");
    if (order != "little" && order != "big")
      throw WeightsError(name() + ": record " + prefix_ + "byteorder holds " + quoted(order) +
                         ", expected \"little\" or \"big\"");
    file_little = order == "little";
  }
  swap_ = file_little != host_little_endian();

  const ZipEntry& e = zip_->open(pkl->name);
  if (e.size > io_detail::kMaxPickleBytes)
    throw WeightsError(name() + ": record " + e.name + " has " + std::to_string(e.size) +
                       " bytes, more than the limit of " + std::to_string(io_detail::kMaxPickleBytes) +
                       " for a checkpoint's pickle");
  zip_->verify_crc(e);
  vm_ = std::make_unique<PickleVM>(name() + " (" + e.name + ")", io_detail::PidFormat::zip);
  return vm_->run(src_.view(e.data, e.size, pickle_buf_), e.size, e.data);
}

uint32_t CheckpointReader::read_legacy() {
  // The five pickles come first, the storages after them, and nothing says
  // where the pickles end: they are parsed from a prefix of the file that
  // grows (1 MiB, x4, ...) until they fit, so a large file is not read whole.
  const uint64_t cap = std::min<uint64_t>(src_.size(), io_detail::kMaxPickleBytes + (uint64_t{16} << 20));
  uint64_t window = std::min<uint64_t>(cap, uint64_t{1} << 20);
  for (;;) {
    try {
      return read_legacy_pickles(window);
    } catch (const WeightsError&) {
      if (!vm_->ran_out() || window >= cap) throw;
      window = std::min<uint64_t>(cap, window * 4);
    }
  }
}

uint32_t CheckpointReader::read_legacy_pickles(uint64_t window) {
  vm_ = std::make_unique<PickleVM>(name(), io_detail::PidFormat::legacy);
  PickleVM& vm = *vm_;
  const uint8_t* head = src_.view(0, window, pickle_buf_);
  uint64_t pos = 0;
  auto next = [&]() {
    uint64_t used = 0;
    const uint32_t v = vm.run(head + pos, window - pos, pos, &used);
    pos += used;
    return v;
  };
  const uint32_t magic = next();
  const auto& m = vm.at(magic);
  if (m.kind != Kind::BigInt || m.s.size() != sizeof kLegacyMagic || std::memcmp(m.s.data(), kLegacyMagic, sizeof kLegacyMagic))
    throw WeightsError(name() + ": not a PyTorch checkpoint: the file starts with a pickle of " + vm.repr(magic) +
                       ", expected torch's magic number 0x1950a86a20f9469cfc6c (pyflame_vision reads the files "
                       "torch.save writes, not arbitrary pickles)");
  const uint32_t protocol = next();
  if (vm.at(protocol).kind != Kind::Int || vm.at(protocol).i != kLegacyProtocol)
    throw WeightsError(name() + ": legacy checkpoint protocol " + vm.repr(protocol) + ", expected " +
                       std::to_string(kLegacyProtocol));
  const uint32_t sys_info = next();
  if (vm.at(sys_info).kind != Kind::Dict)
    throw WeightsError(name() + ": expected the legacy checkpoint's system information (a dict), found " +
                       vm.repr(sys_info));
  const uint32_t root = next();
  const uint32_t keys = next();
  if (vm.at(keys).kind != Kind::List)
    throw WeightsError(name() + ": expected the legacy checkpoint's list of storage keys, found " + vm.repr(keys));

  // The storages follow, in the order of the list, each as an element count
  // and its bytes. Their data is little-endian whatever the writer's host.
  swap_ = !host_little_endian();
  std::unordered_map<std::string, const StorageRef*> roots;
  for (const auto& s : vm.storages())
    if (!s.is_view) roots[s.key] = &s;
  const std::vector<uint32_t> list = vm.at(keys).items;
  for (uint32_t k : list) {
    if (vm.at(k).kind != Kind::Str)
      throw WeightsError(name() + ": expected storage keys (str) in the storage list, found " + vm.repr(k));
    const std::string& key = vm.at(k).s;
    auto it = roots.find(key);
    if (it == roots.end())
      throw WeightsError(name() + ": the storage list names " + quoted(key) + ", which no tensor in the pickle uses");
    if (data_.count(key)) throw WeightsError(name() + ": the storage list names " + quoted(key) + " twice");
    const StorageRef& s = *it->second;
    if (!src_.in_bounds(pos, 8))
      throw WeightsError(name() + ": storage " + quoted(key) + "'s element count at byte " + std::to_string(pos) +
                         " lies past the end of the file (" + std::to_string(src_.size()) + " bytes; truncated?)");
    uint8_t le[8];
    src_.read(pos, 8, le);
    uint64_t count = 0;
    for (int b = 7; b >= 0; --b) count = (count << 8) | le[b];
    if (count != static_cast<uint64_t>(s.numel))
      throw WeightsError(name() + ": storage " + quoted(key) + " holds " + std::to_string(count) +
                         " elements at byte " + std::to_string(pos) + ", but the pickle declares " +
                         std::to_string(s.numel) + " x " + s.type_name);
    const uint64_t nbytes = count * static_cast<uint64_t>(io_detail::torch_dtype_itemsize(s.dtype));
    if (!src_.in_bounds(pos + 8, nbytes))
      throw WeightsError(name() + ": storage " + quoted(key) + " (" + std::to_string(s.numel) + " x " + s.type_name +
                         ", " + std::to_string(nbytes) + " bytes from byte " + std::to_string(pos + 8) +
                         ") extends past the end of the file at byte " + std::to_string(src_.size()) + " (truncated?)");
    data_[key] = StorageData{pos + 8, nbytes, "storage " + quoted(key) + " at byte " + std::to_string(pos + 8)};
    pos += 8 + nbytes;
  }
  return root;
}

const StorageData& CheckpointReader::locate(const StorageRef& s) {
  const std::string& key = s.is_view ? s.root : s.key;
  auto it = data_.find(key);
  if (it != data_.end()) return it->second;
  if (!zip_)
    throw WeightsError(name() + ": storage " + quoted(key) +
                       " is used by a tensor but has no data in the file (it is missing from the storage list)");
  const std::string record = prefix_ + "data/" + key;
  if (!zip_->find(record))
    throw WeightsError(name() + ": storage " + quoted(key) + " (" + s.type_name + ") has no record " + record);
  const ZipEntry& e = zip_->open(record);
  zip_->verify_crc(e);
  return data_[key] = StorageData{e.data, e.size, "record " + record};
}

bool CheckpointReader::is_state_dict(uint32_t v) const {
  const auto& d = vm_->at(v);
  if (d.kind != Kind::Dict || d.items.empty()) return false;
  for (size_t k = 0; k < d.items.size(); k += 2)
    if (vm_->at(d.items[k]).kind != Kind::Str || vm_->at(d.items[k + 1]).kind != Kind::Tensor) return false;
  return true;
}

std::string CheckpointReader::list_keys(uint32_t dict) const {
  const auto& d = vm_->at(dict);
  std::string s;
  for (size_t k = 0; k < d.items.size() && k / 2 < kKeysShown; k += 2) s += (k ? ", " : "") + vm_->repr(d.items[k]);
  if (d.items.size() / 2 > kKeysShown) s += ", ... (" + std::to_string(d.items.size() / 2) + " keys)";
  return s.empty() ? "none" : s;
}

std::string CheckpointReader::suggestion(uint32_t root) const {
  const auto& d = vm_->at(root);
  std::vector<std::string> found;
  bool module = false;
  if (d.kind == Kind::Dict) {
    for (size_t k = 0; k < d.items.size(); k += 2) {
      if (vm_->at(d.items[k]).kind != Kind::Str || !is_state_dict(d.items[k + 1])) continue;
      if (found.empty()) {
        const auto& sd = vm_->at(d.items[k + 1]);
        module = true;
        for (size_t j = 0; j < sd.items.size(); j += 2) module &= starts_with(vm_->at(sd.items[j]).s, "module.");
      }
      found.push_back(vm_->at(d.items[k]).s);
    }
  }
  if (found.empty()) return " Pass key=... naming the top-level entry that holds the state dict (a dict of tensors).";
  std::string s = " The state dict looks like it is under " + quoted(found[0]);
  for (size_t i = 1; i < found.size(); ++i) s += (i + 1 == found.size() ? " or " : ", ") + quoted(found[i]);
  s += ": pass key=" + quoted(found[0]);
  if (module && options_.strip_prefix.empty()) s += " and strip_prefix=\"module.\"";
  return s + ".";
}

std::vector<std::pair<std::string, uint32_t>> CheckpointReader::select(uint32_t root) const {
  const PickleVM& vm = *vm_;
  uint32_t target = root;
  std::string what = "the checkpoint's top level";
  if (options_.key) {
    const std::string& key = *options_.key;
    if (vm.at(root).kind != Kind::Dict)
      throw WeightsError(name() + ": key=" + quoted(key) + " selects an entry of a dict, but the checkpoint's top level is " +
                         vm.a_type(root));
    const int64_t v = vm.dict_get(root, key);
    if (v < 0)
      throw WeightsError(name() + ": the checkpoint has no top-level key " + quoted(key) + "; its keys are " +
                         list_keys(root) + "." + suggestion(root));
    target = static_cast<uint32_t>(v);
    what = "checkpoint[" + quoted(key) + "]";
  }
  const auto& d = vm.at(target);
  const std::string hint = options_.key ? "" : suggestion(root);
  if (d.kind != Kind::Dict)
    throw WeightsError(name() + ": expected a state dict (a dict of tensors) as " + what + ", found " +
                       vm.a_type(target) + "." + hint);
  std::vector<std::pair<std::string, uint32_t>> out;
  out.reserve(d.items.size() / 2);
  for (size_t k = 0; k < d.items.size(); k += 2) {
    const uint32_t key = d.items[k], value = d.items[k + 1];
    if (vm.at(key).kind != Kind::Str)
      throw WeightsError(name() + ": expected a state dict (a dict of tensors with str keys) as " + what +
                         ", found the key " + vm.repr(key) + " (" + vm.a_type(key) + "); its keys are " +
                         list_keys(target) + "." + hint);
    if (vm.at(value).kind != Kind::Tensor)
      throw WeightsError(name() + ": expected a state dict (a dict of tensors) as " + what + ", but its value for " +
                         quoted(vm.at(key).s) + " is " + vm.a_type(value) + ", not a tensor; its keys are " +
                         list_keys(target) + "." + hint);
    out.emplace_back(vm.at(key).s, static_cast<uint32_t>(vm.at(value).i));
  }
  const std::string& prefix = options_.strip_prefix;
  if (!prefix.empty()) {
    std::unordered_map<std::string, std::string> seen;
    for (auto& kv : out) {
      const std::string original = kv.first;
      if (starts_with(kv.first, prefix)) kv.first.erase(0, prefix.size());
      auto ins = seen.emplace(kv.first, original);
      if (!ins.second)
        throw WeightsError(name() + ": strip_prefix=" + quoted(prefix) + " maps " + quoted(ins.first->second) +
                           " and " + quoted(original) + " to the same key " + quoted(kv.first));
    }
  }
  return out;
}

NamedTensors CheckpointReader::materialize(const std::vector<std::pair<std::string, uint32_t>>& entries) {
  const PickleVM& vm = *vm_;
  // Check every dtype before copying anything.
  std::vector<DType> out_dtype(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorRef& t = vm.tensors()[entries[i].second];
    if (!output_dtype(t.dtype, out_dtype[i]))
      throw WeightsError(name() + ": tensor " + quoted(entries[i].first) + " has dtype " +
                         io_detail::torch_dtype_name(t.dtype) +
                         ", which pyflame_vision does not read (supported: float32, float64, float16 and bfloat16, "
                         "read as float32; int64, int32, uint8, bool)");
  }
  // Storage by storage, so each one's pages are read together and then
  // dropped from the resident set.
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto root_of = [&](size_t i) -> const std::string& {
    const StorageRef& s = vm.storages()[vm.tensors()[entries[i].second].storage];
    return s.is_view ? s.root : s.key;
  };
  std::unordered_map<std::string, size_t> first_use;
  for (size_t i = 0; i < order.size(); ++i) first_use.emplace(root_of(i), i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return first_use[root_of(a)] < first_use[root_of(b)]; });

  NamedTensors out(entries.size());
  std::vector<uint8_t> scratch;  // the bytes of a tensor that is converted or gathered
  for (size_t n = 0; n < order.size(); ++n) {
    const size_t i = order[n];
    const TensorRef& t = vm.tensors()[entries[i].second];
    const StorageRef& s = vm.storages()[t.storage];
    const StorageData& data = locate(s);
    const int64_t s_item = io_detail::torch_dtype_itemsize(s.dtype);
    const uint64_t view_bytes = static_cast<uint64_t>(s.view_offset) * static_cast<uint64_t>(s_item);
    const uint64_t storage_bytes = static_cast<uint64_t>(s.numel) * static_cast<uint64_t>(s_item);
    const StorageRef* root = &s;
    if (s.is_view)
      for (const auto& r : vm.storages())
        if (!r.is_view && r.key == s.root) root = &r;
    const uint64_t root_bytes = static_cast<uint64_t>(root->numel) * static_cast<uint64_t>(io_detail::torch_dtype_itemsize(root->dtype));
    if (root_bytes > data.size)
      throw WeightsError(name() + ": storage " + quoted(root->key) + " declares " + std::to_string(root->numel) +
                         " x " + root->type_name + " (" + std::to_string(root_bytes) + " bytes), but its " + data.where +
                         " holds " + std::to_string(data.size) + " bytes");
    if (view_bytes + storage_bytes > root_bytes)
      throw WeightsError(name() + ": storage view " + quoted(s.key) + " exceeds its storage " + quoted(root->key));
    // The view's extent (checked by the VM too; re-checked here against the bytes actually present).
    const int64_t item = io_detail::torch_dtype_itemsize(t.dtype);
    int64_t numel = 1, last = t.offset;
    for (size_t d = 0; d < t.size.size(); ++d) {
      numel *= t.size[d];
      if (t.size[d] > 0) last += (t.size[d] - 1) * t.stride[d];
    }
    if (numel > 0 && static_cast<uint64_t>(last + 1) * static_cast<uint64_t>(item) > storage_bytes)
      throw WeightsError(name() + ": tensor " + quoted(entries[i].first) + " reads past the end of storage " +
                         quoted(s.key));
    // The file offset of the view's first element, and of the bytes the tensor reads.
    const uint64_t first = data.offset + view_bytes + static_cast<uint64_t>(t.offset) * static_cast<uint64_t>(item);
    const uint64_t extent = numel > 0 ? static_cast<uint64_t>(last - t.offset + 1) * static_cast<uint64_t>(item) : 0;

    Tensor tensor{TensorSpec(t.size, out_dtype[i])};
    if (numel > 0 && t.dtype == TorchDType::float32 && !swap_ && row_major(t)) {
      src_.read(first, extent, tensor.raw_data());  // straight into the tensor
    } else if (numel > 0) {
      TensorRef local = t;  // the same view, relative to the bytes read
      local.offset = 0;
      const uint8_t* base = src_.view(first, extent, scratch);
      switch (t.dtype) {
        case TorchDType::float32: gather_float<LoadF32>(local, base, 4, tensor.data_f32(), swap_); break;
        case TorchDType::float64: gather_float<LoadF64>(local, base, 8, tensor.data_f32(), swap_); break;
        case TorchDType::float16: gather_float<LoadF16>(local, base, 2, tensor.data_f32(), swap_); break;
        case TorchDType::bfloat16: gather_float<LoadBF16>(local, base, 2, tensor.data_f32(), swap_); break;
        case TorchDType::int64: gather_raw(local, base, static_cast<int64_t*>(tensor.raw_data()), swap_); break;
        case TorchDType::int32: gather_raw(local, base, static_cast<int32_t*>(tensor.raw_data()), swap_); break;
        case TorchDType::uint8: gather_raw(local, base, static_cast<uint8_t*>(tensor.raw_data()), false); break;
        case TorchDType::bool_: gather(local, base, 1, static_cast<uint8_t*>(tensor.raw_data()), LoadBool{}); break;
        default: break;  // refused above
      }
    }
    out[i] = {entries[i].first, std::move(tensor)};
  }
  return out;
}

}  // namespace

namespace {
// `d` holds the first `size` bytes (at least 263 when the file has them) of a file of `total` bytes.
WeightFormat detect_format(const uint8_t* d, size_t size, uint64_t total) {
  if (size >= 4 && d[0] == 'P' && d[1] == 'K' && ((d[2] == 3 && d[3] == 4) || (d[2] == 5 && d[3] == 6)))
    return WeightFormat::pytorch_zip;
  if (size >= 10) {
    uint64_t n = 0;
    for (int k = 7; k >= 0; --k) n = (n << 8) | d[k];
    if (n >= 2 && n <= total - 8 && d[8] == '{') return WeightFormat::safetensors;
  }
  if (size >= 262 && std::memcmp(d + 257, "ustar", 5) == 0) return WeightFormat::pytorch_tar;
  if (size >= 2 && d[0] == 0x80 && d[1] >= 2 && d[1] <= 5) return WeightFormat::pytorch_legacy;
  return WeightFormat::unknown;
}
}  // namespace

WeightFormat detect_weight_format(const void* data, size_t size) {
  return detect_format(static_cast<const uint8_t*>(data), size, size);
}

namespace io_detail {
NamedTensors read_checkpoint(const ByteSource& src, WeightFormat format, const CheckpointOptions& options) {
  if (format == WeightFormat::pytorch_tar)
    throw WeightsError(src.name() + ": a checkpoint in the tar format of torch < 0.4, which pyflame_vision does not "
                       "read; load it with torch and save it again (torch.save(torch.load(path), new_path))");
  if (format == WeightFormat::safetensors)
    throw WeightsError(src.name() + ": a .safetensors file, not a PyTorch checkpoint (read_weights and load_weights "
                       "read both)");
  if (format != WeightFormat::pytorch_zip && format != WeightFormat::pytorch_legacy) {
    std::string head;
    char buf[4];
    std::vector<uint8_t> first;
    const uint64_t shown = std::min<uint64_t>(src.size(), 16);
    const uint8_t* d = src.view(0, shown, first);
    for (uint64_t i = 0; i < shown; ++i) {
      std::snprintf(buf, sizeof buf, "%02x", d[i]);
      head += (i ? " " : "") + std::string(buf);
    }
    throw WeightsError(src.name() + ": not a PyTorch checkpoint (expected a ZIP archive or a pickle as torch.save "
                       "writes them; the file" + (src.size() ? " starts with " + head : " is empty") + ")");
  }
  return CheckpointReader(src, options).read(format);
}
}  // namespace io_detail

namespace io_detail {
WeightFormat detect_weight_format(const ByteSource& src) {
  std::vector<uint8_t> buf;
  const uint64_t n = std::min<uint64_t>(src.size(), 263);
  return detect_format(src.view(0, n, buf), static_cast<size_t>(n), src.size());
}
}  // namespace io_detail

NamedTensors read_pytorch_checkpoint(const std::string& path, const CheckpointOptions& options) {
  io_detail::FileSource file(path);
  return io_detail::read_checkpoint(file, io_detail::detect_weight_format(file), options);
}

NamedTensors parse_pytorch_checkpoint(const void* data, size_t size, const std::string& source,
                                      const CheckpointOptions& options) {
  const io_detail::MemorySource src(static_cast<const uint8_t*>(data), size, source);
  return io_detail::read_checkpoint(src, detect_weight_format(data, size), options);
}

}  // namespace pyflame_vision
