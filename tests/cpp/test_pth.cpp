// PyTorch checkpoint reader: hand-built pickles and ZIP archives for every
// opcode path and every fault (each fault must be a WeightsError with a
// precise message, never a crash), torch-written fixtures
// (tests/cpp/data/pth, made by tests/cpp/data/make_pth_fixtures.py), and
// load_weights on a model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pyflame_vision/pyflame_vision.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
using pfv_test::Contains;
using pfv_test::message_of;
using namespace std::string_literals;

namespace {

// ---------------------------------------------------------------- byte helpers

std::string le(uint64_t v, int n) {
  std::string s(static_cast<size_t>(n), '\0');
  for (int k = 0; k < n; ++k, v >>= 8) s[static_cast<size_t>(k)] = static_cast<char>(v & 0xFF);
  return s;
}

// Bitwise CRC-32 (independent of the library's table-driven one).
uint32_t crc32_ref(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/pfv_test_pth_" +
         std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" + name;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---------------------------------------------------------------- pickle builder

// Emits pickle opcodes; tensor() writes torch's _rebuild_tensor_v2 call.
struct Pickle {
  std::string b;
  enum Pid { kZip, kLegacy } pid = kZip;

  Pickle& raw(const std::string& s) { b += s; return *this; }
  Pickle& op(uint8_t c) { b += static_cast<char>(c); return *this; }
  Pickle& proto(int p) { return op(0x80).op(static_cast<uint8_t>(p)); }
  Pickle& mark() { return op('('); }
  Pickle& stop() { return op('.'); }
  Pickle& str(const std::string& s) { op('X'); b += le(s.size(), 4) + s; return *this; }
  Pickle& sstr(const std::string& s) { op(0x8c); b += le(s.size(), 1) + s; return *this; }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').raw(le(static_cast<uint64_t>(v), 1));
    if (v >= 0 && v < 65536) return op('M').raw(le(static_cast<uint64_t>(v), 2));
    if (v >= INT32_MIN && v <= INT32_MAX) return op('J').raw(le(static_cast<uint64_t>(v), 4));
    return op(0x8a).raw(le(8, 1)).raw(le(static_cast<uint64_t>(v), 8));
  }
  Pickle& global(const std::string& m, const std::string& n) { op('c'); b += m + "\n" + n + "\n"; return *this; }
  Pickle& ints(const std::vector<int64_t>& v) {
    if (v.empty()) return op(')');
    mark();
    for (int64_t x : v) integer(x);
    return op('t');
  }
  Pickle& empty_ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  Pickle& storage(const std::string& type, const std::string& key, int64_t numel) {
    mark().str("storage").global("torch", type).str(key).str("cpu").integer(numel);
    if (pid == kLegacy) op('N');
    return op('t').op('Q');
  }
  Pickle& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    storage(type, key, numel).integer(offset).ints(size).ints(stride).op(0x89).empty_ordered_dict();
    return op('t').op('R');
  }
  // A contiguous float tensor over a whole storage.
  Pickle& f32(const std::string& key, const std::vector<int64_t>& size) {
    int64_t n = 1;
    std::vector<int64_t> stride(size.size(), 1);
    for (size_t d = size.size(); d-- > 0;) {
      stride[d] = n;
      n *= size[d];
    }
    return tensor("FloatStorage", key, n, 0, size, stride);
  }
};

// ---------------------------------------------------------------- ZIP builder

struct Entry {
  std::string name, data;
  uint16_t method = 0;
  uint16_t flags = 0x0808;  // data descriptor + UTF-8 names, as torch writes
  bool zip64 = false;       // sizes and offset through a ZIP64 extra field
  bool bad_crc = false;
  bool zero_crc = false;
};

