// The CPU forward against Hugging Face transformers on tiny random-weight models of every
// architecture we claim (tests/data/golden/<arch>/, made by tools/golden/make_goldens.py):
// prompt logits within 1e-3, greedy continuations identical; chunked prefill / token-by-token
// decode agree within 1e-4; greedy tokens do not depend on what else is in the batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <cmath>
#include <map>
#include <memory>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "model/model.h"
#include "model/simple_runner.h"
#include "unit/model_golden_util.h"

using namespace nanoflow;

namespace {

const char* kArchs[] = {"llama2", "llama31", "qwen2", "mixtral", "smollm2_tiny"};

std::string golden_dir(const std::string& arch) { return std::string(NF_SOURCE_DIR) + "/tests/data/golden/" + arch; }

Model& model_for(const std::string& arch) {
  static std::map<std::string, std::unique_ptr<Model>> cache;
  auto& m = cache[arch];
  if (!m) m = Model::load_cpu(golden_dir(arch), {.num_threads = 2, .num_kv_pages = 128});
  return *m;
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class TinyGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyGolden, PromptLogitsMatchTransformers) {
  const auto g = golden::read_golden(golden_dir(GetParam()));
  Model& m = model_for(GetParam());
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const auto& ref = g.logits.at("prompt" + std::to_string(i));
    ASSERT_EQ(ref.shape[0], static_cast<int64_t>(g.prompts[i].size()));
    ASSERT_EQ(ref.shape[1], m.config().vocab_size);
    const auto got = golden::all_logits(m, g.prompts[i], 0);
    // The reference logits really vary (a zero/constant golden would make this test vacuous).
    const auto [mn, mx] = std::minmax_element(ref.data.begin(), ref.data.end());
    EXPECT_GT(*mx - *mn, 1.0f);
    const float d = max_diff(got, ref.data);
    std::printf("%s prompt %zu: max |logit - transformers| = %.3g\n", GetParam(), i, d);
    EXPECT_LT(d, 1e-3f) << GetParam() << " prompt " << i;
  }
}

// The bf16 goldens (transformers' bf16 forward of the same folder, for the GPU test) are checked
// here as data: the same prompts and shapes as the f32 goldens, every value a bf16 number, within
// bf16 noise of our f32 forward (transformers' bf16 measured 0.012-0.033 from its f32) and not equal
// to it (a copy of the f32 logits would pass the GPU test for the wrong reason).
TEST_P(TinyGolden, Bf16GoldensAreABf16ForwardOfTheSameModel) {
  const auto g32 = golden::read_golden(golden_dir(GetParam()));
  const auto g16 = golden::read_golden(golden_dir(GetParam()), "_bf16");
  ASSERT_EQ(g16.prompts, g32.prompts);
  ASSERT_EQ(g16.greedy.size(), g32.greedy.size());
  Model& m = model_for(GetParam());
  for (size_t i = 0; i < g16.prompts.size(); ++i) {
    EXPECT_EQ(g16.greedy[i].size(), g32.greedy[i].size());
    const auto& ref = g16.logits.at("prompt" + std::to_string(i));
    ASSERT_EQ(ref.shape[0], static_cast<int64_t>(g16.prompts[i].size()));
    ASSERT_EQ(ref.shape[1], m.config().vocab_size);
    for (float v : ref.data) ASSERT_EQ(v, round_bf16(v)) << "not a bf16 value";
    const auto got = golden::all_logits(m, g16.prompts[i], 0);
    double num = 0, den = 0;
    for (size_t k = 0; k < got.size(); ++k) {
      num += (double(ref.data[k]) - got[k]) * (double(ref.data[k]) - got[k]);
      den += double(got[k]) * got[k];
    }
    const double rel = std::sqrt(num / den);
    std::printf("%s prompt %zu: transformers bf16 vs our f32 forward: rel err %.3g\n", GetParam(), i, rel);
    EXPECT_GT(rel, 1e-3) << GetParam() << " prompt " << i;
    EXPECT_LT(rel, 4e-2) << GetParam() << " prompt " << i;
  }
}

TEST_P(TinyGolden, GreedyMatchesTransformers) {
  const auto g = golden::read_golden(golden_dir(GetParam()));
  Model& m = model_for(GetParam());
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const auto got = greedy_generate(m, g.prompts[i], static_cast<int>(g.greedy[i].size()));
    EXPECT_EQ(got, g.greedy[i]) << GetParam() << " prompt " << i;
  }
}

