// `nanoflow bench serving`: online serving the way PERF.md defines it. Requests arrive as a Poisson
// process at each --request-rate (requests/s; "inf" submits all at t=0), with the workload of
// `bench throughput` (fixed lengths or a trace; seeded random prompts, ignore_eos), on one engine
// (rates run one after another; each starts with an empty engine). Per rate it prints and writes as
// JSON: TTFT (arrival to first token), TPOT (time per output token after the first), end-to-end
// latency — mean, median, p90, p99 — and the mean normalized latency (end-to-end / output tokens),
// the throughput reached, and the highest rate tried whose mean normalized latency stays under
// --latency-slo-ms (200 ms/token by default, PERF.md) while the engine kept up (the TTFT of the
// last quarter of arrivals at most --max-ttft-growth times the first quarter's: a finite run above
// capacity can stay under the latency bound while its queue grows without end).
//   nanoflow bench serving --model preset:llama3-8b --dataset ../shared/datasets/AzureLLMInferenceTrace_conv.csv
//       --num-prompts 1000 --request-rate 5,10,20
//
// Timing: one thread submits at the arrival times; another sweeps the live requests' streams and
// stamps each event when it sees it (the sweep sleeps 0.5 ms when nothing came), so times are
// exact to about a sweep. TTFT counts from the request's scheduled arrival, so a submitter that
// falls behind shows up as latency, as a client's would. Before the first rate, a few untimed
// requests (--warmup-requests) take the first-use costs (lazy CUDA graph captures, allocations).
// Percentiles are nearest-rank (the median of an even count is the lower middle value).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "bench_workload.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strings.h"
#include "nanoflow/engine.h"

namespace nanoflow::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ServingOptions : WorkloadOptions {
  std::string request_rates = "inf";  // comma-separated requests/s; "inf" = all at t=0
  double latency_slo_ms = 200.0;      // mean normalized latency bound for the summary (PERF.md)
  double max_ttft_growth = 2.0;       // ... and the engine kept up: late TTFTs at most this x early ones
  int warmup_requests = 8;            // untimed, before the first rate (lazy CUDA graphs, first-use costs)
};

