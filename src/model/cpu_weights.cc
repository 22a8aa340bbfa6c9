#include "cpu_weights.h"

#include <string>

#include "core/checked.h"
#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::model_cpu {
namespace {

// Reads tensor `name` (shape [rows, cols], or [rows] when cols == 0) into dst as f32.
void read_into(const WeightStore& store, const std::string& name, int64_t rows, int64_t cols, float* dst) {
  const WeightInfo& w = store.get(name);
  const Shape& s = w.view.shape;
  const bool ok = cols == 0 ? (s.ndim() == 1 && s[0] == rows) : (s.ndim() == 2 && s[0] == rows && s[1] == cols);
  if (!ok) {
    NF_THROW(kBadFile) << w.file << ": tensor " << name << " has shape " << s.str() << ", expected ["
                       << rows << (cols ? ", " + std::to_string(cols) : std::string()) << "] from the config";
  }
  store.read_f32(name, dst);
}

HostBuffer alloc_f32(int64_t n) { return HostBuffer(static_cast<size_t>(checked_mul(static_cast<uint64_t>(n), 4))); }

HostBuffer read_vec(const WeightStore& store, const std::string& name, int64_t n) {
  HostBuffer b = alloc_f32(n);
  read_into(store, name, n, 0, b.as<float>());
  return b;
}

HostBuffer read_mat(const WeightStore& store, const std::string& name, int64_t rows, int64_t cols) {
  HostBuffer b = alloc_f32(static_cast<int64_t>(checked_mul(rows, cols)));
  read_into(store, name, rows, cols, b.as<float>());
  return b;
}

PackedMat pack(const HostBuffer& plain, int64_t rows, int64_t cols, bool bf16) {
  PackedMat m;
  m.bf16 = bf16;
  const int64_t n = cpu::packed_weight_floats(rows, cols);
  if (bf16) {
    m.data = HostBuffer(static_cast<size_t>(checked_mul(static_cast<uint64_t>(n), 2)));
    cpu::pack_weight_bf16(plain.as<float>(), rows, cols, m.data.as<uint16_t>());
  } else {
    m.data = alloc_f32(n);
    cpu::pack_weight(plain.as<float>(), rows, cols, m.data.as<float>());
  }
  return m;
}
PackedMat read_packed(const WeightStore& store, const std::string& name, int64_t rows, int64_t cols, bool bf16) {
  return pack(read_mat(store, name, rows, cols), rows, cols, bf16);
}

// Stacks tensors of the same width into one [sum rows, cols] matrix (fused projections).
HostBuffer read_stacked(const WeightStore& store, const std::vector<std::pair<std::string, int64_t>>& parts,
                        int64_t cols) {
  int64_t rows = 0;
  for (auto& [n, r] : parts) rows += r;
  // cols == 0: stacking vectors (biases) into one [sum rows] vector.
  HostBuffer b = alloc_f32(cols == 0 ? rows : static_cast<int64_t>(checked_mul(rows, cols)));
  float* dst = b.as<float>();
  for (auto& [name, r] : parts) {
    if (cols == 0) {
      read_into(store, name, r, 0, dst);
      dst += r;
    } else {
      read_into(store, name, r, cols, dst);
      dst += r * cols;
    }
  }
  return b;
}

}  // namespace

CpuWeights load_cpu_weights(const WeightStore& store, const ModelConfig& c, bool bf16) {
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), inter = c.intermediate_size;
  CpuWeights w;
  w.embed = read_mat(store, "embed_tokens", c.vocab_size, h);
  w.final_norm = read_vec(store, "final_norm", h);
  // Tied: HF uses the embedding as the head even if the checkpoint also ships an lm_head.
  w.lm_head = c.tie_word_embeddings ? pack(w.embed, c.vocab_size, h, bf16) : read_packed(store, "lm_head", c.vocab_size, h, bf16);
  w.layers.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights& L = w.layers[i];
    L.attn_norm = read_vec(store, p + "attn_norm", h);
    L.qkv = pack(read_stacked(store, {{p + "q_proj", q}, {p + "k_proj", kv}, {p + "v_proj", kv}}, h), q + 2 * kv, h, bf16);
    if (c.attention_bias) L.qkv_bias = read_stacked(store, {{p + "q_bias", q}, {p + "k_bias", kv}, {p + "v_bias", kv}}, 0);
    L.o_proj = read_packed(store, p + "o_proj", h, q, bf16);
    L.mlp_norm = read_vec(store, p + "mlp_norm", h);
    if (c.num_experts == 0) {
      L.gate_up = pack(read_stacked(store, {{p + "gate_proj", inter}, {p + "up_proj", inter}}, h), 2 * inter, h, bf16);
      L.down = read_packed(store, p + "down_proj", h, inter, bf16);
    } else {
      L.router = read_packed(store, p + "router", c.num_experts, h, /*bf16=*/false);  // tiny; keeps routing exact
      L.experts.resize(c.num_experts);
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string pe = p + "experts." + std::to_string(e) + ".";
        L.experts[e].gate_up =
            pack(read_stacked(store, {{pe + "gate_proj", inter}, {pe + "up_proj", inter}}, h), 2 * inter, h, bf16);
        L.experts[e].down = read_packed(store, pe + "down_proj", h, inter, bf16);
      }
    }
  }
  return w;
}

}  // namespace nanoflow::model_cpu
