#if defined(NANOFLOW_HAVE_CUDA)
#include "cuda_weights.h"

#include <cmath>

#include "core/error.h"
#include "kernels/cuda/gemm.h"
#include "model_kernels.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::model_cuda {
namespace {

size_t un(int64_t v) { return static_cast<size_t>(v); }

// Reads `name` ([rows, cols], or [rows] when cols == 0) into dst on the device.
void put(const WeightStore& store, const std::string& name, int64_t rows, int64_t cols, bf16* dst,
         std::vector<uint16_t>& host) {
  const WeightInfo& w = store.get(name);
  const Shape& s = w.view.shape;
  const bool ok = cols == 0 ? (s.ndim() == 1 && s[0] == rows) : (s.ndim() == 2 && s[0] == rows && s[1] == cols);
  if (!ok) {
    NF_THROW(kBadFile) << w.file << ": tensor " << name << " has shape " << s.str() << ", expected [" << rows
                       << (cols ? ", " + std::to_string(cols) : std::string()) << "] from the config";
  }
  const size_t n = un(rows) * un(cols == 0 ? 1 : cols);
  host.resize(n);
  store.read_bf16(name, host.data());
  NF_CUDA_CHECK(cudaMemcpy(dst, host.data(), n * 2, cudaMemcpyHostToDevice)) << "uploading " << name;
}

}  // namespace

CudaWeights lay_out_weights(const ModelConfig& c, const WeightAlloc& alloc) {
  const size_t h = un(c.hidden_size), q = un(c.q_dim()), kv = un(c.kv_dim()), inter = un(c.intermediate_size);
  const size_t qkv = q + 2 * kv;
  CudaWeights w;
  w.embed = alloc(un(c.vocab_size) * h, "embed_tokens");
  w.layers.resize(un(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    CudaLayer& L = w.layers[un(i)];
    L.attn_norm = alloc(h, p + "attn_norm");
    L.qkv = alloc(qkv * h, p + "qkv");
    if (c.attention_bias) L.qkv_bias = alloc(qkv, p + "qkv_bias");
    L.o_proj = alloc(h * q, p + "o_proj");
    L.mlp_norm = alloc(h, p + "mlp_norm");
    if (c.num_experts == 0) {
      L.gate_up = alloc(2 * inter * h, p + "gate_up");
      L.down = alloc(h * inter, p + "down_proj");
    } else {
      L.router = alloc(un(router_rows(c.num_experts)) * h, p + "router");
      L.experts.resize(un(c.num_experts));
      for (int64_t e = 0; e < c.num_experts; ++e) {
        L.experts[un(e)].gate_up = alloc(2 * inter * h, p + "experts.gate_up");
        L.experts[un(e)].down = alloc(h * inter, p + "experts.down");
      }
    }
  }
  w.final_norm = alloc(h, "final_norm");
  w.lm_head = c.tie_word_embeddings ? w.embed : alloc(un(c.vocab_size) * h, "lm_head");
  return w;
}

void upload_weights(const WeightStore& store, const ModelConfig& c, const CudaWeights& w) {
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), inter = c.intermediate_size;
  std::vector<uint16_t> host;
  put(store, "embed_tokens", c.vocab_size, h, w.embed, host);
  put(store, "final_norm", h, 0, w.final_norm, host);
  // Tied: HF uses the embedding as the head even if the checkpoint also ships an lm_head.
  if (!c.tie_word_embeddings) put(store, "lm_head", c.vocab_size, h, w.lm_head, host);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    const CudaLayer& L = w.layers[un(i)];
    put(store, p + "attn_norm", h, 0, L.attn_norm, host);
    put(store, p + "q_proj", q, h, L.qkv, host);
    put(store, p + "k_proj", kv, h, L.qkv + un(q * h), host);
    put(store, p + "v_proj", kv, h, L.qkv + un((q + kv) * h), host);
    if (c.attention_bias) {
      put(store, p + "q_bias", q, 0, L.qkv_bias, host);
      put(store, p + "k_bias", kv, 0, L.qkv_bias + un(q), host);
      put(store, p + "v_bias", kv, 0, L.qkv_bias + un(q + kv), host);
    }
    put(store, p + "o_proj", h, q, L.o_proj, host);
    put(store, p + "mlp_norm", h, 0, L.mlp_norm, host);
    if (c.num_experts == 0) {
      put(store, p + "gate_proj", inter, h, L.gate_up, host);
      put(store, p + "up_proj", inter, h, L.gate_up + un(inter * h), host);
      put(store, p + "down_proj", h, inter, L.down, host);
    } else {
      put(store, p + "router", c.num_experts, h, L.router, host);
      const size_t pad = un(router_rows(c.num_experts) - c.num_experts) * un(h);
      if (pad > 0) {
        NF_CUDA_CHECK(cudaMemset(L.router + un(c.num_experts * h), 0, pad * 2)) << "router padding";
      }
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string pe = p + "experts." + std::to_string(e) + ".";
        const CudaExpert& X = L.experts[un(e)];
        put(store, pe + "gate_proj", inter, h, X.gate_up, host);
        put(store, pe + "up_proj", inter, h, X.gate_up + un(inter * h), host);
        put(store, pe + "down_proj", h, inter, X.down, host);
      }
    }
  }
}

void init_random_weights(const ModelConfig& c, const CudaWeights& w, uint64_t seed, cudaStream_t s) {
  const size_t h = un(c.hidden_size), q = un(c.q_dim()), kv = un(c.kv_dim()), inter = un(c.intermediate_size);
  const float scale = 0.02f * std::sqrt(3.0f);  // uniform [-a, a) has std a / sqrt(3)
  uint64_t tensor = 0;
  auto rnd = [&](bf16* p, size_t n) { cuda::fill_random_bf16(p, n, seed + 0x9E3779B97F4A7C15ull * ++tensor, scale, s); };
  auto one = [&](bf16* p, size_t n) {
    NF_CUDA_CHECK(launch_fill_const_bf16(p, n, 1.0f, s)) << "norm weight fill";
  };
  rnd(w.embed, un(c.vocab_size) * h);
  one(w.final_norm, h);
  if (w.lm_head != w.embed) rnd(w.lm_head, un(c.vocab_size) * h);
  for (const CudaLayer& L : w.layers) {
    one(L.attn_norm, h);
    one(L.mlp_norm, h);
    rnd(L.qkv, (q + 2 * kv) * h);
    if (L.qkv_bias != nullptr) rnd(L.qkv_bias, q + 2 * kv);
    rnd(L.o_proj, h * q);
    if (L.gate_up != nullptr) {
      rnd(L.gate_up, 2 * inter * h);
      rnd(L.down, h * inter);
    }
    if (L.router != nullptr) {
      rnd(L.router, un(c.num_experts) * h);
      const size_t pad = un(router_rows(c.num_experts) - c.num_experts) * h;
      if (pad > 0) {
        NF_CUDA_CHECK(cudaMemsetAsync(L.router + un(c.num_experts) * h, 0, pad * 2, s)) << "router padding";
      }
    }
    for (const CudaExpert& X : L.experts) {
      rnd(X.gate_up, 2 * inter * h);
      rnd(X.down, h * inter);
    }
  }
  NF_CUDA_CHECK(cudaStreamSynchronize(s)) << "random weight init";
}

}  // namespace nanoflow::model_cuda
#endif  // NANOFLOW_HAVE_CUDA
