// The CUDA model and executor against references: the tiny transformers goldens (every
// architecture: llama2, llama3.1 rope scaling, qwen2 QKV bias, mixtral MoE, tied SmolLM2-style),
// the CPU model (the oracle) on the same weights, SmolLM2-135M GGUF when present, and the
// asynchronous executor (deferred tokens gathered on the device, GPU sampling) against the
// synchronous greedy loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "core/error.h"
#include "engine/cuda_executor.h"
#include "engine/pipeline_schedule.h"
#include "model/cuda_model.h"
#include "model/model.h"
#include "model/simple_runner.h"
#include "runtime/cuda/device.h"
#include "unit/model_golden_util.h"

using namespace nanoflow;

namespace {

const char* kArchs[] = {"llama2", "llama31", "qwen2", "mixtral", "smollm2_tiny"};

// The tree may sit elsewhere on the GPU machine than where it was built: NF_SOURCE_DIR overrides.
std::string source_dir() {
  const char* env = std::getenv("NF_SOURCE_DIR");
  return env != nullptr && *env != '\0' ? env : NF_SOURCE_DIR;
}

std::string golden_dir(const std::string& arch) { return source_dir() + "/tests/data/golden/" + arch; }

bool have_gpu() { return cuda::device_count() > 0; }

CudaModelOptions small_options() {
  CudaModelOptions o;
  o.max_batch_tokens = 256;
  o.max_seqs = 32;
  o.max_sampled = 256;
  o.num_kv_pages = 128;
  o.autotune_gemms = false;
  return o;
}

CudaModel& gpu_model(const std::string& path) {
  static std::map<std::string, std::unique_ptr<CudaModel>> cache;
  auto& m = cache[path];
  if (!m) m = CudaModel::load(path, small_options());
  return *m;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * double(got[i] - ref[i]);
    den += ref[i] * double(ref[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

class GpuTinyGolden : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
    cuda::set_device(0);
  }
};

// The goldens are transformers in f32; the GPU runs bf16 weights and activations, which alone moves
// logits by ~1-3.3% (relative L2) on these random tiny models: transformers' own bf16 forward is
// 0.012-0.033 from these goldens (tools/golden/make_bf16_goldens.py's models, CPU). 4e-2 bounds
// that; a wrong kernel gives O(1).
TEST_P(GpuTinyGolden, PromptLogitsMatchTransformers) {
  const auto g = golden::read_golden(golden_dir(GetParam()));
  Model& m = gpu_model(golden_dir(GetParam()));
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const auto& ref = g.logits.at("prompt" + std::to_string(i));
    const auto got = golden::all_logits(m, g.prompts[i], 0);
    const double e = rel_err(got, ref.data);
    std::printf("%s prompt %zu: rel err vs transformers %.3g\n", GetParam(), i, e);
    EXPECT_LT(e, 4e-2) << GetParam() << " prompt " << i;
  }
}

// Greedy continuations equal transformers' (f32) token for token, except that a bf16 run may take
// the other branch at a near-tie: at the first divergence, the f32 oracle (the CPU model, equal to
// transformers within 1e-4) must rank the two tokens within 0.1 x the rms of its logit row.
// Returns how many continuations are identical.
int check_greedy_up_to_near_ties(Model& gpu, Model& cpu, const golden::Golden& g, const std::string& label) {
  int identical = 0;
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const auto got = greedy_generate(gpu, g.prompts[i], static_cast<int>(g.greedy[i].size()));
    size_t d = 0;
    while (d < got.size() && d < g.greedy[i].size() && got[d] == g.greedy[i][d]) ++d;
    if (d == g.greedy[i].size()) {
      ++identical;
      std::printf("%s prompt %zu: greedy identical (%zu tokens)\n", label.c_str(), i, d);
      continue;
    }
    std::vector<int32_t> prefix = g.prompts[i];
    prefix.insert(prefix.end(), g.greedy[i].begin(), g.greedy[i].begin() + static_cast<long>(d));
    std::vector<float> row;
    greedy_generate(cpu, prefix, 1, 0, &row);
    double ss = 0;
    for (float v : row) ss += double(v) * v;
    const double rms = std::sqrt(ss / row.size());
    const double gap = row[static_cast<size_t>(g.greedy[i][d])] - row[static_cast<size_t>(got[d])];
    std::printf("%s prompt %zu: diverges at token %zu of %zu; oracle gap %.4f (rms %.3f, %.2f%%)\n", label.c_str(), i,
                d, g.greedy[i].size(), gap, rms, 100 * gap / rms);
    EXPECT_GE(gap, 0.0) << "the oracle must prefer transformers' token";
    EXPECT_LE(gap, 0.1 * rms) << label << " prompt " << i << " diverges at token " << d << " without a near-tie";
  }
  std::printf("%s: %d of %zu continuations identical\n", label.c_str(), identical, g.prompts.size());
  return identical;
}

