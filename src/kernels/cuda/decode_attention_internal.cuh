// Pieces shared by the decode attention kernel files (nvcc only, private to kernels/cuda):
// the split epilogue, and the TMA-fed kernel's entry points (decode_attention_tma.cu) for the
// variant switch in decode_attention.cu.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/decode_attention.h"

namespace nanoflow::cuda {
namespace decode_detail {

// Final step of a split: merges the kWarps online-softmax states of each query head g < G left in
// shared memory (s_o [kWarps][kSlots][D], s_m / s_l [kWarps][kSlots], log2 domain) and writes the
// split's output (num_splits == 1) or its partial output and log-sum-exp to the workspace.
template <int D, int kWarps, int kSlots>
__device__ __forceinline__ void store_merged(const DecodeAttentionParams& p, const float* s_o, const float* s_m,
                                             const float* s_l, int split, int kvh, int seq, int tid) {
  const int G = p.hq / p.hkv;
  for (int i = tid; i < G * D; i += kWarps * 32) {
    const int g = i / D, d = i % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w * kSlots + g]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float wt = exp2f(s_m[w * kSlots + g] - M);
        L = fmaf(s_l[w * kSlots + g], wt, L);
        O = fmaf(s_o[(w * kSlots + g) * D + d], wt, O);
      }
    }
    const int h = kvh * G + g;
    const float val = L > 0.f ? O / L : 0.f;
    if (p.num_splits == 1) {
      p.out[(static_cast<int64_t>(seq) * p.hq + h) * D + d] = __float2bfloat16(val);
    } else {
      const int64_t ph = (static_cast<int64_t>(seq) * p.hq + h) * p.num_splits + split;
      p.workspace[ph * D + d] = val;
      if (d == 0) {
        float* lse = p.workspace + static_cast<int64_t>(p.num_seqs) * p.hq * p.num_splits * D;
        lse[ph] = L > 0.f ? M + log2f(L) : -INFINITY;
      }
    }
  }
}

// SMs of the current device, cached per ordinal: the default launch asks on every call (is the
// call's sm_count a share?), the persistent TMA variants to size their grid.
cudaError_t device_sm_count(int* n);

}  // namespace decode_detail

// TMA-fed variants (27+, decode_attention_tma.cu). decode_attention_tma_supported says whether the
// kernel can run this call (pool size known, G <= 8, head_dim 64 or 128); when it cannot, the switch
// runs the default instead. launch_decode_attention_tma launches the split kernel only (the caller
// launches the merge).
bool decode_attention_tma_supported(const DecodeAttentionParams& p);
cudaError_t launch_decode_attention_tma(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
