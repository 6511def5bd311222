// Internal: a read-only byte range that weight readers parse, either a file
// read with pread(2) or a caller's buffer.
//
// Files are read, never memory-mapped: a mapped file that another process
// truncates while it is being read kills the reader with SIGBUS, whereas a
// short read is an error the reader reports (WeightsError). Readers never
// trust a size or offset taken from the data: every range is checked with
// in_bounds() (or by read(), which checks it again) before it is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pyflame_vision {
namespace io_detail {

/// A read-only source of size() bytes, named name() in error messages.
class ByteSource {
 public:
  ByteSource(uint64_t size, std::string name) : size_(size), name_(std::move(name)) {}
  virtual ~ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }
  /// True if [offset, offset + length) lies inside the data (overflow-safe).
  bool in_bounds(uint64_t offset, uint64_t length) const { return offset <= size_ && length <= size_ - offset; }
  /// Copies [offset, offset + length) to `dst`. Throws WeightsError if the
  /// range is not inside the data, or if a file no longer holds it (truncated
  /// after it was opened) or cannot be read (the message says which).
  virtual void read(uint64_t offset, uint64_t length, void* dst) const = 0;
  /// The bytes [offset, offset + length): a pointer into the caller's buffer
  /// for a memory source, else `buf` filled by read(). Valid while `buf` and
  /// the source live and `buf` is not modified. Throws as read(), and
  /// OutOfMemory if `buf` cannot hold the range.
  virtual const uint8_t* view(uint64_t offset, uint64_t length, std::vector<uint8_t>& buf) const;

 protected:
  [[noreturn]] void out_of_range(uint64_t offset, uint64_t length) const;
  uint64_t size_;
  std::string name_;
};

/// A caller's buffer (owned by the caller, only read).
class MemorySource : public ByteSource {
 public:
  MemorySource(const uint8_t* data, uint64_t size, std::string name) : ByteSource(size, std::move(name)), data_(data) {}
  void read(uint64_t offset, uint64_t length, void* dst) const override;
  const uint8_t* view(uint64_t offset, uint64_t length, std::vector<uint8_t>& buf) const override;

 private:
  const uint8_t* data_;
};

/// A regular file opened read-only; size() is its size when opened. Throws
/// WeightsError if it cannot be opened or is not a regular file (message: the
/// path and the system's reason). Reads that come up short (the file shrank)
/// throw WeightsError saying so.
class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  void read(uint64_t offset, uint64_t length, void* dst) const override;

 private:
  int fd_ = -1;
};

}  // namespace io_detail
}  // namespace pyflame_vision
