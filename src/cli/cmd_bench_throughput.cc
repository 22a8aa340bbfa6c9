// `nanoflow bench throughput`: offline throughput the way PERF.md defines it. Every request is
// submitted at t=0 with ignore_eos and its trace/fixed output length; prompts are seeded random
// token ids (weights are random for presets; lengths are what matter). Prints and writes JSON:
//   total tokens/s (prompt + generated), output tokens/s, requests/s,
//   % of optimal = total tokens/s / (peak bf16 GEMM FLOP/s / (2 * params)), the peak measured in
//   the same run (cuBLASLt 8192^3, random data, median of timed runs) before the model loads,
//   GPU busy fraction = sum of per-iteration GPU time (CUDA events) / wall time.
//   nanoflow bench throughput --model preset:llama3-8b --input-len 1024 --output-len 512 --num-prompts 400
//   nanoflow bench throughput --model preset:llama3-8b --dataset ../shared/datasets/AzureLLMInferenceTrace_conv.csv --num-prompts 1000
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mmap.h"
#include "engine/cuda_engine.h"
#include "nanoflow/engine.h"

#if defined(NANOFLOW_HAVE_CUDA)
#include "engine/cuda_executor.h"
#include "kernels/cuda/gemm.h"
#include "model/cuda_model.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/timer.h"
#endif

namespace nanoflow::cli {
namespace {

struct ThroughputOptions {
  std::string model;
  std::string backend = "cuda";
  int input_len = 1024;
  int output_len = 512;
  int num_prompts = 200;
  std::string dataset;
  bool dataset_filter = true;   // NanoFlow's filter: in+out <= 4096, in <= 3072, out <= 1024
  int max_batch_tokens = 2048;
  int max_running = 512;
  int num_layers = 0;           // > 0: first N layers (quick runs only; not a real-shape number)
  double kv_margin_gib = 1.0;
  double gpu_memory_utilization = 0.0;  // EngineConfig::gpu_memory_utilization
  bool cuda_graphs = true;      // decode-only iterations through CUDA graphs (CudaExecutorOptions)
  std::string schedule;         // EngineConfig::schedule_path
  int roofline_iters = 100;
  double temperature = 0.0;
  uint64_t seed = 0;
  std::string output_json;
};

struct Req {
  int in = 0, out = 0;
};

std::vector<Req> load_dataset(const ThroughputOptions& o, int max_len) {
  const std::string text = read_text_file(o.dataset, size_t{64} << 20);
  std::istringstream is(text);
  std::string line;
  NF_CHECK_INPUT(static_cast<bool>(std::getline(is, line))) << o.dataset << ": empty";
  // Column names: Azure traces (ContextTokens, GeneratedTokens), sarathi (num_prefill_tokens,
  // num_decode_tokens).
  std::vector<std::string> cols;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c.substr(0, c.find_last_not_of("\r ") + 1));
  }
  int ci = -1, co = -1;
  for (int i = 0; i < static_cast<int>(cols.size()); ++i) {
    if (cols[i] == "ContextTokens" || cols[i] == "num_prefill_tokens") ci = i;
    if (cols[i] == "GeneratedTokens" || cols[i] == "num_decode_tokens") co = i;
  }
  NF_CHECK_INPUT(ci >= 0 && co >= 0) << o.dataset << ": no ContextTokens/GeneratedTokens (or num_prefill_tokens/"
                                                     "num_decode_tokens) columns";
  std::vector<Req> reqs;
  int64_t row = 1;
  while (std::getline(is, line) && static_cast<int>(reqs.size()) < o.num_prompts) {
    ++row;
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) f.push_back(c);
    NF_CHECK_INPUT(static_cast<int>(f.size()) > std::max(ci, co)) << o.dataset << ":" << row << ": too few fields";
    Req r;
    try {
      r.in = std::stoi(f[static_cast<size_t>(ci)]);
      r.out = std::stoi(f[static_cast<size_t>(co)]);
    } catch (const std::exception&) {
      NF_THROW(kInvalidInput) << o.dataset << ":" << row << ": bad token counts";
    }
    NF_CHECK_INPUT(r.in >= 0 && r.out >= 0) << o.dataset << ":" << row << ": negative length";
    if (o.dataset_filter && (r.in + r.out > 4096 || r.in > 3072 || r.out > 1024)) continue;
    r.in = std::max(r.in, 1);
    r.out = std::max(r.out, 1);
    if (r.in + r.out > max_len) continue;
    reqs.push_back(r);
  }
  NF_CHECK_INPUT(!reqs.empty()) << o.dataset << ": no usable request";
  return reqs;
}

