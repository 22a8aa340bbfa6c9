// `nanoflow bench ops`: every CUDA kernel at Llama-3-8B shapes (hidden 4096, 32 query / 8 KV heads
// of 128, intermediate 14336, vocab 128256), batches 64..4096, on the whole GPU and on green-context
// SM shares (default 16/24/32 SMs): time, TFLOP/s or GB/s, and % of the ceiling measured in the
// same run (bf16 GEMM 8192^3 for matrix work; HBM copy for memory-bound work on the whole GPU; a
// streaming read with 8 loads in flight on the same partition for SM shares). Also checks the
// acceptance numbers of issue 7: layer GEMMs vs the best cuBLASLt candidate, SM_COUNT_TARGET
// scaling in a 112-SM partition, decode attention vs bandwidth.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench.h"

#if NANOFLOW_HAVE_CUDA
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/lm_head.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/cuda/rope_kv.h"
#include "kernels/cuda/sampling.h"
#include "kernels/cuda/stream_bench.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/sm_partitions.h"
#include "runtime/cuda/timer.h"
#endif

namespace nanoflow::cli {
namespace {

struct OpsOptions {
  std::string json_path;
  std::vector<int> shares = {16, 24, 32};
  bool quick = false;
  std::string only;  // run only ops whose name contains this
};

#if NANOFLOW_HAVE_CUDA
using nlohmann::json;
using bf16 = __nv_bfloat16;

// Llama-3-8B shapes.
constexpr int kHidden = 4096, kHq = 32, kHkv = 8, kD = 128, kInter = 14336, kVocab = 128256;

struct Ceilings {
  double gemm_tflops = 0;
  double copy_gbs = 0;             // whole GPU, read + write
  std::vector<std::pair<int, double>> read_gbs;  // (sms, streaming read GB/s) per share
  double read_for(int sms) const {
    for (auto& [s, g] : read_gbs)
      if (s == sms) return g;
    return copy_gbs;
  }
};

struct OpsBench {
  OpsOptions opt;
  cuda::DeviceInfo dev;
  Ceilings ceil;
  json rows = json::array();
  cuda::Stream main_stream;
  std::unique_ptr<cuda::GemmRunner> gemm;

  bool wanted(const std::string& name) const { return opt.only.empty() || name.find(opt.only) != std::string::npos; }

  cuda::Timing time(cudaStream_t s, int reps, const std::function<void(int)>& f, int inner = 1) {
    return cuda::time_on_stream(s, {3, reps, inner}, f);
  }

  void record(const std::string& op, const std::string& shape, int sms, double ms, double tflops, double gbs,
              const std::string& extra = "") {
    double pct = 0;
    std::string vs;
    if (tflops > 0) {
      pct = 100.0 * tflops / ceil.gemm_tflops;
      vs = "gemm8192";
    } else if (gbs > 0) {
      if (sms == dev.sm_count) {
        pct = 100.0 * gbs / ceil.copy_gbs;
        vs = "hbm copy";
      } else {
        pct = 100.0 * gbs / ceil.read_for(sms);
        vs = "stream read";
      }
    }
    std::printf("%-16s %-28s %4d SMs %9.4f ms %8.1f %-7s %6.1f%% of %s %s\n", op.c_str(), shape.c_str(), sms, ms,
                tflops > 0 ? tflops : gbs, tflops > 0 ? "TFLOP/s" : "GB/s", pct, vs.c_str(), extra.c_str());
    std::fflush(stdout);
    rows.push_back({{"op", op}, {"shape", shape}, {"sms", sms}, {"ms", ms}, {"tflops", tflops}, {"gbs", gbs},
                    {"pct_of_ceiling", pct}, {"ceiling", vs}, {"note", extra}});
  }

