#include "runtime/cuda/device.h"

#include <utility>

#include "core/log.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

void set_device(int ordinal) {
  int n = device_count();
  NF_CHECK_INPUT(ordinal >= 0 && ordinal < n) << "device " << ordinal << " of " << n;
  NF_CUDA_CHECK(cudaSetDevice(ordinal));
  NF_CUDA_CHECK(cudaFree(nullptr));  // creates the primary context now, not in the first op
}

int device_count() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
    (void)cudaGetLastError();
    return 0;
  }
  NF_CUDA_CHECK(e);
  return n;
}

DeviceInfo device_info(int ordinal) {
  cudaDeviceProp p{};
  NF_CUDA_CHECK(cudaGetDeviceProperties(&p, ordinal));
  DeviceInfo d;
  d.ordinal = ordinal;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  d.total_bytes = p.totalGlobalMem;
  d.l2_bytes = p.l2CacheSize;
  d.smem_per_block_optin = static_cast<int>(p.sharedMemPerBlockOptin);
  NF_CUDA_CHECK(cudaDeviceGetAttribute(&d.memory_clock_khz, cudaDevAttrMemoryClockRate, ordinal));
  NF_CUDA_CHECK(cudaDeviceGetAttribute(&d.memory_bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal));
  return d;
}

void mem_info(size_t* free_bytes, size_t* total_bytes) {
  NF_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

void device_synchronize() { NF_CUDA_CHECK(cudaDeviceSynchronize()); }

// --- Stream ---------------------------------------------------------------------------------------
Stream::Stream() : owned_(true) { NF_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
Stream Stream::borrow(cudaStream_t s) { return Stream(s, false); }
Stream::~Stream() { reset(); }
Stream::Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)), owned_(std::exchange(o.owned_, false)) {}
Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    reset();
    s_ = std::exchange(o.s_, nullptr);
    owned_ = std::exchange(o.owned_, false);
  }
  return *this;
}
void Stream::reset() noexcept {
  if (owned_ && s_ != nullptr) {
    // A destructor must not throw; a failure here means the context is already broken.
    if (cudaStreamDestroy(s_) != cudaSuccess) {
      NF_LOG(kWarn) << "cudaStreamDestroy failed";
    }
  }
  s_ = nullptr;
  owned_ = false;
}
void Stream::synchronize() const { NF_CUDA_CHECK(cudaStreamSynchronize(s_)); }

// --- Event ----------------------------------------------------------------------------------------
Event::Event(bool timing) {
  NF_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (e_ != nullptr && cudaEventDestroy(e_) != cudaSuccess) {
    NF_LOG(kWarn) << "cudaEventDestroy failed";
  }
}
Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    if (e_ != nullptr) (void)cudaEventDestroy(e_);
    e_ = std::exchange(o.e_, nullptr);
  }
  return *this;
}
void Event::record(cudaStream_t s) const { NF_CUDA_CHECK(cudaEventRecord(e_, s)); }
void Event::synchronize() const { NF_CUDA_CHECK(cudaEventSynchronize(e_)); }
void Event::wait_on(cudaStream_t s) const { NF_CUDA_CHECK(cudaStreamWaitEvent(s, e_, 0)); }
float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  NF_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, e_));
  return ms;
}

}  // namespace nanoflow::cuda
