// GPU sampling, one 1024-thread CTA per row (see sampling.h for the exact semantics).
// Threshold searches are radix selects over the order-preserving 32-bit key of a float: four
// passes of 8 bits, each a 256-bin shared-memory histogram of the elements matching the prefix.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/sampling.h"

namespace nanoflow::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t float_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct ArgMax {
  float v;
  int i;
};
// (value desc, index asc) order: true if a comes before b.
__device__ __forceinline__ bool before(const ArgMax& a, const ArgMax& b) {
  return a.v > b.v || (a.v == b.v && a.i < b.i);
}
__device__ ArgMax block_argmax(ArgMax a, ArgMax* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax b{__shfl_xor_sync(0xffffffffu, a.v, o), __shfl_xor_sync(0xffffffffu, a.i, o)};
    if (before(b, a)) a = b;
  }
  __syncthreads();
  if (lane == 0) scratch[warp] = a;
  __syncthreads();
  a = lane < (kThreads / 32) ? scratch[lane] : ArgMax{-INFINITY, 0x7fffffff};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax b{__shfl_xor_sync(0xffffffffu, a.v, o), __shfl_xor_sync(0xffffffffu, a.i, o)};
    if (before(b, a)) a = b;
  }
  return a;
}

// The key of the k-th largest element (1-based) of row[0, n).
__device__ uint32_t radix_kth_largest(const float* row, int n, int k, uint32_t* hist, uint32_t* sel) {
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) hist[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const uint32_t key = float_key(row[i]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t cum = 0;
      int b = 255;
      for (; b > 0; --b) {
        if (cum + hist[b] >= static_cast<uint32_t>(k)) break;
        cum += hist[b];
      }
      sel[0] = b;
      sel[1] = k - cum;
    }
    __syncthreads();
    prefix |= sel[0] << shift;
    mask |= 255u << shift;
    k = static_cast<int>(sel[1]);
    __syncthreads();
  }
  return prefix;
}