  // --- ceilings ---------------------------------------------------------------------------------
  void measure_ceilings() {
    {
      const int n = 8192;
      cuda::DeviceBuffer a(size_t(n) * n * 2), b(size_t(n) * n * 2), c(size_t(n) * n * 2);
      cuda::fill_random_bf16(a.as<bf16>(), size_t(n) * n, 1, 1.f, main_stream.get());
      cuda::fill_random_bf16(b.as<bf16>(), size_t(n) * n, 2, 1.f, main_stream.get());
      cuda::GemmParams p{a.as<bf16>(), b.as<bf16>(), c.data(), nullptr, n, n, n};
      gemm->prepare(p);
      auto t = time(main_stream.get(), 30, [&](int) { gemm->run(p, main_stream.get()); });
      ceil.gemm_tflops = 2.0 * n * n * double(n) / (t.median_ms * 1e-3) / 1e12;
    }
    const size_t bytes = size_t{2} << 30;
    cuda::DeviceBuffer src(bytes), dst(bytes), sink(64);
    cuda::fill_random_bf16(src.as<bf16>(), bytes / 2, 3, 1.f, main_stream.get());
    auto t = time(main_stream.get(), 10, [&](int) {
      NF_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, main_stream.get()));
    });
    ceil.copy_gbs = 2.0 * bytes / (t.median_ms * 1e-3) / 1e9;
    cuda::SmPartitions parts(cuda::SmPartitionsConfig{opt.shares});
    for (int i = 0; i < parts.size(); ++i) {
      auto tr = time(parts[i].stream, 5, [&](int) {
        NF_CUDA_CHECK(cuda::launch_stream_read(src.data(), bytes, sink.as<float>(), 8, parts[i].sm_count * 4, parts[i].stream));
      });
      ceil.read_gbs.push_back({parts[i].sm_count, bytes / (tr.median_ms * 1e-3) / 1e9});
    }
    std::printf("ceilings: gemm %.1f TFLOP/s, hbm copy %.0f GB/s", ceil.gemm_tflops, ceil.copy_gbs);
    for (auto& [s, g] : ceil.read_gbs) std::printf(", read@%d SMs %.0f GB/s", s, g);
    std::printf("\n");
  }

  // --- GEMMs ------------------------------------------------------------------------------------
  struct Layer {
    const char* name;
    int n, k;
  };
  static constexpr Layer kLayers[4] = {{"gemm_qkv", (kHq + 2 * kHkv) * kD, kHidden},
                                       {"gemm_o", kHidden, kHq * kD},
                                       {"gemm_gate_up", 2 * kInter, kHidden},
                                       {"gemm_down", kHidden, kInter}};

