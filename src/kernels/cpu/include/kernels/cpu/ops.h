// CPU reference ops: the oracle every CUDA kernel is tested against, and the CPU backend's kernels.
// Raw pointers + sizes / params structs; f32 everywhere; all matrices row-major and contiguous
// unless a leading dimension (ld*) is given. Semantics follow Hugging Face transformers' Llama /
// Qwen2 / Mixtral modules exactly (noted per op). Ops never allocate per call except where noted,
// never print, and check their parameters with NF_CHECK (Error kInternal: a caller bug).
//
// `pool` (optional, may be null = serial) spreads an op over the cores. `linear` uses OpenBLAS's own
// threads instead (see set_blas_threads).
#pragma once
#include <cstdint>
#include <string>

#include "runtime/cpu/thread_pool.h"

namespace nanoflow::cpu {

// ---- GEMM ------------------------------------------------------------------------------------
// OpenBLAS thread count for all later GEMMs (process-wide; OpenBLAS has one setting).
void set_blas_threads(int n);
// The kernel set OpenBLAS picked at load ("Haswell", "SkylakeX", "Prescott", ...).
std::string blas_core_name();
// Non-empty when OpenBLAS fell back to generic SSE kernels ("Prescott") on a CPU with AVX2 or
// AVX-512 (it happens with CPUs newer than the library, e.g. in VMs): the OPENBLAS_CORETYPE
// value to use instead ("SkylakeX" / "Haswell"). OpenBLAS reads that variable only when the
// library loads, so it must be in the environment before the process starts.
std::string blas_better_coretype();

// y[m, n] = x[m, k] · w[n, k]^T (+ bias[n] if non-null). w is a torch Linear weight ([out, in]).
// ldx / ldy: row strides of x / y in elements (0 = k / n).
struct LinearParams {
  int64_t m = 0, n = 0, k = 0;
  int64_t ldx = 0, ldy = 0;
  bool accumulate = false;  // y += x·w^T instead of y = x·w^T (bias still added once if given)
};
void linear(const LinearParams& p, const float* x, const float* w, const float* bias, float* y);

// Packed-weight GEMM (what the CPU model uses; same math as linear, no accumulate). The weight is
// packed once (pack_weight) into panels of 16 output rows, transposed:
//   packed[p][kk][j] = w[16p + j][kk], p < n_pad/16, n_pad = n rounded up to 32 (zero rows)
// so each call streams every weight exactly once whatever m is (sgemm re-packs w per call).
// AVX-512 micro-kernel when the CPU has it, portable loops otherwise. Threads split columns.
int64_t packed_weight_floats(int64_t n, int64_t k);  // size of the packed buffer in floats
void pack_weight(const float* w, int64_t n, int64_t k, float* packed);
void linear_packed(const LinearParams& p, const float* x, const float* packed, const float* bias, float* y,
                   ThreadPool* pool = nullptr);
// The same with the packed weight stored as bf16 (rounded to nearest even; same panel layout,
// uint16 elements): half the bytes streamed per step, f32 arithmetic. Not bit-compatible with
// the f32 model unless the weights are bf16-exact.
void pack_weight_bf16(const float* w, int64_t n, int64_t k, uint16_t* packed);
void linear_packed_bf16(const LinearParams& p, const float* x, const uint16_t* packed, const float* bias, float* y,
                        ThreadPool* pool = nullptr);

// ---- elementwise / row ops -------------------------------------------------------------------
// out[t, :] = table[ids[t], :]. table: [vocab, dim]; out: [n, dim]. Throws Error(kInvalidInput)
// for an id outside [0, vocab).
void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n, float* out);

// RMSNorm fused with the residual add (HF LlamaRMSNorm, computed in f32):
//   if add != null: residual[r, :] += add[r, :]        (the residual stream is updated in place)
//   out[r, :] = residual[r, :] * rsqrt(mean(residual[r, :]^2) + eps) * weight[:]
// residual/add/out: [rows, dim]; out may alias add but not residual.
struct RmsNormParams {
  int64_t rows = 0, dim = 0;
  float eps = 1e-5f;
};
void add_rmsnorm(const RmsNormParams& p, float* residual, const float* add, const float* weight, float* out,
                 ThreadPool* pool = nullptr);

// x[r, c] += bias[c]; x: [rows, cols] with row stride ld (0 = cols).
void add_bias(float* x, const float* bias, int64_t rows, int64_t cols, int64_t ld = 0);

// SwiGLU (HF LlamaMLP act): out[r, i] = silu(gate[r, i]) * up[r, i], silu(x) = x / (1 + exp(-x)).
// gate/up: row stride ld_in (0 = inter); out: [rows, inter] contiguous. With a fused gate|up GEMM
// output [rows, 2*inter]: gate = buf, up = buf + inter, ld_in = 2*inter.
void silu_mul(const float* gate, const float* up, float* out, int64_t rows, int64_t inter, int64_t ld_in = 0,
              ThreadPool* pool = nullptr);

