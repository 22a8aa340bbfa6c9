// Owning, aligned host memory (64-byte aligned: cache lines and AVX-512 loads).
#pragma once
#include <cstddef>
#include <cstdint>

namespace nanoflow {

class HostBuffer {
 public:
  static constexpr size_t kAlign = 64;
  HostBuffer() = default;
  explicit HostBuffer(size_t bytes);  // zero-filled; throws kResource when allocation fails
  ~HostBuffer();
  HostBuffer(HostBuffer&& o) noexcept;
  HostBuffer& operator=(HostBuffer&& o) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  template <class T>
  T* as() const { return static_cast<T*>(data_); }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace nanoflow
