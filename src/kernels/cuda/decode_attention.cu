// Paged GQA decode attention on tensor cores: split-KV kernel + merge kernel (decode_attention.h).
//
// The G query heads of a KV group form the M dimension of mma.m16n8k16 (rows >= G are zero), so
// one K/V load serves every head of the group and scores cost one mma per 8 keys and 16 dims
// instead of per-key shuffles. A CTA (kWarps warps) walks its split in tiles of 16 * kWarps keys
// gathered from pages into shared memory by cp.async (a ring of kStages tiles: kStages - 1 in flight
// while one is used). Warp w takes keys [16w, 16w + 16) of each tile and keeps its own
// online-softmax state; the states merge through shared memory at the end.
//
// Measured (H100, docs/perf/RESULTS.md): on the whole GPU every variant but the deepest reaches
// ~95% of HBM copy; on small SM shares throughput follows the number of resident warps, not the
// bytes in flight, so the default is 4 warps x 2 stages x 3 CTAs per SM (12 warps, 74 KB a CTA).
//
// Shared memory (bf16, rows padded by 8 elements for conflict-free ldmatrix):
//   sQ [16][D+8]   sK [kStages][tile][D+8]   sV [kStages][tile][D+8];
//   merge: reuses sK as f32 [kWarps][16][D] + m/l.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/mma.cuh"

namespace nanoflow::cuda {
namespace {

using namespace dev;

constexpr int kRows = 16;    // mma M: query heads of the group, zero-padded
constexpr float kLog2e = 1.4426950408889634f;

// Variants: warps per CTA (each takes 16 keys of a tile, so a tile is 16 * kWarps keys), stages of
// the cp.async ring (kStages - 1 tiles in flight while one is used), CTAs an SM holds.
template <int D, int kWarps, int kStages>
constexpr int smem_bytes() {
  return (kRows + 2 * kStages * 16 * kWarps) * (D + 8) * 2;
}

template <int D, int kWarps, int kStages, int kMinBlocks>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) decode_attention_kernel(DecodeAttentionParams p) {
  constexpr int kTile = 16 * kWarps;
  constexpr int kPitch = D + 8;
  constexpr int kChunks = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + kRows * kPitch;
  __nv_bfloat16* sV = sK + kStages * kTile * kPitch;

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.hq / p.hkv;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int kv = p.kv_len[seq];
  const int start = split * p.chunk_tokens;
  const int end = min(kv, start + p.chunk_tokens);
  const int n_tiles = end > start ? (end - start + kTile - 1) / kTile : 0;
  const int32_t* pages = p.page_ids + p.page_start[seq];
  const int64_t slot_stride = static_cast<int64_t>(p.hkv) * D;

  for (int i = tid; i < kRows * kChunks; i += kWarps * 32) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < G;
    const __nv_bfloat16* src = p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + (ok ? r : 0)) * D + c * 8;
    cp_async16(smem_u32(sQ + r * kPitch + c * 8), src, ok);
  }
  // Each thread copies the same 16-byte column c of rows r0, r0 + kRowStep, ... of a tile. The
  // tile's page ids are loaded first, all at once, so the cp.async addresses wait on one load
  // latency instead of one per copy.
  constexpr int kThreads = kWarps * 32;
  constexpr int kRowStep = kThreads / kChunks;
  constexpr int kRowsPerThread = kTile / kRowStep;
  static_assert(kThreads % kChunks == 0 && kTile % kRowStep == 0, "tile copy layout");
  const int c_col = tid % kChunks, r0 = tid / kChunks;
  auto load_tile = [&](int tile) {
    const int stage = tile % kStages;
    const int key_base = start + tile * kTile;  // a multiple of 16: tiles never straddle a page start
    int32_t pg[kRowsPerThread];
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int key = min(key_base + r0 + j * kRowStep, end - 1);
      pg[j] = __ldg(pages + (key >> 4));
    }
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int r = r0 + j * kRowStep;
      const int key = key_base + r;
      const bool ok = key < end;
      const int64_t off = (static_cast<int64_t>(pg[j]) * 16 + (key & 15)) * slot_stride +
                          static_cast<int64_t>(kvh) * D + c_col * 8;
      cp_async16(smem_u32(sK + (stage * kTile + r) * kPitch + c_col * 8), p.k_cache + off, ok);
      cp_async16(smem_u32(sV + (stage * kTile + r) * kPitch + c_col * 8), p.v_cache + off, ok);
    }
  };
  // Prologue: Q with tile 0 (one group), then tiles 1 .. kStages - 2 (possibly empty groups: the
  // count of committed groups stays uniform, so wait_group below is exact).
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < n_tiles) load_tile(t);
    cp_async_commit();
  }

  uint32_t qa[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;
  const float sl2 = p.scale * kLog2e;

  for (int t = 0; t < n_tiles; ++t) {
    if (t + kStages - 1 < n_tiles) load_tile(t + kStages - 1);  // stage freed by the barrier ending t - 1
    cp_async_commit();
    cp_async_wait<kStages - 1>();           // tile t (and Q) have landed for this thread
    __syncthreads();                        // ... and for every thread
    if (t == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const int mtx = lane >> 3;
        ldsm_x4(smem_u32(sQ + ((lane & 7) + (mtx & 1) * 8) * kPitch + kk * 16 + (mtx >> 1) * 8), qa[kk][0],
                qa[kk][1], qa[kk][2], qa[kk][3]);
      }
    }
    const int stage = t % kStages;
    const __nv_bfloat16* tK = sK + (stage * kTile + warp * 16) * kPitch;
    const __nv_bfloat16* tV = sV + (stage * kTile + warp * 16) * kPitch;
    float s[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int k2 = 0; k2 < D / 32; ++k2) {
        uint32_t b0, b1, b2, b3;
        ldsm_x4(smem_u32(tK + (nt * 8 + (lane & 7)) * kPitch + k2 * 32 + (lane >> 3) * 8), b0, b1, b2, b3);
        mma_bf16(s[nt], qa[2 * k2], b0, b1);
        mma_bf16(s[nt], qa[2 * k2 + 1], b2, b3);
      }
    }
    const int key0 = start + t * kTile + warp * 16;
    float mx_lo = m_lo, mx_hi = m_hi;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + nt * 8 + (lane & 3) * 2 + (e & 1);
        s[nt][e] = key < end ? s[nt][e] * sl2 : -INFINITY;
      }
      mx_lo = fmaxf(mx_lo, fmaxf(s[nt][0], s[nt][1]));
      mx_hi = fmaxf(mx_hi, fmaxf(s[nt][2], s[nt][3]));
    }
    float use_lo, use_hi;
    online_softmax_rescale<D>(mx_lo, mx_hi, m_lo, m_hi, l_lo, l_hi, o, use_lo, use_hi);
    uint32_t pa[4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const float p0 = exp2f(s[nt][0] - use_lo), p1 = exp2f(s[nt][1] - use_lo);
      const float p2 = exp2f(s[nt][2] - use_hi), p3 = exp2f(s[nt][3] - use_hi);
      l_lo += p0 + p1;
      l_hi += p2 + p3;
      pa[nt * 2] = pack_bf16(p0, p1);
      pa[nt * 2 + 1] = pack_bf16(p2, p3);
    }
