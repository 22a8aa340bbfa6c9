#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace nanoflow::engine {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

double sampler_uniform(uint64_t seed, int32_t choice, int64_t index) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(static_cast<uint32_t>(choice)));
  h = splitmix64(h ^ static_cast<uint64_t>(index));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);  // 53 bits -> [0, 1)
}

void log_softmax(const float* logits, int32_t vocab, float* out) {
  float mx = kNegInf;
  for (int32_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  for (int32_t i = 0; i < vocab; ++i) out[i] = logits[i] - lse;
}

SamplerSlot::SamplerSlot(const SlotRegistration& reg)
    : params_(reg.params), seed_(reg.seed), choice_(reg.choice), eos_ids_(reg.eos_ids) {
  prompt_set_.insert(reg.prompt.begin(), reg.prompt.end());
  for (int32_t t : reg.outputs) ++output_counts_[t];
  outputs_ = static_cast<int64_t>(reg.outputs.size());
}

void SamplerSlot::apply_penalties(float* logits, int32_t vocab) const {
  for (const auto& [tok, bias] : params_.logit_bias)
    if (tok >= 0 && tok < vocab) logits[tok] += bias;
  if (outputs_ < params_.min_tokens)
    for (int32_t t : eos_ids_)
      if (t >= 0 && t < vocab) logits[t] = kNegInf;
  const float rp = params_.repetition_penalty;
  if (rp != 1.0f) {
    auto penalize = [&](int32_t t) {
      if (t < 0 || t >= vocab) return;
      logits[t] = logits[t] > 0 ? logits[t] / rp : logits[t] * rp;
    };
    for (int32_t t : prompt_set_) penalize(t);
    for (const auto& [t, c] : output_counts_)
      if (!prompt_set_.count(t)) penalize(t);
  }
  if (params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) {
    for (const auto& [t, c] : output_counts_) {
      if (t < 0 || t >= vocab) continue;
      logits[t] -= params_.frequency_penalty * static_cast<float>(c) + params_.presence_penalty;
    }
  }
}

int32_t SamplerSlot::draw(float* logits, int32_t vocab, double u) {
  const float inv_t = 1.0f / params_.temperature;
  for (int32_t i = 0; i < vocab; ++i) logits[i] *= inv_t;
  // Candidates, best first when a cut needs order. Ties break by lower token id.
  auto better = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  scratch_idx_.resize(static_cast<size_t>(vocab));
  std::iota(scratch_idx_.begin(), scratch_idx_.end(), 0);
  int32_t n = vocab;
  const bool top_k = params_.top_k > 0 && params_.top_k < vocab;
  if (top_k) {
    n = params_.top_k;
    std::nth_element(scratch_idx_.begin(), scratch_idx_.begin() + n, scratch_idx_.end(), better);
    std::sort(scratch_idx_.begin(), scratch_idx_.begin() + n, better);
  } else if (params_.top_p < 1.0f) {
    std::sort(scratch_idx_.begin(), scratch_idx_.end(), better);
  }
  float mx = kNegInf;
  for (int32_t i = 0; i < n; ++i) mx = std::max(mx, logits[scratch_idx_[i]]);
  if (mx == kNegInf) return scratch_idx_[0];  // everything masked: nothing sensible to draw
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0.0;
  for (int32_t i = 0; i < n; ++i) sum += p[i] = std::exp(static_cast<double>(logits[scratch_idx_[i]] - mx));
  if (params_.top_p < 1.0f) {  // candidates are sorted here
    double cum = 0.0;
    int32_t keep = 0;
    while (keep < n) {
      cum += p[keep] / sum;
      ++keep;
      if (cum >= params_.top_p) break;
    }
    n = keep;
    sum = 0.0;
    for (int32_t i = 0; i < n; ++i) sum += p[i];
  }
  if (params_.min_p > 0.0f) {
    // p_max is exp(0) = 1 relative to mx.
    double kept = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      if (p[i] / sum < params_.min_p * (1.0 / sum)) p[i] = 0.0;
      kept += p[i];
    }
    sum = kept;
  }
  double target = u * sum, cum = 0.0;
  int32_t last_nonzero = scratch_idx_[0];
  for (int32_t i = 0; i < n; ++i) {
    if (p[i] == 0.0) continue;
    last_nonzero = scratch_idx_[i];
    cum += p[i];
    if (target < cum) return scratch_idx_[i];
  }
  return last_nonzero;  // rounding at the very top
}

SampledToken SamplerSlot::sample(float* logits, int32_t vocab) {
  SampledToken out;
  std::vector<float> lp;
  if (params_.logprobs >= 0) {
    lp.resize(static_cast<size_t>(vocab));
    log_softmax(logits, vocab, lp.data());
  }
  apply_penalties(logits, vocab);
  int32_t tok = 0;
  if (params_.temperature <= 1e-5f) {
    float best = kNegInf;
    for (int32_t i = 0; i < vocab; ++i)
      if (logits[i] > best) best = logits[i], tok = i;
  } else {
    tok = draw(logits, vocab, sampler_uniform(seed_, choice_, outputs_));
  }
  out.token = tok;
  if (!lp.empty()) {
    out.logprob = lp[static_cast<size_t>(tok)];
    const int32_t k = std::min<int32_t>(params_.logprobs, vocab);
    if (k > 0) {
      std::vector<int32_t> idx(static_cast<size_t>(vocab));
      std::iota(idx.begin(), idx.end(), 0);
      auto better = [&lp](int32_t a, int32_t b) { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b); };
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
      for (int32_t i = 0; i < k; ++i) out.top.push_back({idx[i], lp[static_cast<size_t>(idx[i])]});
    }
  }
  ++output_counts_[tok];
  ++outputs_;
  return out;
}

}  // namespace nanoflow::engine
