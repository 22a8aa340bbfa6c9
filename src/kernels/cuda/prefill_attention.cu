// Paged causal prefill attention on tensor cores (see prefill_attention.h).
//
// Shared memory (bf16, rows padded by 8 elements = 16 bytes so ldmatrix's 8 row addresses fall in
// different bank groups):
//   sQ [64][D+8]            query tile
//   sK [2][64][D+8]         key tiles, double-buffered
//   sV [2][64][D+8]         value tiles, double-buffered
// Fragments follow the PTX ISA layouts of mma.m16n8k16 (row.col): a thread holds rows lane/4 and
// lane/4 + 8 of its warp's 16-row slice, columns 2*(lane%4) + {0, 1} of each 8-column tile.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/prefill_attention.h"

namespace nanoflow::cuda {
namespace {

using namespace dev;

constexpr int kBM = 64, kBN = 64, kWarps = 4;
static_assert(kBM == kPrefillTileRows, "the plan's tiles are the kernels' query tiles");
constexpr float kLog2e = 1.4426950408889634f;

template <int D>
__global__ void __launch_bounds__(kWarps * 32) prefill_attention_kernel(PrefillAttentionParams p) {
  constexpr int kPitch = D + 8;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + kBM * kPitch;
  __nv_bfloat16* sV = sK + 2 * kBN * kPitch;

  const int seq = p.tiles[2 * blockIdx.x], q0 = p.tiles[2 * blockIdx.x + 1];
  const int h = blockIdx.y;
  const int kvh = h / (p.hq / p.hkv);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const int tok0 = p.q_start[seq];
  const int qlen = p.q_start[seq + 1] - tok0;
  const int kv = p.kv_len[seq];
  const int rows = min(kBM, qlen - q0);
  const int pos0 = kv - qlen + q0;          // position of the tile's first query row
  const int n_keys = pos0 + rows;           // keys the last row attends to
  const int n_tiles = (n_keys + kBN - 1) / kBN;
  const int32_t* pages = p.page_ids + p.page_start[seq];
  const int64_t slot_stride = static_cast<int64_t>(p.hkv) * D;

  // Q tile -> sQ (rows past the chunk are zero-filled and never written out).
  for (int i = tid; i < kBM * kChunks; i += kWarps * 32) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < rows;
    const __nv_bfloat16* src = p.q + (static_cast<int64_t>(tok0 + q0 + (ok ? r : 0)) * p.hq + h) * D + c * 8;
    cp_async16(smem_u32(sQ + r * kPitch + c * 8), src, ok);
  }
  auto load_kv = [&](int tile, int buf) {
    for (int i = tid; i < kBN * kChunks; i += kWarps * 32) {
      const int r = i / kChunks, c = i % kChunks;
      const int key = tile * kBN + r;
      const bool ok = key < n_keys;
      const int kk = ok ? key : 0;
      const int64_t off = (static_cast<int64_t>(pages[kk >> 4]) * 16 + (kk & 15)) * slot_stride +
                          static_cast<int64_t>(kvh) * D + c * 8;
      cp_async16(smem_u32(sK + (buf * kBN + r) * kPitch + c * 8), p.k_cache + off, ok);
      cp_async16(smem_u32(sV + (buf * kBN + r) * kPitch + c * 8), p.v_cache + off, ok);
    }
  };
  load_kv(0, 0);
  cp_async_commit();

