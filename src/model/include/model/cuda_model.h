// The Llama-family model on one GPU (DESIGN.md §5): bf16 weights in a device arena, the forward
// over a BatchPlan as a sequence of kernels/cuda launches on one stream, and the paged KV pool in
// the memory left after weights and workspaces (with a safety margin).
//
// Only built with CUDA (NANOFLOW_HAVE_CUDA); include it only from code compiled in that case.
//
// Device memory, in order of allocation:
//   weights arena   [embed | per layer: attn_norm, qkv, (qkv_bias), o_proj, mlp_norm, gate_up, down
//                    (or router + experts) | final_norm | (lm_head)]          exactly sized
//   workspace arena [plan buffer | activations for max_batch_tokens | logits for max_sampled rows |
//                    decode-attention split workspace]                         exactly sized
//   cuBLASLt algorithms are chosen (autotuned on scratch memory that is freed again) before
//   KV pool         [layer][K|V][page][16 slots][kv_heads][head_dim] bf16: all free memory minus
//                    `kv_margin_bytes`, unless num_kv_pages is given; one page more than
//                    num_kv_pages() reports: the scratch page that padded sequences of graphed
//                    decode iterations write (never handed out).
//   graph inputs    [max_sampled] i32: the previous samples, copied here before a graph replays
//
// CUDA graphs (DESIGN.md §4): decode-only forwards (every sequence one query token) run through a
// graph per (sequence bucket, KV bucket). The executor pads the packed plan to the bucket
// (CudaPlanStaging::pad_decode) so that every launch parameter depends on the buckets only, and
// calls forward_device_graphed. Captured lazily: a bucket's first forward runs eagerly (it warms
// whatever is chosen on first use: cuBLASLt's per-exact-m checks, lazily loaded kernels), the
// second is captured (host time logged and counted in graph_stats) and replayed, later ones
// replay. Nothing is captured at start-up, so start-up costs nothing more. Prefill and mixed
// forwards stay eager: their token counts, tile lists and sequence mixes vary too much to bucket
// cheaply. The op profiler (NANOFLOW_OP_PROFILE) forces eager launches (it records events
// between ops).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/forward_ops.h"
#include "model/model.h"

