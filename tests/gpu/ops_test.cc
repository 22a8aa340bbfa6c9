// Row and GEMM ops on the GPU against the CPU reference ops (kernels/cpu/ops.h), on random inputs
// of several shapes: relative error <= 1e-2, no NaN, every output element written (poisoned first).
#include <algorithm>
#include <numeric>

#include "gpu/gpu_test_util.h"
#include "gpu/paged_fixture.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/lm_head.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/rope_kv.h"

namespace nanoflow::gputest {
namespace {

using bf16 = __nv_bfloat16;
constexpr double kTol = 1e-2;

TEST(GpuOps, RmsNormFusedResidual) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(1);
  for (auto [rows, hidden] : {std::pair{1, 64}, {7, 576}, {64, 4096}, {33, 8192}, {5, 16384}}) {
    SCOPED_TRACE(testing::Message() << "rows=" << rows << " hidden=" << hidden);
    auto x = random_bf16_values(size_t(rows) * hidden, rng, -2, 2);
    auto res = random_bf16_values(size_t(rows) * hidden, rng, -2, 2);
    auto w = random_bf16_values(hidden, rng, 0.5, 1.5);
    auto dx = upload_bf16(x), dres = upload_bf16(res), dw = upload_bf16(w);
    DeviceBuffer dout(size_t(rows) * hidden * 2);
    poison(dout);
    cuda::RmsNormParams p;
    p.x = dx.as<bf16>();
    p.residual = dres.as<bf16>();
    p.residual_out = dres.as<bf16>();  // in place, as the model runs it
    p.weight = dw.as<bf16>();
    p.out = dout.as<bf16>();
    p.rows = rows;
    p.hidden = hidden;
    p.eps = 1e-5f;
    cuda::rms_norm(p, nullptr);
    sync();
    // Reference: residual += x (then rounded to bf16, as the GPU stores the bf16 stream).
    std::vector<float> rref = res, out_ref(x.size());
    for (size_t i = 0; i < rref.size(); ++i) rref[i] = round_bf16(rref[i] + x[i]);
    std::vector<float> rtmp = rref;
    cpu::RmsNormParams cp{rows, hidden, 1e-5f};
    cpu::add_rmsnorm(cp, rtmp.data(), nullptr, w.data(), out_ref.data());
    EXPECT_CLOSE(download_bf16(dout, x.size()), out_ref, kTol);
    EXPECT_CLOSE(download_bf16(dres, x.size()), rref, 1e-6);
  }
}

TEST(GpuOps, RmsNormRowGather) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(2);
  const int tokens = 50, hidden = 2048;
  std::vector<int32_t> rows = {49, 0, 17, 17, 3};
  auto x = random_bf16_values(size_t(tokens) * hidden, rng, -3, 3);
  auto w = random_bf16_values(hidden, rng, 0.5, 1.5);
  auto dx = upload_bf16(x), dw = upload_bf16(w), dr = upload(rows);
  DeviceBuffer dout(rows.size() * hidden * 2);
  poison(dout);
  cuda::RmsNormParams p;
  p.x = dx.as<bf16>();
  p.weight = dw.as<bf16>();
  p.out = dout.as<bf16>();
  p.row_index = dr.as<int32_t>();
  p.rows = static_cast<int>(rows.size());
  p.hidden = hidden;
  p.eps = 1e-6f;
  cuda::rms_norm(p, nullptr);
  sync();
  std::vector<float> gathered, ref(rows.size() * hidden);
  for (int r : rows) gathered.insert(gathered.end(), x.begin() + size_t(r) * hidden, x.begin() + size_t(r + 1) * hidden);
  cpu::add_rmsnorm({int64_t(rows.size()), hidden, 1e-6f}, gathered.data(), nullptr, w.data(), ref.data());
  EXPECT_CLOSE(download_bf16(dout, ref.size()), ref, kTol);
}

TEST(GpuOps, RmsNormRejectsBadShapes) {
  NF_SKIP_WITHOUT_GPU();
  cuda::RmsNormParams p;
  p.rows = 1;
  p.hidden = 12;  // not a multiple of 8
  EXPECT_THROW(cuda::rms_norm(p, nullptr), Error);
}

