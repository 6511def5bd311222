// POSIX memory map of a weight file (see byte_source.h).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/byte_source.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace io_detail {

MappedFile::MappedFile(const std::string& path) : ByteSource(nullptr, 0, path) {
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
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    if (size > static_cast<uint64_t>(SIZE_MAX)) {
      ::close(fd);
      throw WeightsError("cannot map " + path + ": " + std::to_string(size) + " bytes exceed the address space");
    }
    void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw WeightsError("cannot map " + path + ": " + std::strerror(err));
    }
    map_ = p;
    map_size_ = static_cast<size_t>(size);
    data_ = static_cast<const uint8_t*>(p);
    size_ = size;
  }
  ::close(fd);  // the mapping keeps the file
}

MappedFile::~MappedFile() {
  if (map_) ::munmap(map_, map_size_);
}

void MappedFile::release(uint64_t offset, uint64_t length) const {
  if (!map_ || !in_bounds(offset, length)) return;
  // Only whole pages inside the range; the pages at its ends may hold bytes
  // another record still needs soon.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (offset + page - 1) / page * page, end = (offset + length) / page * page;
  if (end > begin)
    ::madvise(static_cast<uint8_t*>(map_) + begin, static_cast<size_t>(end - begin), MADV_DONTNEED);
}

}  // namespace io_detail
}  // namespace pyflame_vision
