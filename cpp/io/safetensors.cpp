// .safetensors reader and writer (format and rules: include/pyflame_vision/io.h).
//
// The header parser is schema-directed rather than a general JSON parser: the
// header is one object of objects whose leaves are strings, non-negative
// integers and arrays of them, so nesting depth is fixed (3) and nothing is
// recursive. All sizes are checked against the file before anything is
// allocated for them.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "io/byte_source.h"
#include "io/io_util.h"
#include "io/readers.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"

namespace pyflame_vision {
namespace {

using io_detail::ends_with_ci;
using io_detail::quoted;
using io_detail::utf8_sequence;
using io_detail::valid_utf8;

// The `safetensors` package refuses headers above 100 MB; so do we, before
// allocating one.
constexpr uint64_t kMaxHeaderBytes = 100000000;

bool little_endian_host() {
  const uint16_t probe = 1;
  unsigned char b;
  std::memcpy(&b, &probe, 1);
  return b == 1;
}

void require_little_endian() {
  if (!little_endian_host())
    throw Unsupported(".safetensors data is little-endian; this library does not support big-endian hosts");
}

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {
    {"F64", DType::float64}, {"F32", DType::float32}, {"F16", DType::float16}, {"BF16", DType::bfloat16},
    {"I64", DType::int64},   {"I32", DType::int32},   {"U8", DType::uint8},    {"BOOL", DType::bool_},
};

const char* safetensors_dtype(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e.name;
  throw InvalidArgument(std::string("save_safetensors: dtype ") + dtype_name(d) + " has no .safetensors name");
}

std::string supported_dtypes() {
  std::string s;
  for (const auto& e : kDTypes) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct TensorInfo {
  std::string name;
  DType dtype = DType::float32;
  Shape shape;
  uint64_t begin = 0, end = 0;
  uint64_t header_pos = 0;  // file offset of the entry (for messages)
};

struct Header {
  std::vector<TensorInfo> tensors;
  Metadata metadata;
};

// Parses the JSON header [p, p + n), which starts at byte 8 of `source`.
class HeaderParser {
 public:
  HeaderParser(const char* p, size_t n, const std::string& source) : p_(p), n_(n), source_(source) {}

  Header parse() {
    Header h;
    std::set<std::string> seen;
    bool has_metadata = false;
    skip_ws();
    expect('{', "'{' (the header is a JSON object)");
    skip_ws();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        skip_ws();
        const size_t key_pos = i_;
        std::string key = parse_string("a tensor name (a JSON string)");
        skip_ws();
        expect(':', "':' after " + quoted(key));
        skip_ws();
        if (key == "__metadata__") {
          if (has_metadata) fail_at(key_pos, "duplicate \"__metadata__\" entry");
          has_metadata = true;
          h.metadata = parse_metadata();
        } else {
          if (!seen.insert(key).second) fail_at(key_pos, "duplicate tensor name " + quoted(key));
          h.tensors.push_back(parse_tensor(std::move(key), key_pos));
        }
        skip_ws();
        const char c = peek();
        if (c == ',') {
          ++i_;
          continue;
        }
        if (c == '}') {
          ++i_;
          break;
        }
        fail("expected ',' or '}' after an entry of the header object, found " + found());
      }
    }
    // The writer pads the header with spaces to an 8-byte boundary.
    skip_ws();
    if (i_ != n_) fail("expected the end of the header after its JSON object, found " + found());
    return h;
  }

 private:
  [[noreturn]] void fail_at(size_t pos, const std::string& msg) const {
    throw WeightsError(source_ + ": malformed .safetensors header at byte " + std::to_string(8 + pos) + ": " + msg);
  }
  [[noreturn]] void fail(const std::string& msg) const { fail_at(i_, msg); }

  char peek() const { return i_ < n_ ? p_[i_] : '\0'; }
  std::string found() const {
    if (i_ >= n_) return "the end of the header";
    const unsigned char c = static_cast<unsigned char>(p_[i_]);
    char buf[32];
    if (c >= 0x20 && c < 0x7F) {
      std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    }
    return buf;
  }
  void skip_ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }
  void expect(char c, const std::string& what) {
    if (i_ >= n_ || p_[i_] != c) fail("expected " + what + ", found " + found());
    ++i_;
  }

