// Internal helpers shared by the weight-file readers and writers.
#pragma once

#include <cstddef>
#include <string>

namespace pyflame_vision {
namespace io_detail {

/// Length of the UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms,
/// no surrogates, at most U+10FFFF), or 0 if it is invalid. Requires i < n.
size_t utf8_sequence(const unsigned char* s, size_t n, size_t i);
/// True if `s` is valid UTF-8 (as utf8_sequence defines it).
bool valid_utf8(const std::string& s);
/// A name as it appears in messages: JSON-quoted, control characters escaped,
/// shortened after 200 bytes.
std::string quoted(const std::string& s);
/// The same without the quotes (for dotted names such as pickle globals).
std::string escaped(const std::string& s);
/// True if `s` ends with `suffix` (given in lower case), ignoring ASCII case.
bool ends_with_ci(const std::string& s, const std::string& suffix);

}  // namespace io_detail
}  // namespace pyflame_vision