TEST_P(GpuTinyGolden, GreedyMatchesTransformersUpToNearTies) {
  const auto g = golden::read_golden(golden_dir(GetParam()));
  auto cpu = Model::load_cpu(golden_dir(GetParam()), {.num_threads = 2, .num_kv_pages = 64});
  check_greedy_up_to_near_ties(gpu_model(golden_dir(GetParam())), *cpu, g, GetParam());
}

TEST_P(GpuTinyGolden, ChunkedPrefillAndDecodeAgree) {
  const auto g = golden::read_golden(golden_dir(GetParam()));
  Model& m = gpu_model(golden_dir(GetParam()));
  const auto& prompt = g.prompts.back();
  const auto one = golden::all_logits(m, prompt, 0);
  for (int chunk : {1, 5, 16}) {
    const double e = rel_err(golden::all_logits(m, prompt, chunk), one);
    std::printf("%s chunk %d vs one chunk: rel err %.3g\n", GetParam(), chunk, e);
    EXPECT_LT(e, 1e-2) << "chunk " << chunk;
  }
}

// Like for like: transformers' own bf16 forward of the same folder (golden_bf16.json,
// tools/golden/make_bf16_goldens.py, CPU), in both numerics modes. The GPU rounds where transformers
// rounds (norms, RoPE, SiLU, logits; --numerics transformers also the attention scores and
// probabilities and the residual adds), so only f32 summation order separates the two: the logits
// agree far closer than either does with f32, and the greedy continuations token for token.
TEST_P(GpuTinyGolden, MatchesTransformersBf16InBothNumerics) {
  const auto g = golden::read_golden(golden_dir(GetParam()), "_bf16");
  static std::map<std::string, std::unique_ptr<CudaModel>> cache;
  auto& tm = cache[GetParam()];
  if (!tm) {
    CudaModelOptions o = small_options();
    o.transformers_numerics = true;
    tm = CudaModel::load(golden_dir(GetParam()), o);
  }
  for (Model* m : {static_cast<Model*>(&gpu_model(golden_dir(GetParam()))), static_cast<Model*>(tm.get())}) {
    const char* mode = m == tm.get() ? "transformers" : "fast";
    int identical = 0;
    for (size_t i = 0; i < g.prompts.size(); ++i) {
      const double e = rel_err(golden::all_logits(*m, g.prompts[i], 0), g.logits.at("prompt" + std::to_string(i)).data);
      const auto got = greedy_generate(*m, g.prompts[i], static_cast<int>(g.greedy[i].size()));
      identical += got == g.greedy[i] ? 1 : 0;
      std::printf("%s prompt %zu (%s numerics): rel err vs transformers bf16 %.3g, greedy %s\n", GetParam(), i, mode, e,
                  got == g.greedy[i] ? "identical" : "differs");
      EXPECT_LT(e, 1e-2) << GetParam() << " prompt " << i << " (" << mode << ")";
    }
    std::printf("%s (%s numerics): %d of %zu greedy continuations identical to transformers bf16\n", GetParam(), mode,
                identical, g.prompts.size());
    // These goldens come from transformers on the CPU, whose GEMMs sum in another order than any
    // GPU's: one continuation per model may part at a bf16 tie (smollm2_tiny prompt 1 does, where
    // transformers on the GPU agrees with ours: tools/peers/hf_tiny_greedy_check.py, 15 of 15).
    EXPECT_GE(identical, static_cast<int>(g.prompts.size()) - 1) << GetParam() << " (" << mode << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, GpuTinyGolden, ::testing::ValuesIn(kArchs));

// SmolLM2-135M-Instruct Q4_1 GGUF (real weights): greedy tokens as transformers made them, up to
// near-ties judged by the f32 CPU model on the same file (as for the tiny goldens).
TEST(GpuSmolLM2, GreedyMatchesTransformers) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const char* env = std::getenv("NF_SMOLLM2_GGUF");  // e.g. reassembled from parts on the GPU machine
  const std::string gguf = env != nullptr ? env : source_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(gguf)) GTEST_SKIP() << gguf << " absent";
  const auto g = golden::read_golden(golden_dir("smollm2_gguf"));
  auto cpu = Model::load_cpu(gguf, {.num_threads = 8, .num_kv_pages = 64});
  // Against transformers' f32: every divergence at a near-tie of the f32 oracle (checked inside).
  // No count: transformers' own bf16 agrees with these f32 goldens on only 4 of 8, and since the
  // GPU rounds where transformers' bf16 rounds (fifth session) ours follows the bf16 one (7 of 8
  // with the f32 goldens in run 6, before that change).
  check_greedy_up_to_near_ties(gpu_model(gguf), *cpu, g, "SmolLM2 GGUF");
  // Like for like: transformers' bf16 forward of the same GGUF (golden_bf16.json, CPU). (Added in
  // the fifth session; not yet run on a GPU.)
  const auto g16 = golden::read_golden(golden_dir("smollm2_gguf"), "_bf16");
  int same16 = 0;
  for (size_t i = 0; i < g16.prompts.size(); ++i) {
    const auto got = greedy_generate(gpu_model(gguf), g16.prompts[i], static_cast<int>(g16.greedy[i].size()));
    same16 += got == g16.greedy[i] ? 1 : 0;
  }
  std::printf("SmolLM2 GGUF: %d of %zu greedy continuations identical to transformers bf16\n", same16,
              g16.prompts.size());
  EXPECT_GE(same16, static_cast<int>(g16.prompts.size()) - 1);
}

