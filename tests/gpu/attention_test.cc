// Paged decode and prefill attention on the GPU against the CPU reference paged_attention, on
// random K/V in shuffled pages, several head layouts, context lengths and split counts.
#include "gpu/gpu_test_util.h"
#include "gpu/paged_fixture.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/prefill_attention.h"

namespace nanoflow::gputest {
namespace {

using bf16 = __nv_bfloat16;
constexpr double kTol = 1e-2;

struct AttnSetup {
  PagedLayout L;
  int hq, hkv, d;
  std::vector<float> q, kpool, vpool;  // bf16-representable values
  DeviceBuffer dq, dk, dv, dkv_len, dq_start, dpage_start, dpage_ids;

  AttnSetup(const std::vector<std::pair<int, int>>& seqs, int hq_, int hkv_, int d_, std::mt19937& rng)
      : L(make_layout(seqs, rng)), hq(hq_), hkv(hkv_), d(d_) {
    const int T = L.q_start.back();
    q = random_bf16_values(size_t(T) * hq * d, rng, -2, 2);
    const size_t pool = size_t(L.num_pages) * 16 * hkv * d;
    kpool = random_bf16_values(pool, rng, -2, 2);  // every slot random: unwritten slots would be
    vpool = random_bf16_values(pool, rng, -1, 1);  // read only by a buggy kernel
    dq = upload_bf16(q);
    dk = upload_bf16(kpool);
    dv = upload_bf16(vpool);
    dkv_len = upload(L.kv_len);
    dq_start = upload(L.q_start);
    dpage_start = upload(L.page_start);
    dpage_ids = upload(L.page_ids);
  }
  std::vector<float> reference() {
    const int T = L.q_start.back();
    std::vector<float> out(size_t(T) * hq * d);
    cpu::PagedKv kv{kpool.data(), vpool.data(), L.num_pages, 16, hkv, d};
    cpu::AttnBatch b{static_cast<int32_t>(L.kv_len.size()), L.q_start.data(), L.kv_len.data(), L.page_start.data(),
                     L.page_ids.data()};
    cpu::AttnParams ap;
    ap.num_heads = hq;
    ap.scale = 1.f / std::sqrt(float(d));
    cpu::paged_attention(ap, kv, b, q.data(), 0, out.data());
    return out;
  }
};

struct DecodeCase {
  int hq, hkv, d;
  std::vector<int> kv_lens;
  int cta_budget;
  int sm_count = 0;  // SMs of the call's share (0 = all): below the device's, the default runs TMA
                     // variant 33
};

TEST(GpuAttention, DecodeMatchesCpu) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  std::vector<DecodeCase> cases = {
      {32, 8, 128, {1, 17, 1000, 3000, 64, 65}, 0},        // Llama-3-8B heads, one split
      {32, 8, 128, {1, 17, 1000, 3000, 64, 65}, 4096},     // many splits + merge
      {32, 8, 128, {5000, 4097}, 2000},
      {9, 3, 64, {1, 2, 33, 700}, 0},                      // SmolLM2-135M heads (G = 3)
      {9, 3, 64, {2000, 1500}, 200},
      {64, 8, 128, {300, 2500, 16}, 1000},                 // G = 8 (70B)
      {16, 16, 128, {100, 1234}, 500},                     // MHA
      {64, 4, 128, {129, 700}, 0},                         // G = 16
      {64, 4, 128, {2100, 31}, 300},                       // G = 16 with splits
      {32, 8, 128, {4100, 2047, 5}, 0},                    // > 32 warp steps a split (page-id windows)
      {8, 1, 64, {3, 900, 48}, 64},                        // G = 8, one KV head, d 64
      {16, 2, 128, {1, 15, 16, 33, 200, 2049}, 3000},      // G = 8, d 128, many short and empty splits
      // The default on shares of 1-2 SMs (TMA variant 33): mixed lengths, empty splits, splits
      // where some warps have no step, page-id windows, one split (out written directly).
      {32, 8, 128, {1, 17, 1000, 3000, 64, 65}, 4096, 1},
      {9, 3, 64, {1, 2, 33, 700, 2000}, 200, 1},
      {64, 8, 128, {300, 2500, 16}, 1000, 2},
      {32, 8, 128, {4100, 2047, 5, 1, 16, 17}, 0, 1},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "hq=" << c.hq << " hkv=" << c.hkv << " d=" << c.d << " budget=" << c.cta_budget
                                    << " sms=" << c.sm_count);
    std::vector<std::pair<int, int>> seqs;
    int max_kv = 0;
    for (int kv : c.kv_lens) {
      seqs.push_back({1, kv});
      max_kv = std::max(max_kv, kv);
    }
    AttnSetup s(seqs, c.hq, c.hkv, c.d, rng);
    const int S = static_cast<int>(seqs.size());
    // Slots past each sequence's end in its last page hold NaN, as never-written cache memory may:
    // a kernel must mask them (a zero softmax weight times NaN is still NaN).
    const size_t slot_elems = size_t(c.hkv) * c.d;
    for (int i = 0; i < S; ++i) {
      const int last_page = s.L.page_ids[s.L.page_start[i + 1] - 1];
      for (int slot = c.kv_lens[i] % 16; slot > 0 && slot < 16; ++slot) {
        const size_t base = (size_t(last_page) * 16 + slot) * slot_elems;
        std::fill_n(s.kpool.begin() + base, slot_elems, std::nanf(""));
        std::fill_n(s.vpool.begin() + base, slot_elems, std::nanf(""));
      }
    }
    s.dk = upload_bf16(s.kpool);
    s.dv = upload_bf16(s.vpool);
    auto plan = cuda::plan_decode_attention(S, c.hkv, max_kv, c.cta_budget);
    if (c.cta_budget > 0) EXPECT_GT(plan.num_splits, 1) << "the case means to test the merge";
    DeviceBuffer ws(std::max<size_t>(16, cuda::decode_attention_workspace_floats(S, c.hq, c.d, plan.num_splits) * 4));
    const auto ref = s.reference();
    for (int variant = 0; variant <= cuda::kDecodeAttentionVariants; ++variant) {  // 0: the default
      if (!cuda::decode_attention_variant_valid(variant)) continue;  // a removed number
      SCOPED_TRACE(testing::Message() << "variant " << variant);
      DeviceBuffer dout(size_t(S) * c.hq * c.d * 2);
      poison(dout);
      poison(ws);
      cuda::DecodeAttentionParams p;
      p.q = s.dq.as<bf16>();
      p.k_cache = s.dk.as<bf16>();
      p.v_cache = s.dv.as<bf16>();
      p.kv_len = s.dkv_len.as<int32_t>();
      p.page_start = s.dpage_start.as<int32_t>();
      p.page_ids = s.dpage_ids.as<int32_t>();
      p.out = dout.as<bf16>();
      p.workspace = ws.as<float>();
      p.num_seqs = S;
      p.hq = c.hq;
      p.hkv = c.hkv;
      p.head_dim = c.d;
      p.scale = 1.f / std::sqrt(float(c.d));
      p.num_splits = plan.num_splits;
      p.chunk_tokens = plan.chunk_tokens;
      p.variant = variant;
      p.num_pages = s.L.num_pages;  // the TMA variants' tensor maps span the pool
      p.sm_count = c.sm_count;
      cuda::decode_attention(p, nullptr);
      sync();
      EXPECT_CLOSE(download_bf16(dout, size_t(S) * c.hq * c.d), ref, kTol);
    }
  }
}

