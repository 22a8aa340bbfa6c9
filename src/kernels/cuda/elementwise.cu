// SiLU*mul, bias add, residual add, embedding gather: grid-stride loops over 16-byte vectors.
// SiLU*mul rounds as transformers does (bf16(bf16(silu(g)) * u), silu with the accurate expf).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"

namespace nanoflow::cuda {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t vectors, int cta_budget) {
  int64_t g = (vectors + kThreads - 1) / kThreads;
  const int cap = cta_budget > 0 ? cta_budget : 1024;  // ~8 CTAs per SM on a 132-SM GPU
  if (g > cap) g = cap;
  return g < 1 ? 1 : static_cast<int>(g);
}

// Each thread handles kUnroll vectors per step, all loads issued before the first use: a memory-
// bound kernel on a small SM share needs many bytes in flight per thread (PERF.md).
constexpr int kUnroll = 4;

__global__ void silu_mul_kernel(SiluMulParams p) {
  const int vpr = p.inter / 8;  // vectors per output row
  const int64_t n = static_cast<int64_t>(p.tokens) * vpr;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t base = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; base < n;
       base += kUnroll * stride) {
    uint4 g[kUnroll], u[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t i = base + k * stride;
      if (i < n) {
        const int64_t t = i / vpr, c = i % vpr;
        const uint4* row = reinterpret_cast<const uint4*>(p.gate_up + t * 2 * p.inter);
        g[k] = dev::ld_stream(row + c);
        u[k] = dev::ld_stream(row + vpr + c);
      }
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t i = base + k * stride;
      if (i < n) {
        float gf[8], uf[8];
        dev::unpack8(g[k], gf);
        dev::unpack8(u[k], uf);
#pragma unroll
        for (int j = 0; j < 8; ++j) gf[j] = dev::bf16r(gf[j] / (1.f + expf(-gf[j]))) * uf[j];
        reinterpret_cast<uint4*>(p.out)[i] = dev::pack8(gf);
      }
    }
  }
}

__global__ void add_bias_kernel(AddBiasParams p) {
  const int vpr = p.cols / 8;
  const int64_t n = static_cast<int64_t>(p.rows) * vpr;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x[8], b[8];
    uint4* xv = reinterpret_cast<uint4*>(p.x) + i;
    dev::unpack8(*xv, x);
    dev::unpack8(reinterpret_cast<const uint4*>(p.bias)[i % vpr], b);
#pragma unroll
    for (int j = 0; j < 8; ++j) x[j] += b[j];
    *xv = dev::pack8(x);
  }
}

__global__ void add_kernel(AddParams p) {
  const int64_t n = p.n / 8;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x[8], y[8];
    uint4* xv = reinterpret_cast<uint4*>(p.x) + i;
    dev::unpack8(*xv, x);
    dev::unpack8(reinterpret_cast<const uint4*>(p.y)[i], y);
#pragma unroll
    for (int j = 0; j < 8; ++j) x[j] += y[j];
    *xv = dev::pack8(x);
  }
}

__global__ void embedding_kernel(EmbeddingParams p) {
  const int vpr = p.hidden / 8;
  const int64_t n = static_cast<int64_t>(p.tokens) * vpr;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t base = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; base < n;
       base += kUnroll * stride) {
    uint4 v[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t i = base + k * stride;
      v[k] = make_uint4(0, 0, 0, 0);
      if (i < n) {
        const int64_t t = i / vpr, c = i % vpr;
        const int id = p.ids[t];
        if (id >= 0 && id < p.vocab) {
          v[k] = dev::ld_stream(p.table + static_cast<int64_t>(id) * p.hidden + c * 8);
        } else if (c == 0 && p.bad_ids != nullptr) {
          atomicAdd(p.bad_ids, 1);
        }
      }
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t i = base + k * stride;
      if (i < n) reinterpret_cast<uint4*>(p.out)[i] = v[k];
    }
  }
}

}  // namespace

cudaError_t launch_silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.tokens) * (p.inter / 8);
  if (n == 0) return cudaSuccess;
  silu_mul_kernel<<<grid_for(n, p.cta_budget), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}
cudaError_t launch_add_bias(const AddBiasParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.rows) * (p.cols / 8);
  if (n == 0) return cudaSuccess;
  add_bias_kernel<<<grid_for(n, p.cta_budget), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}
cudaError_t launch_add(const AddParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  add_kernel<<<grid_for(p.n / 8, p.cta_budget), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}
cudaError_t launch_embedding(const EmbeddingParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.tokens) * (p.hidden / 8);
  if (n == 0) return cudaSuccess;
  embedding_kernel<<<grid_for(n, p.cta_budget), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