TEST(GpuOps, SiluMul) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(3);
  for (auto [tokens, inter, budget] : {std::tuple{1, 64, 0}, {37, 1536, 0}, {256, 14336, 16}}) {
    SCOPED_TRACE(testing::Message() << "tokens=" << tokens << " inter=" << inter);
    auto gu = random_bf16_values(size_t(tokens) * 2 * inter, rng, -6, 6);
    auto dgu = upload_bf16(gu);
    DeviceBuffer dout(size_t(tokens) * inter * 2);
    poison(dout);
    cuda::silu_mul({dgu.as<bf16>(), dout.as<bf16>(), tokens, inter, budget}, nullptr);
    sync();
    std::vector<float> ref(size_t(tokens) * inter);
    cpu::silu_mul(gu.data(), gu.data() + inter, ref.data(), tokens, inter, 2 * inter);
    EXPECT_CLOSE(download_bf16(dout, ref.size()), ref, kTol);
  }
}

TEST(GpuOps, AddBias) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(4);
  for (auto [rows, cols] : {std::pair{1, 8}, {19, 3584 + 2 * 512}, {128, 5120}}) {
    auto x = random_bf16_values(size_t(rows) * cols, rng);
    auto b = random_bf16_values(cols, rng);
    auto dx = upload_bf16(x), db = upload_bf16(b);
    cuda::add_bias({dx.as<bf16>(), db.as<bf16>(), rows, cols, 0}, nullptr);
    sync();
    cpu::add_bias(x.data(), b.data(), rows, cols);
    EXPECT_CLOSE(download_bf16(dx, x.size()), x, kTol);
  }
}

TEST(GpuOps, AddRoundsOnce) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(6);
  const int64_t n = 8 * 1000;
  auto x = random_bf16_values(size_t(n), rng, -4, 4);
  auto y = random_bf16_values(size_t(n), rng, -0.1f, 0.1f);
  auto dx = upload_bf16(x), dy = upload_bf16(y);
  cuda::AddParams p;
  p.x = dx.as<bf16>();
  p.y = dy.as<bf16>();
  p.n = n;
  cuda::add(p, nullptr);
  sync();
  const auto got = download_bf16(dx, x.size());
  size_t exact = 0;
  for (size_t i = 0; i < x.size(); ++i) exact += got[i] == round_bf16(x[i] + y[i]) ? 1 : 0;
  EXPECT_EQ(exact, x.size()) << "x + y rounded once to bf16, element for element";
  p.n = 12;  // not a multiple of 8
  EXPECT_THROW(cuda::add(p, nullptr), Error);
}

TEST(GpuOps, Embedding) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(5);
  const int vocab = 1000, hidden = 576, tokens = 77;
  auto table = random_bf16_values(size_t(vocab) * hidden, rng);
  std::vector<int32_t> ids(tokens);
  std::uniform_int_distribution<int> d(0, vocab - 1);
  for (auto& i : ids) i = d(rng);
  ids[0] = vocab - 1;
  auto dt = upload_bf16(table), di = upload(ids);
  DeviceBuffer dout(size_t(tokens) * hidden * 2), dbad(4);
  poison(dout);
  NF_CUDA_CHECK(cudaMemset(dbad.data(), 0, 4));
  cuda::embedding({di.as<int32_t>(), dt.as<bf16>(), dout.as<bf16>(), dbad.as<int>(), tokens, vocab, hidden, 0}, nullptr);
  sync();
  std::vector<float> ref(size_t(tokens) * hidden);
  cpu::embedding(table.data(), vocab, hidden, ids.data(), tokens, ref.data());
  EXPECT_CLOSE(download_bf16(dout, ref.size()), ref, 1e-6);
  EXPECT_EQ(download<int>(dbad, 1)[0], 0);
  // An out-of-range id gives a zero row and is counted.
  ids[5] = vocab;
  ids[6] = -3;
  di = upload(ids);
  cuda::embedding({di.as<int32_t>(), dt.as<bf16>(), dout.as<bf16>(), dbad.as<int>(), tokens, vocab, hidden, 0}, nullptr);
  sync();
  EXPECT_EQ(download<int>(dbad, 1)[0], 2);
  auto got = download_bf16(dout, ref.size());
  EXPECT_TRUE(std::all_of(got.begin() + 5 * hidden, got.begin() + 7 * hidden, [](float v) { return v == 0.f; }));
}