  uint32_t hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = peek();
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("expected a hexadecimal digit in a \\u escape, found " + found());
      }
      v = v * 16 + d;
      ++i_;
    }
    return v;
  }

  std::string parse_string(const std::string& what) {
    if (peek() != '"') fail("expected " + what + ", found " + found());
    ++i_;
    std::string out;
    for (;;) {
      if (i_ >= n_) fail("unterminated string: expected '\"', found the end of the header");
      const unsigned char c = static_cast<unsigned char>(p_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("expected a string character, found control " + found() + " (must be escaped)");
      if (c == '\\') {
        ++i_;
        const char e = peek();
        ++i_;
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (peek() != '\\' || i_ + 1 >= n_ || p_[i_ + 1] != 'u')
                fail("expected a \\u low surrogate after a high surrogate, found " + found());
              i_ += 2;
              const uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("expected a low surrogate (\\uDC00-\\uDFFF) after a high surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default:
            --i_;
            fail("expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found " + found());
        }
        continue;
      }
      const size_t k = utf8_sequence(reinterpret_cast<const unsigned char*>(p_), n_, i_);
      if (!k) fail("invalid UTF-8 in a string at " + found());
      out.append(p_ + i_, k);
      i_ += k;
    }
  }

  uint64_t parse_uint(const std::string& what) {
    const char c = peek();
    if (c < '0' || c > '9') fail("expected " + what + " (a non-negative integer), found " + found());
    if (c == '0' && i_ + 1 < n_ && p_[i_ + 1] >= '0' && p_[i_ + 1] <= '9') fail("leading zero in " + what);
    uint64_t v = 0;
    const size_t start = i_;
    while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') {
      const uint64_t d = static_cast<uint64_t>(p_[i_] - '0');
      if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10)
        fail_at(start, what + " does not fit in a signed 64-bit integer");
      v = v * 10 + d;
      ++i_;
    }
    const char t = peek();
    if (t == '.' || t == 'e' || t == 'E') fail("expected " + what + " to be an integer, found " + found());
    return v;
  }

  std::vector<uint64_t> parse_uint_array(const std::string& what) {
    expect('[', "'[' starting " + what);
    std::vector<uint64_t> out;
    skip_ws();
    if (peek() == ']') {
      ++i_;
      return out;
    }
    for (;;) {
      skip_ws();
      out.push_back(parse_uint("an entry of " + what));
      skip_ws();
      const char c = peek();
      ++i_;
      if (c == ']') return out;
      if (c != ',') {
        --i_;
        fail("expected ',' or ']' in " + what + ", found " + found());
      }
    }
  }

  Metadata parse_metadata() {
    Metadata m;
    std::set<std::string> seen;
    expect('{', "'{' (\"__metadata__\" maps strings to strings)");
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return m;
    }
    for (;;) {
      skip_ws();
      const size_t pos = i_;
      std::string key = parse_string("a metadata key (a JSON string)");
      if (!seen.insert(key).second) fail_at(pos, "duplicate metadata key " + quoted(key));
      skip_ws();
      expect(':', "':' after metadata key " + quoted(key));
      skip_ws();
      std::string value = parse_string("a string value for metadata key " + quoted(key));
      m.emplace_back(std::move(key), std::move(value));
      skip_ws();
      const char c = peek();
      ++i_;
      if (c == '}') return m;
      if (c != ',') {
        --i_;
        fail("expected ',' or '}' in \"__metadata__\", found " + found());
      }
    }
  }

  TensorInfo parse_tensor(std::string name, size_t pos) {
    TensorInfo t;
    t.name = std::move(name);
    t.header_pos = 8 + pos;
    const std::string in = " of tensor " + quoted(t.name);
    expect('{', "'{' starting the entry" + in);
    bool has_dtype = false, has_shape = false, has_offsets = false;
    skip_ws();
    if (peek() != '}') {
      for (;;) {
        skip_ws();
        const size_t kpos = i_;
        const std::string key = parse_string("a field name" + in);
        skip_ws();
        expect(':', "':' after " + quoted(key) + in);
        skip_ws();
        if (key == "dtype") {
          if (has_dtype) fail_at(kpos, "duplicate \"dtype\"" + in);
          has_dtype = true;
          const size_t vpos = i_;
          const std::string d = parse_string("the dtype" + in + " (a string such as \"F32\")");
          bool ok = false;
          for (const auto& e : kDTypes)
            if (d == e.name) t.dtype = e.dtype, ok = true;
          if (!ok)
            fail_at(vpos, "unsupported dtype " + quoted(d) + in + " (supported: " + supported_dtypes() + ")");
        } else if (key == "shape") {
          if (has_shape) fail_at(kpos, "duplicate \"shape\"" + in);
          has_shape = true;
          for (uint64_t v : parse_uint_array("the shape" + in)) t.shape.push_back(static_cast<int64_t>(v));
        } else if (key == "data_offsets") {
          if (has_offsets) fail_at(kpos, "duplicate \"data_offsets\"" + in);
          has_offsets = true;
          const size_t vpos = i_;
          const auto off = parse_uint_array("the data_offsets" + in);
          if (off.size() != 2)
            fail_at(vpos, "expected 2 data_offsets [begin, end]" + in + ", found " + std::to_string(off.size()));
          t.begin = off[0], t.end = off[1];
        } else {
          fail_at(kpos, "unexpected field " + quoted(key) + in + " (expected \"dtype\", \"shape\", \"data_offsets\")");
        }
        skip_ws();
        const char c = peek();
        if (c == ',') {
          ++i_;
          continue;
        }
        if (c == '}') break;
        fail("expected ',' or '}' in the entry" + in + ", found " + found());
      }
    }
    if (!has_dtype || !has_shape || !has_offsets)
      fail(std::string("expected the fields \"dtype\", \"shape\" and \"data_offsets\"") + in + ", missing " +
           (!has_dtype ? "\"dtype\"" : !has_shape ? "\"shape\"" : "\"data_offsets\""));
    ++i_;  // '}'
    return t;
  }

  const char* p_;
  size_t n_;
  size_t i_ = 0;
  const std::string& source_;
};