std::string zip(const std::vector<Entry>& entries, bool zip64_end = true, size_t align = 64) {
  std::string out, central;
  for (const auto& e : entries) {
    const uint64_t local = out.size();
    const uint32_t crc = e.zero_crc ? 0 : crc32_ref(e.data) ^ (e.bad_crc ? 1u : 0u);
    // Local header, padded with an extra field so the data starts aligned (as torch's writer does).
    size_t pad = 0;
    const size_t data_at = local + 30 + e.name.size() + 4;
    if (align) pad = (align - data_at % align) % align;
    std::string extra = le(0x4246, 2) + le(pad, 2) + std::string(pad, 'Z');
    out += le(0x04034b50, 4) + le(20, 2) + le(e.flags, 2) + le(e.method, 2) + le(0, 4) + le(0, 4) + le(0, 4) +
           le(0, 4) + le(e.name.size(), 2) + le(extra.size(), 2) + e.name + extra + e.data;
    if (e.flags & 0x0008) out += le(0x08074b50, 4) + le(crc, 4) + le(e.data.size(), 4) + le(e.data.size(), 4);
    std::string cextra;
    uint64_t csize = e.data.size(), coff = local;
    if (e.zip64) {
      cextra = le(1, 2) + le(24, 2) + le(e.data.size(), 8) + le(e.data.size(), 8) + le(local, 8);
      csize = 0xFFFFFFFFu;
      coff = 0xFFFFFFFFu;
    }
    central += le(0x02014b50, 4) + le(0x031e, 2) + le(e.zip64 ? 45 : 20, 2) + le(e.flags, 2) + le(e.method, 2) +
               le(0, 4) + le(crc, 4) + le(csize, 4) + le(csize, 4) + le(e.name.size(), 2) + le(cextra.size(), 2) +
               le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(coff, 4) + e.name + cextra;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  const uint64_t n = entries.size();
  if (zip64_end) {
    const uint64_t end64 = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(0x031e, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(n, 8) + le(n, 8) +
           le(central.size(), 8) + le(cd_offset, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(end64, 8) + le(1, 4);
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFFFFFFu, 4) +
           le(0xFFFFFFFFu, 4) + le(0, 2);
  } else {
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(n, 2) + le(n, 2) + le(central.size(), 4) +
           le(cd_offset, 4) + le(0, 2);
  }
  return out;
}

// A torch-style zip checkpoint: archive/data.pkl, archive/data/<key>, byteorder, version.
std::string checkpoint(const Pickle& pkl, const std::map<std::string, std::string>& storages,
                       const std::string& byteorder = "little", bool zip64 = false) {
  std::vector<Entry> e;
  e.push_back({"archive/data.pkl", pkl.b});
  e.push_back({"archive/.format_version", "1"});
  if (!byteorder.empty()) e.push_back({"archive/byteorder", byteorder});
  for (const auto& kv : storages) {
    e.push_back({"archive/data/" + kv.first, kv.second});
    e.back().zip64 = zip64;
  }
  e.push_back({"archive/version", "3\n"});
  return zip(e);
}

// A legacy-format checkpoint: five pickles, then each storage's count and bytes.
std::string legacy(const Pickle& object, const std::vector<std::pair<std::string, std::string>>& storages,
                   const std::vector<int64_t>& counts) {
  Pickle p;
  p.proto(2).op(0x8a).raw(le(10, 1)).raw("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19").stop();
  p.proto(2).integer(1001).stop();
  p.proto(2).op('}').str("little_endian").op(0x88).op('s').stop();
  p.raw(object.b);
  p.proto(2).op(']').mark();
  for (const auto& kv : storages) p.str(kv.first);
  p.op('e').stop();
  std::string out = p.b;
  for (size_t i = 0; i < storages.size(); ++i) out += le(static_cast<uint64_t>(counts[i]), 8) + storages[i].second;
  return out;
}

pfv::NamedTensors parse(const std::string& bytes, const pfv::CheckpointOptions& o = {}) {
  return pfv::parse_pytorch_checkpoint(bytes.data(), bytes.size(), "t.pth", o);
}

std::string parse_error(const std::string& bytes, const pfv::CheckpointOptions& o = {}) {
  return message_of<pfv::WeightsError>([&] { parse(bytes, o); });
}

std::vector<float> floats(const pfv::Tensor& t) {
  return std::vector<float>(t.data_f32(), t.data_f32() + t.numel());
}

const pfv::Tensor& get(const pfv::NamedTensors& sd, const std::string& name) {
  for (const auto& kv : sd)
    if (kv.first == name) return kv.second;
  throw std::runtime_error("no tensor " + name);
}

// A one-tensor state dict {"w": float32 [2, 3] over storage "0"} and its data.
Pickle one_tensor() {
  Pickle p;
  p.proto(2).empty_ordered_dict().mark().str("w").f32("0", {2, 3}).op('u').stop();
  return p;
}
const std::vector<float> kSix = {1.5f, -2.0f, 0.25f, 3.0f, -0.5f, 8.0f};

// ================================================================ formats and opcodes

TEST(Pth, ZipProtocol2StateDict) {
  const auto sd = parse(checkpoint(one_tensor(), {{"0", bytes_of(kSix)}}));
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "w");
  EXPECT_EQ(sd[0].second.shape(), (pfv::Shape{2, 3}));
  EXPECT_EQ(floats(sd[0].second), kSix);
}

TEST(Pth, ViewsOffsetsStridesAndSharedStorages) {
  // One storage of 12 floats, read as a [3, 4] tensor, its transpose, row 1, and every other element of row 2.
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i) * 0.5f - 1.0f;
  Pickle p;
  p.proto(2).op('}').mark();
  p.str("a").tensor("FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.str("t").tensor("FloatStorage", "0", 12, 0, {4, 3}, {1, 4});
  p.str("row").tensor("FloatStorage", "0", 12, 4, {4}, {1});
  p.str("odd").tensor("FloatStorage", "0", 12, 8, {2}, {2});
  p.str("bcast").tensor("FloatStorage", "0", 12, 3, {2, 2}, {0, 1});  // a zero stride repeats a row
  p.str("scalar").tensor("FloatStorage", "0", 12, 11, {}, {});
  p.op('u').stop();
  const auto sd = parse(checkpoint(p, {{"0", bytes_of(v)}}));
  ASSERT_EQ(sd.size(), 6u);
  EXPECT_EQ(floats(get(sd, "a")), v);
  std::vector<float> t;
  for (int c = 0; c < 4; ++c)
    for (int r = 0; r < 3; ++r) t.push_back(v[static_cast<size_t>(r * 4 + c)]);
  EXPECT_EQ(floats(get(sd, "t")), t);
  EXPECT_EQ(floats(get(sd, "row")), (std::vector<float>{v[4], v[5], v[6], v[7]}));
  EXPECT_EQ(floats(get(sd, "odd")), (std::vector<float>{v[8], v[10]}));
  EXPECT_EQ(floats(get(sd, "bcast")), (std::vector<float>{v[3], v[4], v[3], v[4]}));
  EXPECT_EQ(get(sd, "scalar").shape(), pfv::Shape{});
  EXPECT_EQ(floats(get(sd, "scalar")), (std::vector<float>{v[11]}));
  // Every tensor has its own storage.
  EXPECT_NE(get(sd, "a").raw_data(), get(sd, "row").raw_data());
}

TEST(Pth, DtypesConvertOrKeep) {
  const std::vector<uint16_t> half = {0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00};  // 1, -2, 2^-24, 65504, inf
  const std::vector<uint16_t> bf = {0x3FC0, 0xBE80};                             // 1.5, -0.25
  const std::vector<double> dbl = {1.0 / 3.0, -1e-40, 1e300};
  const std::vector<int64_t> i64 = {-5, int64_t{1} << 40};
  const std::vector<int32_t> i32 = {-7, 9};
  const std::vector<uint8_t> u8 = {0, 255};
  const std::vector<uint8_t> b = {1, 0};
  Pickle p;
  p.proto(2).op('}').mark();
  p.str("h").tensor("HalfStorage", "h", 5, 0, {5}, {1});
  p.str("bf").tensor("BFloat16Storage", "bf", 2, 0, {2}, {1});
  p.str("d").tensor("DoubleStorage", "d", 3, 0, {3}, {1});
  p.str("l").tensor("LongStorage", "l", 2, 0, {2}, {1});
  p.str("i").tensor("IntStorage", "i", 2, 0, {2}, {1});
  p.str("u").tensor("ByteStorage", "u", 2, 0, {2}, {1});
  p.str("b").tensor("BoolStorage", "b", 2, 0, {2}, {1});
  p.op('u').stop();
  const auto sd = parse(checkpoint(p, {{"h", bytes_of(half)}, {"bf", bytes_of(bf)}, {"d", bytes_of(dbl)},
                                       {"l", bytes_of(i64)}, {"i", bytes_of(i32)}, {"u", bytes_of(u8)},
                                       {"b", bytes_of(b)}}));
  EXPECT_EQ(floats(get(sd, "h")), (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24), 65504.0f, INFINITY}));
  EXPECT_EQ(floats(get(sd, "bf")), (std::vector<float>{1.5f, -0.25f}));
  EXPECT_EQ(floats(get(sd, "d")), (std::vector<float>{static_cast<float>(1.0 / 3.0), static_cast<float>(-1e-40),
                                                        static_cast<float>(1e300)}));
  const auto& l = get(sd, "l");
  ASSERT_EQ(l.dtype(), pfv::DType::int64);
  EXPECT_EQ(l.data_i64()[0], -5);
  EXPECT_EQ(l.data_i64()[1], int64_t{1} << 40);
  ASSERT_EQ(get(sd, "i").dtype(), pfv::DType::int32);
  EXPECT_EQ(static_cast<const int32_t*>(get(sd, "i").raw_data())[0], -7);
  ASSERT_EQ(get(sd, "u").dtype(), pfv::DType::uint8);
  EXPECT_EQ(static_cast<const uint8_t*>(get(sd, "u").raw_data())[1], 255);
  ASSERT_EQ(get(sd, "b").dtype(), pfv::DType::bool_);
  EXPECT_EQ(static_cast<const uint8_t*>(get(sd, "b").raw_data())[0], 1);

  // int16 has no pyflame_vision dtype: an error naming the tensor.
  Pickle s;
  s.proto(2).op('}').str("short").tensor("ShortStorage", "0", 1, 0, {1}, {1}).op('s').stop();
  const std::string msg = parse_error(checkpoint(s, {{"0", std::string(2, '\0')}}));
  EXPECT_TRUE(Contains(msg, "t.pth: tensor \"short\" has dtype int16, which pyflame_vision does not read"));
}