#pragma unroll
    for (int n2 = 0; n2 < D / 16; ++n2) {
      uint32_t b0, b1, b2, b3;
      const int mtx = lane >> 3;
      ldsm_x4_t(smem_u32(tV + ((lane & 7) + (mtx & 1) * 8) * kPitch + n2 * 16 + (mtx >> 1) * 8), b0, b1, b2, b3);
      mma_bf16(o[2 * n2], pa, b0, b1);
      mma_bf16(o[2 * n2 + 1], pa, b2, b3);
    }
    __syncthreads();  // stage t % kStages is refilled kStages - 1 iterations later
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the 4 warps' states (rows < G only) through shared memory.
#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
    l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
  }
  float* s_o = reinterpret_cast<float*>(sK);              // [4][16][D]
  float* s_m = s_o + kWarps * kRows * D;                  // [4][16]
  float* s_l = s_m + kWarps * kRows;                      // [4][16]
  const int r_lo = lane >> 2, col = (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    float* base = s_o + (warp * kRows) * D + i * 8 + col;
    base[r_lo * D] = o[i][0];
    base[r_lo * D + 1] = o[i][1];
    base[(r_lo + 8) * D] = o[i][2];
    base[(r_lo + 8) * D + 1] = o[i][3];
  }
  if ((lane & 3) == 0) {
    s_m[warp * kRows + r_lo] = m_lo;
    s_m[warp * kRows + r_lo + 8] = m_hi;
    s_l[warp * kRows + r_lo] = l_lo;
    s_l[warp * kRows + r_lo + 8] = l_hi;
  }
  __syncthreads();
  for (int i = tid; i < G * D; i += kWarps * 32) {
    const int g = i / D, d = i % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w * kRows + g]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float wt = exp2f(s_m[w * kRows + g] - M);
        L = fmaf(s_l[w * kRows + g], wt, L);
        O = fmaf(s_o[(w * kRows + g) * D + d], wt, O);
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

template <int D, int kWarps, int kStages, int kMinBlocks>
cudaError_t launch_v(const DecodeAttentionParams& p, cudaStream_t stream) {
  constexpr int smem = smem_bytes<D, kWarps, kStages>();
  static_assert(smem >= (kWarps * kRows * D + 2 * kWarps * kRows) * 4, "merge scratch fits");
  auto kernel = decode_attention_kernel<D, kWarps, kStages, kMinBlocks>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(p.num_splits, p.hkv, p.num_seqs), kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

// The one dispatch point of the variants (STYLE.md): 0 = the default, measured best.
template <int D>
cudaError_t launch_d(const DecodeAttentionParams& p, cudaStream_t stream) {
  switch (p.variant) {
    case 1: return launch_v<D, 4, 3, 2>(p, stream);   // 64-key tiles, 2 in flight, 2 CTAs/SM
    case 2: return launch_v<D, 4, 6, 1>(p, stream);   // 64-key tiles, 5 in flight, 1 CTA/SM
    case 3: return launch_v<D, 2, 6, 2>(p, stream);   // 32-key tiles, 5 in flight, 2 CTAs/SM
    case 4: return launch_v<D, 2, 12, 1>(p, stream);  // 32-key tiles, 11 in flight, 1 CTA/SM
    case 0:  // default: best measured on H100 (whole GPU 95%, 24-SM share 50% of a streaming read)
    case 5: return launch_v<D, 4, 2, 3>(p, stream);   // 64-key tiles, 1 in flight, 3 CTAs/SM
    case 6: return launch_v<D, 2, 4, 4>(p, stream);   // 32-key tiles, 3 in flight, 4 CTAs/SM
    default: return cudaErrorInvalidValue;
  }
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