// The executor's asynchronous path: iteration i+1 (whose decode tokens are "deferred": the
// samples of iteration i, gathered on the device) is launched before iteration i is waited for.
// Greedy tokens must equal the synchronous greedy loop's for several sequences at once.
TEST(GpuExecutor, AsyncGreedyEqualsSyncGreedy) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  CudaModel& m = gpu_model(golden_dir("llama31"));
  const int64_t vocab = m.config().vocab_size;
  std::mt19937 rng(11);
  const int n_seq = 6, n_new = 12;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < n_seq; ++i) {
    std::vector<int32_t> p(3 + 5 * i);
    for (auto& t : p) t = static_cast<int32_t>(rng() % vocab);
    prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> ref;
  for (auto& p : prompts) ref.push_back(greedy_generate(m, p, n_new));

  engine::CudaExecutor ex(m, engine::sequential_schedule(static_cast<int32_t>(m.config().num_layers)));
  // Pages: sequence i owns pages [8i, 8i + 8).
  std::vector<int32_t> kv(n_seq, 0);
  std::vector<std::vector<int32_t>> out(n_seq);
  auto plan_for = [&](bool prefill) {
    engine::StepInput st;
    BatchPlan& p = st.plan;
    p.q_start.push_back(0);
    p.page_start.push_back(0);
    for (int i = 0; i < n_seq; ++i) {
      const int32_t n = prefill ? static_cast<int32_t>(prompts[i].size()) : 1;
      for (int32_t j = 0; j < n; ++j) {
        if (!prefill) st.deferred.push_back({p.num_tokens(), i});
        p.token_ids.push_back(prefill ? prompts[i][j] : 0);
        p.positions.push_back(kv[i] + j);
      }
      kv[i] += n;
      p.q_start.push_back(p.num_tokens());
      p.kv_len.push_back(kv[i]);
      for (int32_t pg = 0; pg < (kv[i] + 15) / 16; ++pg) p.page_ids.push_back(8 * i + pg);
      p.page_start.push_back(static_cast<int32_t>(p.page_ids.size()));
      p.sample_rows.push_back(p.num_tokens() - 1);
      st.sample_slots.push_back(static_cast<uint64_t>(i));
    }
    return st;
  };
  engine::StepInput first = plan_for(true);
  first.iteration = 1;
  for (int i = 0; i < n_seq; ++i) {
    engine::SlotRegistration r;
    r.slot = static_cast<uint64_t>(i);
    r.params.temperature = 0.f;
    r.params.logprobs = i % 2 == 0 ? 2 : 0;  // fewer than the executor's top-k room, every other row
    r.seed = 1;
    r.prompt = prompts[i];
    first.registrations.push_back(r);
  }
  ex.launch(std::move(first));
  for (int it = 2; it <= n_new + 1; ++it) {
    if (it <= n_new) {
      engine::StepInput st = plan_for(false);
      st.iteration = it;
      ex.launch(std::move(st));  // before reading iteration it-1
    }
    engine::StepOutput o = ex.wait();
    ASSERT_TRUE(o.error.empty()) << o.error;
    ASSERT_EQ(o.iteration, it - 1);
    ASSERT_EQ(o.samples.size(), static_cast<size_t>(n_seq));
    for (int i = 0; i < n_seq; ++i) {
      const auto& t = o.samples[i];
      out[i].push_back(t.token);
      // Requested top logprobs: the greedy token first, ids in the vocabulary, descending, <= 0.
      if (i % 2 != 0) continue;
      ASSERT_EQ(t.top.size(), 2u) << "sequence " << i;
      EXPECT_EQ(t.top[0].token, t.token) << "sequence " << i << " iteration " << o.iteration;
      for (const auto& e : t.top) {
        EXPECT_GE(e.token, 0);
        EXPECT_LT(e.token, vocab);
        EXPECT_LE(e.logprob, 0.f);
      }
      EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
      EXPECT_NEAR(t.logprob, t.top[0].logprob, 1e-4f);
    }
  }
  for (int i = 0; i < n_seq; ++i) EXPECT_EQ(out[i], ref[i]) << "sequence " << i;
  const auto st = ex.stats();
  std::printf("executor: %lld iterations, GPU %.3f ms total\n", static_cast<long long>(st.iterations), st.gpu_ms);
  EXPECT_EQ(st.host_sampled_iterations, 0);
}