TEST(Pth, BigEndianDataIsSwapped) {
  std::string f, d, l, h;
  for (float x : kSix) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    f += le(__builtin_bswap32(bits), 4);
  }
  const double dv = -0.1;
  uint64_t dbits;
  std::memcpy(&dbits, &dv, 8);
  d = le(__builtin_bswap64(dbits), 8);
  l = le(__builtin_bswap64(static_cast<uint64_t>(int64_t{-3})), 8);
  h = std::string("\x3c\x00", 2);  // big-endian half 1.0
  Pickle p;
  p.proto(2).op('}').mark();
  p.str("w").f32("0", {2, 3});
  p.str("wt").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  p.str("d").tensor("DoubleStorage", "1", 1, 0, {}, {});
  p.str("l").tensor("LongStorage", "2", 1, 0, {}, {});
  p.str("h").tensor("HalfStorage", "3", 1, 0, {1}, {1});
  p.op('u').stop();
  const auto sd = parse(checkpoint(p, {{"0", f}, {"1", d}, {"2", l}, {"3", h}}, "big"));
  EXPECT_EQ(floats(get(sd, "w")), kSix);
  EXPECT_EQ(floats(get(sd, "wt")), (std::vector<float>{kSix[0], kSix[3], kSix[1], kSix[4], kSix[2], kSix[5]}));
  EXPECT_EQ(floats(get(sd, "d")), (std::vector<float>{static_cast<float>(-0.1)}));
  EXPECT_EQ(get(sd, "l").data_i64()[0], -3);
  EXPECT_EQ(floats(get(sd, "h")), (std::vector<float>{1.0f}));
  // No byteorder record: little-endian.
  EXPECT_EQ(floats(get(parse(checkpoint(one_tensor(), {{"0", bytes_of(kSix)}}, "")), "w")), kSix);
  EXPECT_TRUE(Contains(parse_error(checkpoint(one_tensor(), {{"0", bytes_of(kSix)}}, "middle")),
                       "record archive/byteorder holds \"middle\", expected \"little\" or \"big\""));
}

TEST(Pth, Protocol4And5Opcodes) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BINGET of a memoized global, BINUNICODE8, LONG1, BININT, BINFLOAT,
  // TUPLE1/2/3, EMPTY_LIST/APPENDS, DICT, DUP + POP, POP_MARK, NONE/NEWTRUE: the shapes torch's protocol-5 pickles
  // take, plus plain containers a checkpoint may carry next to the state dict:
  //   {"sd": OrderedDict(w=tensor), "extra": [-70000, 2**64, 1.5, None, True]}
  Pickle body;
  body.sstr("collections").op(0x94).sstr("OrderedDict").op(0x94).op(0x93).op(0x94);  // memo 0, 1, 2
  body.op('}').op(0x94).mark();                                                      // the top level: memo 3
  body.sstr("sd").op('h').raw(le(2, 1)).op(')').op('R').op(0x94).mark();            // OrderedDict(): memo 4
  body.sstr("w").sstr("torch._utils").sstr("_rebuild_tensor_v2").op(0x93).op(0x94);  // memo 5
  body.mark().mark().sstr("storage").sstr("torch").sstr("FloatStorage").op(0x93).sstr("0").sstr("cpu");
  body.integer(6).op('t').op('Q');
  body.integer(0).integer(2).integer(3).op(0x86).integer(3).integer(1).op(0x86).op(0x89);
  body.op('h').raw(le(2, 1)).op(')').op('R').op('t').op('R').op('u');
  body.op(0x8d).raw(le(5, 8)).raw("extra");
  body.op(']').mark().integer(-70000).op(0x8a).raw(le(9, 1)).raw(std::string(8, '\0') + "\x01");
  body.op('G').raw(std::string("\x3f\xf8\0\0\0\0\0\0", 8)).op('N').op(0x88).op('e');
  body.op('u');
  body.mark().integer(1).integer(2).op('d').op('2').op('0').op('0');  // a dict built by DICT, duplicated, dropped
  body.mark().op('1');                                                  // POP_MARK of an empty frame
  body.integer(1).op(0x85).integer(2).integer(3).op(0x86).op(0x86).op('0');
  body.integer(4).integer(5).integer(6).op(0x87).op('0');
  body.stop();
  Pickle p;
  p.proto(5).op(0x95).raw(le(body.b.size(), 8)).raw(body.b);
  const std::string bytes = checkpoint(p, {{"0", bytes_of(kSix)}});
  pfv::CheckpointOptions o;
  o.key = "sd";
  const auto sd = parse(bytes, o);
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "w");
  EXPECT_EQ(sd[0].second.shape(), (pfv::Shape{2, 3}));
  EXPECT_EQ(floats(sd[0].second), kSix);
  // Without key=: the message names the offending value and where the state dict is.
  const std::string msg = parse_error(bytes);
  EXPECT_TRUE(Contains(msg, "its value for \"sd\" is an OrderedDict, not a tensor; its keys are \"sd\", \"extra\"."));
  EXPECT_TRUE(Contains(msg, "The state dict looks like it is under \"sd\": pass key=\"sd\"."));
  o.key = "extra";
  EXPECT_TRUE(Contains(parse_error(bytes, o), "expected a state dict (a dict of tensors) as checkpoint[\"extra\"], "
                                              "found a list"));
}