// The key t such that the elements with key >= t, among those with key >= floor_key, form the
// shortest descending prefix whose mass exp((l - mx) * inv_t) reaches `target`.
__device__ uint32_t radix_mass_cut(const float* row, int n, uint32_t floor_key, float mx, float inv_t,
                                   float target, float* hist, float* fsel, uint32_t* sel) {
  uint32_t prefix = 0, mask = 0;
  float above = 0.f;  // mass of elements strictly above the current prefix
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) hist[b] = 0.f;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const float l = row[i];
      const uint32_t key = float_key(l);
      if (key >= floor_key && (key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], __expf((l - mx) * inv_t));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float cum = above;
      int b = 255;
      for (; b > 0; --b) {
        if (cum + hist[b] >= target) break;
        cum += hist[b];
      }
      sel[0] = b;
      fsel[0] = cum;
    }
    __syncthreads();
    prefix |= sel[0] << shift;
    mask |= 255u << shift;
    above = fsel[0];
    __syncthreads();
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads) sampling_kernel(SamplingParams p) {
  __shared__ float fscratch[32];
  __shared__ ArgMax ascratch[32];
  __shared__ uint32_t hist[256];
  __shared__ uint32_t sel[2];
  __shared__ float fsel[1];
  const int r = blockIdx.x;
  float* row = p.logits + static_cast<int64_t>(r) * p.vocab;
  const int n = p.vocab;

  // 0. The logits rounded to bf16 in place, as the model dtype's LM head gives them in transformers
  // and vLLM (greedy then takes the lowest id among equal bf16 values, as torch.argmax does).
  // 1. Raw log-probs (before penalties, as vLLM reports them): log-sum-exp and the top entries.
  ArgMax best{-INFINITY, 0x7fffffff};
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float l = p.round_bf16 ? dev::bf16r(row[i]) : row[i];
    if (p.round_bf16) row[i] = l;
    const ArgMax c{l, i};
    if (before(c, best)) best = c;
  }
  best = block_argmax(best, ascratch);
  float se = 0.f;
  for (int i = threadIdx.x; i < n; i += kThreads) se += __expf(row[i] - best.v);
  se = dev::block_sum(se, fscratch);
  const float lse = best.v + logf(se);
  ArgMax prev = best;
  for (int t = 0; t < p.num_logprobs; ++t) {
    if (t > 0) {
      ArgMax c{-INFINITY, 0x7fffffff};
      for (int i = threadIdx.x; i < n; i += kThreads) {
        const ArgMax e{row[i], i};
        if (before(prev, e) && before(e, c)) c = e;
      }
      prev = block_argmax(c, ascratch);
    }
    if (threadIdx.x == 0) {
      p.top_ids[r * p.num_logprobs + t] = prev.i;
      p.top_logprobs[r * p.num_logprobs + t] = prev.v - lse;
    }
  }

  // 2. Penalties on the history tokens, in place; then the maximum the draw works from.
  const float rep = p.repetition_penalty ? p.repetition_penalty[r] : 1.f;
  const float pres = p.presence_penalty ? p.presence_penalty[r] : 0.f;
  const float freq = p.frequency_penalty ? p.frequency_penalty[r] : 0.f;
  const bool penalize = p.hist_start != nullptr && (rep != 1.f || pres != 0.f || freq != 0.f);
  if (penalize) {
    __syncthreads();  // every thread has read the raw row above
    for (int j = p.hist_start[r] + threadIdx.x; j < p.hist_start[r + 1]; j += kThreads) {
      const int tok = p.hist_token[j];
      if (tok < 0 || tok >= n) continue;
      const int cnt = p.hist_count[j];
      float l = row[tok];
      if (rep != 1.f) l = l > 0.f ? l / rep : l * rep;
      l -= freq * static_cast<float>(cnt) + (cnt > 0 ? pres : 0.f);
      row[tok] = l;
    }
    __syncthreads();
    best = ArgMax{-INFINITY, 0x7fffffff};
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const ArgMax c{row[i], i};
      if (before(c, best)) best = c;
    }
    best = block_argmax(best, ascratch);
  }
  const float mx = best.v;

  // 3. Greedy or filtered Gumbel-max draw (on the penalized logits).
  const float temp = p.temperature[r];
  int chosen = best.i;
  if (temp > 0.f) {
    const float inv_t = 1.f / temp;
    uint32_t cut = 0;  // keep keys >= cut
    const int k = p.top_k ? p.top_k[r] : 0;
    if (k > 0 && k < n) cut = radix_kth_largest(row, n, k, hist, sel);
    const float tp = p.top_p ? p.top_p[r] : 1.f;
    if (tp < 1.f) {
      float mass = 0.f;
      for (int i = threadIdx.x; i < n; i += kThreads) {
        const float l = row[i];
        if (float_key(l) >= cut) mass += __expf((l - mx) * inv_t);
      }
      mass = dev::block_sum(mass, fscratch);
      const uint32_t pcut = radix_mass_cut(row, n, cut, mx, inv_t, tp * mass,
                                           reinterpret_cast<float*>(hist), fsel, sel);
      cut = max(cut, pcut);
    }
    const float mp = p.min_p ? p.min_p[r] : 0.f;
    if (mp > 0.f) cut = max(cut, float_key(mx + temp * logf(mp)));
    const uint64_t seed = p.seed[r];
    const int64_t step = p.step[r];
    ArgMax g{-INFINITY, 0x7fffffff};
    for (int i = threadIdx.x; i < n; i += kThreads) {
      const float l = row[i];
      if (float_key(l) < cut) continue;
      const float u = sampling_uniform(seed, step, i);
      const ArgMax c{l * inv_t - logf(-logf(u)), i};
      if (before(c, g)) g = c;
    }
    g = block_argmax(g, ascratch);
    chosen = g.i;
  }
  // 4. The chosen token's raw log-prob: undo its penalty if it was in the history (exact up to
  // one rounding; the raw row is gone).
  __shared__ float raw_chosen;
  if (threadIdx.x == 0) raw_chosen = row[chosen];
  __syncthreads();
  if (penalize && p.sampled_logprob != nullptr) {
    for (int j = p.hist_start[r] + threadIdx.x; j < p.hist_start[r + 1]; j += kThreads) {
      if (p.hist_token[j] != chosen) continue;
      const int cnt = p.hist_count[j];
      const float x = row[chosen] + freq * static_cast<float>(cnt) + (cnt > 0 ? pres : 0.f);
      raw_chosen = rep == 1.f ? x : (x > 0.f ? x * rep : x / rep);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    p.sampled[r] = chosen;
    if (p.sampled_logprob != nullptr) p.sampled_logprob[r] = raw_chosen - lse;
  }
}

}  // namespace

cudaError_t launch_sampling(const SamplingParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  sampling_kernel<<<p.rows, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
