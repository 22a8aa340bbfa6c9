#include "cpu_model.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "core/checked.h"
#include "core/error.h"

namespace nanoflow::model_cpu {
namespace {

// Default KV pool when ModelOptions leaves it 0: 256 pages = 4096 tokens.
constexpr int64_t kDefaultKvPages = 256;

HostBuffer alloc_floats(int64_t floats) {
  return HostBuffer(static_cast<size_t>(checked_mul(static_cast<uint64_t>(floats), 4, "workspace")));
}

}  // namespace

CpuModel::CpuModel(ModelConfig config, CpuWeights weights, const ModelOptions& options)
    : cfg_(std::move(config)), w_(std::move(weights)) {
  num_pages_ = options.num_kv_pages > 0 ? options.num_kv_pages : kDefaultKvPages;
  int threads = options.num_threads > 0 ? options.num_threads
                                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  pool_ = std::make_unique<cpu::ThreadPool>(threads);
  // The model's GEMMs are the packed kernel on pool_; OpenBLAS (used by cpu::linear only) gets
  // the same thread count so a caller mixing both does not oversubscribe.
  cpu::set_blas_threads(threads);

  rope_.head_dim = cfg_.head_dim;
  rope_.theta = cfg_.rope_theta;
  if (cfg_.rope_scaling == RopeScaling::kLlama3) {
    rope_.type = cpu::RopeType::kLlama3;
    rope_.factor = cfg_.rope_factor;
    rope_.low_freq_factor = cfg_.rope_low_freq_factor;
    rope_.high_freq_factor = cfg_.rope_high_freq_factor;
    rope_.original_max_position = cfg_.rope_original_max_position;
  }
  inv_freq_.resize(cfg_.head_dim / 2);
  cpu::rope_inv_freq(rope_, inv_freq_.data());

  const uint64_t page_floats = checked_mul(static_cast<uint64_t>(kPageSize), static_cast<uint64_t>(cfg_.kv_dim()));
  const uint64_t pool_bytes = checked_mul(checked_mul(page_floats, static_cast<uint64_t>(num_pages_), "KV pool"), 4, "KV pool");
  k_pools_.reserve(cfg_.num_layers);
  v_pools_.reserve(cfg_.num_layers);
  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    k_pools_.emplace_back(pool_bytes);
    v_pools_.emplace_back(pool_bytes);
  }
}

void CpuModel::gemm(const cpu::LinearParams& p, const float* x, const PackedMat& w, const float* bias, float* y) {
  if (w.bf16) {
    cpu::linear_packed_bf16(p, x, w.data.as<uint16_t>(), bias, y, pool_.get());
  } else {
    cpu::linear_packed(p, x, w.data.as<float>(), bias, y, pool_.get());
  }
}

cpu::PagedKv CpuModel::layer_kv(int64_t layer) {
  cpu::PagedKv kv;
  kv.k_pool = k_pools_[layer].as<float>();
  kv.v_pool = v_pools_[layer].as<float>();
  kv.num_pages = num_pages_;
  kv.page_size = kPageSize;
  kv.num_kv_heads = static_cast<int32_t>(cfg_.num_kv_heads);
  kv.head_dim = static_cast<int32_t>(cfg_.head_dim);
  return kv;
}

void CpuModel::reserve(int64_t T, int64_t S) {
  const int64_t h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  if (T > ws_.tokens) {
    T = std::max(T, ws_.tokens * 2);  // amortize growth over changing batch sizes
    ws_.x = alloc_floats(T * h);
    ws_.xn = alloc_floats(T * h);
    ws_.qkv = alloc_floats(T * (cfg_.q_dim() + 2 * cfg_.kv_dim()));
    ws_.attn = alloc_floats(T * cfg_.q_dim());
    ws_.proj = alloc_floats(T * h);
    ws_.gate_up = alloc_floats(T * 2 * inter);
    ws_.act = alloc_floats(T * inter);
    if (cfg_.num_experts > 0) {
      ws_.router = alloc_floats(T * cfg_.num_experts);
      ws_.top_e = alloc_floats(T * cfg_.num_experts_per_tok);
      ws_.top_w = alloc_floats(T * cfg_.num_experts_per_tok);
      ws_.ex_in = alloc_floats(T * h);
      ws_.ex_out = alloc_floats(T * h);
      ws_.ex_rows.reserve(T);
      ws_.ex_wts.reserve(T);
    }
    ws_.tokens = T;
  }
  if (S > ws_.samples) {
    S = std::max(S, ws_.samples * 2);
    ws_.s_x = alloc_floats(S * h);
    ws_.s_add = alloc_floats(S * h);
    ws_.s_norm = alloc_floats(S * h);
    ws_.samples = S;
  }
}

