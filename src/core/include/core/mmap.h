// Read-only memory map of a whole file. Empty files map to an empty span.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace nanoflow {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error(kIo) naming the path when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole (small) file into a string; throws Error(kIo) naming the path. Refuses files larger
// than max_bytes so that a wrong path cannot make us read gigabytes.
std::string read_text_file(const std::string& path, size_t max_bytes = size_t{256} << 20);

}  // namespace nanoflow