  void bench_gemms() {
    if (!wanted("gemm")) return;
    const int max_m = 4096;
    cuda::DeviceBuffer x(size_t(max_m) * kInter * 2), w(size_t(2 * kInter) * kHidden * 2), y(size_t(max_m) * 2 * kInter * 2);
    cuda::fill_random_bf16(x.as<bf16>(), size_t(max_m) * kInter, 5, 1.f, main_stream.get());
    cuda::fill_random_bf16(w.as<bf16>(), size_t(2 * kInter) * kHidden, 6, 0.05f, main_stream.get());
    std::vector<int> ms = opt.quick ? std::vector<int>{512, 2048} : std::vector<int>{64, 256, 512, 1024, 2048, 4096};
    json accept = json::array();
    std::vector<std::tuple<std::string, int, double>> whole;  // (layer, m, tflops)
    for (const Layer& L : kLayers) {
      for (int m : ms) {
        cuda::GemmParams p{x.as<bf16>(), w.as<bf16>(), y.data(), nullptr, m, L.n, L.k};
        gemm->prepare(p);
        auto t = time(main_stream.get(), 20, [&](int) { gemm->run(p, main_stream.get()); });
        const double tf = 2.0 * m * L.n * double(L.k) / (t.median_ms * 1e-3) / 1e12;
        std::string extra;
        if (m == 512 || m == 1024 || m == 2048) {
          auto all = gemm->time_all_candidates(p, 10);
          const double best_ms = *std::min_element(all.begin(), all.end());
          const double best_tf = 2.0 * m * L.n * double(L.k) / (best_ms * 1e-3) / 1e12;
          extra = "best-candidate " + std::to_string(int(best_tf)) + " TFLOP/s, ours " +
                  std::to_string(int(100 * tf / best_tf)) + "%";
          accept.push_back({{"layer", L.name}, {"m", m}, {"ours_tflops", tf}, {"best_candidate_tflops", best_tf},
                            {"ratio", tf / best_tf}, {"candidates", all.size()}});
        }
        whole.push_back({L.name, m, tf});
        record(L.name, "M=" + std::to_string(m) + " N=" + std::to_string(L.n) + " K=" + std::to_string(L.k),
               dev.sm_count, t.median_ms, tf, 0, extra);
      }
    }
    summary["gemm_vs_best_candidate"] = accept;

    // Inside a 112-SM partition: default vs SM_COUNT_TARGET = 112, against linear scaling.
    json scaling = json::array();
    {
      cuda::SmPartitions part(cuda::SmPartitionsConfig{{112}});
      cudaStream_t s = part[0].stream;
      for (const Layer& L : kLayers) {
        for (int m : {512, 1024, 2048}) {
          double base = 0;
          for (auto& [n, mm, tf] : whole)
            if (n == L.name && mm == m) base = tf;
          if (base == 0) continue;
          double tf_by_target[2] = {0, 0};
          for (int target : {0, 112}) {
            cuda::GemmParams p{x.as<bf16>(), w.as<bf16>(), y.data(), nullptr, m, L.n, L.k};
            p.sm_count_target = target;
            gemm->prepare(p);
            auto t = time(s, 20, [&](int) { gemm->run(p, s); });
            const double tf = 2.0 * m * L.n * double(L.k) / (t.median_ms * 1e-3) / 1e12;
            tf_by_target[target ? 1 : 0] = tf;
            const double linear = base * part[0].sm_count / dev.sm_count;
            record(L.name, "M=" + std::to_string(m) + (target ? " SM_COUNT_TARGET=112" : " no target"),
                   part[0].sm_count, t.median_ms, tf, 0,
                   std::to_string(int(100 * tf / linear)) + "% of linear scaling");
          }
          scaling.push_back({{"layer", L.name}, {"m", m}, {"whole_gpu_tflops", base},
                             {"p112_default_tflops", tf_by_target[0]}, {"p112_target_tflops", tf_by_target[1]},
                             {"pct_of_linear", 100 * tf_by_target[1] / (base * 112 / dev.sm_count)}});
        }
      }
    }
    summary["gemm_112_partition"] = scaling;

    // Small SM shares (for the overlap planner): M = 2048 with SM_COUNT_TARGET = share.
    cuda::SmPartitions parts(cuda::SmPartitionsConfig{opt.shares});
    for (int i = 0; i < parts.size(); ++i) {
      for (const Layer& L : kLayers) {
        cuda::GemmParams p{x.as<bf16>(), w.as<bf16>(), y.data(), nullptr, 2048, L.n, L.k};
        p.sm_count_target = parts[i].sm_count;
        gemm->prepare(p);
        auto t = time(parts[i].stream, 5, [&](int) { gemm->run(p, parts[i].stream); });
        record(L.name, "M=2048 target=share", parts[i].sm_count, t.median_ms,
               2.0 * 2048 * L.n * double(L.k) / (t.median_ms * 1e-3) / 1e12, 0);
      }
    }
  }

