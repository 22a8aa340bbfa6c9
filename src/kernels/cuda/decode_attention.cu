// Paged GQA decode attention: split-KV kernel + merge kernel. See decode_attention.h for the split.
//
// Inside a CTA (4 warps): a token's K (or V) row of one kv head is head_dim bf16 = kLanesPerToken
// 16-byte vectors, so a warp reads kTokPerStep tokens per step, one lane group (kLanesPerToken
// lanes) per token. Each lane group runs its own online softmax over the tokens it sees; the
// groups' states are merged through shared memory at the end. Scores live in the log2 domain
// (q pre-scaled by scale * log2(e)) so exp2f is a single instruction.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_attention.h"

namespace nanoflow::cuda {
namespace {

constexpr int kWarps = 4;
constexpr float kLog2e = 1.4426950408889634f;

template <int D, int MAXG, int UNROLL>
__global__ void __launch_bounds__(kWarps * 32) decode_attention_kernel(DecodeAttentionParams p) {
  constexpr int kLanesPerToken = D / 8;
  constexpr int kTokPerStep = 32 / kLanesPerToken;       // tokens a warp reads per unrolled step
  constexpr int kTokPerWarpIter = kTokPerStep * UNROLL;  // tokens a warp reads per iteration
  constexpr int kGroups = kWarps * kTokPerStep;          // independent softmax states per CTA

  __shared__ float s_m[kGroups][MAXG];
  __shared__ float s_l[kGroups][MAXG];
  __shared__ float s_acc[kGroups][MAXG][D];

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.hq / p.hkv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int grp = lane / kLanesPerToken, sub = lane % kLanesPerToken;
  const int gid = warp * kTokPerStep + grp;

  const int kv = p.kv_len[seq];
  const int start = split * p.chunk_tokens;
  const int end = min(kv, start + p.chunk_tokens);
  const int32_t* pages = p.page_ids + p.page_start[seq];
  const int64_t row_stride = static_cast<int64_t>(p.hkv) * D;  // elements between slots

  float qf[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    if (g < G) {
      const uint4 raw = *reinterpret_cast<const uint4*>(
          p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + g) * D + sub * 8);
      dev::unpack8(raw, qf[g]);
#pragma unroll
      for (int j = 0; j < 8; ++j) qf[g][j] *= p.scale * kLog2e;
    }
  }

  float m[MAXG], l[MAXG], acc[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[g][j] = 0.f;
  }

  const __nv_bfloat16* kbase = p.k_cache + static_cast<int64_t>(kvh) * D + sub * 8;
  const __nv_bfloat16* vbase = p.v_cache + static_cast<int64_t>(kvh) * D + sub * 8;

  for (int base = start + warp * kTokPerWarpIter; base < end; base += kWarps * kTokPerWarpIter) {
    uint4 kr[UNROLL], vr[UNROLL];
    // All loads of the iteration are issued before the first use (2 * UNROLL in flight).
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int t = base + u * kTokPerStep + grp;
      if (t < end) {
        const int64_t off = (static_cast<int64_t>(pages[t >> 4]) * 16 + (t & 15)) * row_stride;
        kr[u] = dev::ld_stream(kbase + off);
        vr[u] = dev::ld_stream(vbase + off);
      } else {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
    float s[UNROLL][MAXG];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      float kf[8];
      dev::unpack8(kr[u], kf);
      const bool valid = base + u * kTokPerStep + grp < end;
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        float d = 0.f;
        if (g < G) {
#pragma unroll
          for (int j = 0; j < 8; ++j) d = fmaf(qf[g][j], kf[j], d);
#pragma unroll
          for (int o = kLanesPerToken / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        }
        s[u][g] = valid ? d : -INFINITY;
      }
    }
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      if (g >= G) continue;
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) mx = fmaxf(mx, s[u][g]);
      if (mx == -INFINITY) continue;  // nothing valid yet for this lane group
      const float corr = exp2f(m[g] - mx);
      m[g] = mx;
      l[g] *= corr;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[g][j] *= corr;
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const float pe = exp2f(s[u][g] - mx);
        float vf[8];
        dev::unpack8(vr[u], vf);
        l[g] += pe;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[g][j] = fmaf(pe, vf[j], acc[g][j]);
      }
    }
  }

