// The Llama-family forward pass on the CPU (Llama 2/3/3.1, Qwen2, Mixtral, SmolLM2): one
// implementation, architecture differences as switches of ModelConfig (QKV bias, MoE, tied head,
// llama3 rope scaling). Private to src/model; users go through Model (model/model.h).
#pragma once
#include <memory>
#include <vector>

#include "core/buffer.h"
#include "cpu_weights.h"
#include "kernels/cpu/ops.h"
#include "model/model.h"

namespace nanoflow::model_cpu {

// Scratch for one forward, grown (never shrunk) to the largest batch seen, so steady-state
// iterations allocate nothing. Shapes for T tokens / S sampled rows:
struct Workspace {
  int64_t tokens = 0;     // capacity in tokens
  int64_t samples = 0;    // capacity in sampled rows
  HostBuffer x;           // [T, hidden]  residual stream
  HostBuffer xn;          // [T, hidden]  normed input of the current block
  HostBuffer qkv;         // [T, q_dim + 2*kv_dim]  fused projection output (q | k | v per row)
  HostBuffer attn;        // [T, q_dim]   attention output
  HostBuffer proj;        // [T, hidden]  o_proj / MLP output, added to x by the next norm
  HostBuffer gate_up;     // [T, 2*inter] gate | up per row
  HostBuffer act;         // [T, inter]   silu(gate) * up
  // MoE
  HostBuffer router;      // [T, experts] router logits
  HostBuffer top_e;       // [T, top_k] int32 expert ids
  HostBuffer top_w;       // [T, top_k] renormalized weights
  HostBuffer ex_in;       // [T, hidden]  rows routed to one expert, gathered
  HostBuffer ex_out;      // [T, hidden]  that expert's output
  std::vector<int32_t> ex_rows;  // token rows of the current expert
  std::vector<float> ex_wts;     // their routing weights
  // Sampled rows
  HostBuffer s_x;         // [S, hidden]
  HostBuffer s_add;       // [S, hidden]
  HostBuffer s_norm;      // [S, hidden]
};

class CpuModel final : public Model {
 public:
  CpuModel(ModelConfig config, CpuWeights weights, const ModelOptions& options);

  const ModelConfig& config() const override { return cfg_; }
  int64_t num_kv_pages() const override { return num_pages_; }
  void forward(const BatchPlan& plan, float* logits) override;
  void copy_page(int32_t src, int32_t dst) override;

 private:
  void reserve(int64_t tokens, int64_t samples);
  cpu::PagedKv layer_kv(int64_t layer);
  // y = x · w^T through the packed kernel of w's element type, on pool_.
  void gemm(const cpu::LinearParams& p, const float* x, const PackedMat& w, const float* bias, float* y);
  void attention_block(int64_t layer, const BatchPlan& plan, int64_t T);
  void dense_mlp(int64_t layer, int64_t T);
  void moe_mlp(int64_t layer, int64_t T);

  ModelConfig cfg_;
  CpuWeights w_;
  int64_t num_pages_;
  std::unique_ptr<cpu::ThreadPool> pool_;
  cpu::RopeParams rope_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  // Per layer: [num_pages][kPageSize][num_kv_heads][head_dim] f32 (ops.h PagedKv layout).
  std::vector<HostBuffer> k_pools_, v_pools_;
  Workspace ws_;
};

}  // namespace nanoflow::model_cpu