  // --- decode attention ---------------------------------------------------------------------------
  void bench_decode_attention(const cuda::SmPartitions& parts) {
    if (!wanted("decode")) return;
    struct Cfg {
      int seqs, ctx;
    };
    std::vector<Cfg> cfgs = opt.quick ? std::vector<Cfg>{{256, 2048}}
                                      : std::vector<Cfg>{{64, 2048}, {256, 2048}, {256, 4096}, {1024, 2048}, {64, 8192}};
    json acc = json::array();
    for (Cfg c : cfgs) {
      const int pages_per_seq = (c.ctx + 15) / 16;
      const size_t pool_elems = size_t(c.seqs) * pages_per_seq * 16 * kHkv * kD;
      cuda::DeviceBuffer k(pool_elems * 2), v(pool_elems * 2), q(size_t(c.seqs) * kHq * kD * 2),
          out(size_t(c.seqs) * kHq * kD * 2);
      cuda::fill_random_bf16(k.as<bf16>(), pool_elems, 21, 1.f, main_stream.get());
      cuda::fill_random_bf16(v.as<bf16>(), pool_elems, 22, 1.f, main_stream.get());
      cuda::fill_random_bf16(q.as<bf16>(), size_t(c.seqs) * kHq * kD, 23, 1.f, main_stream.get());
      // Pages interleaved across sequences (page i of seq s = i * seqs + s), as a busy pool looks.
      std::vector<int32_t> kv_len(c.seqs, c.ctx), page_start(c.seqs + 1), page_ids;
      for (int s = 0; s <= c.seqs; ++s) page_start[s] = s * pages_per_seq;
      for (int s = 0; s < c.seqs; ++s)
        for (int i = 0; i < pages_per_seq; ++i) page_ids.push_back(i * c.seqs + s);
      cuda::DeviceBuffer dkv(kv_len.size() * 4), dps(page_start.size() * 4), dpi(page_ids.size() * 4);
      dkv.upload(kv_len.data(), kv_len.size() * 4);
      dps.upload(page_start.data(), page_start.size() * 4);
      dpi.upload(page_ids.data(), page_ids.size() * 4);
      const double bytes = double(pool_elems) * 2 * 2 + 2.0 * c.seqs * kHq * kD * 2;
      auto run_on = [&](cudaStream_t s, int sms, int variant) {
        auto plan = cuda::plan_decode_attention(c.seqs, kHkv, c.ctx, sms * 8);
        cuda::DeviceBuffer ws(std::max<size_t>(16, cuda::decode_attention_workspace_floats(c.seqs, kHq, kD, plan.num_splits) * 4));
        cuda::DecodeAttentionParams p;
        p.q = q.as<bf16>();
        p.k_cache = k.as<bf16>();
        p.v_cache = v.as<bf16>();
        p.kv_len = dkv.as<int32_t>();
        p.page_start = dps.as<int32_t>();
        p.page_ids = dpi.as<int32_t>();
        p.out = out.as<bf16>();
        p.workspace = ws.as<float>();
        p.num_seqs = c.seqs;
        p.hq = kHq;
        p.hkv = kHkv;
        p.head_dim = kD;
        p.scale = 1.f / std::sqrt(float(kD));
        p.num_splits = plan.num_splits;
        p.chunk_tokens = plan.chunk_tokens;
        p.variant = variant;
        p.num_pages = c.seqs * pages_per_seq;  // pool extent for the TMA variants' tensor maps
        p.sm_count = sms;                      // on a share the default runs TMA variant 33
        auto t = time(s, 10, [&](int) { cuda::decode_attention(p, s); });
        const double gbs = bytes / (t.median_ms * 1e-3) / 1e9;
        record("decode_attn", "seqs=" + std::to_string(c.seqs) + " ctx=" + std::to_string(c.ctx) + " v" +
                                  std::to_string(variant),
               sms, t.median_ms, 0, gbs, "splits=" + std::to_string(plan.num_splits));
        acc.push_back({{"seqs", c.seqs}, {"ctx", c.ctx}, {"sms", sms}, {"variant", variant}, {"gbs", gbs},
                       {"pct_copy", 100 * gbs / ceil.copy_gbs}, {"pct_read_same_sms", 100 * gbs / ceil.read_for(sms)},
                       {"splits", plan.num_splits}});
      };
      // Every variant where the acceptance numbers are taken (256 x 2k), the default elsewhere.
      const bool all = c.seqs == 256 && c.ctx == 2048;
      for (int v = 0; v <= (all ? cuda::kDecodeAttentionVariants : 0); ++v) {  // 0: the default (by share)
        if (!cuda::decode_attention_variant_valid(v)) continue;  // a removed number (RESULTS.md cites it)
        run_on(main_stream.get(), dev.sm_count, v);
        if (c.seqs == 256 || c.seqs == 64)
          for (int i = 0; i < parts.size(); ++i) run_on(parts[i].stream, parts[i].sm_count, v);
      }
    }
    summary["decode_attention"] = acc;
  }