TEST(GpuOps, RopeAndPagedKvWrite) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(6);
  struct Case {
    int hq, hkv, d;
    bool llama3, bias, interleaved;
  };
  for (Case c : {Case{9, 3, 64, false, false, false}, Case{32, 8, 128, true, false, false},
                 Case{28, 4, 128, false, true, false}, Case{8, 2, 128, true, true, true}}) {
    SCOPED_TRACE(testing::Message() << "hq=" << c.hq << " hkv=" << c.hkv << " d=" << c.d << " llama3=" << c.llama3);
    auto L = make_layout({{5, 40}, {1, 1}, {17, 17}, {1, 300}, {3, 9000}}, rng);
    const int T = L.q_start.back();
    const int row = (c.hq + 2 * c.hkv) * c.d;
    auto qkv = random_bf16_values(size_t(T) * row, rng, -2, 2);
    auto bias = random_bf16_values(row, rng, -0.5, 0.5);
    cpu::RopeParams rp;
    rp.head_dim = c.d;
    rp.theta = c.llama3 ? 500000.f : 10000.f;
    rp.type = c.llama3 ? cpu::RopeType::kLlama3 : cpu::RopeType::kDefault;
    std::vector<float> inv_ref(c.d / 2);
    cpu::rope_inv_freq(rp, inv_ref.data());
    cuda::RopeFreqConfig fc;
    fc.head_dim = c.d;
    fc.theta = rp.theta;
    fc.llama3 = c.llama3;
    auto inv = cuda::rope_inv_freq(fc);
    for (int i = 0; i < c.d / 2; ++i) EXPECT_NEAR(inv[i], inv_ref[i], 1e-6 * inv_ref[i]) << i;

    const size_t page_elems = size_t(16) * c.hkv * c.d;
    auto dqkv = upload_bf16(qkv), dbias = upload_bf16(bias), dinv = upload(inv_ref);
    auto dpos = upload(L.positions), dqs = upload(L.q_start), dps = upload(L.page_start), dpid = upload(L.page_ids);
    DeviceBuffer dq(size_t(T) * c.hq * c.d * 2), dk(L.num_pages * page_elems * 2), dv(L.num_pages * page_elems * 2);
    poison(dq);
    poison(dk);
    poison(dv);
    cuda::RopeKvParams p;
    p.qkv = dqkv.as<bf16>();
    p.qkv_bias = c.bias ? dbias.as<bf16>() : nullptr;
    p.q_out = dq.as<bf16>();
    p.k_cache = dk.as<bf16>();
    p.v_cache = dv.as<bf16>();
    p.inv_freq = dinv.as<float>();
    p.positions = dpos.as<int32_t>();
    p.q_start = dqs.as<int32_t>();
    p.page_start = dps.as<int32_t>();
    p.page_ids = dpid.as<int32_t>();
    p.tokens = T;
    p.num_seqs = static_cast<int>(L.kv_len.size());
    p.hq = c.hq;
    p.hkv = c.hkv;
    p.head_dim = c.d;
    p.interleaved = c.interleaved;
    if (c.hq == 32 || c.interleaved) {
      // Two nano-batches, split inside a sequence: rows [0, T/3) then [T/3, T) (token_begin).
      p.tokens = T / 3;
      cuda::rope_kv(p, nullptr);
      p.token_begin = T / 3;
      p.tokens = T - T / 3;
    }
    cuda::rope_kv(p, nullptr);
    sync();

    std::vector<float> ref = qkv;
    if (c.bias) cpu::add_bias(ref.data(), bias.data(), T, row);
    // Interleaved pairs (2i, 2i+1) are the half-split pairs (i, i + d/2) of the de-interleaved head:
    // permute each Q/K head, rotate with the CPU reference, permute back.
    auto permute = [&](bool forward) {
      std::vector<float> tmp(c.d);
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < c.hq + c.hkv; ++h) {
          float* x = ref.data() + size_t(t) * row + h * c.d;
          for (int i = 0; i < c.d / 2; ++i) {
            if (forward) {
              tmp[i] = x[2 * i];
              tmp[i + c.d / 2] = x[2 * i + 1];
            } else {
              tmp[2 * i] = x[i];
              tmp[2 * i + 1] = x[i + c.d / 2];
            }
          }
          std::copy(tmp.begin(), tmp.end(), x);
        }
    };
    if (c.interleaved) permute(true);
    cpu::rope(rp, inv_ref.data(), ref.data(), T, c.hq + c.hkv, row, L.positions.data());
    if (c.interleaved) permute(false);
    std::vector<float> q_ref(size_t(T) * c.hq * c.d);
    for (int t = 0; t < T; ++t)
      std::copy_n(ref.begin() + size_t(t) * row, c.hq * c.d, q_ref.begin() + size_t(t) * c.hq * c.d);
    EXPECT_CLOSE(download_bf16(dq, q_ref.size()), q_ref, kTol);

    std::vector<float> kpool(L.num_pages * page_elems, 0.f), vpool(L.num_pages * page_elems, 0.f);
    cpu::PagedKv kv{kpool.data(), vpool.data(), L.num_pages, 16, c.hkv, c.d};
    cpu::AttnBatch b{static_cast<int32_t>(L.kv_len.size()), L.q_start.data(), L.kv_len.data(), L.page_start.data(),
                     L.page_ids.data()};
    cpu::kv_write(kv, b, ref.data() + c.hq * c.d, ref.data() + (c.hq + c.hkv) * c.d, row);
    // Compare only the slots this step wrote (the rest of the pool stays poisoned on the GPU).
    auto gk = download_bf16(dk, kpool.size()), gv = download_bf16(dv, vpool.size());
    std::vector<float> got_k, ref_k, got_v, ref_v;
    for (size_t s = 0; s < L.kv_len.size(); ++s) {
      for (int t = L.q_start[s]; t < L.q_start[s + 1]; ++t) {
        const int pos = L.positions[t];
        const size_t off = (size_t(L.page_ids[L.page_start[s] + pos / 16]) * 16 + pos % 16) * c.hkv * c.d;
        got_k.insert(got_k.end(), gk.begin() + off, gk.begin() + off + c.hkv * c.d);
        ref_k.insert(ref_k.end(), kpool.begin() + off, kpool.begin() + off + c.hkv * c.d);
        got_v.insert(got_v.end(), gv.begin() + off, gv.begin() + off + c.hkv * c.d);
        ref_v.insert(ref_v.end(), vpool.begin() + off, vpool.begin() + off + c.hkv * c.d);
      }
    }
    EXPECT_CLOSE(got_k, ref_k, kTol);
    EXPECT_CLOSE(got_v, ref_v, kTol);
  }
}

