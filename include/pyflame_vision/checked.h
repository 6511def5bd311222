// pyflame_vision/checked.h - overflow-checked int64 arithmetic for shape code.
//
// Every function throws ShapeOverflowError (naming `what`) instead of wrapping.
#pragma once

#include <cstdint>
#include <string>

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace checked {

/// Throws ShapeOverflowError("integer overflow computing <what>: a op b does not fit in int64").
[[noreturn]] void throw_overflow(const char* op, int64_t a, int64_t b, const std::string& what);

/// a + b; `what` names the quantity in the ShapeOverflowError message.
inline int64_t add(int64_t a, int64_t b, const std::string& what = "shape arithmetic") {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw_overflow("+", a, b, what);
  return r;
}
/// a - b, or ShapeOverflowError.
inline int64_t sub(int64_t a, int64_t b, const std::string& what = "shape arithmetic") {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) throw_overflow("-", a, b, what);
  return r;
}
/// a * b, or ShapeOverflowError.
inline int64_t mul(int64_t a, int64_t b, const std::string& what = "shape arithmetic") {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw_overflow("*", a, b, what);
  return r;
}
/// Floor division for b > 0 (rounds toward negative infinity, as Python's //).
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace checked
}  // namespace pyflame_vision
