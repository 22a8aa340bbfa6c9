// Checked entry point and host-side plan of prefill_attention (kernel: prefill_attention.cu).
#include "kernels/cuda/prefill_attention.h"

#include <algorithm>
#include <numeric>

#include "check_util.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

std::vector<int32_t> plan_prefill_attention(const std::vector<int32_t>& q_start,
                                            const std::vector<int32_t>& kv_len) {
  NF_CHECK_INPUT(!q_start.empty() && q_start.size() == kv_len.size() + 1)
      << "plan_prefill_attention: " << q_start.size() << " q_start entries for " << kv_len.size() << " sequences";
  struct Tile {
    int32_t seq, q0;
    int64_t keys;
  };
  std::vector<Tile> tiles;
  for (size_t s = 0; s < kv_len.size(); ++s) {
    const int32_t qlen = q_start[s + 1] - q_start[s];
    NF_CHECK_INPUT(qlen >= 0 && kv_len[s] >= qlen) << "sequence " << s << ": qlen " << qlen << " kv_len " << kv_len[s];
    for (int32_t q0 = 0; q0 < qlen; q0 += kPrefillTileRows) {
      const int32_t rows = std::min(kPrefillTileRows, qlen - q0);
      tiles.push_back({static_cast<int32_t>(s), q0, int64_t{kv_len[s]} - qlen + q0 + rows});
    }
  }
  // Heaviest first: the long causal tiles start early and the short ones fill the tail.
  std::stable_sort(tiles.begin(), tiles.end(), [](const Tile& a, const Tile& b) { return a.keys > b.keys; });
  std::vector<int32_t> out;
  out.reserve(tiles.size() * 2);
  for (auto& t : tiles) {
    out.push_back(t.seq);
    out.push_back(t.q0);
  }
  return out;
}

void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.num_tiles >= 0 && p.num_tiles < (1 << 30)) << "num_tiles " << p.num_tiles;
  NF_CHECK_INPUT(p.head_dim == 64 || p.head_dim == 128) << "prefill_attention head_dim " << p.head_dim
                                                        << " (64 or 128 supported)";
  NF_CHECK_INPUT(p.hq > 0 && p.hkv > 0 && p.hq % p.hkv == 0 && p.hq <= 65535)
      << "prefill_attention hq=" << p.hq << " hkv=" << p.hkv;
  NF_CHECK_INPUT(p.scale > 0.f) << "scale " << p.scale;
  NF_CHECK_PTR(p.q);
  NF_CHECK_PTR(p.k_cache);
  NF_CHECK_PTR(p.v_cache);
  NF_CHECK_PTR(p.q_start);
  NF_CHECK_PTR(p.kv_len);
  NF_CHECK_PTR(p.page_start);
  NF_CHECK_PTR(p.page_ids);
  NF_CHECK_PTR(p.out);
  if (p.num_tiles > 0) {
    NF_CHECK_PTR(p.tiles);
  }
  NF_CHECK_ALIGNED(p.q);
  NF_CHECK_ALIGNED(p.k_cache);
  NF_CHECK_ALIGNED(p.v_cache);
  NF_CUDA_CHECK(launch_prefill_attention(p, stream)) << "prefill_attention tiles=" << p.num_tiles;
}

}  // namespace nanoflow::cuda