TEST_P(TinyGolden, ChunkedPrefillAndDecodeAgree) {
  const auto g = golden::read_golden(golden_dir(GetParam()));
  Model& m = model_for(GetParam());
  const auto& prompt = g.prompts.back();  // the longest: crosses two page boundaries
  const auto one = golden::all_logits(m, prompt, 0);
  for (int chunk : {1, 5, 16}) {
    const float d = max_diff(golden::all_logits(m, prompt, chunk), one);
    std::printf("%s chunk %d vs one chunk: max |diff| = %.3g\n", GetParam(), chunk, d);
    EXPECT_LT(d, 1e-4f) << "chunk " << chunk;
  }
}

// 16 requests of different lengths arrive over time; each step runs every decode first, then
// prefill chunks up to a token budget (the engine's dense-batch policy). Every request's greedy
// tokens must equal its tokens when run alone.
TEST_P(TinyGolden, BatchIndependence) {
  Model& m = model_for(GetParam());
  const int64_t vocab = m.config().vocab_size;
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 16; ++i) {
    std::vector<int32_t> p(1 + (i * 7) % 37);
    for (auto& t : p) t = static_cast<int32_t>(rng() % vocab);
    prompts.push_back(p);
  }
  const int n_new = 10;
  std::vector<std::vector<int32_t>> alone;
  for (auto& p : prompts) alone.push_back(greedy_generate(m, p, n_new));

  SimpleRunner r(m);
  std::vector<int> ids(16, -1);
  std::vector<std::vector<int32_t>> out(16);
  const int32_t budget = 24;
  for (int step = 0; step < 400; ++step) {
    if (step % 2 == 0 && step / 2 < 16) ids[step / 2] = r.add_sequence(prompts[step / 2]);
    std::vector<SimpleRunner::Work> work;
    std::vector<int> owner;
    int32_t used = 0;
    for (int i = 0; i < 16; ++i)  // decodes first
      if (ids[i] >= 0 && r.num_computed(ids[i]) >= static_cast<int32_t>(prompts[i].size()) &&
          r.pending(ids[i]) == 1 && static_cast<int>(out[i].size()) < n_new) {
        work.push_back({ids[i], 1, true});
        owner.push_back(i);
        ++used;
      }
    for (int i = 0; i < 16 && used < budget; ++i)  // then prefill chunks
      if (ids[i] >= 0 && r.num_computed(ids[i]) < static_cast<int32_t>(prompts[i].size())) {
        const int32_t n = std::min(budget - used, r.pending(ids[i]));
        const bool last = n == r.pending(ids[i]);
        work.push_back({ids[i], n, last});
        owner.push_back(last ? i : -1);
        used += n;
      }
    if (work.empty()) break;
    std::vector<float> logits;
    r.step(work, logits);
    size_t row = 0;
    for (size_t w = 0; w < work.size(); ++w) {
      if (!work[w].sample) continue;
      const int i = owner[w];
      const int32_t t = argmax({logits.data() + row * vocab, static_cast<size_t>(vocab)});
      ++row;
      out[i].push_back(t);
      if (static_cast<int>(out[i].size()) < n_new) r.append_token(ids[i], t);
    }
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], alone[i]) << GetParam() << " request " << i;
}

INSTANTIATE_TEST_SUITE_P(Archs, TinyGolden, ::testing::ValuesIn(kArchs),
                         [](const auto& info) { return std::string(info.param); });