void CpuModel::attention_block(int64_t l, const BatchPlan& plan, int64_t T) {
  const LayerWeights& L = w_.layers[l];
  const int64_t h = cfg_.hidden_size, q_dim = cfg_.q_dim(), kv_dim = cfg_.kv_dim();
  const int64_t qkv_w = q_dim + 2 * kv_dim;
  float* qkv = ws_.qkv.as<float>();
  gemm({.m = T, .n = qkv_w, .k = h}, ws_.xn.as<float>(), L.qkv,
              cfg_.attention_bias ? L.qkv_bias.as<float>() : nullptr, qkv);
  // Rotate q and k inside the fused buffer (row stride qkv_w).
  cpu::rope(rope_, inv_freq_.data(), qkv, T, cfg_.num_heads, qkv_w, plan.positions.data(), pool_.get());
  cpu::rope(rope_, inv_freq_.data(), qkv + q_dim, T, cfg_.num_kv_heads, qkv_w, plan.positions.data(), pool_.get());

  cpu::AttnBatch b;
  b.num_seqs = plan.num_seqs();
  b.q_start = plan.q_start.data();
  b.kv_len = plan.kv_len.data();
  b.page_start = plan.page_start.data();
  b.page_ids = plan.page_ids.data();
  const cpu::PagedKv kv = layer_kv(l);
  cpu::kv_write(kv, b, qkv + q_dim, qkv + q_dim + kv_dim, qkv_w);
  cpu::AttnParams ap;
  ap.num_heads = static_cast<int32_t>(cfg_.num_heads);
  cpu::paged_attention(ap, kv, b, qkv, qkv_w, ws_.attn.as<float>(), pool_.get());
  gemm({.m = T, .n = h, .k = q_dim}, ws_.attn.as<float>(), L.o_proj, nullptr,
              ws_.proj.as<float>());
}

void CpuModel::dense_mlp(int64_t l, int64_t T) {
  const LayerWeights& L = w_.layers[l];
  const int64_t h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  float* gu = ws_.gate_up.as<float>();
  gemm({.m = T, .n = 2 * inter, .k = h}, ws_.xn.as<float>(), L.gate_up, nullptr, gu);
  cpu::silu_mul(gu, gu + inter, ws_.act.as<float>(), T, inter, 2 * inter, pool_.get());
  gemm({.m = T, .n = h, .k = inter}, ws_.act.as<float>(), L.down, nullptr, ws_.proj.as<float>());
}