TEST(Pth, WrappedStateDictsKeyAndStripPrefix) {
  Pickle p;
  p.proto(2).op('}').mark();
  p.str("epoch").integer(3);
  p.str("state_dict").empty_ordered_dict().mark();
  p.str("module.conv.weight").f32("0", {2, 3});
  p.str("module.fc.bias").tensor("FloatStorage", "0", 6, 4, {2}, {1});
  p.op('u');
  p.str("optimizer").op('}').str("lr").op('G').raw("\x3f\xb9\x99\x99\x99\x99\x99\x9a").op('s');
  p.op('u').stop();
  const std::string bytes = checkpoint(p, {{"0", bytes_of(kSix)}});
  const std::string msg = parse_error(bytes);
  EXPECT_TRUE(Contains(msg, "t.pth: expected a state dict (a dict of tensors) as the checkpoint's top level, but its "
                            "value for \"epoch\" is an int, not a tensor; its keys are \"epoch\", \"state_dict\", "
                            "\"optimizer\"."));
  EXPECT_TRUE(Contains(msg, "The state dict looks like it is under \"state_dict\": pass key=\"state_dict\" and "
                            "strip_prefix=\"module.\"."));
  pfv::CheckpointOptions o;
  o.key = "state_dict";
  auto sd = parse(bytes, o);
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0].first, "module.conv.weight");
  o.strip_prefix = "module.";
  sd = parse(bytes, o);
  EXPECT_EQ(sd[0].first, "conv.weight");
  EXPECT_EQ(sd[1].first, "fc.bias");
  EXPECT_EQ(floats(sd[1].second), (std::vector<float>{kSix[4], kSix[5]}));
  o.key = "model";
  EXPECT_TRUE(Contains(parse_error(bytes, o), "t.pth: the checkpoint has no top-level key \"model\"; its keys are "
                                              "\"epoch\", \"state_dict\", \"optimizer\"."));
  o.key = "optimizer";
  EXPECT_TRUE(Contains(parse_error(bytes, o), "its value for \"lr\" is a float, not a tensor"));

  // strip_prefix that makes two keys equal.
  Pickle q;
  q.proto(2).op('}').mark().str("module.a").f32("0", {6}).str("a").f32("0", {6}).op('u').stop();
  o = {};
  o.strip_prefix = "module.";
  EXPECT_TRUE(Contains(parse_error(checkpoint(q, {{"0", bytes_of(kSix)}}), o),
                       "strip_prefix=\"module.\" maps \"module.a\" and \"a\" to the same key \"a\""));
  // A top level that is not a dict at all; a key on a non-dict.
  Pickle list;
  list.proto(2).op(']').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(list, {})), "found a list. Pass key=..."));
  o = {};
  o.key = "x";
  EXPECT_TRUE(Contains(parse_error(checkpoint(list, {}), o), "selects an entry of a dict, but the checkpoint's top "
                                                             "level is a list"));
  // Non-string keys.
  Pickle ik;
  ik.proto(2).op('}').integer(1).f32("0", {6}).op('s').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(ik, {{"0", bytes_of(kSix)}})), "found the key 1 (an int)"));
  // An empty state dict is a valid (empty) result.
  Pickle empty;
  empty.proto(2).empty_ordered_dict().stop();
  EXPECT_TRUE(parse(checkpoint(empty, {})).empty());
}

TEST(Pth, LegacyFormat) {
  Pickle obj;
  obj.pid = Pickle::kLegacy;
  obj.proto(2).empty_ordered_dict().mark();
  obj.str("w").f32("140", {2, 3});
  obj.str("n").tensor("LongStorage", "99", 1, 0, {}, {});
  obj.str("wt").tensor("FloatStorage", "140", 6, 0, {3, 2}, {1, 3});
  obj.op('u').stop();
  const std::string seven = le(7, 8);
  const std::string bytes = legacy(obj, {{"140", bytes_of(kSix)}, {"99", seven}}, {6, 1});
  const auto sd = parse(bytes);
  ASSERT_EQ(sd.size(), 3u);
  EXPECT_EQ(floats(get(sd, "w")), kSix);
  EXPECT_EQ(get(sd, "n").data_i64()[0], 7);
  EXPECT_EQ(floats(get(sd, "wt")), (std::vector<float>{kSix[0], kSix[3], kSix[1], kSix[4], kSix[2], kSix[5]}));

  // Faults: a wrong count, truncated data, a key no tensor uses, a storage with no data.
  EXPECT_TRUE(Contains(parse_error(legacy(obj, {{"140", bytes_of(kSix)}, {"99", seven}}, {5, 1})),
                       "storage \"140\" holds 5 elements at byte"));
  EXPECT_TRUE(Contains(parse_error(bytes.substr(0, bytes.size() - 1)), "extends past the end of the file"));
  EXPECT_TRUE(Contains(parse_error(legacy(obj, {{"140", bytes_of(kSix)}, {"99", seven}, {"5", ""}}, {6, 1, 0})),
                       "the storage list names \"5\", which no tensor in the pickle uses"));
  EXPECT_TRUE(Contains(parse_error(legacy(obj, {{"140", bytes_of(kSix)}}, {6})),
                       "storage \"99\" is used by a tensor but has no data in the file"));
  // Legacy view metadata: storage "v" is elements [2, 5) of root "140".
  Pickle view;
  view.proto(2).op('}').str("v").global("torch._utils", "_rebuild_tensor_v2").mark();
  view.mark().str("storage").global("torch", "FloatStorage").str("140").str("cpu").integer(6);
  view.mark().str("v").integer(2).integer(3).op('t').op('t').op('Q');
  view.integer(1).ints({2}).ints({1}).op(0x89).empty_ordered_dict().op('t').op('R').op('s').stop();
  EXPECT_EQ(floats(get(parse(legacy(view, {{"140", bytes_of(kSix)}}, {6})), "v")),
            (std::vector<float>{kSix[3], kSix[4]}));
  // A plain pickle is not a checkpoint.
  Pickle plain;
  plain.proto(2).integer(5).stop();
  EXPECT_TRUE(Contains(parse_error(plain.b), "not a PyTorch checkpoint: the file starts with a pickle of 5, "
                                             "expected torch's magic number"));
}

TEST(Pth, ZipArchivesWithZip64RecordsAndRealZips) {
  // Sizes and offsets through ZIP64 extra fields (what torch writes past 4 GiB), with and without ZIP64 end records.
  const std::string big = checkpoint(one_tensor(), {{"0", bytes_of(kSix)}}, "little", /*zip64=*/true);
  EXPECT_EQ(floats(get(parse(big), "w")), kSix);
  std::vector<Entry> e = {{"a/data.pkl", one_tensor().b}, {"a/data/0", bytes_of(kSix)}};
  e[0].flags = 0;  // no data descriptor, sizes in the local header's place
  EXPECT_EQ(floats(get(parse(zip(e, /*zip64_end=*/false, /*align=*/0)), "w")), kSix);
  // CRC-32 0 (torch with CRC computation disabled) is not checked; a wrong one is.
  e[1].zero_crc = true;
  EXPECT_EQ(floats(get(parse(zip(e)), "w")), kSix);
  e[1].zero_crc = false;
  e[1].bad_crc = true;
  EXPECT_TRUE(Contains(parse_error(zip(e)), "t.pth: record a/data/0 is damaged: its 24 bytes have CRC-32"));
}

// ================================================================ faults

