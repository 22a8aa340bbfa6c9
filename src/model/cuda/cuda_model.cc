// CudaModel: the Llama-family forward on one GPU (model/cuda_model.h).
//
// One layer, for T tokens (all buffers bf16 unless noted; shapes in the Workspace comments):
//   xn = rmsnorm(x)                         x is the residual stream
//   qkv = xn · Wqkv^T                       one GEMM for q|k|v
//   q, KV cache <- rope_kv(qkv (+bias))     rotation fused with the paged K/V write
//   attn = decode_attention (leading one-token sequences) + prefill_attention (the rest)
//   x += attn · Wo^T                        residual add fused into the GEMM (beta = 1)
//   xn = rmsnorm(x)
//   x += silu(xn · Wg^T) * (xn · Wu^T) · Wd^T       (Mixtral: router, dense per-expert pass, combine)
// then the final norm + LM head on the sampled rows only (f32 logits).
//
// Decode-only forwards may run as CUDA graphs, one per (sequence bucket, KV bucket), captured on a
// bucket's second forward (forward_device_graphed; model/cuda_model.h says why and what stays eager).
#if defined(NANOFLOW_HAVE_CUDA)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <utility>

#include "core/checked.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/log.h"
#include "cuda_weights.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/lm_head.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/cuda/rope_kv.h"
#include "loader/weights.h"
#include "model/cuda_model.h"
#include "model/kv_budget.h"
#include "model/presets.h"
#include "model_kernels.h"
#include "op_profile.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/graph.h"
#include "runtime/cuda/sm_partitions.h"

namespace nanoflow::model_cuda {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
size_t un(int64_t v) { return static_cast<size_t>(v); }
size_t align256(size_t b) { return (b + 255) / 256 * 256; }

// Activations for up to T tokens / S sampled rows (one set; iterations run in stream order).
struct Workspace {
  bf16* x = nullptr;        // [T, hidden] residual stream
  bf16* xn = nullptr;       // [T, hidden] normed block input
  bf16* qkv = nullptr;      // [T, q_dim + 2*kv_dim]
  bf16* q = nullptr;        // [T, hq, head_dim] rotated queries
  bf16* attn = nullptr;     // [T, q_dim]
  bf16* gate_up = nullptr;  // [T, 2*inter]
  bf16* act = nullptr;      // [T, inter]
  float* router = nullptr;  // [T, router_rows(experts)] (MoE)
  float* route_w = nullptr; // [T, experts] dense routing weights (MoE)
  float* moe_acc = nullptr; // [T, hidden]  (MoE)
  bf16* ex_y = nullptr;     // [T, hidden]  one expert's output (MoE)
  bf16* normed = nullptr;   // [S, hidden] final-normed sampled rows
  float* logits = nullptr;  // [S, vocab]
  float* attn_ws = nullptr; // decode-attention split partials
  size_t attn_ws_floats = 0;
  std::vector<float*> lane_attn_ws;  // one more of the same per schedule lane
  void* plan = nullptr;     // CudaPlanLayout::bytes
  int32_t* graph_prev = nullptr;  // [max_sampled] previous samples, the fixed input of graphs
};

// At most this many graphs are held; buckets beyond stay eager (each graph holds a few hundred
// nodes per layer-stack; 64 covers the sequence buckets of a 512-sequence engine times a few KV
// buckets).
constexpr size_t kMaxGraphs = 64;

class CudaModelImpl final : public CudaModel {
 public:
  CudaModelImpl(ModelConfig cfg, const CudaModelOptions& opt, const WeightStore* store)
      : cfg_(std::move(cfg)), opt_(opt), t0_(std::chrono::steady_clock::now()), device_(select_device(opt.device)) {
    const auto t0 = t0_;
    info_ = cuda::device_info(opt_.device);
    NF_CHECK_INPUT(cfg_.hidden_size % 8 == 0 && cfg_.vocab_size % 8 == 0 && cfg_.intermediate_size % 8 == 0)
        << "CUDA model needs hidden (" << cfg_.hidden_size << "), vocab (" << cfg_.vocab_size
        << ") and intermediate (" << cfg_.intermediate_size << ") sizes that are multiples of 8";
    NF_CHECK_INPUT(cfg_.num_experts <= 64) << "experts " << cfg_.num_experts << " (at most 64)";
    const int64_t hd = cfg_.head_dim;
    tuned_attention_ = (hd == 64 || hd == 128) && cfg_.num_heads / cfg_.num_kv_heads <= 8 &&
                       !opt_.transformers_numerics;
    NF_CHECK_INPUT(tuned_attention_ || hd <= 256) << "head_dim " << hd << " unsupported";
    max_model_len_ = opt_.max_model_len > 0 ? opt_.max_model_len
                                            : static_cast<int32_t>(std::min<int64_t>(cfg_.max_position_embeddings, 1 << 20));
    if (!tuned_attention_) {
      // The plain attention kernel keeps a query's scores in shared memory; decode graphs pad the KV
      // length up to its bucket (model_kernels.h, plan_staging.cc).
      int optin = 0;
      NF_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, opt_.device))
          << "shared memory limit";
      const int64_t kv = std::max<int64_t>(max_model_len_, decode_graph_kv_bucket(max_model_len_));
      const int64_t need = (kv + hd + 32) * 4;
      NF_CHECK_INPUT(need <= optin) << "max_model_len " << max_model_len_ << " needs " << need / 1024
                                    << " KiB of shared memory per attention block here (plain attention kernel"
                                    << (opt_.transformers_numerics ? ", --numerics transformers" : "")
                                    << "); this GPU allows " << optin / 1024 << " KiB: use a smaller max_model_len";
    }

