// pyflame_vision/error.h - the typed exceptions every part of the library throws.
//
// All errors derive from pyflame_vision::Error (itself a std::runtime_error).
// The Python bindings map each class to a Python exception that also subclasses
// the matching builtin, so `except ValueError` keeps working:
//
//   C++                     Python                              builtin base
//   Error                   pyflame_vision.PyflameVisionError   RuntimeError
//   ShapeError              pyflame_vision.ShapeError           ValueError
//   ShapeOverflowError      pyflame_vision.ShapeOverflowError   ValueError, OverflowError
//   InvalidArgument         pyflame_vision.InvalidArgumentError ValueError
//   TypeError               pyflame_vision.DTypeError           TypeError
//   Unsupported             pyflame_vision.UnsupportedError     NotImplementedError
//   WeightsError            pyflame_vision.WeightsError         RuntimeError, ValueError
//   OutOfMemory             pyflame_vision.OutOfMemoryError     MemoryError
//   Cancelled               KeyboardInterrupt (the signal's own exception) or pyflame_vision.CancelledError
//
// Messages say where, what was expected and what was received, e.g.
//   [conv2d] layer4.0.conv1: expected 1024 input channels, got 4 (input shape [1, 4, 7, 7])
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pyflame_vision {

/// Base class of every exception thrown by pyflame_vision.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A tensor shape does not fit what a layer accepts (wrong rank, wrong channel
/// count, input smaller than a kernel, negative dimension).
class ShapeError : public Error {
 public:
  explicit ShapeError(const std::string& what) : Error(what) {}
};

/// A shape computation would overflow int64 (element counts, byte sizes,
/// padded extents). Never silently wraps.
class ShapeOverflowError : public ShapeError {
 public:
  explicit ShapeOverflowError(const std::string& what) : ShapeError(what) {}
};

/// A constructor or function argument has an invalid value (e.g. a negative
/// num_classes, channels not divisible by groups).
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& what) : Error(what) {}
};

/// A value has the wrong type or dtype (e.g. a float64 input where float32 is
/// required).
class TypeError : public Error {
 public:
  explicit TypeError(const std::string& what) : Error(what) {}
};

/// A valid request that this library (or torchvision) does not support, e.g.
/// dilation > 1 in a BasicBlock or pretrained weights.
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& what) : Error(what) {}
};

/// Weights are missing or do not fit the model (running a model that has no
/// weights, or a state dict with missing, unexpected or mis-shaped entries),
/// or a weight file is malformed or unsafe (a pickle global outside the
/// allowlist, a truncated archive, a tensor past its storage). torch raises
/// RuntimeError for the first kind, so Python's pyflame_vision.WeightsError
/// subclasses RuntimeError, and ValueError for the second.
class WeightsError : public Error {
 public:
  explicit WeightsError(const std::string& what) : Error(what) {}
};

/// Memory for a tensor, a forward's activation arena or a weight file's
/// contents could not be allocated, or the request exceeds the memory the
/// system has available (checked before allocating, so a request that cannot
/// succeed fails at once instead of being overcommitted and killed later).
/// The message says what was being allocated and how many bytes; bytes()
/// returns the request. Whatever was being built is discarded: a model stays
/// as it was and usable.
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& what, uint64_t bytes) : Error(what), bytes_(bytes) {}
  /// The size of the request that failed, in bytes.
  uint64_t bytes() const { return bytes_; }

 private:
  uint64_t bytes_;
};

/// A running call was cancelled on request (a cancel flag the caller set, or
/// a pending Ctrl-C seen between steps from Python). The call's partial
/// results are discarded; the model stays as it was and usable.
class Cancelled : public Error {
 public:
  explicit Cancelled(const std::string& what) : Error(what) {}
};

}  // namespace pyflame_vision