#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    if (g < G) {
      if (sub == 0) {
        s_m[gid][g] = m[g];
        s_l[gid][g] = l[g];
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) s_acc[gid][g][sub * 8 + j] = acc[g][j];
    }
  }
  __syncthreads();

  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, d = i % D;
    float M = -INFINITY;
#pragma unroll
    for (int k = 0; k < kGroups; ++k) M = fmaxf(M, s_m[k][g]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int k = 0; k < kGroups; ++k) {
        const float w = exp2f(s_m[k][g] - M);
        L = fmaf(s_l[k][g], w, L);
        O = fmaf(s_acc[k][g][d], w, O);
      }
    }
    const int h = kvh * G + g;
    const float o = L > 0.f ? O / L : 0.f;
    if (p.num_splits == 1) {
      p.out[(static_cast<int64_t>(seq) * p.hq + h) * D + d] = __float2bfloat16(o);
    } else {
      const int64_t ph = (static_cast<int64_t>(seq) * p.hq + h) * p.num_splits + split;
      p.workspace[ph * D + d] = o;
      if (d == 0) {
        float* lse = p.workspace + static_cast<int64_t>(p.num_seqs) * p.hq * p.num_splits * D;
        lse[ph] = L > 0.f ? M + log2f(L) : -INFINITY;
      }
    }
  }
}

// One CTA per (head, sequence), head_dim threads: out = sum_i w_i o_i / sum_i w_i, w_i = 2^(lse_i - max).
__global__ void decode_attention_merge_kernel(DecodeAttentionParams p) {
  const int h = blockIdx.x, seq = blockIdx.y, d = threadIdx.x;
  const int64_t ph0 = (static_cast<int64_t>(seq) * p.hq + h) * p.num_splits;
  const float* lse = p.workspace + static_cast<int64_t>(p.num_seqs) * p.hq * p.num_splits * p.head_dim;
  float M = -INFINITY;
  for (int i = 0; i < p.num_splits; ++i) M = fmaxf(M, lse[ph0 + i]);
  float W = 0.f, O = 0.f;
  if (M != -INFINITY) {
    for (int i = 0; i < p.num_splits; ++i) {
      const float w = exp2f(lse[ph0 + i] - M);  // 0 for empty splits (lse = -inf)
      W += w;
      O = fmaf(w, p.workspace[(ph0 + i) * p.head_dim + d], O);
    }
  }
  p.out[(static_cast<int64_t>(seq) * p.hq + h) * p.head_dim + d] = __float2bfloat16(W > 0.f ? O / W : 0.f);
}

template <int D, int MAXG>
cudaError_t launch_dg(const DecodeAttentionParams& p, cudaStream_t stream) {
  dim3 grid(p.num_splits, p.hkv, p.num_seqs);
  // Deeper unrolling keeps more bytes in flight (small SM shares) at the cost of registers.
  const int unroll = p.unroll != 0 ? p.unroll : (MAXG <= 4 ? 8 : 4);
  if (unroll == 8) {
    decode_attention_kernel<D, MAXG, 8><<<grid, kWarps * 32, 0, stream>>>(p);
  } else if (unroll == 4) {
    decode_attention_kernel<D, MAXG, 4><<<grid, kWarps * 32, 0, stream>>>(p);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_d(const DecodeAttentionParams& p, cudaStream_t stream) {
  const int G = p.hq / p.hkv;
  if (G <= 1) return launch_dg<D, 1>(p, stream);
  if (G <= 2) return launch_dg<D, 2>(p, stream);
  if (G <= 4) return launch_dg<D, 4>(p, stream);
  if (G <= 8) return launch_dg<D, 8>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_decode_attention(const DecodeAttentionParams& p, cudaStream_t stream) {
  if (p.num_seqs == 0) return cudaSuccess;
  cudaError_t e = p.head_dim == 128 ? launch_d<128>(p, stream)
                  : p.head_dim == 64 ? launch_d<64>(p, stream)
                                     : cudaErrorInvalidValue;
  if (e != cudaSuccess || p.num_splits == 1) return e;
  decode_attention_merge_kernel<<<dim3(p.hq, p.num_seqs), p.head_dim, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