// Row-wise softmax / log-softmax in place over [rows, cols] (max-subtracted, f32).
void softmax(float* x, int64_t rows, int64_t cols);
void log_softmax(float* x, int64_t rows, int64_t cols);

// ---- RoPE ------------------------------------------------------------------------------------
enum class RopeType : uint8_t { kDefault, kLlama3 };
struct RopeParams {
  int64_t head_dim = 0;  // rotary dim = head_dim (even)
  float theta = 10000.0f;
  RopeType type = RopeType::kDefault;
  // llama3 scaling (HF _compute_llama3_parameters)
  float factor = 8.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position = 8192;
};
// inv_freq[i], i < head_dim/2, as HF computes it in f32: 1 / theta^(2i/head_dim), then llama3
// wavelength-dependent scaling (long wavelengths divided by factor, a smooth blend in between).
void rope_inv_freq(const RopeParams& p, float* inv_freq);

// Applies rotary embedding in place with HF's rotate_half (neox) layout: within each head the
// pairs are (x[i], x[i + head_dim/2]); angle = f32(position * inv_freq[i]);
//   x[i]        <- x[i] cos - x[i+h] sin
//   x[i + h]    <- x[i+h] cos + x[i] sin
// x: [n, heads, head_dim] with row stride ld (elements between tokens; 0 = heads*head_dim), so q
// and k can be rotated inside a fused QKV buffer. positions: [n].
void rope(const RopeParams& p, const float* inv_freq, float* x, int64_t n, int64_t heads, int64_t ld,
          const int32_t* positions, ThreadPool* pool = nullptr);

// ---- paged KV + attention --------------------------------------------------------------------
// One layer's paged K/V pools (DESIGN.md §4): page_size tokens a page, layout
//   k_pool, v_pool: [num_pages][page_size][num_kv_heads][head_dim] f32
// Position j of a sequence lives in page page_ids[page_start[s] + j / page_size], slot
// j % page_size.
struct PagedKv {
  float* k_pool = nullptr;
  float* v_pool = nullptr;
  int64_t num_pages = 0;
  int32_t page_size = 16;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
};

// The batch as attention sees it (the arrays of a BatchPlan; see model/batch_plan.h). Sequence s
// owns query rows [q_start[s], q_start[s+1]); its KV after this step covers positions
// [0, kv_len[s]) and its query rows are the last q_len of those positions.
struct AttnBatch {
  int32_t num_seqs = 0;
  const int32_t* q_start = nullptr;     // [num_seqs + 1]
  const int32_t* kv_len = nullptr;      // [num_seqs]
  const int32_t* page_start = nullptr;  // [num_seqs + 1] CSR into page_ids
  const int32_t* page_ids = nullptr;    // pages in position order per sequence
};

// Writes this step's K/V rows into their pages: token row t of sequence s (position
// kv_len[s] - q_len + (t - q_start[s])). k, v: [num_tokens, num_kv_heads, head_dim] with row
// stride ld (0 = kv_heads*head_dim).
void kv_write(const PagedKv& kv, const AttnBatch& b, const float* k, const float* v, int64_t ld = 0);

// Causal GQA attention over the paged cache (call kv_write first): query row at position p
// attends to positions [0, p] of its own sequence. Query head h uses KV head
// h / (num_heads / num_kv_heads). softmax(q·k^T * scale) · v in f32 (HF eager attention).
// q: [num_tokens, num_heads, head_dim] with row stride ldq (0 = num_heads*head_dim);
// out: [num_tokens, num_heads, head_dim] contiguous. Uses a per-thread score buffer of at most
// max kv_len floats (allocated per call).
struct AttnParams {
  int32_t num_heads = 0;
  float scale = 0.0f;  // 0 = 1/sqrt(head_dim)
};
void paged_attention(const AttnParams& p, const PagedKv& kv, const AttnBatch& b, const float* q, int64_t ldq,
                     float* out, ThreadPool* pool = nullptr);

// Copies page src to page dst (K and V) in one layer's pools.
void kv_copy_page(const PagedKv& kv, int32_t src, int32_t dst);

// ---- MoE routing -----------------------------------------------------------------------------
// Mixtral router (HF MixtralSparseMoeBlock / MixtralTopKRouter): probs = softmax(logits) over all
// experts (f32), take the top_k largest (ties: lower expert index first), renormalize them to sum 1.
// logits: [rows, num_experts]; experts, weights: [rows, top_k], ordered by descending prob.
void moe_route(const float* logits, int64_t rows, int64_t num_experts, int64_t top_k, int32_t* experts,
               float* weights);

}  // namespace nanoflow::cpu
