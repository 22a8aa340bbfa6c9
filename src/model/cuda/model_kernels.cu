// Kernels of model_kernels.h. Correctness first: these are not on the hot path of the real-shape
// models except fill_deferred (tiny) and the MoE router/combine (memory-bound, one pass each).
#include <cfloat>

#include "model_kernels.h"

#include "kernels/cuda/common.cuh"

namespace nanoflow::model_cuda {
namespace {

using cuda::dev::bf16r;

__global__ void fill_deferred_kernel(int32_t* token_ids, const int32_t* prev, const int32_t* pairs, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) token_ids[pairs[2 * i]] = prev[pairs[2 * i + 1]];
}

// One CTA per (token, q head). Shared memory: scores [max_kv_len] f32, then q [head_dim] f32.
// Rounds where transformers' eager attention rounds (model_kernels.h): score = bf16(bf16(q.k) *
// scale); p = bf16(exp(score - max) / sum) over the whole row; out = bf16(sum_j p_j v_j).
__global__ void naive_attention_kernel(NaiveAttentionParams p) {
  extern __shared__ float smem[];
  __shared__ float red[32];
  const int t = blockIdx.x, h = blockIdx.y;
  float* scores = smem;
  float* qf = smem + p.max_kv_len;
  // Sequence of token t: the last s with q_start[s] <= t.
  int lo = 0, hi = p.num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (p.q_start[mid] <= t) lo = mid; else hi = mid - 1;
  }
  const int s = lo;
  const int qlen = p.q_start[s + 1] - p.q_start[s];
  const int pos = p.kv_len[s] - qlen + (t - p.q_start[s]);  // this query's position
  const int n = pos + 1;                                    // keys it sees
  const int kvh = h / (p.hq / p.hkv);
  const int D = p.head_dim;
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    qf[d] = __bfloat162float(p.q[(static_cast<size_t>(t) * p.hq + h) * D + d]);
  __syncthreads();
  const int32_t* pages = p.page_ids + p.page_start[s];
  auto kv_row = [&](int j) { return ((static_cast<size_t>(pages[j / 16]) * 16 + j % 16) * p.hkv + kvh) * D; };
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const __nv_bfloat16* k = p.k_cache + kv_row(j);
    float acc = 0.f;
    for (int d = 0; d < D; ++d) acc += qf[d] * __bfloat162float(k[d]);
    const float sc = bf16r(bf16r(acc) * p.scale);
    scores[j] = sc;
    mx = fmaxf(mx, sc);
  }
  mx = cuda::dev::block_max(mx, red);
  float sum = 0.f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const float e = expf(scores[j] - mx);
    scores[j] = e;
    sum += e;
  }
  sum = cuda::dev::block_sum(sum, red);
  for (int j = threadIdx.x; j < n; j += blockDim.x) scores[j] = bf16r(scores[j] / sum);
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < n; ++j) acc += scores[j] * __bfloat162float(p.v_cache[kv_row(j) + d]);
    p.out[(static_cast<size_t>(t) * p.hq + h) * D + d] = __float2bfloat16(acc);
  }
}

// One thread per token; experts <= 64.
__global__ void moe_route_kernel(const float* logits, int ld, int tokens, int E, int K, float* w) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  // The router's logits rounded to bf16 first: transformers' router is a bf16 nn.Linear whose
  // output it then softmaxes in f32 (expf, normalized by the sum, as below).
  float l[64];
  for (int e = 0; e < E; ++e) l[e] = bf16r(logits[static_cast<size_t>(t) * ld + e]);
  float* o = w + static_cast<size_t>(t) * E;
  float m = -FLT_MAX;
  for (int e = 0; e < E; ++e) m = fmaxf(m, l[e]);
  float sum = 0.f;
  for (int e = 0; e < E; ++e) sum += expf(l[e] - m);
  uint64_t chosen = 0;
  float kept = 0.f;
  for (int e = 0; e < E; ++e) o[e] = 0.f;
  for (int k = 0; k < K; ++k) {
    int best = -1;
    for (int e = 0; e < E; ++e)
      if (!((chosen >> e) & 1) && (best < 0 || l[e] > l[best])) best = e;
    chosen |= uint64_t{1} << best;
    const float pr = expf(l[best] - m) / sum;
    o[best] = pr;
    kept += pr;
  }
  for (int e = 0; e < E; ++e) o[e] /= kept;
}