#if defined(NANOFLOW_HAVE_CUDA)
// Peak bf16 GEMM FLOP/s: 8192^3 through cuBLASLt (best of 16 autotuned candidates), median of timed
// runs — the same method as `nanoflow bench roofline` (PERF.md).
double measure_peak_flops(int iters) {
  const int n = 8192;
  cuda::GemmConfig gc;
  gc.candidates = 16;
  cuda::GemmRunner runner(gc);
  const size_t elems = static_cast<size_t>(n) * n;
  cuda::DeviceBuffer x(elems * 2), w(elems * 2), y(elems * 2);
  cuda::Stream s;
  cuda::fill_random_bf16(x.as<__nv_bfloat16>(), elems, 11, 1.0f, s.get());
  cuda::fill_random_bf16(w.as<__nv_bfloat16>(), elems, 12, 1.0f, s.get());
  cuda::GemmParams p;
  p.x = x.as<__nv_bfloat16>();
  p.w = w.as<__nv_bfloat16>();
  p.y = y.data();
  p.m = p.n = p.k = n;
  runner.prepare(p);
  // Warm up for about a second first: right after start the card is still raising its clocks, and
  // a short burst measured 700-720 TFLOP/s where the same process later ran layer GEMMs at 800.
  const auto probe = cuda::time_on_stream(s.get(), {3, 5, 1}, [&](int) { runner.run(p, s.get()); });
  const int warmup = static_cast<int>(std::min(2000.0, std::ceil(1000.0 / std::max(probe.median_ms, 0.05))));
  const auto t = cuda::time_on_stream(s.get(), {warmup, iters, 1}, [&](int) { runner.run(p, s.get()); });
  return 2.0 * n * double(n) * n / (t.median_ms * 1e-3);
}
#endif

// One line per iteration kind, then one per op: ms per iteration, share, achieved rate.
[[maybe_unused]] void print_op_profile(const nlohmann::json& j) {
  for (const auto& [kind, kj] : j.items()) {
    if (!kj.is_object()) continue;
    std::fprintf(stderr, "op profile %s: %lld iterations, %.0f tokens, %.2f ms per iteration\n", kind.c_str(),
                 static_cast<long long>(kj["iterations"].get<int64_t>()), kj["tokens_per_iteration"].get<double>(),
                 kj["ms_per_iteration"].get<double>());
    for (const auto& [op, oj] : kj["ops"].items()) {
      std::fprintf(stderr, "  %-18s %8.3f ms %5.1f%%", op.c_str(), oj["ms_per_iteration"].get<double>(),
                   100.0 * oj["share"].get<double>());
      if (oj.contains("tflops")) std::fprintf(stderr, "  %7.1f TFLOP/s", oj["tflops"].get<double>());
      if (oj.contains("gbs")) std::fprintf(stderr, "  %7.1f GB/s", oj["gbs"].get<double>());
      std::fprintf(stderr, "\n");
    }
  }
}