  // --- prefill attention ---------------------------------------------------------------------------
  void bench_prefill_attention() {
    if (!wanted("prefill")) return;
    struct Seq {
      int len, cached;  // new tokens, cached prefix before them
    };
    struct Cfg {
      std::string name;
      std::vector<Seq> seqs;
    };
    std::vector<Cfg> cfgs = {{"1x2048 (cached 0)", {{2048, 0}}},
                             {"1x4096 (cached 0)", {{4096, 0}}},
                             {"1x8192 (cached 0)", {{8192, 0}}},
                             {"4x2048 (cached 0)", std::vector<Seq>(4, {2048, 0})},
                             {"8x512 (cached 1536)", std::vector<Seq>(8, {512, 1536})},
                             // a steady mixed iteration's prefill part: a first chunk and a later one
                             {"1024 (cached 0) + 344 (cached 680)", {{1024, 0}, {344, 680}}}};
    json acc = json::array();
    for (const Cfg& c : cfgs) {
      const int n = static_cast<int>(c.seqs.size());
      std::vector<int32_t> q_start(n + 1, 0), kv_len(n), page_start(n + 1, 0);
      for (int s = 0; s < n; ++s) {
        q_start[s + 1] = q_start[s] + c.seqs[s].len;
        kv_len[s] = c.seqs[s].len + c.seqs[s].cached;
        page_start[s + 1] = page_start[s] + (kv_len[s] + 15) / 16;
      }
      const size_t pool = size_t(page_start[n]) * 16 * kHkv * kD;
      const int T = q_start[n];
      cuda::DeviceBuffer k(pool * 2), v(pool * 2), q(size_t(T) * kHq * kD * 2), out(size_t(T) * kHq * kD * 2);
      cuda::fill_random_bf16(k.as<bf16>(), pool, 31, 1.f, main_stream.get());
      cuda::fill_random_bf16(v.as<bf16>(), pool, 32, 1.f, main_stream.get());
      cuda::fill_random_bf16(q.as<bf16>(), size_t(T) * kHq * kD, 33, 1.f, main_stream.get());
      std::vector<int32_t> page_ids(static_cast<size_t>(page_start[n]));
      for (size_t i = 0; i < page_ids.size(); ++i) page_ids[i] = static_cast<int32_t>(i);
      auto tiles = cuda::plan_prefill_attention(q_start, kv_len);
      cuda::DeviceBuffer dqs(q_start.size() * 4), dkv(kv_len.size() * 4), dps(page_start.size() * 4),
          dpi(page_ids.size() * 4), dt(tiles.size() * 4);
      dqs.upload(q_start.data(), q_start.size() * 4);
      dkv.upload(kv_len.data(), kv_len.size() * 4);
      dps.upload(page_start.data(), page_start.size() * 4);
      dpi.upload(page_ids.data(), page_ids.size() * 4);
      dt.upload(tiles.data(), tiles.size() * 4);
      cuda::PrefillAttentionParams p;
      p.q = q.as<bf16>();
      p.k_cache = k.as<bf16>();
      p.v_cache = v.as<bf16>();
      p.q_start = dqs.as<int32_t>();
      p.kv_len = dkv.as<int32_t>();
      p.page_start = dps.as<int32_t>();
      p.page_ids = dpi.as<int32_t>();
      p.tiles = dt.as<int32_t>();
      p.out = out.as<bf16>();
      p.num_tiles = static_cast<int>(tiles.size() / 2);
      p.hq = kHq;
      p.hkv = kHkv;
      p.head_dim = kD;
      p.scale = 1.f / std::sqrt(float(kD));
      // Causal FLOPs: query at position p does 2 * 2 * D multiply-adds per attended key (QK and PV).
      double keys = 0;
      for (const Seq& sq : c.seqs)
        for (int i = 0; i < sq.len; ++i) keys += sq.cached + i + 1;
      const double flop = 4.0 * kD * kHq * keys;
      // JSON keys of the uniform configurations kept (tools/gpu/summarize.py); "a+b" where they differ.
      std::string lens, cached;
      bool uniform = true;
      for (const Seq& sq : c.seqs) uniform = uniform && sq.len == c.seqs[0].len && sq.cached == c.seqs[0].cached;
      for (int s = 0; s < (uniform ? 1 : n); ++s) {
        lens += (s ? "+" : "") + std::to_string(c.seqs[s].len);
        cached += (s ? "+" : "") + std::to_string(c.seqs[s].cached);
      }
      auto t = time(main_stream.get(), 10, [&](int) { cuda::prefill_attention(p, main_stream.get()); });
      const double tf = flop / (t.median_ms * 1e-3) / 1e12;
      record("prefill_attn", c.name, dev.sm_count, t.median_ms, tf, 0, "causal FLOPs only");
      acc.push_back({{"seqs", n}, {"len", lens}, {"cached", cached}, {"shape", c.name}, {"ms", t.median_ms},
                     {"tflops", tf}});
    }
    summary["prefill_attention"] = acc;
  }