std::vector<double> parse_rates(const std::string& text) {
  std::vector<double> rates;
  for (const std::string& item : split_all(text, ',')) {  // empty items are refused below
    if (item == "inf") {
      rates.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    size_t used = 0;
    double r = 0;
    try {
      r = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    NF_CHECK_INPUT(used == item.size() && r > 0 && std::isfinite(r))
        << "--request-rate: '" << item << "' is not a positive number of requests/s or inf";
    rates.push_back(r);
  }
  NF_CHECK_INPUT(!rates.empty()) << "--request-rate: no rate given";
  return rates;
}

// Arrival offsets in seconds: exponential gaps with mean 1/rate (a Poisson process), seeded.
std::vector<double> arrival_times(size_t n, double rate, uint64_t seed) {
  std::vector<double> t(n, 0.0);
  if (!std::isfinite(rate)) return t;
  std::mt19937_64 rng(seed ^ 0x5eedf00dULL);
  std::exponential_distribution<double> gap(rate);
  double at = 0;
  for (size_t i = 0; i < n; ++i) {
    t[i] = at;
    at += gap(rng);
  }
  return t;
}

struct Timing {
  Clock::time_point arrival, first, end;
  bool has_token = false, finished = false, failed = false;
  int64_t prompt_tokens = 0, output_tokens = 0;
};

// Mean, median, p90, p99 (nearest rank) of xs, in milliseconds.
nlohmann::json stats_ms(std::vector<double> xs) {
  nlohmann::json j;
  if (xs.empty()) return j;
  std::sort(xs.begin(), xs.end());
  double sum = 0;
  for (double x : xs) sum += x;
  auto pct = [&](double p) {
    const size_t k = static_cast<size_t>(std::ceil(p * static_cast<double>(xs.size()))) - 1;
    return 1e3 * xs[std::min(k, xs.size() - 1)];
  };
  j["mean"] = 1e3 * sum / static_cast<double>(xs.size());
  j["median"] = pct(0.5);
  j["p90"] = pct(0.9);
  j["p99"] = pct(0.99);
  return j;
}

// One rate on the engine: submit at the arrival times, sweep the streams, summarize.
nlohmann::json run_rate(Engine& engine, const ServingOptions& o, std::vector<GenerateRequest> gens, double rate) {
  const std::vector<double> arrivals = arrival_times(gens.size(), rate, o.seed);
  std::vector<Timing> tm(gens.size());
  std::vector<std::shared_ptr<RequestHandle>> handles(gens.size());
  std::mutex mu;           // guards `submitted` and the handles below it
  size_t submitted = 0;
  std::atomic<bool> submit_failed{false};
  std::string submit_error;
  const Clock::time_point t0 = Clock::now();
  std::thread submitter([&] {  // joined below, also when the sweep throws
    for (size_t i = 0; i < gens.size(); ++i) {
      const auto at = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrivals[i]));
      std::this_thread::sleep_until(at);
      tm[i].arrival = at;
      std::shared_ptr<RequestHandle> h;
      try {
        h = engine.submit(std::move(gens[i]));
      } catch (const std::exception& e) {
        std::lock_guard lk(mu);
        submit_error = e.what();
        submit_failed = true;  // read with `submitted` under the same lock
        return;
      }
      std::lock_guard lk(mu);
      handles[i] = std::move(h);
      submitted = i + 1;
    }
  });
  struct JoinOnExit {
    std::thread& t;
    ~JoinOnExit() {
      if (t.joinable()) t.join();
    }
  } join_submitter{submitter};
  size_t finished = 0, live_from = 0;
  TokenEvent ev;
  while (true) {
    size_t n = 0;
    bool failed = false;
    {
      std::lock_guard lk(mu);
      n = submitted;
      failed = submit_failed;
    }
    if (failed) {  // the run is void: stop what was submitted and report the error
      for (size_t i = live_from; i < n; ++i)
        if (!tm[i].finished) handles[i]->abort();
      break;
    }
    bool any = false;
    for (size_t i = live_from; i < n; ++i) {
      Timing& t = tm[i];
      if (t.finished) continue;
      while (handles[i]->next(&ev, std::chrono::milliseconds(0))) {
        any = true;
        const Clock::time_point now = Clock::now();
        if (!ev.tokens.empty() && !t.has_token) {
          t.has_token = true;
          t.first = now;
        }
        if (ev.finish != FinishReason::kNone) {
          t.end = now;
          t.finished = true;
          t.failed = ev.finish == FinishReason::kError || ev.finish == FinishReason::kAbort;
          if (ev.finish == FinishReason::kError) {
            NF_LOG(kError) << "request failed: " << ev.error;
          }
          t.prompt_tokens = ev.prompt_tokens;
          t.output_tokens = ev.completion_tokens;
          ++finished;
          break;
        }
      }
    }
    while (live_from < n && tm[live_from].finished) ++live_from;
    if (finished == gens.size()) break;
    // Idle sweeps sleep 0.5 ms: stamps are that exact, and the engine thread's pushes do not
    // contend with a sweep that locks every live stream thousands of times a second.
    if (!any) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  submitter.join();
  const Clock::time_point t_end = Clock::now();
  NF_CHECK_INPUT(!submit_failed) << "submit failed after " << submitted << " requests: " << submit_error;

  std::vector<double> ttft, tpot, e2e, norm;
  int64_t in_tok = 0, out_tok = 0, errors = 0;
  for (const Timing& t : tm) {  // in arrival order
    if (t.failed) {
      ++errors;
      continue;
    }
    in_tok += t.prompt_tokens;
    out_tok += t.output_tokens;
    const double total = std::chrono::duration<double>(t.end - t.arrival).count();
    e2e.push_back(total);
    if (t.output_tokens > 0) norm.push_back(total / static_cast<double>(t.output_tokens));
    if (t.has_token) ttft.push_back(std::chrono::duration<double>(t.first - t.arrival).count());
    if (t.has_token && t.output_tokens > 1)
      tpot.push_back(std::chrono::duration<double>(t.end - t.first).count() / static_cast<double>(t.output_tokens - 1));
  }
  const double wall = std::chrono::duration<double>(t_end - t0).count();
  // Whether the engine kept up: a run too short to show an unbounded queue in its mean latency
  // still shows it in the TTFT of its last arrivals against its first (mean of each quarter).
  double ttft_growth = 1.0;
  if (ttft.size() >= 8) {
    const size_t q = ttft.size() / 4;
    double first = 0, last = 0;
    for (size_t i = 0; i < q; ++i) {
      first += ttft[i];
      last += ttft[ttft.size() - 1 - i];
    }
    ttft_growth = first > 0 ? last / first : 1.0;
  }
  nlohmann::json r;
  r["request_rate"] = std::isfinite(rate) ? nlohmann::json(rate) : nlohmann::json("inf");
  r["num_requests"] = gens.size();
  r["errors"] = errors;
  r["duration_s"] = wall;
  r["requests_per_s"] = static_cast<double>(gens.size() - static_cast<size_t>(errors)) / wall;
  r["total_tokens_per_s"] = static_cast<double>(in_tok + out_tok) / wall;
  r["output_tokens_per_s"] = static_cast<double>(out_tok) / wall;
  r["prompt_tokens"] = in_tok;
  r["output_tokens"] = out_tok;
  r["ttft_ms"] = stats_ms(ttft);
  r["tpot_ms"] = stats_ms(tpot);
  r["e2e_latency_ms"] = stats_ms(e2e);
  r["normalized_latency_ms_per_token"] = stats_ms(norm);
  r["ttft_growth"] = ttft_growth;  // mean TTFT of the last quarter of arrivals / the first quarter's
  return r;
}

int run_serving(const ServingOptions& o) {
  const std::vector<double> rates = parse_rates(o.request_rates);
  NF_CHECK_INPUT(o.latency_slo_ms > 0) << "--latency-slo-ms " << o.latency_slo_ms;
  NF_CHECK_INPUT(o.warmup_requests >= 0) << "--warmup-requests " << o.warmup_requests;
  NF_CHECK_INPUT(o.max_ttft_growth >= 1.0) << "--max-ttft-growth " << o.max_ttft_growth << " (>= 1)";
  const std::vector<BenchRequest> lengths = workload_lengths(o);
  BenchEngine be = make_bench_engine(o);
  Engine& engine = *be.engine;
  const ModelConfig& mc = engine.model_config();
  nlohmann::json res;
  res["model"] = o.model;
  res["backend"] = o.backend;
  res["workload"] = o.dataset.empty() ? std::to_string(o.input_len) + "/" + std::to_string(o.output_len) : o.dataset;
  res["num_layers"] = mc.num_layers;
  res["max_batch_tokens"] = o.max_batch_tokens;
  res["max_running"] = o.max_running;
  res["load_s"] = be.load_s;
  res["latency_slo_ms_per_token"] = o.latency_slo_ms;
  res["max_ttft_growth"] = o.max_ttft_growth;
  res["warmup_requests"] = o.warmup_requests;
  if (o.warmup_requests > 0) {
    std::vector<GenerateRequest> warm = workload_requests(o, lengths, mc.vocab_size);
    warm.resize(std::min(warm.size(), static_cast<size_t>(o.warmup_requests)));
    (void)run_offline(engine, std::move(warm));
  }
  int failed_rates = 0;
  nlohmann::json best = nullptr;
  for (double rate : rates) {
    nlohmann::json r = run_rate(engine, o, workload_requests(o, lengths, mc.vocab_size), rate);
    const double mean_norm = r["normalized_latency_ms_per_token"].value("mean", 0.0);  // (ms)
    const bool ok = r["errors"].get<int64_t>() == 0;
    failed_rates += ok ? 0 : 1;
    const bool kept_up = r["ttft_growth"].get<double>() <= o.max_ttft_growth;
    if (ok && kept_up && std::isfinite(rate) && mean_norm > 0 && mean_norm <= o.latency_slo_ms &&
        (best.is_null() || rate > best.get<double>()))
      best = rate;
    std::fprintf(stderr,
                 "rate %-6s: %.2f req/s, %.0f total tok/s, TTFT mean %.1f ms p99 %.1f, TPOT mean %.1f ms p99 %.1f, "
                 "normalized latency mean %.1f ms/token, TTFT growth %.2fx%s\n",
                 r["request_rate"].dump().c_str(), r["requests_per_s"].get<double>(),
                 r["total_tokens_per_s"].get<double>(), r["ttft_ms"].value("mean", 0.0), r["ttft_ms"].value("p99", 0.0),
                 r["tpot_ms"].value("mean", 0.0), r["tpot_ms"].value("p99", 0.0), mean_norm,
                 r["ttft_growth"].get<double>(), ok ? "" : " (requests failed)");
    res["rates"].push_back(std::move(r));
  }
  res["max_rate_within_slo"] = best;  // null: none of the finite rates tried stayed under the bound
  const std::string text = res.dump(2);
  std::printf("%s\n", text.c_str());
  write_output_json(o, text);
  engine.shutdown(false);
  return failed_rates == 0 ? 0 : 1;
}

NF_REGISTER_BENCH(bench_serving, "serving",
                  "online serving: Poisson arrivals per --request-rate; TTFT, TPOT, latency percentiles",
                  [](CLI::App* sub) {
                    auto o = std::make_shared<ServingOptions>();
                    add_workload_options(sub, o.get());
                    sub->add_option("--request-rate", o->request_rates,
                                    "requests/s, comma-separated for several runs; inf = all at t=0 (default)");
                    sub->add_option("--warmup-requests", o->warmup_requests,
                                    "untimed requests before the first rate (first-use costs); 0 = none");
                    sub->add_option("--max-ttft-growth", o->max_ttft_growth,
                                    "a rate counts as kept up when its last quarter's mean TTFT is at most this many "
                                    "times its first quarter's (default 2)");
                    sub->add_option("--latency-slo-ms", o->latency_slo_ms,
                                    "mean normalized latency bound (ms per output token) for max_rate_within_slo");
                    return [o]() { return run_serving(*o); };
                  });

}  // namespace
}  // namespace nanoflow::cli