struct PrefillCase {
  int hq, hkv, d;
  std::vector<std::pair<int, int>> seqs;  // (chunk length, kv length incl. chunk)
};

TEST(GpuAttention, PrefillChunkedCausalMatchesCpu) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(12);
  std::vector<PrefillCase> cases = {
      {32, 8, 128, {{100, 100}, {64, 64}, {1, 1}, {65, 65}}},             // whole prompts
      {32, 8, 128, {{37, 500}, {128, 1000}, {1, 300}, {200, 263}}},       // chunks after a cached prefix
      {9, 3, 64, {{300, 300}, {17, 40}, {63, 127}}},                      // SmolLM2 heads
      {8, 8, 128, {{1000, 2000}}},
      // G = 1, 4 and 8, head_dim 64 and 128: chunks after cached prefixes that are not tile-aligned,
      // q lengths off the 64-row tile, long chunks, many sequences.
      {32, 8, 128, {{1024, 1024}, {344, 1024}}},                          // mixed-iteration-like
      {32, 8, 64, {{37, 500}, {128, 1000}, {1, 300}, {200, 263}, {70, 70}}},
      {64, 8, 128, {{130, 130}, {65, 1601}, {3, 19}}},                    // G = 8
      {16, 16, 64, {{257, 400}, {16, 16}}},                               // G = 1
      {8, 2, 128, {{1, 1}, {2, 2}, {63, 63}, {64, 64}, {65, 80}, {127, 200}, {128, 129}, {5, 700},
                   {300, 301}, {33, 97}, {16, 1040}, {100, 164}}},           // many sequences
  };
  for (auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "hq=" << c.hq << " hkv=" << c.hkv << " d=" << c.d);
    AttnSetup s(c.seqs, c.hq, c.hkv, c.d, rng);
    const int T = s.L.q_start.back();
    auto tiles = cuda::plan_prefill_attention(s.L.q_start, s.L.kv_len);
    auto dtiles = upload(tiles);
    DeviceBuffer dout(size_t(T) * c.hq * c.d * 2);
    poison(dout);
    cuda::PrefillAttentionParams p;
    p.q = s.dq.as<bf16>();
    p.k_cache = s.dk.as<bf16>();
    p.v_cache = s.dv.as<bf16>();
    p.q_start = s.dq_start.as<int32_t>();
    p.kv_len = s.dkv_len.as<int32_t>();
    p.page_start = s.dpage_start.as<int32_t>();
    p.page_ids = s.dpage_ids.as<int32_t>();
    p.tiles = dtiles.as<int32_t>();
    p.out = dout.as<bf16>();
    p.num_tiles = static_cast<int>(tiles.size() / 2);
    p.hq = c.hq;
    p.hkv = c.hkv;
    p.head_dim = c.d;
    p.scale = 1.f / std::sqrt(float(c.d));
    cuda::prefill_attention(p, nullptr);
    sync();
    EXPECT_CLOSE(download_bf16(dout, size_t(T) * c.hq * c.d), s.reference(), kTol);
  }
}