TEST(PthFaults, GlobalsOutsideTheAllowlistAreNamed) {
  const std::vector<std::pair<std::string, std::string>> evil = {
      {"posix", "system"},       {"os", "system"},          {"builtins", "eval"},
      {"builtins", "exec"},      {"builtins", "open"},      {"builtins", "getattr"},
      {"collections", "Counter"}, {"torch._utils", "_rebuild_device_tensor_from_numpy"},
      {"torch.serialization", "load"}, {"torch", "load"},   {"torch.nn.modules.module", "Module"},
      {"torch", "Tensor"},        {"subprocess", "Popen"},   {"torch._utils", "_rebuild_from_type_v2"},
      {"torch", "FloatStorage.__class__"}, {"numpy.core.multiarray", "_reconstruct"}};
  for (const auto& g : evil) {
    Pickle p;  // GLOBAL form: cls(args) via REDUCE, as __reduce__ writes it
    p.proto(2).global(g.first, g.second).mark().str("touch sentinel").op('t').op('R').stop();
    const std::string msg = parse_error(checkpoint(p, {}));
    EXPECT_TRUE(Contains(msg, "t.pth (archive/data.pkl): pickle error at byte")) << msg;
    EXPECT_TRUE(Contains(msg, "(GLOBAL): global " + g.first + "." + g.second + " is not allowed")) << msg;
    Pickle q;  // STACK_GLOBAL form (protocol 4+)
    q.proto(4).sstr(g.first).sstr(g.second).op(0x93).op(')').op('R').stop();
    EXPECT_TRUE(Contains(parse_error(checkpoint(q, {})), "(STACK_GLOBAL): global " + g.first + "." + g.second +
                                                            " is not allowed"));
  }
  // Allowed symbols are types, not functions to call.
  Pickle call;
  call.proto(2).global("torch", "FloatStorage").op(')').op('R').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(call, {})), "calling torch.FloatStorage is not supported"));
  Pickle od;
  od.proto(2).global("collections", "OrderedDict").mark().op(']').op('t').op('R').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(od, {})), "collections.OrderedDict is only accepted without arguments"));
  // BUILD on anything but an OrderedDict.
  Pickle build;
  build.proto(2).op(']').op('}').op('b').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(build, {})), "BUILD (setting an object's state) is only accepted on an "
                                                           "OrderedDict, found a list"));
  // Persistent ids other than torch's storages (a pickled nn.Module in the legacy format).
  Pickle module;
  module.proto(2).mark().str("module").integer(1).op('t').op('Q').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(module, {})), "save model.state_dict() instead"));
}

TEST(PthFaults, UnsupportedAndUnknownOpcodes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x81", "opcode 0x81 NEWOBJ is not supported"},   {"\x82\x01", "opcode 0x82 EXT1 is not supported"},
      {"i", "opcode 0x69 INST is not supported"},          {"o", "opcode 0x6f OBJ is not supported"},
      {"P0\n", "opcode 0x50 PERSID is not supported"},     {"I1\n", "opcode 0x49 INT is not supported"},
      {"\x97", "opcode 0x97 NEXT_BUFFER is not supported"}, {"\x8f", "opcode 0x8f EMPTY_SET is not supported"},
      {"\xff", "unknown opcode 0xff"},                     {"\x80\x06", "unsupported pickle protocol 6"},
      {"\x80\x01", "unsupported pickle protocol 1"}};
  for (const auto& c : cases) {
    Pickle p;
    p.proto(2).raw(c.first).stop();
    EXPECT_TRUE(Contains(parse_error(checkpoint(p, {})), c.second)) << c.second;
  }
}

TEST(PthFaults, TruncatedPicklesAtEveryByte) {
  const Pickle full = one_tensor();
  for (size_t n = 0; n < full.b.size(); ++n) {
    Pickle p;
    p.b = full.b.substr(0, n);
    const std::string msg = parse_error(checkpoint(p, {{"0", bytes_of(kSix)}}));
    EXPECT_TRUE(Contains(msg, "pickle error at byte")) << n << ": " << msg;
  }
}

TEST(PthFaults, HugeDeclaredLengthsAndBounds) {
  // BINUNICODE8 / BINBYTES8 / BINUNICODE / LONG4 declaring far more bytes than remain: refused before allocating.
  for (const std::string& op : {std::string("\x8d") + le(uint64_t{1} << 62, 8), std::string("\x8e") + le(~uint64_t{0}, 8),
                                std::string("X") + le(0xFFFFFFFFu, 4), std::string("\x8b") + le(0x7FFFFFFFu, 4)}) {
    Pickle p;
    p.proto(4).raw(op).raw("abc").stop();
    const std::string msg = parse_error(checkpoint(p, {}));
    EXPECT_TRUE(Contains(msg, "but only")) << msg;
    EXPECT_TRUE(Contains(msg, "remain (a truncated or corrupt pickle)")) << msg;
  }
  Pickle frame;
  frame.proto(4).op(0x95).raw(le(uint64_t{1} << 40, 8)).stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(frame, {})), "a frame of 1099511627776 bytes"));
  // Memo reads before writes; stack underflow; a missing MARK; odd SETITEMS; unhashable keys; invalid UTF-8.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"h\x05", "memo entry 5 is read before it is written"},
      {"j\x05\x00\x00\x00"s, "memo entry 5 is read before it is written"},
      {"R", "expected a value on the stack, found an empty stack"},
      {"(R", "expected a value on the stack, found a MARK"},
      {"Nt", "expected a MARK on the stack, found none"},
      {"}(K\x01u", "expected key/value pairs, found an odd number (1)"},
      {"}]K\x01s", "unhashable type 'list' used as a dict key"},
      {"X\x02\x00\x00\x00\xc3\x28"s, "a string that is not valid UTF-8"},
      {"K\x01K\x02" "a", "expected a list to append to, found an int"},
      {"K\x01K\x02K\x03s", "expected a dict to set items on, found an int"},
      {"N)R", "REDUCE calls None, expected an allowed global"},
      {"K\x01Q", "expected a persistent id ('storage', type, key, location, numel), found 1"},
      {"c\x00\x00"s, "expected a newline-terminated module or name"}};
  for (const auto& c : cases) {
    Pickle p;
    p.proto(2).raw(c.first).stop();
    EXPECT_TRUE(Contains(parse_error(checkpoint(p, {})), c.second)) << c.second;
  }
}

TEST(PthFaults, DeepNestingAndStackLimits) {
  // Lists nested 5000 deep, tuples nested 5000 deep (TUPLE1 keeps the stack at one value), 70000 MARKs,
  // and more than 2^20 values on the stack: each refused at its limit.
  Pickle lists;
  lists.proto(2);
  for (int i = 0; i < 5000; ++i) lists.op(']');
  for (int i = 0; i < 4999; ++i) lists.op('a');
  lists.stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(lists, {})), "values nested deeper than 1000 levels"));
  Pickle tuples;
  tuples.proto(2).op('N');
  for (int i = 0; i < 5000; ++i) tuples.op(0x85);
  tuples.stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(tuples, {})), "values nested deeper than 1000 levels"));
  Pickle marks;
  marks.proto(2).raw(std::string(70000, '(')).stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(marks, {})), "more than 65536 nested MARKs"));
  Pickle stack;
  stack.proto(2).raw(std::string((1u << 20) + 1, 'N')).stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(stack, {})), "stack deeper than 1048576 values"));
}