// Decode iterations through CUDA graphs (CudaExecutorOptions::cuda_graphs). One prefill of all
// sequences, then decode steps over the first `active[t]` sequences: the batch shrinks and grows,
// so several sequence buckets are hit, each more than twice (eager warm-up, capture, replays).
// A sequence that was in the previous iteration reads its token on the device (deferred); one that
// comes back after a pause carries its last token from the host. Sequence i owns pages
// [pages_per_seq * i, pages_per_seq * (i + 1)).
struct DecodeRun {
  std::vector<std::vector<engine::SampledToken>> out;  // per sequence, in order
  engine::CudaExecutorStats stats;
  CudaGraphStats graphs;  // this run's share of the model's graph counters
};

DecodeRun run_decode_schedule(CudaModel& m, bool graphs, const std::vector<std::vector<int32_t>>& prompts,
                              const std::vector<int>& active, int32_t pages_per_seq, int32_t logprobs) {
  const int n_seq = static_cast<int>(prompts.size());
  const CudaGraphStats g0 = m.graph_stats();
  engine::CudaExecutorOptions eo;
  eo.cuda_graphs = graphs;
  engine::CudaExecutor ex(m, engine::sequential_schedule(static_cast<int32_t>(m.config().num_layers)), eo);
  DecodeRun run;
  run.out.resize(static_cast<size_t>(n_seq));
  std::vector<int32_t> kv(static_cast<size_t>(n_seq), 0);
  std::vector<int> rows_of(active.size() + 2, 0);  // rows (= leading sequences) of iteration it
  auto plan_for = [&](int it) {
    engine::StepInput st;
    st.iteration = it;
    BatchPlan& p = st.plan;
    p.q_start.push_back(0);
    p.page_start.push_back(0);
    const bool prefill = it == 1;
    const int rows = prefill ? n_seq : active[static_cast<size_t>(it - 2)];
    rows_of[static_cast<size_t>(it)] = rows;
    for (int i = 0; i < rows; ++i) {
      const size_t si = static_cast<size_t>(i);
      const int32_t n = prefill ? static_cast<int32_t>(prompts[si].size()) : 1;
      for (int32_t j = 0; j < n; ++j) {
        int32_t tok = prefill ? prompts[si][static_cast<size_t>(j)] : 0;
        if (!prefill) {
          if (i < rows_of[static_cast<size_t>(it - 1)]) {
            st.deferred.push_back({p.num_tokens(), i});  // row i of the previous iteration
          } else {
            tok = run.out[si].back().token;  // sampled at least two iterations ago: known here
          }
        }
        p.token_ids.push_back(tok);
        p.positions.push_back(kv[si] + j);
      }
      kv[si] += n;
      p.q_start.push_back(p.num_tokens());
      p.kv_len.push_back(kv[si]);
      for (int32_t pg = 0; pg < (kv[si] + 15) / 16; ++pg) p.page_ids.push_back(pages_per_seq * i + pg);
      EXPECT_LE((kv[si] + 15) / 16, pages_per_seq) << "test set-up: sequence " << i << " outgrew its pages";
      p.page_start.push_back(static_cast<int32_t>(p.page_ids.size()));
      p.sample_rows.push_back(p.num_tokens() - 1);
      st.sample_slots.push_back(static_cast<uint64_t>(i));
    }
    if (prefill) {
      for (int i = 0; i < n_seq; ++i) {
        engine::SlotRegistration r;
        r.slot = static_cast<uint64_t>(i);
        r.params.temperature = 0.f;
        r.params.logprobs = logprobs;
        r.seed = 1;
        r.prompt = prompts[static_cast<size_t>(i)];
        st.registrations.push_back(r);
      }
    }
    return st;
  };
  const int last = static_cast<int>(active.size()) + 1;
  ex.launch(plan_for(1));
  for (int it = 2; it <= last + 1; ++it) {
    if (it <= last) ex.launch(plan_for(it));  // before reading iteration it-1
    engine::StepOutput o = ex.wait();
    EXPECT_TRUE(o.error.empty()) << o.error;
    EXPECT_EQ(o.iteration, it - 1);
    const int rows = rows_of[static_cast<size_t>(it - 1)];
    EXPECT_EQ(o.samples.size(), static_cast<size_t>(rows));
    if (!o.error.empty() || o.samples.size() != static_cast<size_t>(rows)) break;
    for (int i = 0; i < rows; ++i) run.out[static_cast<size_t>(i)].push_back(o.samples[static_cast<size_t>(i)]);
  }
  run.stats = ex.stats();
  const CudaGraphStats g1 = m.graph_stats();
  run.graphs.warmups = g1.warmups - g0.warmups;
  run.graphs.captures = g1.captures - g0.captures;
  run.graphs.replays = g1.replays - g0.replays;
  run.graphs.failures = g1.failures - g0.failures;
  run.graphs.capture_ms = g1.capture_ms - g0.capture_ms;
  run.graphs.graphs = g1.graphs;
  std::printf("decode schedule (graphs %s): %lld iterations, %lld replays, %lld eager; model: %lld captures "
              "(%.2f ms), %lld warm-ups, %lld failures, %lld graphs held; GPU %.3f ms\n",
              graphs ? "on" : "off", static_cast<long long>(run.stats.iterations),
              static_cast<long long>(run.stats.graph_replays), static_cast<long long>(run.stats.eager_iterations),
              static_cast<long long>(run.graphs.captures), run.graphs.capture_ms,
              static_cast<long long>(run.graphs.warmups), static_cast<long long>(run.graphs.failures),
              static_cast<long long>(run.graphs.graphs), run.stats.gpu_ms);
  return run;
}

