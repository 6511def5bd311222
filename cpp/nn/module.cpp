#include "pyflame_vision/nn/module.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "pyflame_vision/checked.h"
#include "pyflame_vision/nn/lowering.h"

namespace pyflame_vision {
namespace nn {

Module::Ptr Module::child(const std::string& name) const {
  for (const auto& c : children_)
    if (c.first == name) return c.second;
  return nullptr;
}

void Module::register_parameter(std::string name, Shape shape) {
  params_.push_back({std::move(name), TensorSpec(std::move(shape), DType::float32)});
}

void Module::register_buffer(std::string name, Shape shape, DType dtype) {
  buffers_.push_back({std::move(name), TensorSpec(std::move(shape), dtype)});
}

void Module::add_child(std::string name, Ptr module) {
  if (!module) throw std::logic_error("register_module: null module '" + name + "'");
  for (auto& c : children_) {
    if (c.first == name) {  // torch replaces in place, keeping the position
      c.second = std::move(module);
      return;
    }
  }
  children_.emplace_back(std::move(name), std::move(module));
}

void Module::unregister_module(const std::string& name) {
  for (auto it = children_.begin(); it != children_.end(); ++it) {
    if (it->first == name) {
      children_.erase(it);
      return;
    }
  }
}

void Module::collect(const std::string& prefix, bool params, bool buffers, std::vector<Parameter>& out) const {
  if (params)
    for (const auto& p : params_) out.push_back({prefix + p.name, p.spec});
  if (buffers)
    for (const auto& b : buffers_) out.push_back({prefix + b.name, b.spec});
  for (const auto& c : children_) c.second->collect(prefix + c.first + ".", params, buffers, out);
}

std::vector<Parameter> Module::named_parameters() const {
  std::vector<Parameter> out;
  collect("", true, false, out);
  return out;
}

std::vector<Parameter> Module::named_buffers() const {
  std::vector<Parameter> out;
  collect("", false, true, out);
  return out;
}

std::vector<Parameter> Module::state_dict_spec() const {
  std::vector<Parameter> out;
  collect("", true, true, out);
  return out;
}

int64_t Module::num_local_parameters() const {
  int64_t n = 0;
  for (const auto& p : params_) n = checked::add(n, p.spec.numel(), "the parameter count");
  return n;
}

int64_t Module::num_parameters() const {
  int64_t n = num_local_parameters();
  for (const auto& c : children_) n = checked::add(n, c.second->num_parameters(), "the parameter count");
  return n;
}

namespace {
// torch.nn.modules.module._addindent: indent every line but the first.
std::string add_indent(const std::string& s, int spaces) {
  std::string out;
  const std::string pad(static_cast<size_t>(spaces), ' ');
  for (char ch : s) {
    out.push_back(ch);
    if (ch == '\n') out += pad;
  }
  return out;
}
}  // namespace

std::string Module::repr() const {
  const std::string extra = extra_repr();
  std::vector<std::string> lines;
  size_t n_extra = 0;
  if (!extra.empty()) {
    size_t start = 0;
    while (true) {
      size_t nl = extra.find('\n', start);
      lines.push_back(extra.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      ++n_extra;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  for (const auto& c : children_) lines.push_back("(" + c.first + "): " + add_indent(c.second->repr(), 2));
  std::string s = type_name() + "(";
  if (!lines.empty()) {
    if (n_extra == 1 && children_.empty()) {
      s += lines[0];
    } else {
      s += "\n  ";
      for (size_t i = 0; i < lines.size(); ++i) s += (i ? "\n  " : "") + lines[i];
      s += "\n";
    }
  }
  return s + ")";
}

ValueId Lowering::call_child(const Module& parent, const std::string& name, ValueId x) {
  auto c = parent.child(name);
  if (!c) throw std::logic_error(parent.type_name() + " has no child '" + name + "'");
  return call(name, *c, x);
}

ValueId Sequential::lower(Lowering& g, ValueId x) const {
  for (const auto& c : children()) x = g.call(c.first, *c.second, x);
  return x;
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest round-tripping digit count, as Python's repr.
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  const char* e = std::strchr(buf, 'e');
  const int exp10 = std::atoi(e + 1);
  if (exp10 >= -4 && exp10 < 16) {  // Python uses fixed notation for -4 <= exp < 16
    const int decimals = prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0;
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s(buf);
    if (s.find('.') == std::string::npos) s += ".0";
    return s;
  }
  // Scientific: mantissa digits, 'e', sign, at least two exponent digits.
  std::string mant(buf, static_cast<size_t>(e - buf));
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
  return mant + ebuf;
}

}  // namespace nn
}  // namespace pyflame_vision
