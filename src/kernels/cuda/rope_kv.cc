// Checked entry point of rope_kv (kernel and launcher: rope_kv.cu) and the host-side frequencies.
#include "kernels/cuda/rope_kv.h"

#include <cmath>
#include <numbers>

#include "check_util.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

void rope_kv(const RopeKvParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.tokens == 0 || (p.tokens > 0 && p.num_seqs > 0))
      << "rope_kv tokens=" << p.tokens << " num_seqs=" << p.num_seqs;
  NF_CHECK_INPUT(p.hq > 0 && p.hkv > 0 && p.hq % p.hkv == 0)
      << "rope_kv hq=" << p.hq << " hkv=" << p.hkv;
  NF_CHECK_INPUT(p.head_dim > 0 && p.head_dim % 16 == 0) << "head_dim " << p.head_dim << " (multiple of 16)";
  NF_CHECK_INPUT(p.cta_budget >= 0) << "cta_budget " << p.cta_budget;
  for (const void* ptr : {static_cast<const void*>(p.qkv), static_cast<const void*>(p.q_out),
                          static_cast<const void*>(p.k_cache), static_cast<const void*>(p.v_cache)}) {
    NF_CHECK_INPUT(ptr != nullptr) << "rope_kv: a tensor pointer is null";
    NF_CHECK_ALIGNED(ptr);
  }
  NF_CHECK_PTR(p.inv_freq);
  NF_CHECK_PTR(p.positions);
  NF_CHECK_PTR(p.q_start);
  NF_CHECK_PTR(p.page_start);
  NF_CHECK_PTR(p.page_ids);
  if (p.qkv_bias != nullptr) {
    NF_CHECK_ALIGNED(p.qkv_bias);
  }
  NF_CUDA_CHECK(launch_rope_kv(p, stream)) << "rope_kv tokens=" << p.tokens;
}

void rope_inv_freq_on_device(double theta, int head_dim, float* out, cudaStream_t stream) {
  NF_CHECK_INPUT(head_dim > 0 && head_dim % 2 == 0) << "rope head_dim " << head_dim;
  NF_CHECK_INPUT(theta > 1.0) << "rope theta " << theta;
  NF_CHECK_PTR(out);
  NF_CUDA_CHECK(launch_rope_inv_freq(static_cast<float>(theta), head_dim, out, stream)) << "rope_inv_freq";
}

std::vector<float> rope_inv_freq(const RopeFreqConfig& c) {
  NF_CHECK_INPUT(c.head_dim > 0 && c.head_dim % 2 == 0) << "rope head_dim " << c.head_dim;
  NF_CHECK_INPUT(c.theta > 1.0) << "rope theta " << c.theta;
  const int half = c.head_dim / 2;
  std::vector<float> out(half);
  for (int i = 0; i < half; ++i) {
    // HF computes inv_freq in f32 from an int64 arange; the power is taken in double here and
    // rounded once, which matches to the last bit or one ulp.
    double f = 1.0 / std::pow(c.theta, (2.0 * i) / c.head_dim);
    if (c.llama3) {
      NF_CHECK_INPUT(c.factor > 0 && c.low_freq_factor > 0 && c.high_freq_factor > c.low_freq_factor &&
                     c.original_max_position > 0)
          << "llama3 rope scaling factors";
      const double low_wavelen = c.original_max_position / c.low_freq_factor;
      const double high_wavelen = c.original_max_position / c.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = f / c.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (c.original_max_position / wavelen - c.low_freq_factor) /
                              (c.high_freq_factor - c.low_freq_factor);
        f = (1.0 - smooth) * f / c.factor + smooth * f;
      }
    }
    out[i] = static_cast<float>(f);
  }
  return out;
}

}  // namespace nanoflow::cuda
