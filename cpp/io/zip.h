// Internal: a ZIP central-directory reader for PyTorch checkpoints.
//
// Only what torch.save writes is read: entries stored without compression
// (method 0), no encryption, one disk; ZIP64 end records and ZIP64 extra
// fields (for sizes and offsets >= 4 GiB) are understood. Every offset and size
// read from the archive is checked against the data before use; a
// malformed archive throws WeightsError naming the source, the byte offset and
// what was expected. Entries are located through the central directory (torch
// writes data descriptors, so local headers carry no sizes); the local header
// is only used for the offset of the data.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/byte_source.h"

namespace pyflame_vision {
namespace io_detail {

struct ZipEntry {
  std::string name;
  uint64_t local_header = 0;  ///< offset of the local file header
  uint64_t data = 0;          ///< offset of the entry's bytes (valid once located)
  uint64_t size = 0;          ///< uncompressed size
  uint64_t compressed = 0;    ///< compressed size (== size for stored entries)
  uint32_t crc32 = 0;
  uint16_t method = 0;
  uint16_t flags = 0;
  bool located = false;
};

/// The CRC-32 (ISO-HDLC, the one ZIP uses) of [data, data + n), continuing `crc`.
uint32_t crc32(const uint8_t* data, uint64_t n, uint32_t crc = 0);

class ZipReader {
 public:
  /// Parses the end record(s) and the central directory of `src`, which must
  /// outlive the reader.
  explicit ZipReader(const ByteSource& src);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// The entry called `name`, or null.
  const ZipEntry* find(const std::string& name) const;
  /// The entry's data range, checked: stored (not compressed), not encrypted,
  /// its local header consistent with the central directory, its bytes inside
  /// the archive before the central directory. Throws WeightsError otherwise.
  const ZipEntry& open(const std::string& name);
  /// Compares the entry's CRC-32 with its bytes (a CRC of 0 is what torch
  /// writes with CRC computation disabled, and is not checked). Throws
  /// WeightsError on a mismatch. `open` must have succeeded.
  void verify_crc(const ZipEntry& e) const;

 private:
  [[noreturn]] void fail(uint64_t at, const std::string& msg) const;
  void parse_end_records(uint64_t& cd_offset, uint64_t& cd_size, uint64_t& count);
  void parse_central_directory(uint64_t cd_offset, uint64_t cd_size, uint64_t count);

  const ByteSource& src_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  uint64_t cd_offset_ = 0;
};

}  // namespace io_detail
}  // namespace pyflame_vision
