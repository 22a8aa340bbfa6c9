// RoPE + paged K/V write. One thread per 16-byte unit of a Q or K head (8 rotation pairs, or 4 when
// interleaved), plus one per 16-byte vector of V; grid-stride. A token finds its sequence by binary
// search over q_start (<= 12 steps at 4096 sequences), which keeps the plan free of a per-token
// sequence array.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope_kv.h"

namespace nanoflow::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int seq_of_token(const int32_t* q_start, int num_seqs, int t) {
  int lo = 0, hi = num_seqs - 1;  // largest s with q_start[s] <= t
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (q_start[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ int64_t cache_row(const RopeKvParams& p, int t, int head) {
  const int s = seq_of_token(p.q_start, p.num_seqs, t);
  const int pos = p.positions[t];
  const int page = p.page_ids[p.page_start[s] + pos / 16];
  return ((static_cast<int64_t>(page) * 16 + pos % 16) * p.hkv + head) * p.head_dim;
}

// cos and sin of the angle, rounded to bf16 as transformers hands them to apply_rotary_pos_emb.
__device__ __forceinline__ void rope_cos_sin(float angle, float* sn, float* cs) {
  sincosf(angle, sn, cs);
  *sn = dev::bf16r(*sn);
  *cs = dev::bf16r(*cs);
}
// (x, y) -> (x*cos - y*sin, y*cos + x*sin) with transformers' bf16 rounding of every product and
// sum (q * cos + rotate_half(q) * sin on bf16 tensors); the caller's pack rounds the sums.
__device__ __forceinline__ void rotate(float& x, float& y, float cs, float sn) {
  const float x0 = x;
  x = dev::bf16r(x0 * cs) - dev::bf16r(y * sn);
  y = dev::bf16r(y * cs) + dev::bf16r(x0 * sn);
}

__global__ void rope_inv_freq_kernel(float theta, int head_dim, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < head_dim / 2) out[i] = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
}

// Rotation work unit: 16 bytes of each rotated operand. Half-split: x[8u .. 8u+8) with
// x[d/2 + 8u ..) (8 pairs); interleaved: x[8u .. 8u+8) (4 adjacent pairs).
__device__ __forceinline__ int rot_units_per_head(const RopeKvParams& p) {
  return p.interleaved ? p.head_dim / 8 : p.head_dim / 16;
}

__global__ void rope_kv_kernel(RopeKvParams p) {
  const int half = p.head_dim / 2;
  const int row_elems = (p.hq + 2 * p.hkv) * p.head_dim;
  const int upr = rot_units_per_head(p);
  const int64_t n_rot = static_cast<int64_t>(p.tokens) * (p.hq + p.hkv) * upr;
  const int vpr = p.hkv * p.head_dim / 8;  // V vectors per token
  const int64_t n = n_rot + static_cast<int64_t>(p.tokens) * vpr;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (i < n_rot) {
      const int u = static_cast<int>(i % upr);
      const int head = static_cast<int>((i / upr) % (p.hq + p.hkv));  // q heads, then k heads
      const int t = p.token_begin + static_cast<int>(i / (static_cast<int64_t>(upr) * (p.hq + p.hkv)));
      const int col = head * p.head_dim;  // K heads follow the Q heads in the QKV row
      const __nv_bfloat16* src = p.qkv + static_cast<int64_t>(t) * row_elems + col;
      const int o0 = 8 * u;                                  // first operand's offset in the head
      const int o1 = p.interleaved ? o0 : half + 8 * u;      // second operand (half-split only)
      float a[8], b[8];
      dev::unpack8(*reinterpret_cast<const uint4*>(src + o0), a);
      if (!p.interleaved) dev::unpack8(*reinterpret_cast<const uint4*>(src + o1), b);
      if (p.qkv_bias != nullptr) {
        float ba[8], bb[8];
        dev::unpack8(*reinterpret_cast<const uint4*>(p.qkv_bias + col + o0), ba);
#pragma unroll
        for (int j = 0; j < 8; ++j) a[j] += ba[j];
        if (!p.interleaved) {
          dev::unpack8(*reinterpret_cast<const uint4*>(p.qkv_bias + col + o1), bb);
#pragma unroll
          for (int j = 0; j < 8; ++j) b[j] += bb[j];
        }
      }
      const float pos = static_cast<float>(p.positions[t]);
      if (p.interleaved) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float sn, cs;
          rope_cos_sin(pos * p.inv_freq[4 * u + j], &sn, &cs);
          rotate(a[2 * j], a[2 * j + 1], cs, sn);
        }
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          float sn, cs;
          rope_cos_sin(pos * p.inv_freq[8 * u + j], &sn, &cs);
          rotate(a[j], b[j], cs, sn);
        }
      }
      __nv_bfloat16* dst = head < p.hq ? p.q_out + (static_cast<int64_t>(t) * p.hq + head) * p.head_dim
                                       : p.k_cache + cache_row(p, t, head - p.hq);
      *reinterpret_cast<uint4*>(dst + o0) = dev::pack8(a);
      if (!p.interleaved) *reinterpret_cast<uint4*>(dst + o1) = dev::pack8(b);
    } else {
      const int64_t j = i - n_rot;
      const int t = p.token_begin + static_cast<int>(j / vpr);
      const int c = static_cast<int>(j % vpr);  // vector within the token's V heads
      const int head = c * 8 / p.head_dim, d = c * 8 % p.head_dim;
      const int col = (p.hq + p.hkv) * p.head_dim + c * 8;
      uint4 v = *reinterpret_cast<const uint4*>(p.qkv + static_cast<int64_t>(t) * row_elems + col);
      if (p.qkv_bias != nullptr) {
        float a[8], b[8];
        dev::unpack8(v, a);
        dev::unpack8(*reinterpret_cast<const uint4*>(p.qkv_bias + col), b);
#pragma unroll
        for (int k = 0; k < 8; ++k) a[k] += b[k];
        v = dev::pack8(a);
      }
      *reinterpret_cast<uint4*>(p.v_cache + cache_row(p, t, head) + d) = v;
    }
  }
}

}  // namespace

cudaError_t launch_rope_inv_freq(float theta, int head_dim, float* out, cudaStream_t stream) {
  rope_inv_freq_kernel<<<(head_dim / 2 + 127) / 128, 128, 0, stream>>>(theta, head_dim, out);
  return cudaGetLastError();
}

cudaError_t launch_rope_kv(const RopeKvParams& p, cudaStream_t stream) {
  const int upr = p.interleaved ? p.head_dim / 8 : p.head_dim / 16;
  const int64_t n = static_cast<int64_t>(p.tokens) * ((p.hq + p.hkv) * upr + p.hkv * p.head_dim / 8);
  if (n == 0) return cudaSuccess;
  int64_t g = (n + kThreads - 1) / kThreads;
  if (p.cta_budget > 0 && g > p.cta_budget) g = p.cta_budget;
  if (g > (1 << 30)) g = 1 << 30;
  rope_kv_kernel<<<static_cast<int>(g), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