struct GemmCase {
  int m, n, k;
  bool out_f32, bias, accumulate;
  int sm_target;
};

TEST(GpuOps, GemmMatchesCpuLinear) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(7);
  cuda::GemmRunner runner;
  for (GemmCase c : {GemmCase{1, 64, 64, false, false, false, 0}, GemmCase{33, 576, 1536, false, true, false, 0},
                     GemmCase{300, 6144, 4096, false, false, false, 64}, GemmCase{512, 4096, 4096, false, false, true, 0},
                     GemmCase{17, 49152, 576, true, false, false, 0}, GemmCase{1000, 1024, 4096, false, true, false, 112}}) {
    SCOPED_TRACE(testing::Message() << "m=" << c.m << " n=" << c.n << " k=" << c.k << " f32=" << c.out_f32
                                    << " bias=" << c.bias << " acc=" << c.accumulate << " sms=" << c.sm_target);
    auto x = random_bf16_values(size_t(c.m) * c.k, rng);
    auto w = random_bf16_values(size_t(c.n) * c.k, rng, -0.05f, 0.05f);
    auto b = random_bf16_values(c.n, rng);
    auto y0 = random_bf16_values(size_t(c.m) * c.n, rng);
    auto dx = upload_bf16(x), dw = upload_bf16(w), db = upload_bf16(b);
    DeviceBuffer dy = c.accumulate ? upload_bf16(y0) : DeviceBuffer(size_t(c.m) * c.n * (c.out_f32 ? 4 : 2));
    if (!c.accumulate) poison(dy);
    cuda::GemmParams p;
    p.x = dx.as<bf16>();
    p.w = dw.as<bf16>();
    p.y = dy.data();
    p.bias = c.bias ? db.as<bf16>() : nullptr;
    p.m = c.m;
    p.n = c.n;
    p.k = c.k;
    p.out_f32 = c.out_f32;
    p.accumulate = c.accumulate;
    p.sm_count_target = c.sm_target;
    runner.run(p, nullptr);
    sync();
    std::vector<float> ref = c.accumulate ? y0 : std::vector<float>(size_t(c.m) * c.n);
    cpu::LinearParams lp;
    lp.m = c.m;
    lp.n = c.n;
    lp.k = c.k;
    lp.accumulate = c.accumulate;
    cpu::linear(lp, x.data(), w.data(), c.bias ? b.data() : nullptr, ref.data());
    auto got = c.out_f32 ? download<float>(dy, ref.size()) : download_bf16(dy, ref.size());
    EXPECT_CLOSE(got, ref, kTol);
  }
}