__global__ void moe_combine_kernel(float* acc, const __nv_bfloat16* y, const float* w, int tokens, int hidden,
                                   int expert, int E, bool first) {
  const size_t n = static_cast<size_t>(tokens) * hidden;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int t = static_cast<int>(i / hidden);
    const float wt = w[static_cast<size_t>(t) * E + expert];
    const float v = wt == 0.f ? 0.f : wt * __bfloat162float(y[i]);
    acc[i] = first ? v : acc[i] + v;
  }
}

__global__ void add_f32_into_bf16_kernel(__nv_bfloat16* x, const float* acc, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float a = __bfloat162float(__float2bfloat16(acc[i]));
    x[i] = __float2bfloat16(__bfloat162float(x[i]) + a);
  }
}

__global__ void fill_const_kernel(__nv_bfloat16* p, size_t n, float v) {
  const __nv_bfloat16 b = __float2bfloat16(v);
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = b;
}

int grid_for(size_t n) {
  const size_t g = (n + 255) / 256;
  return static_cast<int>(g < 4096 ? (g == 0 ? 1 : g) : 4096);
}

}  // namespace

cudaError_t launch_fill_deferred(int32_t* token_ids, const int32_t* prev, const int32_t* pairs, int n,
                                 cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  fill_deferred_kernel<<<(n + 127) / 128, 128, 0, s>>>(token_ids, prev, pairs, n);
  return cudaGetLastError();
}

cudaError_t launch_naive_attention(const NaiveAttentionParams& p, cudaStream_t s) {
  if (p.tokens <= 0) return cudaSuccess;
  const size_t smem = (static_cast<size_t>(p.max_kv_len) + p.head_dim) * sizeof(float);
  if (smem + 32 * sizeof(float) > 48 * 1024) {  // + the kernel's static reduction scratch
    cudaError_t e = cudaFuncSetAttribute(naive_attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  naive_attention_kernel<<<dim3(p.tokens, p.hq), 128, smem, s>>>(p);
  return cudaGetLastError();
}

cudaError_t launch_moe_route(const float* logits, int ld, int tokens, int experts, int top_k, float* weights,
                             cudaStream_t s) {
  if (tokens <= 0) return cudaSuccess;
  moe_route_kernel<<<(tokens + 127) / 128, 128, 0, s>>>(logits, ld, tokens, experts, top_k, weights);
  return cudaGetLastError();
}

cudaError_t launch_moe_combine(float* acc, const __nv_bfloat16* y, const float* weights, int tokens, int hidden,
                               int expert, int experts, bool first, cudaStream_t s) {
  const size_t n = static_cast<size_t>(tokens) * hidden;
  if (n == 0) return cudaSuccess;
  moe_combine_kernel<<<grid_for(n), 256, 0, s>>>(acc, y, weights, tokens, hidden, expert, experts, first);
  return cudaGetLastError();
}

cudaError_t launch_add_f32_into_bf16(__nv_bfloat16* x, const float* acc, size_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  add_f32_into_bf16_kernel<<<grid_for(n), 256, 0, s>>>(x, acc, n);
  return cudaGetLastError();
}

cudaError_t launch_fill_const_bf16(__nv_bfloat16* p, size_t n, float value, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_const_kernel<<<grid_for(n), 256, 0, s>>>(p, n, value);
  return cudaGetLastError();
}

}  // namespace nanoflow::model_cuda
