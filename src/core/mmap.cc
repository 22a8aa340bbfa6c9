#include "core/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace nanoflow {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) NF_THROW(kIo) << "cannot open " << path << ": " << std::strerror(errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    NF_THROW(kIo) << "cannot stat " << path << ": " << std::strerror(e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    NF_THROW(kIo) << path << " is not a regular file";
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      NF_THROW(kIo) << "cannot map " << path << ": " << std::strerror(e);
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

void MappedFile::reset() {
  if (data_ && size_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

MappedFile::~MappedFile() { reset(); }

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    path_ = std::move(o.path_);
  }
  return *this;
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) NF_THROW(kIo) << "cannot open " << path << ": " << std::strerror(errno);
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) NF_THROW(kIo) << "cannot read " << path;
  if (static_cast<size_t>(size) > max_bytes)
    NF_THROW(kBadFile) << path << " is " << size << " bytes, over the limit of " << max_bytes;
  in.seekg(0);
  std::string s(static_cast<size_t>(size), '\0');
  in.read(s.data(), size);
  if (!in) NF_THROW(kIo) << "cannot read " << path;
  return s;
}

}  // namespace nanoflow