TEST(PthFaults, StoragesAndViewsAreCheckedAgainstTheFile) {
  // Storage declared larger than its record.
  Pickle big;
  big.proto(2).op('}').str("w").tensor("FloatStorage", "0", 1000, 0, {10}, {1}).op('s').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(big, {{"0", bytes_of(kSix)}})),
                       "t.pth: storage \"0\" declares 1000 x FloatStorage (4000 bytes), but its record "
                       "archive/data/0 holds 24 bytes"));
  // A storage whose element count overflows 2^63 bytes.
  Pickle huge;
  huge.proto(2).op('}').str("w").tensor("DoubleStorage", "0", int64_t{1} << 61, 0, {1}, {1}).op('s').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(huge, {{"0", ""}})), "more than 2^63 bytes"));
  // A view past its storage (size, stride and offset), negative and overflowing geometry.
  const std::vector<std::tuple<int64_t, std::vector<int64_t>, std::vector<int64_t>, std::string>> views = {
      {0, {2, 4}, {4, 1}, "reads element 7 of float32, past the end of storage \"0\" (6 x FloatStorage, 24 bytes)"},
      {5, {2}, {1}, "reads element 6 of float32"},
      {0, {3}, {3}, "reads element 6 of float32"},
      {0, {2}, {-1}, "must not be negative"},
      {-1, {2}, {1}, "negative storage offset -1"},
      {0, {2, 3}, {3}, "have different lengths"},
      {0, {int64_t{1} << 62, 4}, {1, 1}, "overflows 64-bit arithmetic"},
      {0, {2, int64_t{1} << 62}, {1, 4}, "overflows 64-bit arithmetic"}};
  for (const auto& v : views) {
    Pickle p;
    p.proto(2).op('}').str("w").tensor("FloatStorage", "0", 6, std::get<0>(v), std::get<1>(v), std::get<2>(v));
    p.op('s').stop();
    EXPECT_TRUE(Contains(parse_error(checkpoint(p, {{"0", bytes_of(kSix)}})), std::get<3>(v))) << std::get<3>(v);
  }
  // Zero-element views need no bytes at all.
  Pickle zero;
  zero.proto(2).op('}').str("w").tensor("FloatStorage", "0", 0, 100, {0, 3}, {3, 1}).op('s').stop();
  EXPECT_EQ(get(parse(checkpoint(zero, {{"0", ""}})), "w").shape(), (pfv::Shape{0, 3}));
  // A storage with no record; the same key declared with two types.
  EXPECT_TRUE(Contains(parse_error(checkpoint(one_tensor(), {})), "storage \"0\" (FloatStorage) has no record "
                                                                  "archive/data/0"));
  Pickle twice;
  twice.proto(2).op('}').mark().str("a").f32("0", {6}).str("b").tensor("HalfStorage", "0", 12, 0, {12}, {1});
  twice.op('u').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(twice, {{"0", bytes_of(kSix)}})),
                       "storage \"0\" is declared twice, as 6 x FloatStorage and as 12 x HalfStorage"));
  // Conjugate / negative views and parameters.
  Pickle neg;
  neg.proto(2).op('}').str("w").global("torch._utils", "_rebuild_tensor_v2").mark().storage("FloatStorage", "0", 6);
  neg.integer(0).ints({6}).ints({1}).op(0x89).empty_ordered_dict().op('}').str("neg").op(0x88).op('s');
  neg.op('t').op('R').op('s').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(neg, {{"0", bytes_of(kSix)}})), "(a conjugate or negative view) is "
                                                                              "not supported"));
  // _rebuild_parameter(tensor, requires_grad, hooks), and _rebuild_tensor_v3 over an untyped storage with a dtype.
  auto v3 = [](Pickle& p, const std::string& name, const std::string& key, int64_t nbytes, int64_t offset,
               const std::string& dtype) {
    p.str(name).global("torch._utils", "_rebuild_tensor_v3").mark().mark().str("storage");
    p.global("torch.storage", "UntypedStorage").str(key).str("cpu").integer(nbytes).op('t').op('Q');
    p.integer(offset).ints({2}).ints({1}).op(0x89).empty_ordered_dict().global("torch", dtype).op('t').op('R');
  };
  Pickle param;
  param.proto(2).op('}').mark().str("p").global("torch._utils", "_rebuild_parameter").mark().f32("0", {6});
  param.op(0x88).empty_ordered_dict().op('t').op('R');
  v3(param, "v3", "1", 24, 1, "float32");
  param.str("legacy").global("torch._utils", "_rebuild_tensor").mark().storage("FloatStorage", "0", 6);
  param.integer(4).ints({2}).ints({1}).op('t').op('R');
  param.op('u').stop();
  const auto sd = parse(checkpoint(param, {{"0", bytes_of(kSix)}, {"1", bytes_of(kSix)}}));
  EXPECT_EQ(floats(get(sd, "p")), kSix);
  EXPECT_EQ(floats(get(sd, "v3")), (std::vector<float>{kSix[1], kSix[2]}));
  EXPECT_EQ(floats(get(sd, "legacy")), (std::vector<float>{kSix[4], kSix[5]}));
  Pickle u16;
  u16.proto(2).op('}').mark();
  v3(u16, "u16", "2", 4, 0, "uint16");
  u16.op('u').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(u16, {{"2", "abcd"}})),
                       "tensor \"u16\" has dtype uint16, which pyflame_vision does not read"));
  Pickle past;  // v3 bounds use the tensor's dtype: 2 float32 from element 5 need 28 of the 24 bytes
  past.proto(2).op('}').mark();
  v3(past, "x", "1", 24, 5, "float32");
  past.op('u').stop();
  EXPECT_TRUE(Contains(parse_error(checkpoint(past, {{"1", bytes_of(kSix)}})), "reads element 6 of float32, past the "
                                                                               "end of storage \"1\" (24 x "
                                                                               "UntypedStorage, 24 bytes)"));
}

