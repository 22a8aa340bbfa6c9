// RMSNorm (+ fused residual add, + optional row gather). One CTA per output row; each thread keeps
// up to kVecs 16-byte vectors of the row in registers, so the row is read once. Rounding as
// transformers' LlamaRMSNorm: bf16(bf16(x * rsqrt(mean(x^2) + eps)) * weight).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/norm.h"

namespace nanoflow::cuda {
namespace {

constexpr int kVecs = 4;  // vectors per thread: hidden <= 8 * kVecs * 1024

__global__ void rms_norm_kernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int row = blockIdx.x;
  const int in_row = p.row_index != nullptr ? p.row_index[row] : row;
  const int nvec = p.hidden / 8;
  const uint4* x = reinterpret_cast<const uint4*>(p.x + static_cast<size_t>(in_row) * p.hidden);
  const uint4* res = p.residual != nullptr
                         ? reinterpret_cast<const uint4*>(p.residual + static_cast<size_t>(in_row) * p.hidden)
                         : nullptr;
  uint4* res_out = p.residual != nullptr
                       ? reinterpret_cast<uint4*>(p.residual_out + static_cast<size_t>(in_row) * p.hidden)
                       : nullptr;
  float v[kVecs][8];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < nvec) {
      uint4 raw = x[i];
      if (res != nullptr) {
        float a[8], b[8];
        dev::unpack8(raw, a);
        dev::unpack8(res[i], b);
#pragma unroll
        for (int j = 0; j < 8; ++j) a[j] += b[j];
        raw = dev::pack8(a);  // the residual stream is rounded to bf16, then normalized
        res_out[i] = raw;
      }
      dev::unpack8(raw, v[k]);
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += __fmul_rn(v[k][j], v[k][j]);  // rounded squares (x.pow(2)), no FMA
    }
  }
  ss = dev::block_sum(ss, scratch);
  // mean = sum * (1/n), as torch's mean reduction computes it, rounded before + eps (no FMA)
  const float inv = rsqrtf(__fadd_rn(__fmul_rn(ss, 1.0f / static_cast<float>(p.hidden)), p.eps));
  const uint4* w = reinterpret_cast<const uint4*>(p.weight);
  uint4* out = reinterpret_cast<uint4*>(p.out + static_cast<size_t>(row) * p.hidden);
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < nvec) {
      float wf[8];
      dev::unpack8(w[i], wf);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[k][j] = dev::bf16r(v[k][j] * inv) * wf[j];  // as transformers rounds
      out[i] = dev::pack8(v[k]);
    }
  }
}

}  // namespace

cudaError_t launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  const int nvec = p.hidden / 8;
  int threads = (nvec + kVecs - 1) / kVecs;
  threads = ((threads + 31) / 32) * 32;
  if (threads < 64) threads = 64;
  if (threads > 1024) return cudaErrorInvalidValue;
  rms_norm_kernel<<<p.rows, threads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