std::vector<int32_t> tokens_of(const std::vector<engine::SampledToken>& v) {
  std::vector<int32_t> t;
  for (const auto& s : v) t.push_back(s.token);
  return t;
}

// Distinct sequence buckets a schedule hits (the executor's cap is min(max_seqs, tokens, sampled)).
int distinct_buckets(const std::vector<int>& active, int32_t cap) {
  std::vector<int32_t> b;
  for (int a : active) b.push_back(decode_graph_seq_bucket(a, cap));
  std::sort(b.begin(), b.end());
  return static_cast<int>(std::unique(b.begin(), b.end()) - b.begin());
}

// Tiny llama3.1 (head_dim 16: the naive attention kernel): graphs on and off both give the
// synchronous greedy loop's tokens exactly, and graphs on replays every decode iteration except
// each bucket's first (eager warm-up).
TEST(GpuExecutor, DecodeGraphsEqualSyncGreedy) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  CudaModel& m = gpu_model(golden_dir("llama31"));
  const int64_t vocab = m.config().vocab_size;
  std::mt19937 rng(23);
  const int n_seq = 20;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < n_seq; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(3 + (7 * i) % 20));
    for (auto& t : p) t = static_cast<int32_t>(rng() % vocab);
    prompts.push_back(p);
  }
  // Buckets (cap 32): 32, 16, 8, 1, 4, 16, 32, 32 — each run of a count is three iterations long.
  const std::vector<int> active = {20, 20, 20, 13, 13, 13, 5, 5, 5, 1, 1, 1, 3, 3, 3, 9, 9, 9, 17, 17, 17, 20, 20};
  const DecodeRun on = run_decode_schedule(m, true, prompts, active, 6, 0);
  const DecodeRun off = run_decode_schedule(m, false, prompts, active, 6, 0);
  int checked = 0;
  for (int i = 0; i < n_seq; ++i) {
    int steps = 1;  // the prefill's sample
    for (int a : active) steps += a > i ? 1 : 0;
    const auto ref = greedy_generate(m, prompts[static_cast<size_t>(i)], steps);
    EXPECT_EQ(tokens_of(on.out[static_cast<size_t>(i)]), ref) << "graphs on, sequence " << i;
    EXPECT_EQ(tokens_of(off.out[static_cast<size_t>(i)]), ref) << "graphs off, sequence " << i;
    checked += steps;
  }
  std::printf("decode graphs: %d tokens checked against the synchronous greedy loop\n", checked);
  const int64_t decode_iters = static_cast<int64_t>(active.size());
  const int buckets = distinct_buckets(active, 32);
  EXPECT_EQ(on.stats.iterations, decode_iters + 1);
  EXPECT_EQ(on.stats.graph_replays + on.stats.eager_iterations, decode_iters + 1);
  // Graphs of this model may exist from an earlier run in this process: then fewer warm-ups.
  EXPECT_GE(on.stats.graph_replays, decode_iters - buckets);
  EXPECT_LE(on.graphs.captures, buckets);
  EXPECT_EQ(on.graphs.failures, 0);
  EXPECT_EQ(on.graphs.replays, on.stats.graph_replays);
  EXPECT_EQ(off.stats.graph_replays, 0);
  EXPECT_EQ(off.stats.eager_iterations, decode_iters + 1);
  EXPECT_EQ(off.graphs.replays + off.graphs.warmups + off.graphs.captures, 0);
  EXPECT_EQ(on.stats.host_sampled_iterations, 0);
}

