// The CUDA device, streams and events as RAII types. Every status is checked (cuda_check.h).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace nanoflow::cuda {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  size_t total_bytes = 0;          // global memory
  int l2_bytes = 0;
  int smem_per_block_optin = 0;    // max dynamic shared memory a block may opt in to
  int memory_clock_khz = 0;
  int memory_bus_bits = 0;
};

// Makes `ordinal` current on this thread and initializes its primary context.
void set_device(int ordinal);
int device_count();
DeviceInfo device_info(int ordinal);
// Free and total bytes of the current device.
void mem_info(size_t* free_bytes, size_t* total_bytes);
void device_synchronize();

// Owns a stream (created non-blocking) or borrows one (e.g. a green-context stream whose owner
// destroys it).
class Stream {
 public:
  Stream();                                 // creates a non-blocking stream
  static Stream borrow(cudaStream_t s);     // does not destroy `s`
  ~Stream();
  Stream(Stream&& o) noexcept;
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return s_; }
  void synchronize() const;

 private:
  Stream(cudaStream_t s, bool owned) : s_(s), owned_(owned) {}
  void reset() noexcept;
  cudaStream_t s_ = nullptr;
  bool owned_ = false;
};

class Event {
 public:
  explicit Event(bool timing = true);
  ~Event();
  Event(Event&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const { return e_; }
  void record(cudaStream_t s) const;
  void synchronize() const;
  // Makes `s` wait for this event (cross-stream dependency, capturable).
  void wait_on(cudaStream_t s) const;
  // Milliseconds from `start` to this event; both must have completed.
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace nanoflow::cuda
