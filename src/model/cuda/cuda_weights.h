// The Llama-family weights on the GPU: bf16, HF [out, in] row-major, projections that read the same
// input fused (q|k|v rows; gate|up rows) so each is one GEMM — the CPU model's layout in bf16.
// Every pointer is a region of one exactly sized DeviceArena. Private to src/model/cuda.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loader/model_config.h"
#include "loader/weights.h"

namespace nanoflow::model_cuda {

using bf16 = __nv_bfloat16;

// The router GEMM's output width: experts rounded up to 8 (cuBLASLt n % 8 == 0 here).
inline int64_t router_rows(int64_t experts) { return (experts + 7) / 8 * 8; }

struct CudaExpert {
  bf16* gate_up = nullptr;  // [2*inter, hidden]
  bf16* down = nullptr;     // [hidden, inter]
};

struct CudaLayer {
  bf16* attn_norm = nullptr;  // [hidden]
  bf16* qkv = nullptr;        // [q_dim + 2*kv_dim, hidden]
  bf16* qkv_bias = nullptr;   // [q_dim + 2*kv_dim] (attention_bias only)
  bf16* o_proj = nullptr;     // [hidden, q_dim]
  bf16* mlp_norm = nullptr;   // [hidden]
  bf16* gate_up = nullptr;    // [2*inter, hidden] (dense)
  bf16* down = nullptr;       // [hidden, inter]   (dense)
  bf16* router = nullptr;     // [router_rows(experts), hidden] (MoE); rows past `experts` are 0
  std::vector<CudaExpert> experts;
};

struct CudaWeights {
  bf16* embed = nullptr;       // [vocab, hidden]
  std::vector<CudaLayer> layers;
  bf16* final_norm = nullptr;  // [hidden]
  bf16* lm_head = nullptr;     // [vocab, hidden]; == embed when tied
};

// Lays the weights out through `alloc(elements, name)`; run once with a counting allocator to size
// the arena, once with the arena.
using WeightAlloc = std::function<bf16*(size_t elements, const std::string& name)>;
CudaWeights lay_out_weights(const ModelConfig& cfg, const WeightAlloc& alloc);

// Copies every tensor of `store` (converted to bf16 on the host, shapes checked against the config
// with Error kBadFile) into `w`. Synchronous.
void upload_weights(const WeightStore& store, const ModelConfig& cfg, const CudaWeights& w);

// Random presets: uniform values with std 0.02 (HF's initializer_range) from a counter hash, norm
// weights 1, all made on the GPU. The residual stream then grows about sqrt(layers) * 0.02 * sqrt(dim)
// per projection, which keeps bf16 activations far from overflow for every preset shape.
void init_random_weights(const ModelConfig& cfg, const CudaWeights& w, uint64_t seed, cudaStream_t stream);

}  // namespace nanoflow::model_cuda