// SmolLM2-135M GGUF (head_dim 64: the tuned decode-attention kernels) with prompts of 250-290
// tokens, so the KV bucket is 512 and decode attention runs two splits (padded sequences leave the
// second empty). Graphs on vs off: the same greedy tokens, except that padding changes GEMM row
// counts and split boundaries, so a near-tie may break the other way: at a sequence's first
// difference, graphs-off's top-2 must hold graphs-on's token within kTol nats, and before it the
// sampled logprobs agree within kTol.
TEST(GpuExecutor, DecodeGraphsTunedAttentionMatchEager) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const char* env = std::getenv("NF_SMOLLM2_GGUF");
  const std::string gguf = env != nullptr ? env : source_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(gguf)) GTEST_SKIP() << gguf << " absent";
  cuda::set_device(0);
  // Its own instance: the six prompts (1620 tokens) go in one prefill, past small_options' 256.
  CudaModelOptions o = small_options();
  o.max_batch_tokens = 2048;
  static std::unique_ptr<CudaModel> big = CudaModel::load(gguf, o);
  CudaModel& m = *big;
  std::mt19937 rng(5);
  const int n_seq = 6;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < n_seq; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(250 + 8 * i));
    for (auto& t : p) t = static_cast<int32_t>(100 + rng() % 20000);
    prompts.push_back(p);
  }
  const std::vector<int> active = {6, 6, 6, 2, 2, 2, 1, 1, 1, 5, 5, 5, 6, 6};
  const DecodeRun on = run_decode_schedule(m, true, prompts, active, 20, 2);
  const DecodeRun off = run_decode_schedule(m, false, prompts, active, 20, 2);
  // Padding changes GEMM row counts and the attention split plan, so the two runs round differently:
  // with SmolLM2's logits of magnitude ~20 in bf16, identical tokens were seen 0.05-0.1 nats apart
  // (H200). A wrong page, row or input would be off by whole nats or give other tokens outright.
  constexpr float kTol = 0.25f;
  int same = 0, total = 0, diverged = 0;
  for (int i = 0; i < n_seq; ++i) {
    const auto& a = on.out[static_cast<size_t>(i)];
    const auto& b = off.out[static_cast<size_t>(i)];
    ASSERT_EQ(a.size(), b.size()) << "sequence " << i;
    for (size_t t = 0; t < a.size(); ++t) {
      ++total;
      if (a[t].token == b[t].token) {
        ++same;
        EXPECT_NEAR(a[t].logprob, b[t].logprob, kTol) << "sequence " << i << " token " << t;
        continue;
      }
      ++diverged;
      bool near_tie = false;
      for (const auto& e : b[t].top) near_tie = near_tie || (e.token == a[t].token && b[t].logprob - e.logprob < kTol);
      EXPECT_TRUE(near_tie) << "sequence " << i << " token " << t << ": graphs on " << a[t].token << " ("
                            << a[t].logprob << "), off " << b[t].token << " (" << b[t].logprob << ")";
      break;  // the contexts differ from here on
    }
  }
  std::printf("decode graphs (SmolLM2): %d of %d tokens identical, %d sequences diverged at a near-tie\n", same,
              total, diverged);
  EXPECT_LE(diverged, n_seq / 2);  // each one at a near-tie (above); most sequences identical
  const int64_t decode_iters = static_cast<int64_t>(active.size());
  EXPECT_GE(on.stats.graph_replays, decode_iters - distinct_buckets(active, 32));
  EXPECT_GT(on.stats.graph_replays, 0);
  EXPECT_EQ(on.graphs.failures, 0);
  EXPECT_EQ(off.stats.graph_replays, 0);
}

