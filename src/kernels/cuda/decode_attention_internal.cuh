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

// Head dim held by O^T accumulator row (p + 8 y) of m-tile t in the register-fed and TMA-fed
// kernels: with V in registers (kVRegs, decode_attention.cu) the dims are permuted as K's are;
// with V read by ldmatrix.trans (ring or TMA stage) they are in order.
template <bool kVRegs>
__device__ __forceinline__ int o_dim(int t, int p, int y) {
  if constexpr (kVRegs) {
    return ((t >> 1) * 4 + (p >> 1)) * 8 + 4 * (t & 1) + 2 * y + (p & 1);
  } else {
    return 16 * t + 8 * y + p;
  }
}

// Epilogue of the register-fed (16- and 32-key) and TMA-fed kernels, called by every thread after
// the caller's __syncthreads has freed the shared memory at s_o (it overlays their rings). Each
// warp holds, per n-tile nt of 8 head columns (lane: p = lane / 4, c = lane % 4), O^T accumulators
// o[nt][t][0..3] = (dim row p, head 2c), (p, 2c+1), (p+8, 2c), (p+8, 2c+1) of m-tile t (dims by
// o_dim<kVRegs>) and the online-softmax m, l of head columns 2c, 2c+1 (log2 domain, l summed over
// this lane's keys only). Sums l over the 8 lanes of a column (in place), publishes the warp's
// state as s_o [kWarps][8 kNT][D] f32 and, after it, s_m / s_l [kWarps][8 kNT], then barrier and
// store_merged. o, m and l point at the caller's register arrays of kNT n-tiles.
template <int D, int kWarps, int kNT, bool kVRegs>
__device__ __forceinline__ void publish_and_store_merged(const DecodeAttentionParams& p, float* s_o,
                                                         const float (*o)[D / 16][4], const float (*m)[2],
                                                         float (*l)[2], int split, int kvh, int seq, int tid) {
  constexpr int kMT = D / 16;      // m-tiles of O^T
  constexpr int kSlots = 8 * kNT;  // head columns
  const int lane = tid & 31, warp = tid >> 5;
  const int pr = lane >> 2, c = lane & 3;
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
    for (int e = 0; e < 2; ++e)
#pragma unroll
      for (int off = 4; off <= 16; off <<= 1) l[nt][e] += __shfl_xor_sync(0xffffffffu, l[nt][e], off);
  float* s_m = s_o + kWarps * kSlots * D;
  float* s_l = s_m + kWarps * kSlots;
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    float* w_o = s_o + (warp * kSlots + nt * 8 + 2 * c) * D;  // head 2c; head 2c + 1 is + D
#pragma unroll
    for (int t = 0; t < kMT; ++t) {
      const int d_lo = o_dim<kVRegs>(t, pr, 0), d_hi = o_dim<kVRegs>(t, pr, 1);
      w_o[d_lo] = o[nt][t][0];
      w_o[D + d_lo] = o[nt][t][1];
      w_o[d_hi] = o[nt][t][2];
      w_o[D + d_hi] = o[nt][t][3];
    }
    if (pr == 0) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        s_m[warp * kSlots + nt * 8 + 2 * c + e] = m[nt][e];
        s_l[warp * kSlots + nt * 8 + 2 * c + e] = l[nt][e];
      }
    }
  }
  __syncthreads();
  store_merged<D, kWarps, kSlots>(p, s_o, s_m, s_l, split, kvh, seq, tid);
}

// SMs of the current device, cached per ordinal: the default launch asks on every call (is the
// call's sm_count a share?).
cudaError_t device_sm_count(int* n);

}  // namespace decode_detail

// TMA-fed variants (27+, decode_attention_tma.cu). decode_attention_tma_supported says whether the
// kernel can run this call (pool size known, G <= 8, head_dim 64 or 128); when it cannot, the switch
// runs the default instead. launch_decode_attention_tma launches the split kernel only (the caller
// launches the merge).
bool decode_attention_tma_supported(const DecodeAttentionParams& p);
cudaError_t launch_decode_attention_tma(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