  // --- memory-bound row ops ---------------------------------------------------------------------------
  void bench_row_ops(const cuda::SmPartitions& parts) {
    std::vector<int> toks = opt.quick ? std::vector<int>{4096} : std::vector<int>{64, 512, 4096};
    const int max_t = 4096;
    const int qkv_row = (kHq + 2 * kHkv) * kD;
    cuda::DeviceBuffer a(size_t(max_t) * 2 * kInter * 2), b(size_t(max_t) * 2 * kInter * 2), w(size_t(kHidden) * 2);
    cuda::fill_random_bf16(a.as<bf16>(), size_t(max_t) * 2 * kInter, 41, 1.f, main_stream.get());
    cuda::fill_random_bf16(b.as<bf16>(), size_t(max_t) * 2 * kInter, 42, 1.f, main_stream.get());
    cuda::fill_random_bf16(w.as<bf16>(), kHidden, 43, 1.f, main_stream.get());
    // KV pool for rope_kv: one page per 16 tokens, pages in order.
    const int pages = max_t / 16;
    cuda::DeviceBuffer kc(size_t(pages) * 16 * kHkv * kD * 2), vc(size_t(pages) * 16 * kHkv * kD * 2);
    std::vector<int32_t> pos(max_t), qs = {0, max_t}, ps = {0, pages}, pid(pages);
    for (int i = 0; i < max_t; ++i) pos[i] = i;
    for (int i = 0; i < pages; ++i) pid[i] = i;
    auto inv = cuda::rope_inv_freq({kD, 500000.0, true});
    cuda::DeviceBuffer dpos(max_t * 4), dqs(8), dps(8), dpid(pages * 4), dinv(inv.size() * 4), ids(max_t * 4);
    dpos.upload(pos.data(), max_t * 4);
    dqs.upload(qs.data(), 8);
    dps.upload(ps.data(), 8);
    dpid.upload(pid.data(), pages * 4);
    dinv.upload(inv.data(), inv.size() * 4);
    std::vector<int32_t> hid(max_t);
    for (int i = 0; i < max_t; ++i) hid[i] = (i * 7919) % kVocab;
    ids.upload(hid.data(), max_t * 4);
    cuda::DeviceBuffer table(size_t(kVocab) * kHidden * 2);
    cuda::fill_random_bf16(table.as<bf16>(), size_t(kVocab) * kHidden, 44, 1.f, main_stream.get());

    std::vector<std::pair<cudaStream_t, int>> where = {{main_stream.get(), dev.sm_count}};
    for (int i = 0; i < parts.size(); ++i) where.push_back({parts[i].stream, parts[i].sm_count});
    for (auto [s, sms] : where) {
      for (int t : toks) {
        const std::string shape = "T=" + std::to_string(t);
        if (wanted("rms_norm")) {
          cuda::RmsNormParams p;
          p.x = a.as<bf16>();
          p.residual = b.as<bf16>();
          p.residual_out = b.as<bf16>();
          p.weight = w.as<bf16>();
          p.out = a.as<bf16>();
          p.rows = t;
          p.hidden = kHidden;
          auto tm = time(s, 20, [&](int) { cuda::rms_norm(p, s); }, 5);
          record("rms_norm+res", shape, sms, tm.median_ms, 0, 4.0 * t * kHidden * 2 / (tm.median_ms * 1e-3) / 1e9);
        }
        if (wanted("silu")) {
          cuda::SiluMulParams p{a.as<bf16>(), b.as<bf16>(), t, kInter, sms * 8};
          auto tm = time(s, 20, [&](int) { cuda::silu_mul(p, s); }, 5);
          record("silu_mul", shape, sms, tm.median_ms, 0, 3.0 * t * kInter * 2 / (tm.median_ms * 1e-3) / 1e9);
        }
        if (wanted("rope")) {
          cuda::RopeKvParams p;
          p.qkv = a.as<bf16>();
          p.q_out = b.as<bf16>();
          p.k_cache = kc.as<bf16>();
          p.v_cache = vc.as<bf16>();
          p.inv_freq = dinv.as<float>();
          p.positions = dpos.as<int32_t>();
          p.q_start = dqs.as<int32_t>();
          p.page_start = dps.as<int32_t>();
          p.page_ids = dpid.as<int32_t>();
          p.tokens = t;
          p.num_seqs = 1;
          p.hq = kHq;
          p.hkv = kHkv;
          p.head_dim = kD;
          p.cta_budget = sms * 8;
          auto tm = time(s, 20, [&](int) { cuda::rope_kv(p, s); }, 5);
          record("rope_kv_write", shape, sms, tm.median_ms, 0, 2.0 * t * qkv_row * 2 / (tm.median_ms * 1e-3) / 1e9);
        }
        if (wanted("embedding")) {
          cuda::EmbeddingParams p{ids.as<int32_t>(), table.as<bf16>(), a.as<bf16>(), nullptr, t, kVocab, kHidden, sms * 8};
          auto tm = time(s, 20, [&](int) { cuda::embedding(p, s); }, 5);
          record("embedding", shape, sms, tm.median_ms, 0, 2.0 * t * kHidden * 2 / (tm.median_ms * 1e-3) / 1e9);
        }
      }
    }
  }