namespace nanoflow {

struct CudaModelOptions {
  int device = 0;
  int32_t max_batch_tokens = 2048;  // tokens one forward may carry (activation workspaces)
  int32_t max_seqs = 512;           // sequences one forward may carry
  int32_t max_sampled = 512;        // sampled rows one forward may carry (logits buffer)
  int32_t max_model_len = 0;        // 0 = the config's max_position_embeddings (page-table room)
  int64_t num_kv_pages = 0;         // 0 = every byte left after weights/workspaces minus the margin
  size_t kv_margin_bytes = size_t{1} << 30;  // left free for the driver, cuBLASLt, graphs, peers
  double gpu_memory_utilization = 0.0;       // > 0: also cap used memory at this fraction (kv_budget.h)
  bool autotune_gemms = true;       // time cuBLASLt candidates per m bucket at start-up
  // Round where transformers' eager bf16 forward rounds, everywhere: attention scores and
  // probabilities in bf16 with the softmax normalized before the P·V product (a three-pass paged
  // attention kernel instead of the flash-style ones), residual adds un-fused from the GEMMs. For
  // checking against transformers token for token; slower (attention several times, no nano-batch
  // lanes). Off: the fast kernels, which differ from transformers by bf16 rounding noise only.
  // Mixtral's expert combine is that of transformers 5's default grouped_mm experts in both modes
  // (the weighted expert outputs summed in f32, rounded once). The attention kernel keeps a row's
  // scores in shared memory, so load refuses a max_model_len it cannot hold (~57k tokens on Hopper).
  bool transformers_numerics = false;
  int32_t num_layers_override = 0;  // > 0: keep only the first N layers (reduced models for tests)
  uint64_t preset_seed = 0x6e616e6f666c6f77ull;  // random-weight presets: init seed
  // Streams ("lanes") of a nano-batch pipeline schedule, by SM count: 0 = the whole GPU (a plain
  // stream), else a green-context partition of that many SMs (multiple of 8). Each lane gets its
  // own stream, GEMM runner (workspace; algorithms chosen at start-up with SM_COUNT_TARGET = its
  // SMs) and decode-attention workspace, before the KV pool is sized. Empty: no lanes.
  std::vector<int32_t> lane_sm_counts;
  // Per lane (empty = all 0): > 0 sets the lane's GEMMs' SM_COUNT_TARGET to this instead of the
  // lane's SM count — e.g. a whole-GPU lane whose GEMM grids fill only part of the SMs, leaving the
  // rest to another lane's kernels without confining this lane's other kernels.
  std::vector<int32_t> lane_gemm_sm_targets;
  // The lane (index; -1 = none) whose green-context partition also takes the SMs left over from
  // the driver's equal groups (12 on a 132-SM Hopper), which no partition gets otherwise.
  int32_t lane_remainder = -1;
};

// One iteration's plan in device memory: fixed buffers filled by one async copy from pinned host
// memory (CudaPlanStaging). Offsets are fixed at start-up, so the device pointers never change.
struct CudaPlanLayout {
  // Capacities
  int32_t max_tokens = 0, max_seqs = 0, max_sampled = 0, max_tiles = 0, max_pages = 0;
  // Byte offsets of each array in the buffer (all 16-byte aligned). Order: small arrays first,
  // page_ids last so a copy of the used prefix is enough.
  size_t token_ids = 0, positions = 0, q_start = 0, kv_len = 0, page_start = 0, sample_rows = 0;
  // token_ids has max_tokens + 1 entries: the last is the dump row that the filler deferred
  // pairs of a padded decode plan write (pad_decode); no kernel reads it.
  size_t tiles = 0;       // prefill-attention work list [max_tiles, 2]
  size_t deferred = 0;    // [max_tokens, 2] (token row, index into the previous samples)
  size_t temperature = 0, top_p = 0, min_p = 0, top_k = 0, seed = 0, step = 0;  // per sampled row
  size_t page_ids = 0;
  size_t bytes = 0;
  static CudaPlanLayout make(int32_t max_tokens, int32_t max_seqs, int32_t max_sampled, int32_t max_pages);
};

// Sampling parameters of one sampled row (GPU sampler inputs).
struct SampleRowParams {
  float temperature = 0.f, top_p = 1.f, min_p = 0.f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  int64_t step = 0;
};

// Facts about the packed plan the host needs to launch (grid sizes, kernel choices).
struct CudaPlanShape {
  int32_t num_tokens = 0, num_seqs = 0, num_sampled = 0;
  int32_t num_decode = 0;       // leading sequences with one query token (decode attention)
  int32_t num_tiles = 0;        // prefill tiles of the remaining sequences
  int32_t max_decode_kv = 0;    // longest KV among the decode sequences
  int32_t max_kv = 0;           // longest KV of all
  int32_t num_deferred = 0;
  int64_t sum_decode_kv = 0;    // KV tokens read by decode attention (summed over decode seqs)
  int64_t prefill_attended = 0; // (query, key) pairs of the prefill sequences under the causal mask
  size_t used_bytes = 0;        // prefix of the buffer to copy
};

// Cuts a packed plan into nano-batches of whole sequences. `fractions`: [begin, end) in 1/1024ths
// of the plan's tokens, tiling [0, 1024); each boundary goes to the sequence boundary nearest to
// its share of the tokens (never backwards, so nano-batches may be empty). `at_decode` (exactly two
// nano-batches): the boundary is the end of the decode sequences instead. Regroups the prefill tile
// list ([num_tiles] (sequence, tile) pairs, heaviest first) in place by nano-batch, keeping its
// order inside each, so each nano-batch's tiles are one range. Host only.
std::vector<NanoBatchRange> split_nano_batches(const int32_t* q_start, int32_t* tiles, const int32_t* sample_rows,
                                               const CudaPlanShape& shape,
                                               const std::vector<std::pair<int32_t, int32_t>>& fractions,
                                               bool at_decode);

// Sequence buckets of graphed decode forwards: 1, 2, 4, ..., 128, then steps of 64, the last one
// `cap` (the smallest of the model's max_seqs, max_batch_tokens and max_sampled). Returns the
// smallest bucket >= num_seqs, or 0 when num_seqs > cap (or <= 0).
int32_t decode_graph_seq_bucket(int32_t num_seqs, int32_t cap);
// KV buckets: the decode-attention split plan is made for the bucket instead of the batch's longest
// KV (splits past a sequence's KV do no work): powers of two from 256 (one split's minimum).
int32_t decode_graph_kv_bucket(int32_t max_decode_kv);

// Host side: packs a BatchPlan into a pinned buffer with CudaPlanLayout (no allocation per call).
// `pinned = false` uses ordinary memory (host-only tests of the packing; upload then copies
// synchronously).
class CudaPlanStaging {
 public:
  explicit CudaPlanStaging(const CudaPlanLayout& layout, bool pinned = true);
  ~CudaPlanStaging();
  CudaPlanStaging(const CudaPlanStaging&) = delete;
  CudaPlanStaging& operator=(const CudaPlanStaging&) = delete;
  // Validates capacities (Error kInvalidInput naming the limit) and token ids < vocab; deferred:
  // flattened (token row, sample index) pairs; rows: sampling parameters (may be empty).
  CudaPlanShape pack(const BatchPlan& plan, const std::vector<int32_t>& deferred_pairs,
                     const std::vector<SampleRowParams>& rows, int64_t vocab);
  // Pads a packed decode-only plan (every sequence one token) in place to `seq_bucket` sequences
  // so that a graph of that bucket can run it. Padded sequence i (num_seqs <= i < seq_bucket):
  // token id 0 at position 0, kv_len 1, one page: `scratch_page`. Sample rows are filled up to
  // seq_bucket (the logits of the extra rows are ignored) and deferred pairs up to seq_bucket with
  // (dump row = layout.max_tokens, sample index 0). The shape then says num_tokens = num_seqs =
  // num_decode = num_sampled = num_deferred = seq_bucket and max_decode_kv = max_kv = kv_bucket.
  // Returns false, changing nothing, when the plan is not decode-only or does not fit.
  bool pad_decode(CudaPlanShape& shape, int32_t seq_bucket, int32_t kv_bucket, int32_t scratch_page);
  // One cudaMemcpyAsync of the used prefix into `device` (a buffer of layout.bytes).
  void upload(void* device, const CudaPlanShape& shape, cudaStream_t stream) const;
  const CudaPlanLayout& layout() const { return layout_; }
  const uint8_t* data() const { return host_; }  // the packed bytes (layout offsets)
  // split_nano_batches over the packed plan: after pack (not after pad_decode), before upload (it
  // reorders the packed tile list).
  std::vector<NanoBatchRange> split(const CudaPlanShape& shape, const std::vector<std::pair<int32_t, int32_t>>& fractions,
                                    bool at_decode);

