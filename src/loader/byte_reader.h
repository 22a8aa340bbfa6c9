// Bounds-checked little-endian cursor over untrusted bytes (private to the loader).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.h"

namespace nanoflow::detail {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, const std::string& source)
      : data_(data), size_(size), source_(source) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& source() const { return source_; }

  // Throws kBadFile naming the file, the offset and `what` when fewer than n bytes are left.
  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      NF_THROW(kBadFile) << source_ << ": truncated while reading " << what << " at offset " << pos_
                         << " (need " << n << " bytes, " << remaining() << " left)";
  }
  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));  // the host is little-endian (x86-64, aarch64)
    pos_ += sizeof(T);
    return v;
  }
  std::string_view bytes(uint64_t n, const char* what) {
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& source_;
};

// Runs `parse` and makes every refusal name the file: helpers it calls (checked arithmetic, Shape)
// throw without knowing which file they read.
template <class F>
void parse_naming_file(const std::string& source, F&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(source)) throw;
    NF_THROW(kBadFile) << source << ": " << e.what();
  }
}

}  // namespace nanoflow::detail
