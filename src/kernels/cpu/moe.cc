// Mixtral router: softmax over all experts, top-k, renormalize (HF MixtralTopKRouter).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::cpu {

void moe_route(const float* logits, int64_t rows, int64_t num_experts, int64_t top_k, int32_t* experts,
               float* weights) {
  NF_CHECK(num_experts > 0 && top_k > 0 && top_k <= num_experts && rows >= 0)
      << "moe experts " << num_experts << " top_k " << top_k;
  std::vector<float> probs(num_experts);
  std::vector<int32_t> order(num_experts);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(logits + r * num_experts, logits + (r + 1) * num_experts, probs.begin());
    softmax(probs.data(), 1, num_experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
    float sum = 0;
    for (int64_t k = 0; k < top_k; ++k) sum += probs[order[k]];
    for (int64_t k = 0; k < top_k; ++k) {
      experts[r * top_k + k] = order[k];
      weights[r * top_k + k] = probs[order[k]] / sum;
    }
  }
}

}  // namespace nanoflow::cpu
