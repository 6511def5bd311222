// The real layer shapes of the supported models, as listed in
// benchmarks/shapes/*.txt (written by benchmarks/extract_shapes.py; the line
// format is documented there). One case list, two uses: the kernel tests
// (tests/cpp/test_kernels_shapes.cpp) and the kernel benchmark
// (benchmarks/kernel_bench.cpp) both read the files through this parser.
//
// Header-only on purpose: it is included by a test and by a benchmark
// executable, neither of which is part of the library.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../cpp/kernels/conv.h"  // relative: the test target does not see cpp/

namespace pfv_shapes {

/// The family files extract_shapes.py writes, in its order.
inline const std::vector<std::string>& family_names() {
  static const std::vector<std::string> names{"resnet", "resnext", "wide_resnet", "efficientnet", "dilated"};
  return names;
}

struct LayerCase {
  enum class Kind { conv, linear };
  Kind kind = Kind::conv;
  pyflame_vision::kernels::ConvShape conv;  ///< kind == conv (out_h/out_w filled in)
  int64_t rows = 0, in_features = 0, out_features = 0;  ///< kind == linear
  std::string family;   ///< file stem, e.g. "resnet"
  int line = 0;         ///< 1-based line in the file
  std::string text;     ///< the shape part of the line, e.g. "conv 1 56 56 64 64 1 1 1 1 0 0 1 1 1"
  /// (model, module names) for every model using this shape; names.size() is the multiplicity.
  std::vector<std::pair<std::string, std::vector<std::string>>> users;

  /// Multiply-accumulates of one run.
  int64_t macs() const {
    if (kind == Kind::linear) return rows * in_features * out_features;
    const auto& s = conv;
    return s.batch * s.out_h * s.out_w * s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w;
  }
  /// How many layers of `model` have this shape (0 if none).
  int64_t count_in(const std::string& model) const {
    for (const auto& u : users)
      if (u.first == model) return static_cast<int64_t>(u.second.size());
    return 0;
  }
  /// "resnet.txt:12 conv 1 56 56 ..." for messages.
  std::string where() const { return family + ".txt:" + std::to_string(line) + " " + text; }
};

/// torch's Conv2d output size.
inline int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

namespace detail {
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}
inline std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}
}  // namespace detail

/// Parses one shapes file. Throws std::runtime_error naming file and line on
/// anything malformed (a test must never silently skip a shape).
inline std::vector<LayerCase> parse_shape_file(const std::string& path, const std::string& family) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open shape list " + path);
  std::vector<LayerCase> cases;
  std::string raw;
  int line_no = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(path + ":" + std::to_string(line_no) + ": " + why + ": \"" + raw + "\"");
  };
  while (std::getline(f, raw)) {
    ++line_no;
    const auto hash = raw.find('#');
    const std::string body = detail::trim(raw.substr(0, hash));
    if (body.empty()) continue;
    LayerCase c;
    c.family = family;
    c.line = line_no;
    c.text = body;
    std::istringstream in(body);
    std::string kind;
    in >> kind;
    std::vector<int64_t> v;
    int64_t x = 0;
    while (in >> x) v.push_back(x);
    if (!in.eof()) fail("non-integer field");
    if (kind == "conv") {
      if (v.size() != 14) fail("expected 14 integers after 'conv'");
      c.kind = LayerCase::Kind::conv;
      auto& s = c.conv;
      s.batch = v[0];
      s.in_h = v[1];
      s.in_w = v[2];
      s.in_c = v[3];
      s.out_c = v[4];
      s.kernel_h = v[5];
      s.kernel_w = v[6];
      s.stride_h = v[7];
      s.stride_w = v[8];
      s.pad_h = v[9];
      s.pad_w = v[10];
      s.dilation_h = v[11];
      s.dilation_w = v[12];
      s.groups = v[13];
      for (size_t i = 0; i < v.size(); ++i)
        if (v[i] < (i == 9 || i == 10 ? 0 : 1)) fail("field " + std::to_string(i + 1) + " out of range");
      if (s.in_c % s.groups != 0 || s.out_c % s.groups != 0) fail("channels not divisible by groups");
      s.out_h = conv_out_size(s.in_h, s.kernel_h, s.stride_h, s.pad_h, s.dilation_h);
      s.out_w = conv_out_size(s.in_w, s.kernel_w, s.stride_w, s.pad_w, s.dilation_w);
      if (s.out_h < 1 || s.out_w < 1) fail("empty output");
    } else if (kind == "linear") {
      if (v.size() != 3) fail("expected 3 integers after 'linear'");
      c.kind = LayerCase::Kind::linear;
      c.rows = v[0];
      c.in_features = v[1];
      c.out_features = v[2];
      if (c.rows < 1 || c.in_features < 1 || c.out_features < 1) fail("non-positive size");
    } else {
      fail("unknown kind '" + kind + "'");
    }
    if (hash == std::string::npos) fail("missing '# models:' comment");
    std::string users = detail::trim(raw.substr(hash + 1));
    const std::string tag = "models:";
    if (users.compare(0, tag.size(), tag) != 0) fail("comment does not start with 'models:'");
    std::istringstream us(users.substr(tag.size()));
    std::string entry;
    while (us >> entry) {
      const auto colon = entry.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size()) fail("bad model entry " + entry);
      c.users.emplace_back(entry.substr(0, colon), detail::split(entry.substr(colon + 1), ','));
    }
    if (c.users.empty()) fail("no models listed");
    cases.push_back(std::move(c));
  }
  return cases;
}

/// Reads every family file from `dir`. Throws if one is missing or empty.
inline std::vector<LayerCase> load_all(const std::string& dir) {
  std::vector<LayerCase> all;
  for (const auto& fam : family_names()) {
    auto cases = parse_shape_file(dir + "/" + fam + ".txt", fam);
    if (cases.empty()) throw std::runtime_error("shape list " + dir + "/" + fam + ".txt lists no shapes");
    for (auto& c : cases) all.push_back(std::move(c));
  }
  return all;
}

}  // namespace pfv_shapes