TEST(GpuOps, GroupedExpertGemm) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(8);
  const int n = 512, k = 256, experts = 4;
  std::vector<int> offsets = {0, 13, 13, 77, 80};  // expert 1 gets no rows
  const int rows = offsets.back();
  auto x = random_bf16_values(size_t(rows) * k, rng);
  std::vector<std::vector<float>> ws;
  std::vector<DeviceBuffer> dws;
  cuda::GroupedGemmParams p;
  for (int e = 0; e < experts; ++e) {
    ws.push_back(random_bf16_values(size_t(n) * k, rng, -0.1f, 0.1f));
    dws.push_back(upload_bf16(ws.back()));
    p.w.push_back(dws.back().as<bf16>());
  }
  auto dx = upload_bf16(x);
  DeviceBuffer dy(size_t(rows) * n * 2);
  poison(dy);
  p.x = dx.as<bf16>();
  p.y = dy.as<bf16>();
  p.offsets = offsets;
  p.n = n;
  p.k = k;
  cuda::GemmRunner runner;
  cuda::grouped_gemm(runner, p, nullptr);
  sync();
  std::vector<float> ref(size_t(rows) * n);
  for (int e = 0; e < experts; ++e) {
    cpu::LinearParams lp;
    lp.m = offsets[e + 1] - offsets[e];
    lp.n = n;
    lp.k = k;
    if (lp.m == 0) continue;
    cpu::linear(lp, x.data() + size_t(offsets[e]) * k, ws[e].data(), nullptr, ref.data() + size_t(offsets[e]) * n);
  }
  EXPECT_CLOSE(download_bf16(dy, ref.size()), ref, kTol);
}

TEST(GpuOps, FinalNormLmHeadOnSampledRows) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(9);
  const int tokens = 40, hidden = 576, vocab = 49152;
  std::vector<int32_t> rows = {4, 39, 20};
  auto h = random_bf16_values(size_t(tokens) * hidden, rng, -3, 3);
  auto nw = random_bf16_values(hidden, rng, 0.5, 1.5);
  auto head = random_bf16_values(size_t(vocab) * hidden, rng, -0.1f, 0.1f);
  auto dh = upload_bf16(h), dnw = upload_bf16(nw), dhead = upload_bf16(head), dr = upload(rows);
  DeviceBuffer dnormed(rows.size() * hidden * 2), dlog(rows.size() * vocab * 4);
  poison(dlog);
  cuda::LmHeadParams p;
  p.hidden = dh.as<bf16>();
  p.sample_rows = dr.as<int32_t>();
  p.norm_weight = dnw.as<bf16>();
  p.lm_head = dhead.as<bf16>();
  p.normed = dnormed.as<bf16>();
  p.logits = dlog.as<float>();
  p.num_sampled = static_cast<int>(rows.size());
  p.hidden_size = hidden;
  p.vocab = vocab;
  cuda::GemmRunner runner;
  cuda::final_norm_lm_head(runner, p, nullptr);
  sync();
  std::vector<float> g, normed(rows.size() * hidden), ref(rows.size() * vocab);
  for (int r : rows) g.insert(g.end(), h.begin() + size_t(r) * hidden, h.begin() + size_t(r + 1) * hidden);
  cpu::add_rmsnorm({int64_t(rows.size()), hidden, 1e-5f}, g.data(), nullptr, nw.data(), normed.data());
  cpu::LinearParams lp;
  lp.m = rows.size();
  lp.n = vocab;
  lp.k = hidden;
  cpu::linear(lp, normed.data(), head.data(), nullptr, ref.data());
  EXPECT_CLOSE(download<float>(dlog, ref.size()), ref, kTol);
}

}  // namespace
}  // namespace nanoflow::gputest
