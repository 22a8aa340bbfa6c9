// The Llama-family weights as the CPU forward wants them: f32, with the projections that read the
// same input fused into one matrix so each is a single GEMM. Every matrix (marked "packed") is in
// the cpu::pack_weight panel layout of its HF [out, in] shape (kernels/cpu/ops.h); vectors and
// the embedding table are plain. (Private to src/model.)
#pragma once
#include <cstdint>
#include <vector>

#include "core/buffer.h"
#include "loader/model_config.h"
#include "loader/weights.h"

namespace nanoflow::model_cpu {

// A matrix in the cpu::pack_weight panel layout, f32 or bf16 elements.
struct PackedMat {
  HostBuffer data;
  bool bf16 = false;
};

struct ExpertWeights {
  PackedMat gate_up;  // packed [2*inter, hidden]: rows [0, inter) gate_proj, [inter, 2*inter) up_proj
  PackedMat down;     // packed [hidden, inter]
};

struct LayerWeights {
  HostBuffer attn_norm;  // [hidden]
  PackedMat qkv;        // packed [q_dim + 2*kv_dim, hidden]: q_proj rows, then k_proj, then v_proj
  HostBuffer qkv_bias;   // [q_dim + 2*kv_dim] (attention_bias only; else empty)
  PackedMat o_proj;     // packed [hidden, q_dim]
  HostBuffer mlp_norm;   // [hidden]
  // Dense MLP (num_experts == 0)
  PackedMat gate_up;    // packed [2*inter, hidden]: gate rows, then up rows
  PackedMat down;       // packed [hidden, inter]
  // MoE (num_experts > 0)
  PackedMat router;     // packed [experts, hidden]
  std::vector<ExpertWeights> experts;
};

struct CpuWeights {
  HostBuffer embed;        // [vocab, hidden] plain (gathered by token id)
  std::vector<LayerWeights> layers;
  HostBuffer final_norm;   // [hidden]
  PackedMat lm_head;      // packed [vocab, hidden] (a packed copy of embed when tied)
};

// Reads every weight of `cfg` from `store` as f32, checking each shape against the config
// (Error kBadFile naming the tensor and both shapes on mismatch).
// bf16: store the packed matrices as bf16 (ModelOptions::bf16_weights).
CpuWeights load_cpu_weights(const WeightStore& store, const ModelConfig& cfg, bool bf16);

}  // namespace nanoflow::model_cpu