TEST(PthFaults, ArchiveFaults) {
  const std::string good = checkpoint(one_tensor(), {{"0", bytes_of(kSix)}});
  // Every truncation of a valid archive is a WeightsError.
  for (size_t n = 0; n < good.size(); n += 7) parse_error(good.substr(0, n));
  EXPECT_TRUE(Contains(parse_error(good.substr(0, good.size() - 1)), "no end-of-central-directory record"));
  // Compressed and encrypted entries.
  std::vector<Entry> e = {{"a/data.pkl", one_tensor().b}, {"a/data/0", bytes_of(kSix)}};
  e[1].method = 8;
  EXPECT_TRUE(Contains(parse_error(zip(e)), "record a/data/0 is compressed (method 8, deflate); torch.save writes "
                                            "uncompressed (stored) entries"));
  e[1].method = 0;
  e[1].flags |= 1;
  EXPECT_TRUE(Contains(parse_error(zip(e)), "record a/data/0 is encrypted"));
  // TorchScript, .npz and foreign archives; duplicate names; two pickles.
  EXPECT_TRUE(Contains(parse_error(zip({{"m/data.pkl", "."}, {"m/constants.pkl", "."}, {"m/code/m.py", ""}})),
                       "a TorchScript archive (it has m/constants.pkl), not a state dict; save model.state_dict() "
                       "instead"));
  EXPECT_TRUE(Contains(parse_error(zip({{"w.npy", "x"}})), "a NumPy .npz archive"));
  EXPECT_TRUE(Contains(parse_error(zip({{"readme.txt", "x"}})), "a ZIP archive without data.pkl, so not a PyTorch "
                                                                "checkpoint (entries: readme.txt)"));
  EXPECT_TRUE(Contains(parse_error(zip({{"a/data.pkl", "."}, {"a/data.pkl", "."}})), "duplicate entry name "
                                                                                      "a/data.pkl"));
  EXPECT_TRUE(Contains(parse_error(zip({{"a/data.pkl", "."}, {"b/data.pkl", "."}})), "the archive has two pickles"));
  // Version records.
  EXPECT_TRUE(Contains(parse_error(zip({{"a/data.pkl", one_tensor().b}, {"a/version", "99\n"}})),
                       "record a/version holds \"99\\u000a\", expected a format version from 1 to 10"));
  // Central directory entries pointing outside the file.
  std::string bad = good;
  const size_t cd = bad.rfind(std::string("PK\x01\x02", 4));
  bad.replace(cd + 42, 4, le(0x7FFFFFF0u, 4));  // the last entry's local header offset
  EXPECT_TRUE(Contains(parse_error(bad), "lies outside the entries' area"));
  bad = good;
  bad.replace(cd + 24, 4, le(0x10000000u, 4));  // its size
  bad.replace(cd + 20, 4, le(0x10000000u, 4));
  EXPECT_TRUE(Contains(parse_error(bad), "extend past the start of the central directory"));
  // A ZIP64 size with no ZIP64 extra field.
  bad = good;
  bad.replace(cd + 24, 4, le(0xFFFFFFFFu, 4));
  EXPECT_TRUE(Contains(parse_error(bad), "has a size or offset of 0xFFFFFFFF but no ZIP64 extra field"));
  // Files of other kinds.
  std::string tar(1024, '\0');
  tar.replace(257, 5, "ustar");
  EXPECT_TRUE(Contains(parse_error(tar), "the tar format of torch < 0.4"));
  EXPECT_TRUE(Contains(parse_error("hello world, not weights"), "not a PyTorch checkpoint (expected a ZIP archive or "
                                                                "a pickle as torch.save writes them; the file starts "
                                                                "with 68 65 6c 6c"));
  EXPECT_TRUE(Contains(parse_error(""), "the file is empty"));
}

TEST(PthFaults, RandomCorruptionNeverCrashes) {
  // Byte flips anywhere in a valid archive and in a legacy file: a WeightsError or a (possibly different) result,
  // never a crash or a read outside the data (the sanitizer builds catch the latter).
  const std::string zip_bytes = checkpoint(one_tensor(), {{"0", bytes_of(kSix)}});
  Pickle obj;
  obj.pid = Pickle::kLegacy;
  obj.proto(2).empty_ordered_dict().mark().str("w").f32("1", {2, 3}).op('u').stop();
  const std::string legacy_bytes = legacy(obj, {{"1", bytes_of(kSix)}}, {6});
  std::mt19937 rng(1234);
  int errors = 0, ok = 0;
  for (const std::string* base : {&zip_bytes, &legacy_bytes}) {
    for (int trial = 0; trial < 3000; ++trial) {
      std::string b = *base;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng() & 0xFF);
      try {
        parse(b);
        ++ok;
      } catch (const pfv::WeightsError&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 1000);
  EXPECT_GT(ok, 100);  // flips in padding and unchecked bytes leave a readable file
}

// ================================================================ torch-written files

std::string fixture(const std::string& name) { return std::string(PFV_TEST_DATA_DIR) + "/pth/" + name; }

void expect_fixture_values(const pfv::NamedTensors& sd, const std::string& prefix = "") {
  const std::vector<std::string> names = {"a", "a_t", "a_row", "h", "bf", "d", "n", "i", "u", "b", "p"};
  ASSERT_EQ(sd.size(), names.size());
  for (size_t k = 0; k < names.size(); ++k) EXPECT_EQ(sd[k].first, prefix + names[k]);
  std::vector<float> a(12);
  for (int i = 0; i < 12; ++i) a[static_cast<size_t>(i)] = static_cast<float>(i) / 4.0f - 1.0f;
  EXPECT_EQ(floats(sd[0].second), a);
  std::vector<float> at;
  for (int c = 0; c < 4; ++c)
    for (int r = 0; r < 3; ++r) at.push_back(a[static_cast<size_t>(r * 4 + c)]);
  EXPECT_EQ(sd[1].second.shape(), (pfv::Shape{4, 3}));
  EXPECT_EQ(floats(sd[1].second), at);
  EXPECT_EQ(floats(sd[2].second), (std::vector<float>{a[4], a[5], a[6], a[7]}));
  EXPECT_EQ(floats(sd[3].second), (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  EXPECT_EQ(floats(sd[4].second), (std::vector<float>{0.0f, 1.5f, 3.0f, 4.5f}));
  EXPECT_EQ(floats(sd[5].second), (std::vector<float>{0.0f, static_cast<float>(1.0 / 3.0), static_cast<float>(2.0 / 3.0)}));
  EXPECT_EQ(sd[6].second.shape(), pfv::Shape{});
  EXPECT_EQ(sd[6].second.data_i64()[0], 7);
  ASSERT_EQ(sd[7].second.dtype(), pfv::DType::int32);
  const auto* i = static_cast<const int32_t*>(sd[7].second.raw_data());
  EXPECT_EQ(std::vector<int32_t>(i, i + 5), (std::vector<int32_t>{-2, -1, 0, 1, 2}));
  const auto* u = static_cast<const uint8_t*>(sd[8].second.raw_data());
  EXPECT_EQ(std::vector<uint8_t>(u, u + 4), (std::vector<uint8_t>{0, 60, 120, 180}));
  const auto* b = static_cast<const uint8_t*>(sd[9].second.raw_data());
  EXPECT_EQ(std::vector<uint8_t>(b, b + 3), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(floats(sd[10].second), (std::vector<float>{0.5f, -2.0f}));
}

TEST(PthTorchFiles, EveryFormatTorchWrites) {
  for (const char* name : {"zip_p2.pth", "zip_p5.pth", "legacy_p2.pth", "zip_nocrc.pth"}) {
    SCOPED_TRACE(name);
    expect_fixture_values(pfv::read_pytorch_checkpoint(fixture(name)));
    expect_fixture_values(pfv::read_weights(fixture(name)));
    const std::string bytes = read_file(fixture(name));
    expect_fixture_values(pfv::parse_pytorch_checkpoint(bytes.data(), bytes.size(), name));
  }
  pfv::CheckpointOptions o;
  o.key = "state_dict";
  expect_fixture_values(pfv::read_pytorch_checkpoint(fixture("wrapped_module.pth"), o), "module.");
  o.strip_prefix = "module.";
  expect_fixture_values(pfv::read_pytorch_checkpoint(fixture("wrapped_module.pth"), o));
  const std::string msg = message_of<pfv::WeightsError>([] { pfv::read_weights(fixture("wrapped_module.pth")); });
  EXPECT_TRUE(Contains(msg, "pass key=\"state_dict\" and strip_prefix=\"module.\""));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { pfv::read_weights(fixture("torchscript.pt")); }),
                       "torchscript.pt: a TorchScript archive (it has torchscript/constants.pkl), not a state dict"));
}

TEST(PthTorchFiles, EveryTruncationAndByteFlipOfATorchFileIsSafe) {
  for (const char* name : {"zip_p5.pth", "legacy_p2.pth"}) {
    const std::string bytes = read_file(fixture(name));
    for (size_t n = 0; n < bytes.size(); ++n) {
      try {
        pfv::parse_pytorch_checkpoint(bytes.data(), n, name);
        ADD_FAILURE() << name << " truncated to " << n << " bytes was read";
      } catch (const pfv::WeightsError&) {
      }
    }
    for (size_t at = 0; at < bytes.size(); ++at) {
      std::string b = bytes;
      b[at] = static_cast<char>(b[at] ^ 0x5A);
      try {
        pfv::parse_pytorch_checkpoint(b.data(), b.size(), name);
      } catch (const pfv::WeightsError&) {
      }
    }
  }
}

// ================================================================ files and models

TEST(PthFiles, ReadWeightsPicksTheFormatFromTheContent) {
  auto m = pfv::models::resnet18(4);
  m->init_weights(3);
  const std::string st = temp_path("w.safetensors"), odd = temp_path("w.weights");
  pfv::save_weights(*m, st);
  std::rename(st.c_str(), odd.c_str());  // a .safetensors file under another name
  const auto sd = pfv::read_weights(odd);
  EXPECT_EQ(sd.size(), m->state_dict().size());
  pfv::CheckpointOptions o;
  o.strip_prefix = "layer1.";
  EXPECT_EQ(pfv::read_weights(odd, o)[6].first, "0.conv1.weight");
  o.key = "x";
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::read_weights(odd, o); }),
                       "is a .safetensors file (a flat dict of tensors)"));
  std::remove(odd.c_str());
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { pfv::read_weights("/nonexistent/x.pth"); }),
                       "cannot open /nonexistent/x.pth: No such file or directory"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { pfv::read_pytorch_checkpoint("/tmp"); }),
                       "cannot read /tmp: it is a directory"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::load_weights(*m, "w.npz"); }),
                       "w.npz is a NumPy archive, which only the Python package reads"));
}

