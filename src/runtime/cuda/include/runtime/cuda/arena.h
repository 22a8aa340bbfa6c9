// Device memory: a plain RAII buffer, and the arena that holds weights, workspaces and the KV pool
// in one cudaMalloc sized by --gpu-memory-utilization.
//
// Arena layout (one allocation, bump-allocated, 256-byte aligned regions):
//   [ weights ... | workspaces ... | KV pool (whatever is left, taken last) ]
// Regions are never freed one by one: the arena lives as long as the model. A workspace that is
// reused every iteration is one region handed out once at start-up.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nanoflow::cuda {

// An owned cudaMalloc allocation (tests, benchmarks, small fixed buffers).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return p_; }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

  void upload(const void* host, size_t bytes, size_t offset = 0);    // synchronous
  void download(void* host, size_t bytes, size_t offset = 0) const;  // synchronous

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

struct ArenaConfig {
  // Fraction of the device's total memory this process may hold (vLLM's --gpu-memory-utilization).
  // The arena takes that fraction minus what is already in use (by this process or others), minus
  // `reserve_bytes` for cuBLAS/CUDA-graph/driver allocations made after the arena.
  double gpu_memory_utilization = 0.9;
  size_t reserve_bytes = size_t{512} << 20;
};

class DeviceArena {
 public:
  static constexpr size_t kAlign = 256;
  explicit DeviceArena(const ArenaConfig& cfg);
  explicit DeviceArena(size_t bytes);  // exactly `bytes` (tests)
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  // A region of `bytes`; throws kResource naming `what` and the sizes when it does not fit.
  void* allocate(size_t bytes, const std::string& what);
  template <class T>
  T* allocate_array(size_t n, const std::string& what) {
    return static_cast<T*>(allocate(n * sizeof(T), what));
  }
  // Everything left, rounded down to a multiple of `unit` bytes (the KV pool: unit = one page of
  // all layers). Returns the number of units; `*out` gets the region.
  size_t allocate_rest(size_t unit, const std::string& what, void** out);

  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  size_t remaining() const { return capacity_ - used_; }

  struct Region {
    std::string what;
    size_t offset, bytes;
  };
  const std::vector<Region>& regions() const { return regions_; }

 private:
  void init(size_t bytes);
  uint8_t* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  std::vector<Region> regions_;
};

}  // namespace nanoflow::cuda