uint64_t read_u64_le(const unsigned char* b) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | b[k];
  return v;
}

// Checks sizes and that the tensors tile the data buffer; returns the tensors
// sorted by offset (the order to read them in).
std::vector<size_t> validate(const Header& h, uint64_t data_size, const std::string& source) {
  for (const auto& t : h.tensors) {
    const std::string where =
        source + ": tensor " + quoted(t.name) + " (header byte " + std::to_string(t.header_pos) + "): ";
    int64_t numel = 1;
    for (int64_t d : t.shape)
      if (__builtin_mul_overflow(numel, d, &numel))
        throw WeightsError(where + "shape " + shape_to_string(t.shape) + " has more than 2^63 elements");
    int64_t nbytes;
    if (__builtin_mul_overflow(numel, dtype_itemsize(t.dtype), &nbytes))
      throw WeightsError(where + "shape " + shape_to_string(t.shape) + " is larger than 2^63 bytes");
    if (t.end < t.begin)
      throw WeightsError(where + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                         "] end before they begin");
    if (t.end - t.begin != static_cast<uint64_t>(nbytes))
      throw WeightsError(where + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] span " +
                         std::to_string(t.end - t.begin) + " bytes, expected " + std::to_string(nbytes) +
                         " for shape " + shape_to_string(t.shape) + " of " + dtype_name(t.dtype));
    if (t.end > data_size)
      throw WeightsError(where + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                         "] exceed the data buffer of " + std::to_string(data_size) + " bytes");
  }
  std::vector<size_t> order(h.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = h.tensors[a];
    const auto& y = h.tensors[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t at = 0;
  const TensorInfo* prev = nullptr;
  for (size_t i : order) {
    const auto& t = h.tensors[i];
    if (t.begin != at) {
      const std::string prev_desc = prev ? "the previous tensor " + quoted(prev->name) + " ends at " : "the buffer starts at ";
      throw WeightsError(source + ": tensor " + quoted(t.name) + " starts at data byte " + std::to_string(t.begin) +
                         " but " + prev_desc + std::to_string(at) +
                         (t.begin < at ? " (tensors must not overlap)" : " (the data buffer must have no gaps)"));
    }
    at = t.end;
    prev = &t;
  }
  if (at != data_size)
    throw WeightsError(source + ": the tensors cover " + std::to_string(at) + " bytes of the data buffer, which has " +
                       std::to_string(data_size) + " (the data buffer must have no unused bytes)");
  return order;
}

uint64_t check_header_length(const unsigned char* first8, uint64_t file_size, const std::string& source) {
  const uint64_t n = read_u64_le(first8);
  if (n > kMaxHeaderBytes)
    throw WeightsError(source + ": header length " + std::to_string(n) + " (bytes 0-7) exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes; not a .safetensors file?");
  if (n > file_size - 8)
    throw WeightsError(source + ": header length " + std::to_string(n) + " (bytes 0-7) exceeds the " +
                       std::to_string(file_size - 8) + " bytes that follow it (truncated file?)");
  return n;
}

void check_file_size(uint64_t size, const std::string& source) {
  if (size < 8)
    throw WeightsError(source + ": file is " + std::to_string(size) +
                       " bytes, expected at least 8 (the header length)");
}

std::string system_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

void check_save_path(const std::string& path) {
  if (ends_with_ci(path, ".safetensors")) return;
  throw InvalidArgument("save_weights: unsupported weight file " + path +
                        ": expected a name ending in .safetensors (PyTorch checkpoints are read, never written)");
}

}  // namespace