// A schedule needs lanes the model was set up with (CudaModelOptions::lane_sm_counts), and must be valid.
TEST(GpuExecutor, RefusesScheduleWithoutLanesOrInvalid) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  CudaModel& m = gpu_model(golden_dir("llama2"));
  auto s = engine::sequential_schedule(static_cast<int32_t>(m.config().num_layers));
  s.streams.push_back({64});
  s.nodes[3].stream = 1;
  EXPECT_THROW({ engine::CudaExecutor ex(m, s); }, Error);
  s = engine::sequential_schedule(static_cast<int32_t>(m.config().num_layers));
  s.nodes.pop_back();  // sampling op missing
  EXPECT_THROW({ engine::CudaExecutor ex(m, s); }, Error);
}

// Random-weight presets with real shapes (Llama-3-8B, Qwen2-7B QKV bias, Mixtral-8x7B MoE), reduced
// to 2 layers: logits finite and spread; chunked prefill gives the same greedy tokens.
class GpuPreset : public ::testing::TestWithParam<const char*> {};

TEST_P(GpuPreset, TwoLayersSane) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  CudaModelOptions o = small_options();
  o.num_layers_override = 2;
  std::unique_ptr<CudaModel> m;
  try {
    m = CudaModel::load(std::string("preset:") + GetParam(), o);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) GTEST_SKIP() << e.what();
    throw;
  }
  std::vector<int32_t> prompt = {1, 791, 6864, 315, 9822, 374, 12366, 13, 578, 1888, 17, 4040, 3};
  const auto logits = golden::all_logits(*m, prompt, 0);
  float mn = logits[0], mx = logits[0];
  for (float v : logits) {
    ASSERT_TRUE(std::isfinite(v));
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  std::printf("%s preset (2 layers): logits in [%.3f, %.3f]\n", GetParam(), mn, mx);
  EXPECT_GT(mx - mn, 0.1f);
  const auto a = greedy_generate(*m, prompt, 8);
  const auto b = greedy_generate(*m, prompt, 8, 5);  // chunked prefill
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Presets, GpuPreset, ::testing::Values("llama3-8b", "qwen2-7b", "mixtral-8x7b"));

}  // namespace