    // Weights: count, allocate exactly, fill.
    size_t wbytes = 0;
    lay_out_weights(cfg_, [&](size_t n, const std::string&) {
      wbytes += align256(n * 2);
      return static_cast<bf16*>(nullptr);
    });
    weights_arena_ = std::make_unique<cuda::DeviceArena>(std::max<size_t>(wbytes, 256));
    w_ = lay_out_weights(cfg_, [&](size_t n, const std::string& what) {
      return weights_arena_->allocate_array<bf16>(n, what);
    });
    if (store != nullptr) {
      upload_weights(*store, cfg_, w_);
    } else {
      init_random_weights(cfg_, w_, opt_.preset_seed, stream_.get());
    }

    // Workspaces.
    const int32_t max_pages_per_seq = (max_model_len_ + kPageSize - 1) / kPageSize + 1;
    layout_ = CudaPlanLayout::make(opt_.max_batch_tokens, opt_.max_seqs, opt_.max_sampled,
                                   static_cast<int32_t>(std::min<int64_t>(int64_t{opt_.max_seqs} * max_pages_per_seq, 1 << 26)));
    ws_bytes_ = 0;
    lay_out_workspace([&](size_t b) { ws_bytes_ += align256(b); return nullptr; });
    ws_arena_ = std::make_unique<cuda::DeviceArena>(ws_bytes_);
    lay_out_workspace([&](size_t b) { return ws_arena_->allocate(b, "workspace"); });
    staging_ = std::make_unique<CudaPlanStaging>(layout_);

    // RoPE frequencies.
    cuda::RopeFreqConfig rf;
    rf.head_dim = static_cast<int>(hd);
    rf.theta = cfg_.rope_theta;
    rf.llama3 = cfg_.rope_scaling == RopeScaling::kLlama3;
    rf.factor = cfg_.rope_factor;
    rf.low_freq_factor = cfg_.rope_low_freq_factor;
    rf.high_freq_factor = cfg_.rope_high_freq_factor;
    rf.original_max_position = static_cast<int>(cfg_.rope_original_max_position);
    inv_freq_ = cuda::DeviceBuffer(un(hd / 2) * 4);
    if (rf.llama3) {  // the frequency-dependent scaling on the host
      const std::vector<float> inv = cuda::rope_inv_freq(rf);
      inv_freq_.upload(inv.data(), inv.size() * 4);
    } else {  // plain RoPE: the GPU's powf, bit-identical to transformers built on the GPU
      cuda::rope_inv_freq_on_device(rf.theta, rf.head_dim, inv_freq_.as<float>(), nullptr);
      NF_CUDA_CHECK(cudaDeviceSynchronize()) << "rope inv_freq";
    }

    cuda::GemmConfig gc;
    gc.autotune = opt_.autotune_gemms;
    gc.f32_reductions = opt_.transformers_numerics;
    gemm_ = std::make_unique<cuda::GemmRunner>(gc);
    prepare_gemms(*gemm_, 0);
    make_lanes(gc);

