// `nanoflow generate`: run the CPU model on one prompt and print the completion and tokens/s.
//   nanoflow generate --model M --prompt "text" [--max-tokens N --temperature T --seed S]
//   nanoflow generate --model M --prompt-ids 1,2,3      (no tokenizer needed; prints ids)
//   nanoflow generate --model M --prompt "..." --batch 32 --ignore-eos   (throughput: 32 copies
//                                                  decoded together; the first one is printed)
// Sampling here is deliberately simple (greedy, or temperature with a seeded RNG); the engine's
// Sampler is the full one. Timings go to stderr, the completion to stdout.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <time.h>

#include <algorithm>
#include <cstdlib>

#include "command.h"
#include "core/error.h"
#include "engine/tokenizer_loading.h"
#include "loader/weights.h"
#include "model/model.h"
#include "model/simple_runner.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string prompt_ids;  // comma-separated token ids (fallback without a tokenizer)
  int max_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  uint64_t seed = 0;
  int threads = 0;           // 0 = all cores
  int batch = 1;             // copies of the prompt decoded together (throughput measurement)
  int chunk = 0;             // prefill chunk size in tokens (0 = whole prompt in one step)
  bool ignore_eos = false;
  bool bf16_weights = false;  // ModelOptions::bf16_weights
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    NF_CHECK_INPUT(used > 0 && v >= 0 && v <= INT32_MAX) << "--prompt-ids: bad token id \"" << item << "\"";
    ids.push_back(static_cast<int32_t>(v));
  }
  NF_CHECK_INPUT(!ids.empty()) << "--prompt-ids is empty";
  return ids;
}

