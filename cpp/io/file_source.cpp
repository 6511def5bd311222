// Byte sources for the weight readers (see byte_source.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "core/memory.h"
#include "io/byte_source.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace io_detail {

void ByteSource::out_of_range(uint64_t offset, uint64_t length) const {
  throw WeightsError(name_ + ": bytes [" + std::to_string(offset) + ", +" + std::to_string(length) +
                     ") lie outside its " + std::to_string(size_) + " bytes");
}

const uint8_t* ByteSource::view(uint64_t offset, uint64_t length, std::vector<uint8_t>& buf) const {
  if (!in_bounds(offset, length)) out_of_range(offset, length);
  try {
    buf.resize(static_cast<size_t>(length));
  } catch (const std::bad_alloc&) {
    detail::throw_out_of_memory(length, "bytes [" + std::to_string(offset) + ", +" + std::to_string(length) +
                                            ") of " + name_);
  }
  read(offset, length, buf.data());
  return buf.data();
}

void MemorySource::read(uint64_t offset, uint64_t length, void* dst) const {
  if (!in_bounds(offset, length)) out_of_range(offset, length);
  if (length) std::memcpy(dst, data_ + offset, static_cast<size_t>(length));
}

const uint8_t* MemorySource::view(uint64_t offset, uint64_t length, std::vector<uint8_t>&) const {
  if (!in_bounds(offset, length)) out_of_range(offset, length);
  return data_ + offset;
}

FileSource::FileSource(const std::string& path) : ByteSource(0, path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw WeightsError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw WeightsError("cannot stat " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw WeightsError("cannot read " + path + ": " + (S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file"));
  }
  fd_ = fd;
  size_ = static_cast<uint64_t>(st.st_size);
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

void FileSource::read(uint64_t offset, uint64_t length, void* dst) const {
  if (!in_bounds(offset, length)) out_of_range(offset, length);
  auto* out = static_cast<uint8_t*>(dst);
  uint64_t done = 0;
  while (done < length) {
    // At most 1 GiB per call (Linux transfers at most 0x7ffff000 bytes at once).
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(length - done, uint64_t{1} << 30));
    const ssize_t n = ::pread(fd_, out + done, chunk, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw WeightsError("cannot read " + name_ + " at byte " + std::to_string(offset + done) + ": " +
                         std::strerror(errno));
    }
    if (n == 0)
      throw WeightsError(name_ + ": the file ends at byte " + std::to_string(offset + done) + " but had " +
                         std::to_string(size_) + " bytes when it was opened (it was truncated or replaced while "
                         "being read)");
    done += static_cast<uint64_t>(n);
  }
}

}  // namespace io_detail
}  // namespace pyflame_vision
