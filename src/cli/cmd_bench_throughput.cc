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
#include <string>
#include <vector>

#include "bench.h"
#include "bench_workload.h"
#include "core/error.h"
#include "core/log.h"
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

struct ThroughputOptions : WorkloadOptions {
  int roofline_iters = 100;
};

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
  const std::vector<BenchRequest> reqs = workload_lengths(o);
  BenchEngine be = make_bench_engine(o);
  std::unique_ptr<Engine>& engine = be.engine;
  const double load_s = be.load_s;
  const ModelConfig& mc = engine->model_config();
  const int64_t params = mc.param_count();
  std::vector<GenerateRequest> gens = workload_requests(o, reqs, mc.vocab_size);
  int64_t prompt_tokens = 0;
  for (const BenchRequest& r : reqs) prompt_tokens += r.in;
#if defined(NANOFLOW_HAVE_CUDA)
  const auto gpu0 = be.cuda_executor != nullptr ? be.cuda_executor->stats() : engine::CudaExecutorStats{};
#endif
  const OfflineRun run = run_offline(*engine, std::move(gens));
  const double wall = run.wall_s;
  const int64_t out_tokens = run.output_tokens, errors = run.errors;
  const EngineStats st = engine->stats();

  const double total_tps = run.total_tokens_per_s();
  res["model"] = o.model;
  res["num_layers"] = mc.num_layers;
  res["params"] = params;
  res["device"] = device;
  res["backend"] = o.backend;
  res["workload"] = o.dataset.empty() ? std::to_string(o.input_len) + "/" + std::to_string(o.output_len) : o.dataset;
  res["num_requests"] = reqs.size();
  res["prompt_tokens"] = prompt_tokens;
  res["output_tokens"] = out_tokens;  // engine's completion_tokens of each finished request
  res["streamed_tokens"] = run.streamed_tokens;
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
  if (be.cuda_executor != nullptr) {
    const auto gpu1 = be.cuda_executor->stats();
    res["gpu_ms"] = gpu1.gpu_ms - gpu0.gpu_ms;
    res["gpu_busy_fraction"] = (gpu1.gpu_ms - gpu0.gpu_ms) / (wall * 1e3);
    res["host_sampled_iterations"] = gpu1.host_sampled_iterations - gpu0.host_sampled_iterations;
    res["cuda_graphs"] = o.cuda_graphs;
    res["numerics"] = o.numerics;
    res["graph_replays"] = gpu1.graph_replays - gpu0.graph_replays;
    res["eager_iterations"] = gpu1.eager_iterations - gpu0.eager_iterations;
    res["scheduled_iterations"] = gpu1.scheduled_iterations - gpu0.scheduled_iterations;
    res["schedule"] = o.schedule.empty() ? std::string("sequential") : o.schedule;
    const CudaGraphStats gs = be.cuda_model->graph_stats();
    res["graph_captures"] = gs.captures;
    res["graph_capture_ms"] = gs.capture_ms;
    res["graph_capture_failures"] = gs.failures;
    res["startup_s"] = be.cuda_model->startup_seconds();
    res["memory"] = be.cuda_model->memory_report();
    // NANOFLOW_OP_PROFILE=N: where the GPU time of the forwards went, by op and iteration kind.
    const std::string prof = be.cuda_model->op_profile_report();
    if (!prof.empty()) {
      res["op_profile"] = nlohmann::json::parse(prof);
      print_op_profile(res["op_profile"]);
    }
    const std::string sprof = be.cuda_executor->schedule_profile_report();  // the scheduled iterations'
    if (!sprof.empty()) res["schedule_profile"] = nlohmann::json::parse(sprof);
  }
#endif
  const std::string text = res.dump(2);
  std::printf("%s\n", text.c_str());
  write_output_json(o, text);
  engine->shutdown(false);
  return errors == 0 ? 0 : 1;
}

NF_REGISTER_BENCH(bench_throughput, "throughput", "offline throughput (all requests at t=0, ignore_eos)",
                  [](CLI::App* sub) {
                    auto o = std::make_shared<ThroughputOptions>();
                    add_workload_options(sub, o.get());
                    sub->add_option("--roofline-iters", o->roofline_iters, "timed 8192^3 GEMMs for the peak");
                    return [o]() { return run_throughput(*o); };
                  });

}  // namespace
}  // namespace nanoflow::cli
