#include "runtime/cuda/arena.h"

#include <utility>

#include "core/checked.h"
#include "core/log.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

// --- DeviceBuffer ---------------------------------------------------------------------------------
DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) {
    NF_CUDA_CHECK(cudaMalloc(&p_, bytes)) << "allocating " << bytes << " bytes";
  }
}
DeviceBuffer::~DeviceBuffer() {
  if (p_ != nullptr && cudaFree(p_) != cudaSuccess) {
    NF_LOG(kWarn) << "cudaFree failed";
  }
}
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_ != nullptr) (void)cudaFree(p_);
    p_ = std::exchange(o.p_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}
void DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
  NF_CHECK_LE(offset + bytes, bytes_) << "upload past the end";
  NF_CUDA_CHECK(cudaMemcpy(static_cast<uint8_t*>(p_) + offset, host, bytes, cudaMemcpyHostToDevice));
}
void DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
  NF_CHECK_LE(offset + bytes, bytes_) << "download past the end";
  NF_CUDA_CHECK(cudaMemcpy(host, static_cast<const uint8_t*>(p_) + offset, bytes, cudaMemcpyDeviceToHost));
}

// --- DeviceArena ----------------------------------------------------------------------------------
DeviceArena::DeviceArena(const ArenaConfig& cfg) {
  NF_CHECK_INPUT(cfg.gpu_memory_utilization > 0.0 && cfg.gpu_memory_utilization <= 1.0)
      << "--gpu-memory-utilization must be in (0, 1], got " << cfg.gpu_memory_utilization;
  size_t free_b = 0, total_b = 0;
  NF_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const size_t allowed = static_cast<size_t>(cfg.gpu_memory_utilization * static_cast<double>(total_b));
  const size_t in_use = total_b - free_b;
  NF_CHECK_KIND(ErrorKind::kResource, allowed > in_use + cfg.reserve_bytes)
      << "--gpu-memory-utilization " << cfg.gpu_memory_utilization << " allows " << allowed
      << " bytes but " << in_use << " are already in use and " << cfg.reserve_bytes << " are reserved";
  init((allowed - in_use - cfg.reserve_bytes) / kAlign * kAlign);
}

DeviceArena::DeviceArena(size_t bytes) { init((bytes + kAlign - 1) / kAlign * kAlign); }

void DeviceArena::init(size_t bytes) {
  NF_CHECK_INPUT(bytes > 0) << "empty arena";
  void* p = nullptr;
  NF_CUDA_CHECK(cudaMalloc(&p, bytes)) << "device arena of " << bytes << " bytes";
  base_ = static_cast<uint8_t*>(p);
  capacity_ = bytes;
  NF_LOG(kInfo) << "device arena: " << (bytes >> 20) << " MiB";
}

DeviceArena::~DeviceArena() {
  if (base_ != nullptr && cudaFree(base_) != cudaSuccess) {
    NF_LOG(kWarn) << "cudaFree(arena) failed";
  }
}

void* DeviceArena::allocate(size_t bytes, const std::string& what) {
  const size_t rounded = checked_add(bytes, kAlign - 1, "arena region") / kAlign * kAlign;
  NF_CHECK_KIND(ErrorKind::kResource, rounded <= remaining())
      << "device arena full: " << what << " needs " << bytes << " bytes, " << remaining() << " of "
      << capacity_ << " left";
  void* p = base_ + used_;
  regions_.push_back({what, used_, rounded});
  used_ += rounded;
  return p;
}

size_t DeviceArena::allocate_rest(size_t unit, const std::string& what, void** out) {
  NF_CHECK_INPUT(unit > 0) << what << ": zero unit";
  const size_t n = remaining() / unit;
  NF_CHECK_KIND(ErrorKind::kResource, n > 0)
      << "device arena has " << remaining() << " bytes left, less than one " << what << " unit of " << unit;
  *out = allocate(n * unit, what);
  return n;
}

}  // namespace nanoflow::cuda