  // --- LM head + sampling -------------------------------------------------------------------------------
  void bench_head_and_sampling() {
    if (!wanted("sampl") && !wanted("lm_head")) return;
    for (int rows : {64, 256}) {
      cuda::DeviceBuffer hidden(size_t(rows) * kHidden * 2), nw(kHidden * 2), head(size_t(kVocab) * kHidden * 2),
          normed(size_t(rows) * kHidden * 2), logits(size_t(rows) * kVocab * 4), sr(rows * 4);
      cuda::fill_random_bf16(hidden.as<bf16>(), size_t(rows) * kHidden, 51, 1.f, main_stream.get());
      cuda::fill_random_bf16(nw.as<bf16>(), kHidden, 52, 1.f, main_stream.get());
      cuda::fill_random_bf16(head.as<bf16>(), size_t(kVocab) * kHidden, 53, 0.05f, main_stream.get());
      std::vector<int32_t> rws(rows);
      for (int i = 0; i < rows; ++i) rws[i] = i;
      sr.upload(rws.data(), rows * 4);
      cuda::LmHeadParams lp;
      lp.hidden = hidden.as<bf16>();
      lp.sample_rows = sr.as<int32_t>();
      lp.norm_weight = nw.as<bf16>();
      lp.lm_head = head.as<bf16>();
      lp.normed = normed.as<bf16>();
      lp.logits = logits.as<float>();
      lp.num_sampled = rows;
      lp.hidden_size = kHidden;
      lp.vocab = kVocab;
      auto t = time(main_stream.get(), 10, [&](int) { cuda::final_norm_lm_head(*gemm, lp, main_stream.get()); });
      record("norm+lm_head", "rows=" + std::to_string(rows), dev.sm_count, t.median_ms,
             2.0 * rows * kVocab * double(kHidden) / (t.median_ms * 1e-3) / 1e12, 0);
      for (bool filtered : {false, true}) {
        std::vector<float> temp(rows, filtered ? 0.8f : 0.f), topp(rows, filtered ? 0.9f : 1.f);
        std::vector<int32_t> topk(rows, filtered ? 50 : 0);
        std::vector<uint64_t> seed(rows, 7);
        std::vector<int64_t> step(rows, 3);
        cuda::DeviceBuffer dt(rows * 4), dp(rows * 4), dk(rows * 4), ds(rows * 8), dst(rows * 8), out(rows * 4), lpb(rows * 4);
        dt.upload(temp.data(), rows * 4);
        dp.upload(topp.data(), rows * 4);
        dk.upload(topk.data(), rows * 4);
        ds.upload(seed.data(), rows * 8);
        dst.upload(step.data(), rows * 8);
        cuda::SamplingParams sp;
        sp.logits = logits.as<float>();
        sp.rows = rows;
        sp.vocab = kVocab;
        sp.temperature = dt.as<float>();
        sp.top_k = dk.as<int32_t>();
        sp.top_p = dp.as<float>();
        sp.seed = ds.as<uint64_t>();
        sp.step = dst.as<int64_t>();
        sp.sampled = out.as<int32_t>();
        sp.sampled_logprob = lpb.as<float>();
        auto ts = time(main_stream.get(), 10, [&](int) { cuda::sample(sp, main_stream.get()); });
        record("sampling", std::string(filtered ? "top-k50 top-p0.9" : "greedy") + " rows=" + std::to_string(rows),
               dev.sm_count, ts.median_ms, 0, double(rows) * kVocab * 4 / (ts.median_ms * 1e-3) / 1e9,
               "GB/s = one pass over the logits");
      }
    }
  }

