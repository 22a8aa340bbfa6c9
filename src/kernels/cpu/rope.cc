// Rotary position embedding, HF rotate_half layout, default and Llama 3.1 "llama3" frequencies.
#include <cmath>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::cpu {

void rope_inv_freq(const RopeParams& p, float* inv_freq) {
  NF_CHECK(p.head_dim > 0 && p.head_dim % 2 == 0) << "rope head_dim " << p.head_dim;
  NF_CHECK_GT(p.theta, 0.0f);
  const int64_t half = p.head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // f32 as torch does it: exponent (2i)/dim in f32, pow in f32, reciprocal in f32.
    const float e = static_cast<float>(2 * i) / static_cast<float>(p.head_dim);
    inv_freq[i] = 1.0f / std::pow(p.theta, e);
  }
  if (p.type != RopeType::kLlama3) return;
  NF_CHECK(p.factor > 0 && p.high_freq_factor > p.low_freq_factor && p.original_max_position > 0)
      << "llama3 rope params factor=" << p.factor << " low=" << p.low_freq_factor << " high=" << p.high_freq_factor;
  const float old_len = static_cast<float>(p.original_max_position);
  const float low_wavelen = old_len / p.low_freq_factor;
  const float high_wavelen = old_len / p.high_freq_factor;
  for (int64_t i = 0; i < half; ++i) {
    const float f = inv_freq[i];
    const float wavelen = static_cast<float>(2.0 * std::numbers::pi) / f;
    float scaled = wavelen > low_wavelen ? f / p.factor : f;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
      const float smooth = (old_len / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
      scaled = (1.0f - smooth) * scaled / p.factor + smooth * scaled;
    }
    inv_freq[i] = scaled;
  }
}

void rope(const RopeParams& p, const float* inv_freq, float* x, int64_t n, int64_t heads, int64_t ld,
          const int32_t* positions, ThreadPool* pool) {
  NF_CHECK(p.head_dim > 0 && p.head_dim % 2 == 0 && heads > 0 && n >= 0);
  const int64_t d = p.head_dim, half = d / 2;
  if (ld == 0) ld = heads * d;
  parallel_for(pool_for(pool, n * (heads * d * 3 + half * 40)), n, [&](int64_t t0, int64_t t1) {
    std::vector<float> cs(half), sn(half);
    for (int64_t t = t0; t < t1; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];  // f32 product, as HF's freqs
        cs[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sn[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + t * ld + h * d;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = b * cs[i] + a * sn[i];
        }
      }
    }
  });
}

}  // namespace nanoflow::cpu