namespace io_detail {
SafetensorsFile read_safetensors(const ByteSource& src) {
  require_little_endian();
  const std::string& source = src.name();
  check_file_size(src.size(), source);
  uint8_t first8[8];
  src.read(0, 8, first8);
  const uint64_t n = check_header_length(first8, src.size(), source);
  std::vector<uint8_t> header_buf;
  const uint8_t* header = src.view(8, n, header_buf);
  Header h = HeaderParser(reinterpret_cast<const char*>(header), static_cast<size_t>(n), source).parse();
  const auto order = validate(h, src.size() - 8 - n, source);
  SafetensorsFile f;
  f.metadata = std::move(h.metadata);
  f.tensors.resize(h.tensors.size());
  // The tensors tile the buffer, so reading them in offset order is one sequential pass.
  for (size_t i : order) {
    const auto& t = h.tensors[i];
    Tensor tensor{TensorSpec(t.shape, t.dtype)};
    src.read(8 + n + t.begin, t.end - t.begin, tensor.raw_data());
    f.tensors[i] = {t.name, std::move(tensor)};
  }
  return f;
}
}  // namespace io_detail

SafetensorsFile parse_safetensors(const void* data, size_t size, const std::string& source) {
  const io_detail::MemorySource src(static_cast<const uint8_t*>(data), size, source);
  return io_detail::read_safetensors(src);
}

SafetensorsFile read_safetensors(const std::string& path) {
  const io_detail::FileSource src(path);
  return io_detail::read_safetensors(src);
}

NamedTensors load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }

namespace {
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}
}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  require_little_endian();
  std::set<std::string> names;
  for (const auto& kv : tensors) {
    if (kv.first.empty()) throw InvalidArgument("save_safetensors: a tensor has an empty name");
    if (kv.first == "__metadata__") throw InvalidArgument("save_safetensors: \"__metadata__\" is not a valid tensor name");
    if (!valid_utf8(kv.first)) throw InvalidArgument("save_safetensors: tensor name " + quoted(kv.first) + " is not UTF-8");
    if (!names.insert(kv.first).second)
      throw InvalidArgument("save_safetensors: duplicate tensor name " + quoted(kv.first));
    if (!kv.second.defined()) throw InvalidArgument("save_safetensors: tensor " + quoted(kv.first) + " has no data");
    safetensors_dtype(kv.second.dtype());
  }
  std::set<std::string> keys;
  for (const auto& kv : metadata) {
    if (!valid_utf8(kv.first) || !valid_utf8(kv.second))
      throw InvalidArgument("save_safetensors: metadata entry " + quoted(kv.first) + " is not UTF-8");
    if (!keys.insert(kv.first).second)
      throw InvalidArgument("save_safetensors: duplicate metadata key " + quoted(kv.first));
  }
  // Data layout: larger item sizes first (stable), so with an 8-byte aligned
  // buffer start every tensor is aligned to its item size.
  std::vector<size_t> layout(tensors.size());
  for (size_t i = 0; i < layout.size(); ++i) layout[i] = i;
  std::stable_sort(layout.begin(), layout.end(), [&](size_t a, size_t b) {
    return dtype_itemsize(tensors[a].second.dtype()) > dtype_itemsize(tensors[b].second.dtype());
  });
  std::vector<std::pair<uint64_t, uint64_t>> offsets(tensors.size());
  uint64_t at = 0;
  for (size_t i : layout) {
    const uint64_t nb = static_cast<uint64_t>(tensors[i].second.nbytes());
    offsets[i] = {at, at + nb};
    at += nb;
  }
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i)
      header += (i ? "," : "") + json_string(metadata[i].first) + ":" + json_string(metadata[i].second);
    header += "}";
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    header += (i || !metadata.empty() ? "," : "") + json_string(tensors[i].first) + ":{\"dtype\":\"" +
              safetensors_dtype(t.dtype()) + "\",\"shape\":[";
    for (size_t d = 0; d < t.shape().size(); ++d) header += (d ? "," : "") + std::to_string(t.shape()[d]);
    header += "],\"data_offsets\":[" + std::to_string(offsets[i].first) + "," + std::to_string(offsets[i].second) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw WeightsError(system_error("cannot create", tmp));
    unsigned char len[8];
    uint64_t n = header.size();
    for (int k = 0; k < 8; ++k, n >>= 8) len[k] = static_cast<unsigned char>(n & 0xFF);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (size_t i : layout)
      out.write(static_cast<const char*>(tensors[i].second.raw_data()),
                static_cast<std::streamsize>(tensors[i].second.nbytes()));
    out.flush();
    if (!out) {
      const std::string msg = system_error("cannot write", tmp);
      out.close();
      std::remove(tmp.c_str());
      throw WeightsError(msg);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = system_error("cannot rename " + tmp + " to", path);
    std::remove(tmp.c_str());
    throw WeightsError(msg);
  }
}

void save_weights(const models::Model& model, const std::string& path) {
  check_save_path(path);
  save_safetensors(path, model.state_dict(), {{"format", "np"}, {"model", model.name()}});
}

}  // namespace pyflame_vision
