// `nanoflow dump-logits` (hidden): for checks against transformers on real-shaped random models
// (tools/peers/hf_real_shape_check.py). For every prompt of a JSON file {"prompts": [[ids], ...]}:
// the logits (CUDA: f32 holding bf16 values, as transformers' LM head gives them) after the whole prompt (one row per prompt, written raw to --out-logits) and the
// greedy continuation of --new-tokens tokens (JSON to --out-json). All prompts run together, as one
// batch per step (prefill, then one decode token each).
//   nanoflow dump-logits --model DIR --prompts p.json --new-tokens 64 --out-logits l.bin --out-json g.json
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "core/mmap.h"
#include "model/model.h"
#include "model/simple_runner.h"

#if defined(NANOFLOW_HAVE_CUDA)
#include "model/cuda_model.h"
#endif

namespace nanoflow::cli {
namespace {

struct DumpLogitsOptions {
  std::string model;
  std::string backend = "cuda";
  std::string prompts;
  int new_tokens = 64;
  std::string out_logits;
  std::string out_json;
  int threads = 0;
  std::string numerics = "fast";
};

int run_dump_logits(const DumpLogitsOptions& o) {
  const auto j = nlohmann::json::parse(read_text_file(o.prompts));
  const auto prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
  NF_CHECK_INPUT(!prompts.empty() && o.new_tokens >= 1) << "need prompts and --new-tokens >= 1";
  int64_t tokens = 0, pages = 0;
  for (const auto& p : prompts) {
    NF_CHECK_INPUT(!p.empty()) << "empty prompt";
    tokens += static_cast<int64_t>(p.size());
    pages += (static_cast<int64_t>(p.size()) + o.new_tokens + kPageSize - 1) / kPageSize;
  }
  NF_CHECK_INPUT(o.numerics == "fast" || o.backend == "cuda")
      << "--numerics " << o.numerics << " is a CUDA option (the CPU backend computes in f32)";
  std::unique_ptr<Model> model;
  if (o.backend == "cpu") {
    model = Model::load_cpu(o.model, {.num_threads = o.threads, .num_kv_pages = pages + 1});
  } else {
#if defined(NANOFLOW_HAVE_CUDA)
    CudaModelOptions co;
    co.max_batch_tokens = static_cast<int32_t>(std::max<int64_t>(tokens, 64));
    co.max_seqs = static_cast<int32_t>(prompts.size());
    co.max_sampled = static_cast<int32_t>(prompts.size());
    co.num_kv_pages = pages + 1;
    co.autotune_gemms = false;
    co.transformers_numerics = o.numerics == "transformers";
    model = CudaModel::load(o.model, co);
#else
    NF_THROW(kUnsupported) << "this build has no CUDA backend";
#endif
  }
  const int64_t vocab = model->config().vocab_size;
  SimpleRunner r(*model);
  std::vector<int> ids;
  std::vector<SimpleRunner::Work> work;
  for (const auto& p : prompts) {
    ids.push_back(r.add_sequence(p));
    work.push_back({ids.back(), static_cast<int32_t>(p.size()), true});
  }
  std::vector<float> logits;
  r.step(work, logits);
  if (!o.out_logits.empty()) {
    std::ofstream f(o.out_logits, std::ios::binary);
    NF_CHECK_INPUT(static_cast<bool>(f)) << "cannot write " << o.out_logits;
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
  }
  std::vector<std::vector<int32_t>> greedy(prompts.size());
  for (int step = 0;; ++step) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      const int32_t t = argmax({logits.data() + i * static_cast<size_t>(vocab), static_cast<size_t>(vocab)});
      greedy[i].push_back(t);
      r.append_token(ids[i], t);
    }
    if (step + 1 == o.new_tokens) break;
    work.clear();
    for (int id : ids) work.push_back({id, 1, true});
    r.step(work, logits);
  }
  nlohmann::json out;
  out["model"] = o.model;
  out["backend"] = o.backend;
  out["vocab"] = vocab;
  out["greedy"] = greedy;
  const std::string text = out.dump();
  if (o.out_json.empty()) {
    std::printf("%s\n", text.c_str());
  } else {
    std::ofstream f(o.out_json);
    NF_CHECK_INPUT(static_cast<bool>(f)) << "cannot write " << o.out_json;
    f << text << "\n";
  }
  return 0;
}

NF_REGISTER_COMMAND(dump_logits_cmd, "dump-logits", "",  // empty help: hidden from --help
                    [](CLI::App* sub) -> std::function<int()> {
                      auto o = std::make_shared<DumpLogitsOptions>();
                      sub->group("");
                      sub->add_option("--model", o->model, "HF folder or .gguf")->required();
                      sub->add_option("--backend", o->backend, "cuda | cpu");
                      sub->add_option("--prompts", o->prompts, "JSON {\"prompts\": [[ids], ...]}")->required();
                      sub->add_option("--new-tokens", o->new_tokens, "greedy tokens per prompt");
                      sub->add_option("--out-logits", o->out_logits, "raw f32 [prompts, vocab]");
                      sub->add_option("--out-json", o->out_json, "greedy continuations (default stdout)");
                      sub->add_option("--threads", o->threads, "CPU backend threads");
                      sub->add_option("--numerics", o->numerics, "CUDA: fast | transformers")
                          ->check(CLI::IsMember({"fast", "transformers"}));
                      return [o]() { return run_dump_logits(*o); };
                    });

}  // namespace
}  // namespace nanoflow::cli