  json summary;

  int run() {
    cuda::set_device(0);
    dev = cuda::device_info(0);
    std::printf("device: %s, %d SMs\n", dev.name.c_str(), dev.sm_count);
    cuda::GemmConfig gc;
    gc.candidates = 16;
    gemm = std::make_unique<cuda::GemmRunner>(gc);
    measure_ceilings();
    bench_gemms();
    {
      cuda::SmPartitions parts(cuda::SmPartitionsConfig{opt.shares});
      bench_decode_attention(parts);
      bench_row_ops(parts);
    }
    bench_prefill_attention();
    bench_head_and_sampling();
    if (!opt.json_path.empty()) {
      json out;
      out["device"] = dev.name;
      out["sm_count"] = dev.sm_count;
      out["ceilings"] = {{"gemm_tflops", ceil.gemm_tflops}, {"copy_gbs", ceil.copy_gbs}};
      for (auto& [s, g] : ceil.read_gbs) out["ceilings"]["read_gbs_" + std::to_string(s)] = g;
      out["rows"] = rows;
      out["summary"] = summary;
      std::ofstream(opt.json_path) << out.dump(2) << "\n";
    }
    return 0;
  }
};
#endif

}  // namespace

NF_REGISTER_BENCH(bench_ops, "ops", "per-op CUDA benchmarks at Llama-3-8B shapes, whole GPU and SM shares",
                  [](CLI::App* sub) -> std::function<int()> {
                    auto o = std::make_shared<OpsOptions>();
                    sub->add_option("--json", o->json_path, "write the results as JSON here");
                    sub->add_option("--shares", o->shares, "SM shares (multiples of 8)");
                    sub->add_flag("--quick", o->quick, "fewer sizes");
                    sub->add_option("--only", o->only, "run only ops whose name contains this");
                    return [o]() -> int {
#if NANOFLOW_HAVE_CUDA
                      OpsBench b;
                      b.opt = *o;
                      return b.run();
#else
                      std::fprintf(stderr, "bench ops: this build has no CUDA (NANOFLOW_CUDA=OFF)\n");
                      return 2;
#endif
                    };
                  });

}  // namespace nanoflow::cli