// Mixtral sparse MoE: each token goes to its top-k experts; an expert's rows are gathered, run
// through its SwiGLU MLP as one GEMM batch, scaled by the routing weight and added back. Experts
// are visited in ascending index, the order HF accumulates in.
void CpuModel::moe_mlp(int64_t l, int64_t T) {
  const LayerWeights& L = w_.layers[l];
  const int64_t h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  const int64_t E = cfg_.num_experts, K = cfg_.num_experts_per_tok;
  const float* xn = ws_.xn.as<float>();
  gemm({.m = T, .n = E, .k = h}, xn, L.router, nullptr, ws_.router.as<float>());
  int32_t* top_e = ws_.top_e.as<int32_t>();
  float* top_w = ws_.top_w.as<float>();
  cpu::moe_route(ws_.router.as<float>(), T, E, K, top_e, top_w);
  float* out = ws_.proj.as<float>();
  std::memset(out, 0, sizeof(float) * T * h);
  float* ex_in = ws_.ex_in.as<float>();
  float* ex_out = ws_.ex_out.as<float>();
  float* gu = ws_.gate_up.as<float>();
  for (int64_t e = 0; e < E; ++e) {
    ws_.ex_rows.clear();
    ws_.ex_wts.clear();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k)
        if (top_e[t * K + k] == e) {
          ws_.ex_rows.push_back(static_cast<int32_t>(t));
          ws_.ex_wts.push_back(top_w[t * K + k]);
        }
    const int64_t n = static_cast<int64_t>(ws_.ex_rows.size());
    if (n == 0) continue;
    for (int64_t i = 0; i < n; ++i) std::memcpy(ex_in + i * h, xn + ws_.ex_rows[i] * h, sizeof(float) * h);
    const ExpertWeights& X = L.experts[e];
    gemm({.m = n, .n = 2 * inter, .k = h}, ex_in, X.gate_up, nullptr, gu);
    cpu::silu_mul(gu, gu + inter, ws_.act.as<float>(), n, inter, 2 * inter, pool_.get());
    gemm({.m = n, .n = h, .k = inter}, ws_.act.as<float>(), X.down, nullptr, ex_out);
    for (int64_t i = 0; i < n; ++i) {
      float* o = out + ws_.ex_rows[i] * h;
      const float* y = ex_out + i * h;
      const float wt = ws_.ex_wts[i];
      for (int64_t c = 0; c < h; ++c) o[c] += y[c] * wt;
    }
  }
}

void CpuModel::forward(const BatchPlan& plan, float* logits) {
  plan.validate(num_pages_);
  const int64_t T = plan.num_tokens();
  const int64_t S = static_cast<int64_t>(plan.sample_rows.size());
  if (T == 0) return;
  NF_CHECK(S == 0 || logits != nullptr) << "forward: logits buffer is null";
  reserve(T, S);
  const int64_t h = cfg_.hidden_size;
  float* x = ws_.x.as<float>();
  float* xn = ws_.xn.as<float>();
  float* proj = ws_.proj.as<float>();
  cpu::embedding(w_.embed.as<float>(), cfg_.vocab_size, h, plan.token_ids.data(), T, x);

  cpu::RmsNormParams np{.rows = T, .dim = h, .eps = cfg_.rms_norm_eps};
  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    // x += previous layer's MLP output (none before layer 0); xn = norm(x).
    cpu::add_rmsnorm(np, x, l == 0 ? nullptr : proj, L.attn_norm.as<float>(), xn, pool_.get());
    attention_block(l, plan, T);
    cpu::add_rmsnorm(np, x, proj, L.mlp_norm.as<float>(), xn, pool_.get());
    if (cfg_.num_experts > 0) {
      moe_mlp(l, T);
    } else {
      dense_mlp(l, T);
    }
  }
  if (S == 0) return;
  // Final residual add + norm + LM head only for the sampled rows.
  float* sx = ws_.s_x.as<float>();
  float* sadd = ws_.s_add.as<float>();
  for (int64_t i = 0; i < S; ++i) {
    const int64_t r = plan.sample_rows[i];
    std::memcpy(sx + i * h, x + r * h, sizeof(float) * h);
    std::memcpy(sadd + i * h, proj + r * h, sizeof(float) * h);
  }
  cpu::add_rmsnorm({.rows = S, .dim = h, .eps = cfg_.rms_norm_eps}, sx, sadd, w_.final_norm.as<float>(),
                   ws_.s_norm.as<float>(), pool_.get());
  gemm({.m = S, .n = cfg_.vocab_size, .k = h}, ws_.s_norm.as<float>(), w_.lm_head, nullptr, logits);
}

void CpuModel::copy_page(int32_t src, int32_t dst) {
  for (int64_t l = 0; l < cfg_.num_layers; ++l) cpu::kv_copy_page(layer_kv(l), src, dst);
}

}  // namespace nanoflow::model_cpu