    // KV pool: what is left, minus the margin.
    kv_page_bytes_ = un(kPageSize) * un(cfg_.kv_dim()) * 2;  // one page of K (or V) of one layer
    const size_t unit = kv_page_bytes_ * 2 * un(cfg_.num_layers);
    size_t free_b = 0, total_b = 0;
    cuda::mem_info(&free_b, &total_b);
    if (opt_.num_kv_pages > 0) {
      num_pages_ = opt_.num_kv_pages;
    } else {
      // The scratch page of padded decode sequences comes out of the same budget (- 1 below).
      const int64_t fit = kv_pool_pages(free_b, total_b, opt_.kv_margin_bytes, opt_.gpu_memory_utilization, unit);
      NF_CHECK_KIND(ErrorKind::kResource, fit > 16)
          << "no room for a KV pool: " << free_b / kGiB << " GiB free of " << total_b / kGiB << " GiB, margin "
          << opt_.kv_margin_bytes / kGiB << " GiB, gpu_memory_utilization " << opt_.gpu_memory_utilization;
      num_pages_ = fit - 1;
    }
    // One page more than reported: the scratch page of padded decode sequences (index num_pages_).
    alloc_pages_ = num_pages_ + 1;
    kv_arena_ = std::make_unique<cuda::DeviceArena>(checked_mul(static_cast<uint64_t>(alloc_pages_), unit, "KV pool"));
    kv_base_ = static_cast<uint8_t*>(kv_arena_->allocate(un(alloc_pages_) * unit, "KV pool"));
    NF_CUDA_CHECK(cudaMemsetAsync(kv_base_, 0, un(alloc_pages_) * unit, stream_.get())) << "KV pool clear";
    NF_CUDA_CHECK(cudaMemsetAsync(ws_.graph_prev, 0, un(opt_.max_sampled) * 4, stream_.get())) << "graph input clear";
    stream_.synchronize();
    startup_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    NF_LOG(kInfo) << "CUDA model " << cfg_.name << " on " << info_.name << ": " << memory_report() << ", start-up "
                  << startup_s_ << " s";
  }

  // Work queued on the lanes (green-context streams) must finish before their contexts and the
  // memory they use go away.
  ~CudaModelImpl() override { cudaDeviceSynchronize(); }

  const ModelConfig& config() const override { return cfg_; }
  int64_t num_kv_pages() const override { return num_pages_; }
  cudaStream_t stream() const override { return stream_.get(); }
  void* plan_buffer() const override { return ws_.plan; }
  const CudaPlanLayout& layout() const override { return layout_; }
  float* logits_device() const override { return ws_.logits; }
  const CudaModelOptions& options() const override { return opt_; }
  double startup_seconds() const override { return startup_s_; }
  std::string op_profile_report() override { return prof_.report(); }
  int32_t scratch_page() const override { return static_cast<int32_t>(num_pages_); }
  CudaGraphStats graph_stats() const override {
    CudaGraphStats st = graph_stats_;
    st.graphs = 0;
    for (const auto& [key, g] : graphs_) st.graphs += g.graph.ready() ? 1 : 0;
    return st;
  }

  bool forward_device_graphed(const CudaPlanShape& sh, const int32_t* prev_samples, int32_t num_prev) override {
    NF_CHECK(sh.num_seqs > 0 && sh.num_tokens == sh.num_seqs && sh.num_decode == sh.num_seqs &&
             sh.num_sampled == sh.num_seqs && sh.num_deferred == sh.num_seqs && sh.num_tiles == 0)
        << "graphed forward needs a padded decode plan: tokens " << sh.num_tokens << " seqs " << sh.num_seqs
        << " decode " << sh.num_decode << " sampled " << sh.num_sampled << " deferred " << sh.num_deferred;
    NF_CHECK(num_prev >= 0 && num_prev <= opt_.max_sampled) << "previous samples " << num_prev;
    cudaStream_t s = stream_.get();
    if (num_prev > 0) {
      NF_CHECK(prev_samples != nullptr) << "previous samples pointer is null";
      NF_CUDA_CHECK(cudaMemcpyAsync(ws_.graph_prev, prev_samples, un(num_prev) * 4, cudaMemcpyDeviceToDevice, s))
          << "graph input copy";
    }
    const std::pair<int32_t, int32_t> key{sh.num_seqs, sh.max_decode_kv};
    auto it = graphs_.find(key);
    if (prof_.enabled() || (it == graphs_.end() && graphs_.size() >= kMaxGraphs) ||
        (it != graphs_.end() && it->second.failed)) {
      ++graph_stats_.warmups;
      forward_device(sh, ws_.graph_prev);
      return false;
    }
    if (it == graphs_.end()) {
      // First sighting: eager, so everything chosen or loaded on first use happens outside capture.
      graphs_.emplace(key, BucketGraph{});
      ++graph_stats_.warmups;
      forward_device(sh, ws_.graph_prev);
      return false;
    }
    BucketGraph& g = it->second;
    if (!g.graph.ready()) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        g.graph.capture(s, [&] { forward_device(sh, ws_.graph_prev); });
      } catch (const std::exception& e) {
        NF_LOG(kWarn) << "CUDA graph capture of decode bucket (seqs " << key.first << ", kv " << key.second
                      << ") failed; it stays eager: " << e.what();
        g.failed = true;
        ++graph_stats_.failures;
        ++graph_stats_.warmups;
        forward_device(sh, ws_.graph_prev);
        return false;
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      graph_stats_.capture_ms += ms;
      ++graph_stats_.captures;
      NF_LOG(kInfo) << "CUDA graph: decode bucket (seqs " << key.first << ", kv " << key.second << ") captured, "
                    << g.graph.num_nodes() << " nodes, " << ms << " ms";
    }
    g.graph.replay(s);
    ++graph_stats_.replays;
    return true;
  }

  std::string memory_report() const override {
    std::ostringstream os;
    os.precision(3);
    os << "weights " << weights_arena_->capacity() / kGiB << " GiB, workspaces " << ws_bytes_ / kGiB << " GiB, KV pool "
       << num_pages_ << " pages (" << kv_arena_->capacity() / kGiB << " GiB, "
       << num_pages_ * kPageSize << " tokens)";
    return os.str();
  }

  void forward(const BatchPlan& plan, float* logits) override {
    plan.validate(num_pages_);
    if (plan.num_tokens() == 0) return;
    const CudaPlanShape sh = staging_->pack(plan, {}, {}, cfg_.vocab_size);
    staging_->upload(ws_.plan, sh, stream_.get());
    forward_device(sh, nullptr);
    if (sh.num_sampled > 0) {
      NF_CHECK(logits != nullptr) << "forward: logits buffer is null";
      NF_CUDA_CHECK(cudaMemcpyAsync(logits, ws_.logits, un(sh.num_sampled) * un(cfg_.vocab_size) * 4,
                                    cudaMemcpyDeviceToHost, stream_.get()))
          << "logits download";
    }
    stream_.synchronize();
    // Rounded to bf16 like the GPU sampler's (sampling.h step 0): what transformers' LM head gives.
    const size_t nl = un(sh.num_sampled) * un(cfg_.vocab_size);
    for (size_t i = 0; i < nl; ++i) logits[i] = round_bf16(logits[i]);
  }

  void copy_page(int32_t src, int32_t dst) override {
    NF_CHECK_INPUT(src >= 0 && src < num_pages_ && dst >= 0 && dst < num_pages_) << "copy_page " << src << " -> " << dst;
    for (int64_t l = 0; l < cfg_.num_layers; ++l)
      for (int kv = 0; kv < 2; ++kv) {
        uint8_t* pool = kv == 0 ? k_cache(l) : v_cache(l);
        NF_CUDA_CHECK(cudaMemcpyAsync(pool + un(dst) * kv_page_bytes_, pool + un(src) * kv_page_bytes_, kv_page_bytes_,
                                      cudaMemcpyDeviceToDevice, stream_.get()))
            << "KV page copy";
      }
  }

  void forward_prologue(const CudaPlanShape& sh, const int32_t* prev_samples) override {
    if (sh.num_deferred == 0) return;
    NF_CHECK(prev_samples != nullptr) << "deferred tokens without previous samples";
    NF_CUDA_CHECK(launch_fill_deferred(plan_i32(layout_.token_ids), prev_samples, plan_i32(layout_.deferred),
                                       sh.num_deferred, stream_.get()))
        << "fill_deferred";
  }

  void forward_op(ForwardOp op, int32_t layer, const NanoBatchRange& r, int32_t lane, const CudaPlanShape& sh) override {
    NF_CHECK_KIND(ErrorKind::kUnsupported, tuned_attention_)
        << "nano-batch forwards need the tuned attention kernels (head_dim 64/128, hq/hkv <= 8, not "
           "transformers numerics)";
    NF_CHECK(lane >= 0 && lane < static_cast<int32_t>(lanes_.size())) << "lane " << lane << " of " << lanes_.size();
    const bool once = op == ForwardOp::kEmbed || op == ForwardOp::kLmHead || op == ForwardOp::kSample;
    NF_CHECK(once ? layer == -1 : (layer >= 0 && layer < cfg_.num_layers)) << "op " << static_cast<int>(op) << " layer " << layer;
    run_op(op, layer, r, lanes_[static_cast<size_t>(lane)], sh, false);
  }

  cudaStream_t lane_stream(int32_t lane) const override {
    NF_CHECK(lane >= 0 && lane < static_cast<int32_t>(lanes_.size())) << "lane " << lane << " of " << lanes_.size();
    return lanes_[static_cast<size_t>(lane)].stream;
  }

  void forward_device(const CudaPlanShape& sh, const int32_t* prev_samples) override {
    cudaStream_t s = stream_.get();
    const int T = sh.num_tokens;
    if (T == 0) return;
    forward_prologue(sh, prev_samples);
    const IterKind kind = sh.num_decode == sh.num_seqs ? IterKind::kDecodeOnly
                          : sh.num_decode == 0        ? IterKind::kPrefillOnly
                                                      : IterKind::kMixed;
    const bool prof = prof_.begin(kind, T, s);
    NanoBatchRange all;
    all.token_end = T;
    all.seq_end = sh.num_seqs;
    all.decode_end = sh.num_decode;
    all.tile_end = sh.num_tiles;
    all.sample_end = sh.num_sampled;
    const Lane lane{s, gemm_.get(), ws_.attn_ws, 0};
    run_op(ForwardOp::kEmbed, -1, all, lane, sh, prof);
    for (int32_t l = 0; l < cfg_.num_layers; ++l)
      for (ForwardOp op : {ForwardOp::kAttnNorm, ForwardOp::kQkv, ForwardOp::kRopeKv, ForwardOp::kAttention,
                           ForwardOp::kOProj, ForwardOp::kMlpNorm, ForwardOp::kGateUp, ForwardOp::kAct, ForwardOp::kDown})
        run_op(op, l, all, lane, sh, prof);
    run_op(ForwardOp::kLmHead, -1, all, lane, sh, prof);
  }

 private:
  template <class F>
  void lay_out_workspace(F alloc) {
    const size_t T = un(opt_.max_batch_tokens), S = un(opt_.max_sampled), h = un(cfg_.hidden_size),
                 q = un(cfg_.q_dim()), kv = un(cfg_.kv_dim()), inter = un(cfg_.intermediate_size),
                 E = un(cfg_.num_experts);
    auto b = [&](size_t n) { return static_cast<bf16*>(alloc(n * 2)); };
    auto f = [&](size_t n) { return static_cast<float*>(alloc(n * 4)); };
    ws_.x = b(T * h);
    ws_.xn = b(T * h);
    ws_.qkv = b(T * (q + 2 * kv));
    ws_.q = b(T * q);
    ws_.attn = b(T * q);
    ws_.gate_up = b(T * 2 * inter);
    ws_.act = b(T * inter);
    if (E > 0) {
      ws_.router = f(T * un(router_rows(cfg_.num_experts)));
      ws_.route_w = f(T * E);
      ws_.moe_acc = f(T * h);
      ws_.ex_y = b(T * h);
    }
    ws_.normed = b(S * h);
    ws_.logits = f(S * un(cfg_.vocab_size));
    // Split-KV decode: splits are chosen so seqs * hkv * splits ~ the CTA budget, hence
    // seqs * splits <= budget / hkv + seqs.
    const size_t bound = un(cta_budget()) / un(cfg_.num_kv_heads) + un(opt_.max_seqs) + 1;
    ws_.attn_ws_floats = bound * un(cfg_.num_heads) * (un(cfg_.head_dim) + 1);
    ws_.attn_ws = f(ws_.attn_ws_floats);
    ws_.lane_attn_ws.assign(opt_.lane_sm_counts.size(), nullptr);
    for (float*& w : ws_.lane_attn_ws) w = f(ws_.attn_ws_floats);
    ws_.plan = alloc(layout_.bytes);
    ws_.graph_prev = static_cast<int32_t*>(alloc(S * 4));
  }

  int cta_budget() const { return info_.sm_count * 4; }

  uint8_t* k_cache(int64_t l) const { return kv_base_ + un(2 * l) * un(alloc_pages_) * kv_page_bytes_; }
  uint8_t* v_cache(int64_t l) const { return kv_base_ + un(2 * l + 1) * un(alloc_pages_) * kv_page_bytes_; }

  // Where an op runs: the model's own stream (forward_device) or a schedule's lane.
  struct Lane {
    cudaStream_t stream = nullptr;
    cuda::GemmRunner* gemm = nullptr;
    float* attn_ws = nullptr;  // decode-attention split workspace (ws_.attn_ws_floats)
    int sm_count = 0;          // 0 = the whole GPU
    int gemm_sms = 0;          // GEMMs' SM_COUNT_TARGET (0 = the whole GPU)
  };

  int32_t* plan_i32(size_t off) const { return reinterpret_cast<int32_t*>(static_cast<uint8_t*>(ws_.plan) + off); }

  // One op of layer `l` over the nano-batch `r` on `lane`. The activations are indexed by the
  // plan's token rows (sampled rows for the LM head), so nano-batches touch disjoint rows.
  void run_op(ForwardOp op, int32_t l, const NanoBatchRange& r, const Lane& lane, const CudaPlanShape& sh, bool prof) {
    cudaStream_t s = lane.stream;
    const int h = static_cast<int>(cfg_.hidden_size), hq = static_cast<int>(cfg_.num_heads),
              hkv = static_cast<int>(cfg_.num_kv_heads), hd = static_cast<int>(cfg_.head_dim),
              inter = static_cast<int>(cfg_.intermediate_size);
    const int qkv_w = (hq + 2 * hkv) * hd;
    const int n = r.tokens();
    const size_t t0 = un(r.token_begin);
    const float eps = cfg_.rms_norm_eps;
    const double Td = n, hb = double(h) * 2, gf = 2.0 * Td;
    auto mark = [&](Op o, double flops, double bytes) {
      if (prof) prof_.mark(o, flops, bytes, s);
    };
    auto norm = [&](const bf16* w) {
      cuda::RmsNormParams p;
      p.x = ws_.x + t0 * un(h);
      p.weight = w;
      p.out = ws_.xn + t0 * un(h);
      p.rows = n;
      p.hidden = h;
      p.eps = eps;
      cuda::rms_norm(p, s);
      mark(Op::kNorm, 0, 2 * Td * hb);
    };
    if (op == ForwardOp::kSample) return;
    if (op == ForwardOp::kLmHead) {
      if (r.sampled() == 0) return;
      cuda::LmHeadParams lp;
      lp.hidden = ws_.x;
      lp.sample_rows = plan_i32(layout_.sample_rows) + r.sample_begin;
      lp.norm_weight = w_.final_norm;
      lp.lm_head = w_.lm_head;
      lp.normed = ws_.normed + un(r.sample_begin) * un(h);
      lp.logits = ws_.logits + un(r.sample_begin) * un(cfg_.vocab_size);
      lp.num_sampled = r.sampled();
      lp.hidden_size = h;
      lp.vocab = static_cast<int>(cfg_.vocab_size);
      lp.eps = eps;
      lp.sm_count_target = lane.gemm_sms;
      cuda::final_norm_lm_head(*lane.gemm, lp, s);
      mark(Op::kLmHead, 2.0 * r.sampled() * double(h) * double(cfg_.vocab_size), 0);
      return;
    }
    if (n == 0) return;
    if (op == ForwardOp::kEmbed) {
      cuda::EmbeddingParams ep;
      ep.ids = plan_i32(layout_.token_ids) + t0;
      ep.table = w_.embed;
      ep.out = ws_.x + t0 * un(h);
      ep.tokens = n;
      ep.vocab = static_cast<int>(cfg_.vocab_size);
      ep.hidden = h;
      cuda::embedding(ep, s);
      mark(Op::kEmbed, 0, 2 * Td * hb);
      return;
    }
    const CudaLayer& L = w_.layers[un(l)];
    auto gemm = [&](const bf16* x, const bf16* w, void* y, int nn, int k, bool acc, const bf16* bias = nullptr) {
      cuda::GemmParams g = gemm_params(x, w, y, n, nn, k, acc);
      g.bias = bias;
      lane_gemm(lane, g);
    };
    // Residual-output projections: fused into the GEMM (one rounding of residual + product), or,
    // with transformers numerics, rounded product then a bf16 add (two roundings, as transformers).
    auto residual_gemm = [&](const bf16* x, const bf16* w, int k) {
      if (!opt_.transformers_numerics) {
        gemm(x, w, ws_.x + t0 * un(h), h, k, true);
        return;
      }
      gemm(x, w, ws_.xn + t0 * un(h), h, k, false);  // xn is free here (its readers ran)
      cuda::AddParams ap;
      ap.x = ws_.x + t0 * un(h);
      ap.y = ws_.xn + t0 * un(h);
      ap.n = static_cast<int64_t>(n) * h;
      cuda::add(ap, s);
    };
    switch (op) {
      case ForwardOp::kAttnNorm:
        norm(L.attn_norm);
        return;
      case ForwardOp::kQkv:
        // Qwen2's bias in the GEMM's epilogue: acc + bias rounded once, as transformers' nn.Linear.
        gemm(ws_.xn + t0 * un(h), L.qkv, ws_.qkv + t0 * un(qkv_w), qkv_w, h, false, L.qkv_bias);
        mark(Op::kQkvGemm, gf * qkv_w * h, 0);
        return;
      case ForwardOp::kRopeKv: {
        cuda::RopeKvParams rp;
        rp.qkv = ws_.qkv;
        rp.q_out = ws_.q;
        rp.k_cache = reinterpret_cast<bf16*>(k_cache(l));
        rp.v_cache = reinterpret_cast<bf16*>(v_cache(l));
        rp.inv_freq = inv_freq_.as<float>();
        rp.positions = plan_i32(layout_.positions);
        rp.q_start = plan_i32(layout_.q_start);
        rp.page_start = plan_i32(layout_.page_start);
        rp.page_ids = plan_i32(layout_.page_ids);
        rp.tokens = n;
        rp.token_begin = r.token_begin;
        rp.num_seqs = sh.num_seqs;
        rp.hq = hq;
        rp.hkv = hkv;
        rp.head_dim = hd;
        cuda::rope_kv(rp, s);
        mark(Op::kRopeKv, 0, Td * (qkv_w + hq * hd) * 2.0);
        return;
      }
      case ForwardOp::kAttention:
        attention(l, r, lane, sh, prof);
        return;
      case ForwardOp::kOProj:
        residual_gemm(ws_.attn + t0 * un(hq * hd), L.o_proj, hq * hd);
        mark(Op::kOGemm, gf * h * hq * hd, 0);
        return;
      case ForwardOp::kMlpNorm:
        norm(L.mlp_norm);
        return;
      case ForwardOp::kGateUp:
        if (cfg_.num_experts > 0) {  // the whole MoE block; kAct and kDown are then empty
          moe(L, r, lane);
          mark(Op::kMoe, 0, 0);
          return;
        }
        gemm(ws_.xn + t0 * un(h), L.gate_up, ws_.gate_up + t0 * un(2 * inter), 2 * inter, h, false);
        mark(Op::kGateUpGemm, gf * 2 * inter * h, 0);
        return;
      case ForwardOp::kAct:
        if (cfg_.num_experts > 0) return;
        silu(r, s);
        mark(Op::kSilu, 0, Td * inter * 6.0);
        return;
      case ForwardOp::kDown:
        if (cfg_.num_experts > 0) return;
        residual_gemm(ws_.act + t0 * un(inter), L.down, inter);
        mark(Op::kDownGemm, gf * h * inter, 0);
        return;
      default:
        NF_CHECK(false) << "op " << static_cast<int>(op) << " is not a layer op";
    }
  }

  cuda::GemmParams gemm_params(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool acc, bool f32 = false) {
    cuda::GemmParams g;
    g.x = x;
    g.w = w;
    g.y = y;
    g.m = m;
    g.n = n;
    g.k = k;
    g.accumulate = acc;
    g.out_f32 = f32;
    return g;
  }

  // Runs g on the lane: its GEMM runner and stream, with its SM target.
  void lane_gemm(const Lane& lane, cuda::GemmParams g) {
    g.sm_count_target = lane.gemm_sms;
    lane.gemm->run(g, lane.stream);
  }

  void silu(const NanoBatchRange& r, cudaStream_t s) {
    const size_t inter = un(cfg_.intermediate_size), t0 = un(r.token_begin);
    cuda::SiluMulParams p;
    p.gate_up = ws_.gate_up + t0 * 2 * inter;
    p.out = ws_.act + t0 * inter;
    p.tokens = r.tokens();
    p.inter = static_cast<int>(inter);
    cuda::silu_mul(p, s);
  }

  void attention(int64_t l, const NanoBatchRange& r, const Lane& lane, const CudaPlanShape& sh, bool prof) {
    cudaStream_t s = lane.stream;
    const int hq = static_cast<int>(cfg_.num_heads), hkv = static_cast<int>(cfg_.num_kv_heads),
              hd = static_cast<int>(cfg_.head_dim);
    const auto scale = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));  // transformers' head_dim**-0.5
    const bf16* kc = reinterpret_cast<const bf16*>(k_cache(l));
    const bf16* vc = reinterpret_cast<const bf16*>(v_cache(l));
    if (!tuned_attention_) {  // forward_device only (forward_op refuses): the whole plan
      NaiveAttentionParams p;
      p.q = ws_.q;
      p.k_cache = kc;
      p.v_cache = vc;
      p.q_start = plan_i32(layout_.q_start);
      p.kv_len = plan_i32(layout_.kv_len);
      p.page_start = plan_i32(layout_.page_start);
      p.page_ids = plan_i32(layout_.page_ids);
      p.out = ws_.attn;
      p.tokens = sh.num_tokens;
      p.num_seqs = sh.num_seqs;
      p.hq = hq;
      p.hkv = hkv;
      p.head_dim = hd;
      p.max_kv_len = sh.max_kv;
      p.scale = scale;
      NF_CUDA_CHECK(launch_naive_attention(p, s)) << "naive attention";
      if (prof) prof_.mark(Op::kPrefillAttn, 0, 0, s);
      return;
    }
    const int nd = r.decode_seqs();
    if (nd > 0) {
      // Decode sequences lead the plan with one token each: sequence i's query is token row i.
      const size_t s0 = un(r.seq_begin);
      const int budget = lane.sm_count > 0 ? lane.sm_count * 4 : cta_budget();
      const cuda::DecodeAttentionPlan plan = cuda::plan_decode_attention(nd, hkv, sh.max_decode_kv, budget);
      NF_CHECK(cuda::decode_attention_workspace_floats(nd, hq, hd, plan.num_splits) <= ws_.attn_ws_floats)
          << "decode attention workspace too small for " << plan.num_splits << " splits";
      cuda::DecodeAttentionParams p;
      p.q = ws_.q + s0 * un(hq * hd);
      p.k_cache = kc;
      p.v_cache = vc;
      p.kv_len = plan_i32(layout_.kv_len) + s0;
      p.page_start = plan_i32(layout_.page_start) + s0;
      p.page_ids = plan_i32(layout_.page_ids);
      p.out = ws_.attn + s0 * un(hq * hd);
      p.workspace = lane.attn_ws;
      p.num_seqs = nd;
      p.hq = hq;
      p.hkv = hkv;
      p.head_dim = hd;
      p.scale = scale;
      p.num_splits = plan.num_splits;
      p.chunk_tokens = plan.chunk_tokens;
      p.num_pages = static_cast<int>(alloc_pages_);  // the pool's extent (TMA variants' tensor maps)
      p.sm_count = lane.sm_count;  // 0: the whole GPU (variant 13); a share: the TMA variant 33
      cuda::decode_attention(p, s);
      if (prof) prof_.mark(Op::kDecodeAttn, 0, double(sh.sum_decode_kv) * double(hkv) * hd * 4.0, s);
    }
    if (r.tiles() > 0) {
      cuda::PrefillAttentionParams p;
      p.q = ws_.q;
      p.k_cache = kc;
      p.v_cache = vc;
      p.q_start = plan_i32(layout_.q_start);
      p.kv_len = plan_i32(layout_.kv_len);
      p.page_start = plan_i32(layout_.page_start);
      p.page_ids = plan_i32(layout_.page_ids);
      p.tiles = plan_i32(layout_.tiles) + 2 * un(r.tile_begin);
      p.out = ws_.attn;
      p.num_tiles = r.tiles();
      p.hq = hq;
      p.hkv = hkv;
      p.head_dim = hd;
      p.scale = scale;
      cuda::prefill_attention(p, s);
      if (prof) prof_.mark(Op::kPrefillAttn, 4.0 * double(sh.prefill_attended) * hq * hd, 0, s);
    }
  }

  // Mixtral: every expert runs over the nano-batch's rows and the combine weights rows it was not
  // routed to by 0. Costs experts/top_k times the routed FLOPs, but needs no host read-back of the
  // routing, so the iteration stays asynchronous. (A sorted grouped GEMM is the efficient form.)
  void moe(const CudaLayer& L, const NanoBatchRange& r, const Lane& lane) {
    cudaStream_t s = lane.stream;
    const int h = static_cast<int>(cfg_.hidden_size), inter = static_cast<int>(cfg_.intermediate_size),
              E = static_cast<int>(cfg_.num_experts);
    const int Er = static_cast<int>(router_rows(E));
    const int T = r.tokens();
    const size_t t0 = un(r.token_begin);
    auto gemm = [&](const bf16* x, const bf16* w, void* y, int n, int k, bool f32 = false) {
      lane_gemm(lane, gemm_params(x, w, y, T, n, k, false, f32));
    };
    const bf16* xn = ws_.xn + t0 * un(h);
    float* router = ws_.router + t0 * un(Er);
    float* route_w = ws_.route_w + t0 * un(E);
    float* acc = ws_.moe_acc + t0 * un(h);
    bf16* ex_y = ws_.ex_y + t0 * un(h);
    gemm(xn, L.router, router, Er, h, true);
    NF_CUDA_CHECK(launch_moe_route(router, Er, T, E, static_cast<int>(cfg_.num_experts_per_tok), route_w, s))
        << "moe route";
    for (int e = 0; e < E; ++e) {
      gemm(xn, L.experts[un(e)].gate_up, ws_.gate_up + t0 * un(2 * inter), 2 * inter, h);
      silu(r, s);
      gemm(ws_.act + t0 * un(inter), L.experts[un(e)].down, ex_y, h, inter);
      NF_CUDA_CHECK(launch_moe_combine(acc, ex_y, route_w, T, h, e, E, e == 0, s)) << "moe combine";
    }
    NF_CUDA_CHECK(launch_add_f32_into_bf16(ws_.x + t0 * un(h), acc, un(T) * un(h), s)) << "moe residual add";
  }

  // Chooses every GEMM's algorithm (per power-of-two m bucket) before the KV pool takes the
  // memory: autotuning needs scratch buffers, and nothing may be chosen inside graph capture.
  void prepare_gemms(cuda::GemmRunner& runner, int sm_count) {
    const int h = static_cast<int>(cfg_.hidden_size), q = static_cast<int>(cfg_.q_dim()),
              kv = static_cast<int>(cfg_.kv_dim()), inter = static_cast<int>(cfg_.intermediate_size),
              E = static_cast<int>(cfg_.num_experts), V = static_cast<int>(cfg_.vocab_size);
    const bf16* w = w_.embed;  // any weight pointer: prepare runs on scratch data
    auto prep = [&](cuda::GemmParams g) {
      g.sm_count_target = sm_count;
      runner.prepare(g);
    };
    for (int m = 1;; m *= 2) {
      const int mm = std::min(m, opt_.max_batch_tokens);
      cuda::GemmParams qkv = gemm_params(ws_.xn, w, ws_.qkv, mm, q + 2 * kv, h, false);
      qkv.bias = w_.layers.empty() ? nullptr : w_.layers[0].qkv_bias;  // the bias epilogue when there is one
      prep(qkv);
      const bool fused = !opt_.transformers_numerics;  // residual add in the GEMM, or a separate add
      prep(gemm_params(ws_.attn, w, fused ? ws_.x : ws_.xn, mm, h, q, fused));
      prep(gemm_params(ws_.xn, w, ws_.gate_up, mm, 2 * inter, h, false));
      if (E == 0) {
        prep(gemm_params(ws_.act, w, fused ? ws_.x : ws_.xn, mm, h, inter, fused));
      } else {
        prep(gemm_params(ws_.xn, w, ws_.router, mm, static_cast<int>(router_rows(E)), h, false, true));
        prep(gemm_params(ws_.act, w, ws_.ex_y, mm, h, inter, false));
      }
      if (mm <= opt_.max_sampled) prep(gemm_params(ws_.normed, w, ws_.logits, mm, V, h, false, true));
      if (mm >= opt_.max_batch_tokens) break;
    }
    // Up to the bucket that holds max_sampled (680 rows -> the 1024 bucket), not just below it.
    for (int m = 1;; m *= 2) {
      const int mm = std::min(m, opt_.max_sampled);
      prep(gemm_params(ws_.normed, w, ws_.logits, mm, V, h, false, true));
      if (mm >= opt_.max_sampled) break;
    }
    cuda::device_synchronize();
  }

  // The lanes of a nano-batch schedule (CudaModelOptions::lane_sm_counts): partitions are made
  // once, here, with every GEMM algorithm chosen for the lane's SM count before the KV pool.
  void make_lanes(const cuda::GemmConfig& gc) {
    std::vector<int> parts;
    int remainder_part = -1;
    for (size_t i = 0; i < opt_.lane_sm_counts.size(); ++i) {
      const int32_t c = opt_.lane_sm_counts[i];
      NF_CHECK_INPUT(c >= 0 && c % 8 == 0 && c <= info_.sm_count)
          << "lane SM count " << c << " (0 = whole GPU, or a multiple of 8 up to " << info_.sm_count << ")";
      if (static_cast<int32_t>(i) == opt_.lane_remainder) {
        NF_CHECK_INPUT(c > 0) << "lane " << i << " takes the remainder SMs but is not a partition";
        remainder_part = static_cast<int>(parts.size());
      }
      if (c > 0) parts.push_back(c);
    }
    NF_CHECK_INPUT(opt_.lane_remainder >= -1 && opt_.lane_remainder < static_cast<int32_t>(opt_.lane_sm_counts.size()))
        << "remainder SMs to lane " << opt_.lane_remainder << " of " << opt_.lane_sm_counts.size();
    NF_CHECK_INPUT(opt_.lane_gemm_sm_targets.empty() || opt_.lane_gemm_sm_targets.size() == opt_.lane_sm_counts.size())
        << opt_.lane_gemm_sm_targets.size() << " lane GEMM SM targets for " << opt_.lane_sm_counts.size() << " lanes";
    for (int32_t t : opt_.lane_gemm_sm_targets)
      NF_CHECK_INPUT(t >= 0 && t <= info_.sm_count) << "lane GEMM SM target " << t << " (0.." << info_.sm_count << ")";
    NF_CHECK_KIND(ErrorKind::kUnsupported, opt_.lane_sm_counts.empty() || tuned_attention_)
        << "nano-batch lanes need the tuned attention kernels (head_dim 64/128, hq/hkv <= 8, not "
           "transformers numerics)";
    // GEMM operands of a nano-batch start at row offsets; the cuBLASLt algorithms are chosen for
    // 256-byte-aligned operands, so every row must be a multiple of 256 bytes (true of Llama-3-8B,
    // Qwen2-7B and the 70B shapes; not of SmolLM2's 576 hidden or an MoE router's few f32 columns).
    if (!opt_.lane_sm_counts.empty()) {
      const int64_t q = cfg_.q_dim(), kv = cfg_.kv_dim(), h = cfg_.hidden_size, in = cfg_.intermediate_size;
      std::vector<int64_t> row_bytes = {h * 2, (q + 2 * kv) * 2, q * 2, 2 * in * 2, in * 2, cfg_.vocab_size * 4};
      if (cfg_.num_experts > 0) row_bytes.push_back(router_rows(cfg_.num_experts) * 4);
      for (int64_t b : row_bytes)
        NF_CHECK_KIND(ErrorKind::kUnsupported, b % 256 == 0)
            << "nano-batch lanes need activation rows of a multiple of 256 bytes; " << cfg_.name << " has a row of "
            << b << " bytes (hidden " << h << ", intermediate " << in << ", vocab " << cfg_.vocab_size << ")";
    }
    if (!parts.empty()) {
      cuda::SmPartitionsConfig pc;
      pc.sm_counts = parts;
      pc.remainder_to = remainder_part;
      partitions_ = std::make_unique<cuda::SmPartitions>(pc);
    }
    lane_streams_.reserve(opt_.lane_sm_counts.size());
    int next_part = 0;
    for (size_t i = 0; i < opt_.lane_sm_counts.size(); ++i) {
      Lane ln;
      if (opt_.lane_sm_counts[i] > 0) {
        const cuda::SmPartition& part = (*partitions_)[next_part++];
        ln.stream = part.stream;
        ln.sm_count = part.sm_count;
      } else {
        lane_streams_.emplace_back();
        ln.stream = lane_streams_.back().get();
      }
      const int32_t target = opt_.lane_gemm_sm_targets.empty() ? 0 : opt_.lane_gemm_sm_targets[i];
      ln.gemm_sms = target > 0 ? target : ln.sm_count;
      lane_gemms_.push_back(std::make_unique<cuda::GemmRunner>(gc));
      ln.gemm = lane_gemms_.back().get();
      prepare_gemms(*ln.gemm, ln.gemm_sms);
      ln.attn_ws = ws_.lane_attn_ws[i];
      lanes_.push_back(ln);
      NF_LOG(kInfo) << "lane " << i << ": " << (ln.sm_count > 0 ? std::to_string(ln.sm_count) + " SMs (green context)"
                                                                 : std::string("whole GPU"))
                    << ", GEMM SM target " << ln.gemm_sms;
    }
  }

  static int select_device(int ordinal) {
    cuda::set_device(ordinal);  // before stream_ is created: the stream belongs to this device
    return ordinal;
  }

  ModelConfig cfg_;
  CudaModelOptions opt_;
  std::chrono::steady_clock::time_point t0_;
  int device_ = 0;
  cuda::DeviceInfo info_;
  cuda::Stream stream_;
  bool tuned_attention_ = true;
  int32_t max_model_len_ = 0;
  std::unique_ptr<cuda::DeviceArena> weights_arena_, ws_arena_, kv_arena_;
  size_t ws_bytes_ = 0;
  CudaWeights w_;
  Workspace ws_;
  CudaPlanLayout layout_;
  std::unique_ptr<CudaPlanStaging> staging_;  // Model::forward (synchronous path) only
  cuda::DeviceBuffer inv_freq_;               // [head_dim / 2] f32
  std::unique_ptr<cuda::GemmRunner> gemm_;
  std::unique_ptr<cuda::SmPartitions> partitions_;           // the lanes' green contexts
  std::vector<cuda::Stream> lane_streams_;                   // the whole-GPU lanes' streams
  std::vector<std::unique_ptr<cuda::GemmRunner>> lane_gemms_;
  std::vector<Lane> lanes_;
  uint8_t* kv_base_ = nullptr;                // [layer][K|V][page][16][hkv][head_dim] bf16
  size_t kv_page_bytes_ = 0;
  int64_t num_pages_ = 0;                     // pages handed out: [0, num_pages_)
  int64_t alloc_pages_ = 0;                   // num_pages_ + the scratch page
  double startup_s_ = 0;
  OpProfiler prof_;
  struct BucketGraph {
    cuda::CudaGraph graph;                    // captured on the bucket's second forward
    bool failed = false;                      // capture failed: the bucket stays eager
  };
  std::map<std::pair<int32_t, int32_t>, BucketGraph> graphs_;  // by (sequence bucket, KV bucket)
  CudaGraphStats graph_stats_;
};

}  // namespace
}  // namespace nanoflow::model_cuda

namespace nanoflow {

std::unique_ptr<CudaModel> CudaModel::load(const std::string& path, const CudaModelOptions& options) {
  NF_CHECK_INPUT(options.num_kv_pages >= 0) << "num_kv_pages " << options.num_kv_pages;
  if (auto preset = find_preset(path)) {
    ResolvedPreset r = resolve_preset(*preset);
    if (options.num_layers_override > 0) r.config.num_layers = std::min<int64_t>(r.config.num_layers, options.num_layers_override);
    return std::make_unique<model_cuda::CudaModelImpl>(std::move(r.config), options, nullptr);
  }
  auto store = WeightStore::open(path);
  ModelConfig cfg = store->config();
  cfg.validate(path);
  if (options.num_layers_override > 0) cfg.num_layers = std::min<int64_t>(cfg.num_layers, options.num_layers_override);
  return std::make_unique<model_cuda::CudaModelImpl>(std::move(cfg), options, store.get());
}

}  // namespace nanoflow
#endif  // NANOFLOW_HAVE_CUDA