TEST(TinyGoldenErrors, MissingFolderIsBadFile) {
  try {
    Model::load_cpu(golden_dir("no_such_arch"), {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_arch"), std::string::npos) << e.what();
  }
}

TEST(TinyGoldenErrors, BadTokenIdAndBadPlan) {
  Model& m = model_for("llama2");
  SimpleRunner r(m);
  std::vector<int32_t> bad{1, static_cast<int32_t>(m.config().vocab_size)};
  EXPECT_THROW(r.add_sequence(bad), Error);
  BatchPlan p;  // one token claiming a page outside the pool
  p.token_ids = {1};
  p.positions = {0};
  p.q_start = {0, 1};
  p.kv_len = {1};
  p.page_start = {0, 1};
  p.page_ids = {static_cast<int32_t>(m.num_kv_pages())};
  p.sample_rows = {0};
  std::vector<float> logits(m.config().vocab_size);
  EXPECT_THROW(m.forward(p, logits.data()), Error);
}

}  // namespace

namespace {

// Copy-on-write fork: sequence B shares A's full first page and gets a copy of A's partial last
// page (Model::copy_page); decoding the same token on both in one batch gives identical logits,
// and A's own continuation is unaffected by B writing into its copy.
TEST(TinyGoldenPages, CopyPageForksASequence) {
  Model& m = model_for("llama2");
  const int64_t vocab = m.config().vocab_size;
  const std::vector<int32_t> prompt = golden::read_golden(golden_dir("llama2")).prompts[1];  // 21 tokens
  ASSERT_GT(prompt.size(), 16u);
  const int32_t n = static_cast<int32_t>(prompt.size());
  BatchPlan pre;
  pre.token_ids = prompt;
  for (int32_t i = 0; i < n; ++i) pre.positions.push_back(i);
  pre.q_start = {0, n};
  pre.kv_len = {n};
  pre.page_start = {0, 2};
  pre.page_ids = {3, 8};
  pre.sample_rows = {n - 1};
  std::vector<float> first(vocab);
  m.forward(pre, first.data());
  m.copy_page(8, 11);
  const int32_t next = argmax(first);

  BatchPlan dec;  // A: pages {3, 8}; B: pages {3, 11}; both decode `next` at position n
  dec.token_ids = {next, next};
  dec.positions = {n, n};
  dec.q_start = {0, 1, 2};
  dec.kv_len = {n + 1, n + 1};
  dec.page_start = {0, 2, 4};
  dec.page_ids = {3, 8, 3, 11};
  dec.sample_rows = {0, 1};
  std::vector<float> logits(2 * vocab);
  m.forward(dec, logits.data());
  for (int64_t v = 0; v < vocab; ++v) ASSERT_EQ(logits[v], logits[vocab + v]) << v;
  // The same as a plain greedy run of the prompt.
  const auto ref = greedy_generate(m, prompt, 2);
  EXPECT_EQ(ref[0], next);
  EXPECT_EQ(ref[1], argmax({logits.data(), static_cast<size_t>(vocab)}));
}

// A config that disagrees with the weights is refused with the tensor's name, not a crash.
TEST(TinyGoldenErrors, ShapeMismatchNamesTheTensor) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("nf_model_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(golden_dir("llama2") + "/model.safetensors", dir / "model.safetensors",
                fs::copy_options::overwrite_existing);
  auto cfg = nlohmann::json::parse(read_text_file(golden_dir("llama2") + "/config.json"));
  cfg["intermediate_size"] = 80;  // the file has 96
  std::ofstream(dir / "config.json") << cfg.dump();
  try {
    Model::load_cpu(dir.string(), {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadFile) << e.what();
    EXPECT_NE(std::string(e.what()).find("proj"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace

namespace {

// bf16 weight storage (ModelOptions::bf16_weights) is exact for a checkpoint whose weights are
// bf16 already: the Mixtral golden was saved in bf16, so the bf16 path must match transformers too.
TEST(TinyGoldenBf16, Bf16WeightsOnBf16CheckpointMatchTransformers) {
  const auto g = golden::read_golden(golden_dir("mixtral"));
  ASSERT_EQ(g.meta.at("weights_dtype"), "bf16");
  auto m = Model::load_cpu(golden_dir("mixtral"), {.num_threads = 2, .num_kv_pages = 32, .bf16_weights = true});
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    EXPECT_LT(max_diff(golden::all_logits(*m, g.prompts[i], 0), g.logits.at("prompt" + std::to_string(i)).data), 1e-3f);
    EXPECT_EQ(greedy_generate(*m, g.prompts[i], static_cast<int>(g.greedy[i].size())), g.greedy[i]) << i;
  }
}

}  // namespace

namespace {

TEST(TinyGoldenErrors, KvPoolExhaustionIsResourceError) {
  auto m = Model::load_cpu(golden_dir("llama2"), {.num_threads = 1, .num_kv_pages = 2});
  SimpleRunner r(*m);
  std::vector<int32_t> prompt(40, 5);  // needs 3 pages
  const int s = r.add_sequence(prompt);
  std::vector<float> logits;
  SimpleRunner::Work w{s, 40, true};
  try {
    r.step({&w, 1}, logits);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kResource) << e.what();
  }
  // A sequence that fits still runs after the failed attempt released nothing it did not own.
  r.release(s);
  const int s2 = r.add_sequence(std::vector<int32_t>(20, 5));
  SimpleRunner::Work w2{s2, 20, true};
  EXPECT_NO_THROW(r.step({&w2, 1}, logits));
  EXPECT_EQ(logits.size(), static_cast<size_t>(m->config().vocab_size));
}

}  // namespace