  uint32_t qa[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;
  const float sl2 = p.scale * kLog2e;
  const int r_lo = warp * 16 + (lane >> 2);         // this thread's rows within the tile
  const int qpos_lo = pos0 + r_lo, qpos_hi = qpos_lo + 8;

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      load_kv(j + 1, buf ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const int mtx = lane >> 3;
        const int row = warp * 16 + (lane & 7) + (mtx & 1) * 8;
        const int col = kk * 16 + (mtx >> 1) * 8;
        ldsm_x4(smem_u32(sQ + row * kPitch + col), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3]);
      }
    }
    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[kBN / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int k2 = 0; k2 < D / 32; ++k2) {
        uint32_t b0, b1, b2, b3;
        const int key = nt * 8 + (lane & 7);
        const int dim = k2 * 32 + (lane >> 3) * 8;
        ldsm_x4(smem_u32(sK + (buf * kBN + key) * kPitch + dim), b0, b1, b2, b3);
        mma_bf16(s[nt], qa[2 * k2], b0, b1);
        mma_bf16(s[nt], qa[2 * k2 + 1], b2, b3);
      }
    }
    // Mask (causal and past-the-end keys), scale into the log2 domain, online softmax.
    const bool need_mask = (j + 1) * kBN - 1 > pos0 + warp * 16 || (j + 1) * kBN > n_keys;
    float mx_lo = m_lo, mx_hi = m_hi;
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = s[nt][e] * sl2;
        if (need_mask) {
          const int key = j * kBN + nt * 8 + (lane & 3) * 2 + (e & 1);
          const int qpos = e < 2 ? qpos_lo : qpos_hi;
          if (key > qpos || key >= n_keys) v = -INFINITY;
        }
        s[nt][e] = v;
      }
      mx_lo = fmaxf(mx_lo, fmaxf(s[nt][0], s[nt][1]));
      mx_hi = fmaxf(mx_hi, fmaxf(s[nt][2], s[nt][3]));
    }
    float use_lo, use_hi;
    online_softmax_rescale<D>(mx_lo, mx_hi, m_lo, m_hi, l_lo, l_hi, o, use_lo, use_hi);
    uint32_t pa[kBN / 16][4];
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
      const float p0 = exp2f(s[nt][0] - use_lo), p1 = exp2f(s[nt][1] - use_lo);
      const float p2 = exp2f(s[nt][2] - use_hi), p3 = exp2f(s[nt][3] - use_hi);
      l_lo += p0 + p1;
      l_hi += p2 + p3;
      pa[nt >> 1][(nt & 1) * 2 + 0] = pack_bf16(p0, p1);
      pa[nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(p2, p3);
    }
    // O += P V.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
#pragma unroll
      for (int n2 = 0; n2 < D / 16; ++n2) {
        uint32_t b0, b1, b2, b3;
        const int mtx = lane >> 3;
        const int key = kk * 16 + (lane & 7) + (mtx & 1) * 8;
        const int dim = n2 * 16 + (mtx >> 1) * 8;
        ldsm_x4_t(smem_u32(sV + (buf * kBN + key) * kPitch + dim), b0, b1, b2, b3);
        mma_bf16(o[2 * n2], pa[kk], b0, b1);
        mma_bf16(o[2 * n2 + 1], pa[kk], b2, b3);
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this buffer
  }

#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
    l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
  }
  const float inv_lo = l_lo > 0.f ? 1.f / l_lo : 0.f, inv_hi = l_hi > 0.f ? 1.f / l_hi : 0.f;
  const int col = (lane & 3) * 2;
  if (r_lo < rows) {
    __nv_bfloat16* dst = p.out + (static_cast<int64_t>(tok0 + q0 + r_lo) * p.hq + h) * D + col;
#pragma unroll
    for (int i = 0; i < D / 8; ++i)
      *reinterpret_cast<__nv_bfloat162*>(dst + i * 8) = __floats2bfloat162_rn(o[i][0] * inv_lo, o[i][1] * inv_lo);
  }
  if (r_lo + 8 < rows) {
    __nv_bfloat16* dst = p.out + (static_cast<int64_t>(tok0 + q0 + r_lo + 8) * p.hq + h) * D + col;
#pragma unroll
    for (int i = 0; i < D / 8; ++i)
      *reinterpret_cast<__nv_bfloat162*>(dst + i * 8) = __floats2bfloat162_rn(o[i][2] * inv_hi, o[i][3] * inv_hi);
  }
}

template <int D>
cudaError_t launch_d(const PrefillAttentionParams& p, cudaStream_t stream) {
  constexpr int smem = 5 * kBM * (D + 8) * 2;
  static_assert(kBM == kBN, "sQ, sK and sV tiles share one row count");
  cudaError_t e = cudaFuncSetAttribute(prefill_attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  prefill_attention_kernel<D><<<dim3(p.num_tiles, p.hq), kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream) {
  if (p.num_tiles == 0) return cudaSuccess;
  if (p.head_dim == 128) return launch_d<128>(p, stream);
  if (p.head_dim == 64) return launch_d<64>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace nanoflow::cuda