// Greedy (temperature 0) or softmax(logits / T) sampling.
int32_t sample(std::span<const float> logits, double temperature, std::mt19937_64& rng, std::vector<double>& probs) {
  if (temperature <= 0.0) return argmax(logits);
  float mx = logits[0];
  for (float v : logits) mx = std::max(mx, v);
  probs.resize(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += probs[i] = std::exp((logits[i] - mx) / temperature);
  double u = std::uniform_real_distribution<double>(0.0, sum)(rng);
  for (size_t i = 0; i < probs.size(); ++i) {
    if ((u -= probs[i]) <= 0) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(probs.size() - 1);
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_generate(const GenerateOptions& o) {
  NF_CHECK_INPUT(!o.prompt.empty() || !o.prompt_ids.empty()) << "give --prompt or --prompt-ids";
  NF_CHECK_INPUT(o.max_tokens > 0) << "--max-tokens must be positive, got " << o.max_tokens;
  NF_CHECK_INPUT(o.batch > 0 && o.batch <= 4096) << "--batch must be in [1, 4096], got " << o.batch;
  NF_CHECK_INPUT(std::isfinite(o.temperature) && o.temperature >= 0.0 && o.temperature <= 100.0)
      << "--temperature must be in [0, 100], got " << o.temperature;
  NF_CHECK_INPUT(o.chunk >= 0) << "--chunk must be >= 0";

  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> prompt;
  if (!o.prompt_ids.empty()) {
    prompt = parse_ids(o.prompt_ids);
  } else {
    tok = load_tokenizer(o.model);
    prompt = tok->encode(o.prompt, /*add_special_tokens=*/true);
    NF_CHECK_INPUT(!prompt.empty()) << "the prompt encodes to no tokens";
  }

  // Check the context before sizing the KV pool from it (an absurd --max-tokens must be an error,
  // not a huge allocation).
  const int64_t ctx = static_cast<int64_t>(prompt.size()) + o.max_tokens;
  {
    const ModelConfig pre = WeightStore::open(o.model)->config();
    NF_CHECK_INPUT(pre.max_position_embeddings <= 0 || ctx <= pre.max_position_embeddings)
        << "prompt (" << prompt.size() << ") + max tokens (" << o.max_tokens << ") exceeds the model's context of "
        << pre.max_position_embeddings;
  }
  auto t_load = std::chrono::steady_clock::now();
  const int64_t pages_per_seq = (ctx + kPageSize - 1) / kPageSize;
  auto model = Model::load_cpu(
      o.model, {.num_threads = o.threads, .num_kv_pages = pages_per_seq * o.batch, .bf16_weights = o.bf16_weights});
  const double load_s = seconds_since(t_load);
  const ModelConfig& cfg = model->config();
  std::vector<int32_t> eos;
  if (cfg.eos_token_id >= 0) eos.push_back(static_cast<int32_t>(cfg.eos_token_id));
  for (int64_t e : cfg.extra_eos_token_ids) eos.push_back(static_cast<int32_t>(e));
  if (tok && tok->eos_id()) eos.push_back(*tok->eos_id());

  SimpleRunner runner(*model);
  std::vector<int> ids;
  for (int b = 0; b < o.batch; ++b) ids.push_back(runner.add_sequence(prompt));
  std::vector<bool> done(o.batch, false);
  std::vector<std::mt19937_64> rngs;
  for (int b = 0; b < o.batch; ++b) rngs.emplace_back(o.seed + static_cast<uint64_t>(b));
  std::unique_ptr<IncrementalDetokenizer> detok;
  if (tok) detok = std::make_unique<IncrementalDetokenizer>(*tok, /*skip_special_tokens=*/true, prompt);

  const int64_t vocab = cfg.vocab_size;
  std::vector<float> logits;
  std::vector<double> probs;
  std::vector<SimpleRunner::Work> work;
  std::vector<int> owners;
  int64_t generated = 0;
  double prefill_s = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto t_decode = t0;
  double cpu_decode0 = cpu_seconds();
  for (int step = 0; step < o.max_tokens + static_cast<int>(prompt.size()); ++step) {
    work.clear();
    owners.clear();
    for (int b = 0; b < o.batch; ++b) {
      if (done[b]) continue;
      const int32_t pending = runner.pending(ids[b]);
      const int32_t n = o.chunk > 0 ? std::min(o.chunk, pending) : pending;
      work.push_back({ids[b], n, n == pending});
      owners.push_back(b);
    }
    if (work.empty()) break;
    const bool prefill = runner.num_computed(ids[owners[0]]) < static_cast<int32_t>(prompt.size());
    runner.step(work, logits);
    size_t row = 0;
    for (size_t w = 0; w < work.size(); ++w) {
      if (!work[w].sample) continue;
      const int b = owners[w];
      const int32_t t = sample({logits.data() + row * vocab, static_cast<size_t>(vocab)}, o.temperature, rngs[b], probs);
      ++row;
      ++generated;
      const int produced = runner.num_tokens(ids[b]) - static_cast<int>(prompt.size()) + 1;
      const bool stop = (!o.ignore_eos && std::find(eos.begin(), eos.end(), t) != eos.end()) || produced >= o.max_tokens;
      if (b == 0) {
        if (detok) {
          if (!(stop && produced < o.max_tokens)) std::fputs(detok->push(t).c_str(), stdout);  // EOS not printed
        } else {
          std::printf("%d ", t);
        }
        std::fflush(stdout);
      }
      if (stop) {
        done[b] = true;
        runner.release(ids[b]);
      } else {
        runner.append_token(ids[b], t);
      }
    }
    if (prefill && runner.num_computed(ids[owners[0]]) >= static_cast<int32_t>(prompt.size())) {
      prefill_s = seconds_since(t0);
      t_decode = std::chrono::steady_clock::now();
      cpu_decode0 = cpu_seconds();
    }
  }
  if (detok) std::fputs(detok->flush().c_str(), stdout);
  std::printf("\n");
  const double decode_s = seconds_since(t_decode);
  const double decode_cpu_s = cpu_seconds() - cpu_decode0;
  const int64_t decode_tokens = generated - o.batch;  // the first token of each comes from the prefill
  std::fprintf(stderr,
               "model load %.2f s | prompt %zu tokens x %d: prefill %.3f s (%.1f tok/s) | generated %lld tokens, "
               "decode %.1f tok/s (%lld tokens in %.3f s, batch %d; %.2f s CPU time in decode)\n",
               load_s, prompt.size(), o.batch, prefill_s, prompt.size() * o.batch / std::max(prefill_s, 1e-9),
               static_cast<long long>(generated), decode_tokens / std::max(decode_s, 1e-9),
               static_cast<long long>(decode_tokens), decode_s, o.batch, decode_cpu_s);
  return 0;
}

NF_REGISTER_COMMAND(generate_cmd, "generate", "generate a completion with the CPU model (prints tokens/s)",
                    [](CLI::App* sub) -> std::function<int()> {
                      auto o = std::make_shared<GenerateOptions>();
                      sub->add_option("--model,-m", o->model, "HF folder or .gguf file")->required();
                      sub->add_option("--prompt,-p", o->prompt, "prompt text (needs the model's tokenizer)");
                      sub->add_option("--prompt-ids", o->prompt_ids, "prompt as comma-separated token ids");
                      sub->add_option("--max-tokens,-n", o->max_tokens, "tokens to generate")->capture_default_str();
                      sub->add_option("--temperature,-t", o->temperature, "0 = greedy")->capture_default_str();
                      sub->add_option("--seed", o->seed, "sampling seed")->capture_default_str();
                      sub->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->capture_default_str();
                      sub->add_option("--batch", o->batch, "decode this many copies of the prompt together")
                          ->capture_default_str();
                      sub->add_option("--chunk", o->chunk, "prefill chunk size in tokens (0 = whole prompt)")
                          ->capture_default_str();
                      sub->add_flag("--ignore-eos", o->ignore_eos, "do not stop at EOS");
                      sub->add_flag("--bf16-weights", o->bf16_weights,
                                    "keep weights in bf16 (half the memory traffic; results differ slightly)");
                      return [o] { return run_generate(*o); };
                    });

}  // namespace
}  // namespace nanoflow::cli
