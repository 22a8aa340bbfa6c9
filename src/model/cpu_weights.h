// The Llama-family weights as the CPU forward wants them: f32, HF [out, in] row-major, with the
// projections that read the same input fused into one matrix so each is a single GEMM.
// (Private to src/model.)
#pragma once
#include <cstdint>
#include <vector>

#include "core/buffer.h"
#include "loader/model_config.h"
#include "loader/weights.h"

namespace nanoflow::model_cpu {

struct ExpertWeights {
  HostBuffer gate_up;  // [2*inter, hidden]: rows [0, inter) gate_proj, [inter, 2*inter) up_proj
  HostBuffer down;     // [hidden, inter]
};

struct LayerWeights {
  HostBuffer attn_norm;  // [hidden]
  HostBuffer qkv;        // [q_dim + 2*kv_dim, hidden]: q_proj rows, then k_proj, then v_proj
  HostBuffer qkv_bias;   // [q_dim + 2*kv_dim] (attention_bias only; else empty)
  HostBuffer o_proj;     // [hidden, q_dim]
  HostBuffer mlp_norm;   // [hidden]
  // Dense MLP (num_experts == 0)
  HostBuffer gate_up;    // [2*inter, hidden]: gate rows, then up rows
  HostBuffer down;       // [hidden, inter]
  // MoE (num_experts > 0)
  HostBuffer router;     // [experts, hidden]
  std::vector<ExpertWeights> experts;
};

struct CpuWeights {
  HostBuffer embed;        // [vocab, hidden]
  std::vector<LayerWeights> layers;
  HostBuffer final_norm;   // [hidden]
  HostBuffer lm_head;      // [vocab, hidden]; empty when tied (use embed)

  const float* lm_head_ptr() const { return lm_head.size() ? lm_head.as<float>() : embed.as<float>(); }
};

// Reads every weight of `cfg` from `store` as f32, checking each shape against the config
// (Error kBadFile naming the tensor and both shapes on mismatch).
CpuWeights load_cpu_weights(const WeightStore& store, const ModelConfig& cfg);

}  // namespace nanoflow::model_cpu
