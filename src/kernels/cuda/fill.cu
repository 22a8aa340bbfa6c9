// Random fills for tests, benchmarks and GEMM autotuning (declared in gemm.h).
#include "kernels/cuda/gemm.h"

namespace nanoflow::cuda {
namespace {

__device__ __forceinline__ float hash_uniform(uint64_t seed, uint64_t i) {
  // splitmix64 of (seed, index) -> 24 random bits -> [-1, 1)
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_bf16_kernel(__nv_bfloat16* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(hash_uniform(seed, i) * scale);
}
__global__ void fill_f32_kernel(float* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = hash_uniform(seed, i) * scale;
}

}  // namespace

cudaError_t launch_fill_random_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float scale, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_bf16_kernel<<<1024, 256, 0, s>>>(p, n, seed, scale);
  return cudaGetLastError();
}
cudaError_t launch_fill_random_f32(float* p, size_t n, uint64_t seed, float scale, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_f32_kernel<<<1024, 256, 0, s>>>(p, n, seed, scale);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
