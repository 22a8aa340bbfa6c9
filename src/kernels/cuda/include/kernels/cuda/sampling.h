// Sampling on the GPU: one CTA per sampled row over f32 logits [rows, vocab]. Only the sampled ids
// and the requested logprobs leave the device (the caller copies those small arrays to the host).
//
// Per row, in order:
//  0. with round_bf16, the row rounded to bf16 in place first (a bf16 model's logits as transformers
//     and vLLM produce them; greedy then agrees with torch.argmax on them, ties included);
//  1. logprobs of the raw logits (vLLM's default): lse = logsumexp(l); sampled_logprob and the top
//     `num_logprobs` (id, l - lse) in descending order (ties: lower id first);
//  2. penalties on the row's history tokens (in place): repetition (l > 0 ? l / r : l * r, on every
//     listed token: prompt and output), then frequency * count and presence * (count > 0)
//     subtracted (count = times the token was generated; prompt-only tokens have count 0);
//  3. temperature 0 -> greedy (the lowest id among equal maxima). Otherwise keep tokens with
//     l >= max(t_k, t_p, t_min):  t_k = the top_k-th largest logit (exact radix select),
//     t_p = smallest logit of the shortest descending prefix whose softmax(l / T) mass among the
//     top-k survivors reaches top_p (radix select on mass), t_min = max + T * ln(min_p);
//     then draw by Gumbel-max: argmax over kept tokens of l / T + g_i, g_i = -ln(-ln u_i),
//     u_i = sampling_uniform(seed, step, i): reproducible per request seed and step, and
//     independent of the batch. (The CPU sampler draws by inverse CDF from one uniform: same
//     distribution, different tokens for the same seed.)
// Ties at a threshold keep every tied token.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace nanoflow::cuda {

inline constexpr int kMaxLogprobs = 20;

struct SamplingParams {
  float* logits = nullptr;                 // [rows, vocab] f32, penalized in place
  int rows = 0, vocab = 0;
  bool round_bf16 = false;                 // step 0 above
  const float* temperature = nullptr;      // [rows]; 0 = greedy
  const int32_t* top_k = nullptr;          // optional [rows]; <= 0 = off
  const float* top_p = nullptr;            // optional [rows]; >= 1 = off
  const float* min_p = nullptr;            // optional [rows]; <= 0 = off
  const float* repetition_penalty = nullptr;  // optional [rows]; 1 = off
  const float* presence_penalty = nullptr;    // optional [rows]
  const float* frequency_penalty = nullptr;   // optional [rows]
  const int32_t* hist_start = nullptr;     // optional [rows + 1] CSR over hist_token/hist_count
  const int32_t* hist_token = nullptr;     // distinct token ids per row
  const int32_t* hist_count = nullptr;     // generated occurrences of each
  const uint64_t* seed = nullptr;          // [rows] per request
  const int64_t* step = nullptr;           // [rows] tokens generated so far (new draw each step)
  int num_logprobs = 0;                    // 0..kMaxLogprobs
  int32_t* sampled = nullptr;              // [rows]
  float* sampled_logprob = nullptr;        // optional [rows]
  int32_t* top_ids = nullptr;              // [rows, num_logprobs] when num_logprobs > 0
  float* top_logprobs = nullptr;           // [rows, num_logprobs]
};

cudaError_t launch_sampling(const SamplingParams& p, cudaStream_t stream);
void sample(const SamplingParams& p, cudaStream_t stream);

// The uniform draw in (0, 1) for token i (host and device; tests recompute it).
#if defined(__CUDACC__)
__host__ __device__
#endif
inline float sampling_uniform(uint64_t seed, int64_t step, int32_t i) {
  uint64_t z = seed ^ (static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ull) ^
               (static_cast<uint64_t>(static_cast<uint32_t>(i)) * 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (static_cast<float>(z >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

}  // namespace nanoflow::cuda