int run_throughput(const ThroughputOptions& o) {
  nlohmann::json res;
  double peak = 0;
  std::string device = "cpu";
#if defined(NANOFLOW_HAVE_CUDA)
  if (o.backend == "cuda") {
    cuda::set_device(0);
    device = cuda::device_info(0).name;
    peak = measure_peak_flops(o.roofline_iters);
    std::fprintf(stderr, "roofline: bf16 GEMM 8192^3 %.1f TFLOP/s on %s\n", peak / 1e12, device.c_str());
  }
#endif
  EngineConfig ec;
  ec.model_path = o.model;
  ec.backend = o.backend;
  ec.max_batch_tokens = o.max_batch_tokens;
  ec.max_running = o.max_running;
  ec.gpu_memory_utilization = o.gpu_memory_utilization;
  ec.schedule_path = o.schedule;
  ec.max_queued = std::max(o.num_prompts, 1) + 16;
  ec.enable_prefix_caching = false;  // random prompts share nothing; keep the pool's accounting plain
  ec.prefix_hash_seed = 1;
  // A little room over in+out: the engine stops a request whose total length reaches max_model_len.
  const int max_len = (o.dataset.empty() ? o.input_len + o.output_len : 4096) + 16;
  ec.max_model_len = max_len;

  std::vector<Req> reqs;
  if (o.dataset.empty()) {
    NF_CHECK_INPUT(o.input_len > 0 && o.output_len > 0 && o.num_prompts > 0)
        << "--input-len, --output-len and --num-prompts must be positive";
    reqs.assign(static_cast<size_t>(o.num_prompts), Req{o.input_len, o.output_len});
  } else {
    reqs = load_dataset(o, max_len);
  }

  const auto t_load = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> engine;
#if defined(NANOFLOW_HAVE_CUDA)
  engine::CudaEngineParts parts;
#endif
  if (o.backend == "cuda") {
#if defined(NANOFLOW_HAVE_CUDA)
    engine::CudaEngineOptions co;
    co.kv_margin_bytes = static_cast<size_t>(o.kv_margin_gib * (1 << 30));
    co.num_layers_override = o.num_layers;
    co.cuda_graphs = o.cuda_graphs;
    engine = engine::create_cuda_engine(ec, co, &parts);
#else
    NF_THROW(kUnsupported) << "this build has no CUDA backend";
#endif
  } else {
    engine = Engine::create(ec);
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const ModelConfig& mc = engine->model_config();
  const int64_t params = mc.param_count();
  const int64_t vocab = mc.vocab_size;

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(std::min<int64_t>(vocab, 100000) - 1));
  std::vector<GenerateRequest> gens;
  int64_t prompt_tokens = 0;
  for (const Req& r : reqs) {
    GenerateRequest g;
    g.prompt_ids.resize(static_cast<size_t>(r.in));
    for (auto& t : g.prompt_ids) t = tok(rng);
    g.params.temperature = static_cast<float>(o.temperature);
    g.params.seed = rng();
    g.params.ignore_eos = true;
    g.params.max_tokens = r.out;
    prompt_tokens += r.in;
    gens.push_back(std::move(g));
  }
#if defined(NANOFLOW_HAVE_CUDA)
  const auto gpu0 = parts.executor != nullptr ? parts.executor->stats() : engine::CudaExecutorStats{};
#endif
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (auto& g : gens) handles.push_back(engine->submit(std::move(g)));
  // Only requests that finished without error count: a failed run must not report a rate.
  int64_t out_tokens = 0, streamed_tokens = 0, errors = 0, done_prompt_tokens = 0;
  for (auto& h : handles) {
    TokenEvent ev;
    while (!h->done()) {
      if (!h->next(&ev, std::chrono::milliseconds(200))) continue;
      streamed_tokens += static_cast<int64_t>(ev.tokens.size());
      if (ev.finish != FinishReason::kNone && ev.finish != FinishReason::kError) {
        out_tokens += ev.completion_tokens;
        done_prompt_tokens += ev.prompt_tokens;
      }
      if (ev.finish == FinishReason::kError) {
        ++errors;
        NF_LOG(kError) << "request failed: " << ev.error;
      }
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const EngineStats st = engine->stats();

  const double total_tps = (done_prompt_tokens + out_tokens) / wall;
  res["model"] = o.model;
  res["num_layers"] = mc.num_layers;
  res["params"] = params;
  res["device"] = device;
  res["backend"] = o.backend;
  res["workload"] = o.dataset.empty() ? std::to_string(o.input_len) + "/" + std::to_string(o.output_len) : o.dataset;
  res["num_requests"] = reqs.size();
  res["prompt_tokens"] = prompt_tokens;
  res["output_tokens"] = out_tokens;  // engine's completion_tokens of each finished request
  res["streamed_tokens"] = streamed_tokens;
  res["errors"] = errors;
  res["wall_s"] = wall;
  res["load_s"] = load_s;
  res["total_tokens_per_s"] = total_tps;
  res["output_tokens_per_s"] = out_tokens / wall;
  res["requests_per_s"] = static_cast<double>(reqs.size()) / wall;
  res["iterations"] = st.iterations;
  res["preemptions"] = st.preemptions;
  res["kv_pages_total"] = st.kv_pages_total;
  res["engine_host_s"] = st.host_ns * 1e-9;
  res["max_batch_tokens"] = o.max_batch_tokens;
  res["max_running"] = o.max_running;
  if (peak > 0 && errors == 0) {
    const double optimal = peak / (2.0 * static_cast<double>(params));
    res["peak_gemm_tflops"] = peak / 1e12;
    res["optimal_tokens_per_s"] = optimal;
    res["percent_of_optimal"] = 100.0 * total_tps / optimal;
  }
#if defined(NANOFLOW_HAVE_CUDA)
  if (parts.executor != nullptr) {
    const auto gpu1 = parts.executor->stats();
    res["gpu_ms"] = gpu1.gpu_ms - gpu0.gpu_ms;
    res["gpu_busy_fraction"] = (gpu1.gpu_ms - gpu0.gpu_ms) / (wall * 1e3);
    res["host_sampled_iterations"] = gpu1.host_sampled_iterations - gpu0.host_sampled_iterations;
    res["cuda_graphs"] = o.cuda_graphs;
    res["graph_replays"] = gpu1.graph_replays - gpu0.graph_replays;
    res["eager_iterations"] = gpu1.eager_iterations - gpu0.eager_iterations;
    res["scheduled_iterations"] = gpu1.scheduled_iterations - gpu0.scheduled_iterations;
    res["schedule"] = o.schedule.empty() ? std::string("sequential") : o.schedule;
    const CudaGraphStats gs = parts.model->graph_stats();
    res["graph_captures"] = gs.captures;
    res["graph_capture_ms"] = gs.capture_ms;
    res["graph_capture_failures"] = gs.failures;
    res["startup_s"] = parts.model->startup_seconds();
    res["memory"] = parts.model->memory_report();
    // NANOFLOW_OP_PROFILE=N: where the GPU time of the forwards went, by op and iteration kind.
    const std::string prof = parts.model->op_profile_report();
    if (!prof.empty()) {
      res["op_profile"] = nlohmann::json::parse(prof);
      print_op_profile(res["op_profile"]);
    }
    const std::string sprof = parts.executor->schedule_profile_report();  // the scheduled iterations'
    if (!sprof.empty()) res["schedule_profile"] = nlohmann::json::parse(sprof);
  }
#endif
  const std::string text = res.dump(2);
  std::printf("%s\n", text.c_str());
  if (!o.output_json.empty()) {
    std::ofstream f(o.output_json);
    NF_CHECK_INPUT(static_cast<bool>(f)) << "cannot write " << o.output_json;
    f << text << "\n";
  }
  engine->shutdown(false);
  return errors == 0 ? 0 : 1;
}

NF_REGISTER_BENCH(bench_throughput, "throughput", "offline throughput (all requests at t=0, ignore_eos)",
                  [](CLI::App* sub) {
                    auto o = std::make_shared<ThroughputOptions>();
#if !defined(NANOFLOW_HAVE_CUDA)
                    o->backend = "cpu";
#endif
                    sub->add_option("--model", o->model, "HF folder, .gguf or preset:<name>")->required();
                    sub->add_option("--backend", o->backend, "cuda | cpu");
                    sub->add_option("--input-len", o->input_len, "prompt tokens per request");
                    sub->add_option("--output-len", o->output_len, "generated tokens per request");
                    sub->add_option("--num-prompts", o->num_prompts, "requests (for --dataset: the first N usable rows)");
                    sub->add_option("--dataset", o->dataset, "CSV trace of request lengths (../shared/datasets)");
                    sub->add_option("--dataset-filter", o->dataset_filter, "NanoFlow's length filter (default true)");
                    sub->add_option("--max-batch-tokens", o->max_batch_tokens, "tokens per iteration");
                    sub->add_option("--max-running", o->max_running, "sequences in the running set");
                    sub->add_option("--num-layers", o->num_layers, "keep only the first N layers (quick checks)");
                    sub->add_option("--kv-margin-gib", o->kv_margin_gib, "GPU memory left free after the KV pool");
                    sub->add_option("--gpu-memory-utilization", o->gpu_memory_utilization,
                                    "cap the GPU's used memory at this fraction when sizing the KV pool (0 = off)");
                    sub->add_option("--cuda-graphs", o->cuda_graphs,
                                    "decode-only iterations as CUDA graphs per batch bucket, on | off (default on)");
                    sub->add_option("--schedule", o->schedule,
                                    "CUDA: pipeline schedule JSON (tools/schedules/); default the sequential one");
                    sub->add_option("--roofline-iters", o->roofline_iters, "timed 8192^3 GEMMs for the peak");
                    sub->add_option("--temperature", o->temperature, "0 = greedy");
                    sub->add_option("--seed", o->seed, "prompt and sampling seed");
                    sub->add_option("--output-json", o->output_json, "also write the JSON result here");
                    return [o]() { return run_throughput(*o); };
                  });

}  // namespace
}  // namespace nanoflow::cli