 private:
  CudaPlanLayout layout_;
  bool pinned_ = true;
  uint8_t* host_ = nullptr;  // layout_.bytes, pinned unless constructed otherwise
};

struct CudaGraphStats {
  int64_t warmups = 0;     // graphed-decode forwards run eagerly: a bucket's first, or profiling
  int64_t captures = 0;    // graphs captured (each then replayed at once)
  int64_t replays = 0;     // forwards run by replaying a graph (captures included)
  int64_t failures = 0;    // captures that failed (that bucket then stays eager)
  double capture_ms = 0;   // host time of all captures + instantiations
  int64_t graphs = 0;      // graphs held
};

class CudaModel : public Model {
 public:
  // `path`: an HF folder, a .gguf file or "preset:<name>" (random weights initialized on the GPU).
  static std::unique_ptr<CudaModel> load(const std::string& path, const CudaModelOptions& options);

  // Runs the forward over the plan already in the model's device plan buffer (upload it with
  // staging().upload(plan_buffer(), ...) on stream()). Writes f32 logits of the sampled rows into
  // logits_device() [num_sampled, vocab]. Launches only; nothing is synchronized.
  virtual void forward_device(const CudaPlanShape& shape, const int32_t* prev_samples) = 0;

  // A decode-only forward over a plan padded by CudaPlanStaging::pad_decode (already in the plan
  // buffer): copies the `num_prev` previous samples into the model's fixed graph input (a graph
  // bakes its pointers in), then runs the (sequences, KV) bucket's graph — captured on the bucket's
  // second forward; the first runs eagerly. Returns true when a graph ran. Launches only.
  virtual bool forward_device_graphed(const CudaPlanShape& padded, const int32_t* prev_samples, int32_t num_prev) = 0;
  // The KV page padded sequences use; outside [0, num_kv_pages()).
  virtual int32_t scratch_page() const = 0;
  virtual CudaGraphStats graph_stats() const = 0;

  // Nano-batch pipelines (the engine's schedule runner): forward_device is forward_prologue, then
  // every op over the whole plan on stream(); a schedule instead runs forward_prologue on stream()
  // and then each (op, layer, nano-batch) with forward_op on a lane (options().lane_sm_counts)
  // after the lane has waited for stream(). kSample does nothing here (the executor samples all
  // rows after joining the lanes). Launches only. Throws kUnsupported for a model whose attention
  // has no nano-batch form (untuned head sizes), kInternal for an unknown lane or a layer out of
  // range for the op. GEMM operands at nano-batch row offsets may be aligned to less than 256
  // bytes (small hidden sizes): the GEMM runner then takes an algorithm for their alignment.
  virtual void forward_prologue(const CudaPlanShape& shape, const int32_t* prev_samples) = 0;
  virtual void forward_op(ForwardOp op, int32_t layer, const NanoBatchRange& range, int32_t lane,
                          const CudaPlanShape& shape) = 0;
  virtual cudaStream_t lane_stream(int32_t lane) const = 0;

  virtual cudaStream_t stream() const = 0;
  virtual void* plan_buffer() const = 0;        // device, layout().bytes
  virtual const CudaPlanLayout& layout() const = 0;
  virtual float* logits_device() const = 0;     // [max_sampled, vocab]
  virtual const CudaModelOptions& options() const = 0;
  virtual std::string memory_report() const = 0;  // weights / workspaces / KV, in GiB
  virtual double startup_seconds() const = 0;      // load + GEMM autotune
  // GPU time by op of the forwards profiled under NANOFLOW_OP_PROFILE=N (JSON text; empty when
  // off). Reads the last profiled forward's events (synchronizes on them).
  virtual std::string op_profile_report() = 0;
};

inline std::unique_ptr<CudaModel> load_cuda_model(const std::string& path, const CudaModelOptions& options) {
  return CudaModel::load(path, options);
}

}  // namespace nanoflow