TEST(GpuAttention, RejectsUnsupportedHeads) {
  NF_SKIP_WITHOUT_GPU();
  cuda::DecodeAttentionParams p;
  p.head_dim = 96;
  EXPECT_THROW(cuda::decode_attention(p, nullptr), Error);
  cuda::PrefillAttentionParams q;
  q.head_dim = 80;
  EXPECT_THROW(cuda::prefill_attention(q, nullptr), Error);
  EXPECT_THROW(cuda::plan_prefill_attention({0, 5}, {3}), Error);  // kv shorter than the chunk
}

// Removed decode variants keep their numbers (docs/perf/RESULTS.md cites them) and are refused by
// name before anything is launched.
TEST(GpuAttention, DecodeRefusesRemovedVariants) {
  for (int v : {9, 12, 18, 21, 25, 26, 36, 39}) {
    EXPECT_TRUE(cuda::decode_attention_variant_removed(v)) << v;
    EXPECT_FALSE(cuda::decode_attention_variant_valid(v)) << v;
  }
  for (int v : {0, 1, 8, 13, 17, 22, 24, 27, 33, 35}) EXPECT_TRUE(cuda::decode_attention_variant_valid(v)) << v;
  EXPECT_FALSE(cuda::decode_attention_variant_valid(cuda::kDecodeAttentionVariants + 1));
  cuda::DecodeAttentionParams p;
  p.num_seqs = 1;
  p.hq = 32;
  p.hkv = 8;
  p.scale = 0.1f;
  p.num_splits = 1;
  p.chunk_tokens = 64;
  p.variant = 36;
  try {
    cuda::decode_attention(p, nullptr);
    ADD_FAILURE() << "variant 36 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("decode attention variant 36 was removed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nanoflow::gputest