// A torch-style zip checkpoint of a model's state dict (each tensor its own storage).
std::string checkpoint_of(const pfv::NamedTensors& sd, const std::string& prefix = "") {
  Pickle p;
  p.proto(2).empty_ordered_dict().mark();
  std::map<std::string, std::string> storages;
  for (size_t i = 0; i < sd.size(); ++i) {
    const auto& t = sd[i].second;
    const std::string key = std::to_string(i);
    std::vector<int64_t> stride(t.shape().size(), 1);
    for (size_t d = t.shape().size(); d-- > 1;) stride[d - 1] = stride[d] * t.shape()[d];
    p.str(prefix + sd[i].first)
        .tensor(t.dtype() == pfv::DType::int64 ? "LongStorage" : "FloatStorage", key, t.numel(), 0, t.shape(), stride);
    storages[key] = std::string(static_cast<const char*>(t.raw_data()), static_cast<size_t>(t.nbytes()));
  }
  p.op('u').stop();
  return checkpoint(p, storages);
}

TEST(PthFiles, LoadWeightsFromACheckpointGivesTheSameModel) {
  auto src = pfv::models::resnet18(10);
  src->init_weights(7);
  const std::string path = temp_path("resnet18.pth");
  write_file(path, checkpoint_of(src->state_dict()));
  std::vector<float> x(2 * 3 * 32 * 32);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.01f);
  const pfv::Tensor want = src->forward(x.data(), {2, 3, 32, 32});

  auto m = pfv::models::resnet18(10);
  const auto r = pfv::load_weights(*m, path);
  EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
  const pfv::Tensor got = m->forward(x.data(), {2, 3, 32, 32});
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), static_cast<size_t>(want.nbytes())), 0);

  // DataParallel keys: the failed load says how to fix it and leaves the model as it was.
  write_file(path, checkpoint_of(src->state_dict(), "module."));
  auto other = pfv::models::resnet18(10);
  other->init_weights(1);
  const pfv::Tensor before = other->forward(x.data(), {2, 3, 32, 32});
  const std::string msg = message_of<pfv::WeightsError>([&] { pfv::load_weights(*other, path); });
  EXPECT_TRUE(Contains(msg, path + ": Error(s) in loading state_dict for ResNet:"));
  EXPECT_TRUE(Contains(msg, "Every key starts with \"module.\" (a DataParallel checkpoint): pass "
                            "strip_prefix=\"module.\"."));
  EXPECT_EQ(std::memcmp(other->forward(x.data(), {2, 3, 32, 32}).raw_data(), before.raw_data(),
                        static_cast<size_t>(before.nbytes())),
            0);
  pfv::CheckpointOptions o;
  o.strip_prefix = "module.";
  pfv::load_weights(*other, path, true, o);
  EXPECT_EQ(std::memcmp(other->forward(x.data(), {2, 3, 32, 32}).raw_data(), want.raw_data(),
                        static_cast<size_t>(want.nbytes())),
            0);
  std::remove(path.c_str());
}

TEST(PthFiles, LoadStateDictTakesOverTensorsNobodyElseHolds) {
  auto m = pfv::models::resnet18(2);
  m->init_weights(0);
  auto sd = m->state_dict();  // fresh copies, each held once
  std::vector<std::weak_ptr<void>> storages;
  for (const auto& kv : sd) storages.push_back(kv.second.storage());
  const pfv::Tensor kept = sd[0].second;  // held twice: must be copied, not shared
  auto m2 = pfv::models::resnet18(2);
  m2->load_state_dict(std::move(sd));
  sd.clear();
  EXPECT_FALSE(storages[1].expired());  // the model holds the tensor it was given
  EXPECT_FALSE(storages.back().expired());
  EXPECT_EQ(storages[0].lock(), kept.storage());
  EXPECT_EQ(storages[0].use_count(), 1);  // only `kept`: the model made its own copy

  // The const overload copies everything.
  auto sd2 = m->state_dict();
  std::vector<std::weak_ptr<void>> copied;
  for (const auto& kv : sd2) copied.push_back(kv.second.storage());
  m2->load_state_dict(sd2);
  sd2.clear();
  for (const auto& w : copied) EXPECT_TRUE(w.expired());
}

}  // namespace
