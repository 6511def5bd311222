// Internal: a read-only byte range that weight readers parse, either a memory
// map of a file (POSIX mmap) or a caller's buffer.
//
// Readers never trust a size or offset taken from the data: every range is
// checked with in_bounds() before it is dereferenced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyflame_vision {
namespace io_detail {

/// A read-only view of `size` bytes, named `name` in error messages.
class ByteSource {
 public:
  ByteSource(const uint8_t* data, uint64_t size, std::string name) : data_(data), size_(size), name_(std::move(name)) {}
  virtual ~ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }
  /// True if [offset, offset + length) lies inside the data (overflow-safe).
  bool in_bounds(uint64_t offset, uint64_t length) const { return offset <= size_ && length <= size_ - offset; }
  /// Tells the source that [offset, offset + length) will not be read again
  /// soon: a memory map drops those pages from the process's resident set
  /// (they stay in the page cache). Reading them later is still valid.
  virtual void release(uint64_t /*offset*/, uint64_t /*length*/) const {}

 protected:
  const uint8_t* data_;
  uint64_t size_;
  std::string name_;
};

/// A file mapped read-only (MAP_PRIVATE). Throws WeightsError if it cannot be
/// opened, is not a regular file, or cannot be mapped (message: path and the
/// system's reason). An empty file maps to an empty range.
class MappedFile : public ByteSource {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile() override;
  void release(uint64_t offset, uint64_t length) const override;

 private:
  void* map_ = nullptr;
  size_t map_size_ = 0;
};

}  // namespace io_detail
}  // namespace pyflame_vision
