// ZIP central-directory reader (format: PKWARE APPNOTE 6.3; see zip.h for
// what is supported).
#include "io/zip.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <vector>

#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace io_detail {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
// torch writes a few records per tensor; 256 MiB of directory is far beyond any checkpoint.
constexpr uint64_t kMaxCentralDirectory = uint64_t{256} << 20;
constexpr uint64_t kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20, kCentralSize = 46, kLocalSize = 30;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const uint8_t* p) { return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

std::string method_name(uint16_t m) {
  switch (m) {
    case 8: return "8, deflate";
    case 9: return "9, deflate64";
    case 12: return "12, bzip2";
    case 14: return "14, lzma";
    case 93: return "93, zstandard";
    case 95: return "95, xz";
    default: return std::to_string(m);
  }
}

// Slicing-by-8 tables for the reflected polynomial 0xEDB88320.
const std::array<std::array<uint32_t, 256>, 8>& crc_tables() {
  static const auto tables = [] {
    std::array<std::array<uint32_t, 256>, 8> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    return t;
  }();
  return tables;
}

}  // namespace

uint32_t crc32(const uint8_t* p, uint64_t n, uint32_t crc) {
  const auto& t = crc_tables();
  crc = ~crc;
  while (n >= 8) {
    const uint32_t lo = u32(p) ^ crc, hi = u32(p + 4);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
          t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void ZipReader::fail(uint64_t at, const std::string& msg) const {
  throw WeightsError(src_.name() + ": malformed ZIP archive at byte " + std::to_string(at) + ": " + msg);
}

ZipReader::ZipReader(const ByteSource& src) : src_(src) {
  uint64_t cd_offset = 0, cd_size = 0, count = 0;
  parse_end_records(cd_offset, cd_size, count);
  parse_central_directory(cd_offset, cd_size, count);
}

void ZipReader::parse_end_records(uint64_t& cd_offset, uint64_t& cd_size, uint64_t& count) {
  const uint64_t n = src_.size();
  if (n < kEndSize)
    fail(0, "expected at least " + std::to_string(kEndSize) + " bytes (an end-of-central-directory record), found " +
                std::to_string(n));
  // The end record is followed only by its comment (at most 65535 bytes): the
  // search reads only the file's tail. `d` is that tail, at file offset `lowest`.
  uint64_t end = UINT64_MAX;
  const uint64_t lowest = n - kEndSize > 65535 ? n - kEndSize - 65535 : 0;
  std::vector<uint8_t> tail_buf;
  const uint8_t* tail = src_.view(lowest, n - lowest, tail_buf);
  auto d = [&](uint64_t file_offset) { return tail + (file_offset - lowest); };
  for (uint64_t p = n - kEndSize + 1; p-- > lowest;) {
    if (u32(d(p)) == kEndSig && p + kEndSize + u16(d(p) + 20) == n) {
      end = p;
      break;
    }
  }
  if (end == UINT64_MAX)
    fail(n, "no end-of-central-directory record in the last 65557 bytes (a truncated archive?)");
  const uint8_t* e = d(end);
  const uint16_t disk = u16(e + 4), cd_disk = u16(e + 6);
  uint64_t on_disk = u16(e + 8);
  count = u16(e + 10);
  cd_size = u32(e + 12);
  cd_offset = u32(e + 16);
  uint64_t limit = end;  // the central directory ends before the end records

  std::vector<uint8_t> z64_buf, loc_buf;
  const uint8_t* loc = end >= kZip64LocatorSize ? src_.view(end - kZip64LocatorSize, kZip64LocatorSize, loc_buf) : nullptr;
  if (loc && u32(loc) == kZip64LocatorSig) {
    const uint64_t z64 = u64(loc + 8);
    const uint32_t disks = u32(loc + 16);
    if (u32(loc + 4) != 0 || disks > 1)
      fail(end - kZip64LocatorSize, "a multi-disk archive (" + std::to_string(disks) + " disks) is not supported");
    if (z64 > end - kZip64LocatorSize || end - kZip64LocatorSize - z64 < kZip64EndSize)
      fail(end - kZip64LocatorSize, "the ZIP64 end record offset " + std::to_string(z64) +
                                        " does not leave room for the record before its locator");
    const uint8_t* r = src_.view(z64, kZip64EndSize, z64_buf);
    if (u32(r) != kZip64EndSig) fail(z64, "expected the ZIP64 end-of-central-directory signature PK\\6\\6");
    if (u32(r + 16) != 0 || u32(r + 20) != 0) fail(z64, "a multi-disk archive is not supported");
    on_disk = u64(r + 24);
    count = u64(r + 32);
    cd_size = u64(r + 40);
    cd_offset = u64(r + 48);
    limit = z64;
  } else if ((disk != 0 && disk != 0xFFFF) || (cd_disk != 0 && cd_disk != 0xFFFF)) {
    fail(end, "a multi-disk archive (disk " + std::to_string(disk) + ") is not supported");
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
    fail(end, "the end record defers to a ZIP64 end record, but there is no ZIP64 locator before it");
  }
  if (on_disk != count)
    fail(end, "the end record counts " + std::to_string(on_disk) + " entries on this disk but " +
                  std::to_string(count) + " in total (multi-disk archives are not supported)");
  if (cd_offset > limit || cd_size > limit - cd_offset)
    fail(end, "the central directory [" + std::to_string(cd_offset) + ", +" + std::to_string(cd_size) +
                  ") extends past the end records at byte " + std::to_string(limit));
  if (count > cd_size / kCentralSize)
    fail(end, "the end record counts " + std::to_string(count) + " entries, more than a central directory of " +
                  std::to_string(cd_size) + " bytes can hold");
}

void ZipReader::parse_central_directory(uint64_t cd_offset, uint64_t cd_size, uint64_t count) {
  if (cd_size > kMaxCentralDirectory)
    fail(cd_offset, "a central directory of " + std::to_string(cd_size) + " bytes exceeds the limit of " +
                        std::to_string(kMaxCentralDirectory) + " (a checkpoint's has a few hundred bytes per tensor)");
  std::vector<uint8_t> cd_buf;
  const uint8_t* cd = src_.view(cd_offset, cd_size, cd_buf);
  cd_offset_ = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  uint64_t p = cd_offset;
  entries_.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - p < kCentralSize)
      fail(p, "central directory entry " + std::to_string(i) + " extends past the directory's end");
    const uint8_t* c = cd + (p - cd_offset);
    if (u32(c) != kCentralSig) fail(p, "expected a central directory entry signature PK\\1\\2");
    ZipEntry e;
    e.flags = u16(c + 8);
    e.method = u16(c + 10);
    e.crc32 = u32(c + 16);
    e.compressed = u32(c + 20);
    e.size = u32(c + 24);
    const uint16_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    uint64_t disk = u16(c + 34);
    e.local_header = u32(c + 42);
    const uint64_t var = static_cast<uint64_t>(name_len) + extra_len + comment_len;
    if (cd_end - p - kCentralSize < var)
      fail(p, "central directory entry " + std::to_string(i) + "'s name, extra field and comment (" +
                  std::to_string(var) + " bytes) extend past the directory's end");
    e.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    // ZIP64 extra field: the 64-bit values of the fields set to 0xFFFFFFFF, in this order.
    const bool need_size = e.size == 0xFFFFFFFFu, need_comp = e.compressed == 0xFFFFFFFFu,
               need_off = e.local_header == 0xFFFFFFFFu, need_disk = disk == 0xFFFF;
    bool have64 = false;
    for (uint64_t x = 0; x + 4 <= extra_len;) {
      const uint8_t* f = c + kCentralSize + name_len + x;
      const uint16_t id = u16(f), len = u16(f + 2);
      if (x + 4 + len > extra_len) fail(p, "extra field of " + e.name + " extends past its entry");
      if (id == 0x0001) {
        have64 = true;
        uint64_t at = 4;
        auto take = [&](uint64_t bytes) -> uint64_t {
          if (at + bytes > 4u + len)
            fail(p, "the ZIP64 extra field of " + e.name + " (" + std::to_string(len) +
                        " bytes) lacks a value its entry defers to it");
          const uint64_t v = bytes == 8 ? u64(f + at) : u32(f + at);
          at += bytes;
          return v;
        };
        if (need_size) e.size = take(8);
        if (need_comp) e.compressed = take(8);
        if (need_off) e.local_header = take(8);
        if (need_disk) disk = take(4);
      }
      x += 4u + len;
    }
    if ((need_size || need_comp || need_off || need_disk) && !have64)
      fail(p, "entry " + e.name + " has a size or offset of 0xFFFFFFFF but no ZIP64 extra field");
    if (disk != 0) fail(p, "entry " + e.name + " starts on disk " + std::to_string(disk) + " (multi-disk archive)");
    if (!index_.emplace(e.name, entries_.size()).second) fail(p, "duplicate entry name " + e.name);
    entries_.push_back(std::move(e));
    p += kCentralSize + var;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const ZipEntry& ZipReader::open(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) throw WeightsError(src_.name() + ": the archive has no record " + name);
  ZipEntry& e = entries_[it->second];
  if (e.located) return e;
  const std::string where = src_.name() + ": record " + e.name;
  if (e.flags & 0x0001) throw WeightsError(where + " is encrypted; expected an unencrypted entry");
  if (e.method != 0)
    throw WeightsError(where + " is compressed (method " + method_name(e.method) +
                       "); torch.save writes uncompressed (stored) entries: re-save the checkpoint with torch.save, "
                       "or re-zip it without compression (zip -0)");
  if (e.compressed != e.size)
    throw WeightsError(where + " is stored (uncompressed) but its compressed size " + std::to_string(e.compressed) +
                       " differs from its size " + std::to_string(e.size));
  if (!src_.in_bounds(e.local_header, kLocalSize) || e.local_header >= cd_offset_)
    fail(e.local_header, "the local header of " + e.name + " lies outside the entries' area [0, " +
                             std::to_string(cd_offset_) + ")");
  std::vector<uint8_t> header_buf, name_buf;
  const uint8_t* h = src_.view(e.local_header, kLocalSize, header_buf);
  if (u32(h) != kLocalHeaderSig) fail(e.local_header, "expected the local header signature PK\\3\\4 of " + e.name);
  const uint16_t name_len = u16(h + 26), extra_len = u16(h + 28);
  if (u16(h + 8) != e.method)
    fail(e.local_header, "the local header of " + e.name + " names compression method " + std::to_string(u16(h + 8)) +
                             ", the central directory " + std::to_string(e.method));
  const uint64_t data = e.local_header + kLocalSize + name_len + extra_len;
  if (data > cd_offset_ || e.size > cd_offset_ - data)
    fail(e.local_header, "the " + std::to_string(e.size) + " bytes of " + e.name + " starting at byte " +
                             std::to_string(data) + " extend past the start of the central directory at byte " +
                             std::to_string(cd_offset_));
  if (name_len != e.name.size() ||
      std::memcmp(src_.view(e.local_header + kLocalSize, name_len, name_buf), e.name.data(), name_len) != 0)
    fail(e.local_header, "the local header's name differs from the central directory's " + e.name);
  e.data = data;
  e.located = true;
  return e;
}

void ZipReader::verify_crc(const ZipEntry& e) const {
  if (e.crc32 == 0) return;
  // In chunks, so a large record costs no more memory than one chunk.
  std::vector<uint8_t> buf;
  uint32_t got = 0;
  for (uint64_t at = 0; at < e.size;) {
    const uint64_t n = std::min<uint64_t>(e.size - at, uint64_t{1} << 22);
    got = crc32(src_.view(e.data + at, n, buf), n, got);
    at += n;
  }
  if (got != e.crc32) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "CRC-32 0x%08x, expected 0x%08x", got, e.crc32);
    throw WeightsError(src_.name() + ": record " + e.name + " is damaged: its " + std::to_string(e.size) +
                       " bytes have " + buf + " (from the central directory)");
  }
}

}  // namespace io_detail
}  // namespace pyflame_vision
