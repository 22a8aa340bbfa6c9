// The ops a forward is made of, and the slice of an iteration one of them runs over: what a
// pipeline schedule (engine/pipeline_schedule.h, DESIGN.md §4) arranges into nano-batches and
// streams, and what CudaModel::forward_op runs.
#pragma once
#include <cstdint>

namespace nanoflow {

// The ops of one layer, in data-flow order; kEmbed, kLmHead and kSample appear once (layer -1).
enum class ForwardOp : uint8_t {
  kEmbed, kAttnNorm, kQkv, kRopeKv, kAttention, kOProj, kMlpNorm, kGateUp, kAct, kDown, kLmHead, kSample
};

// One nano-batch of an iteration's packed plan: whole sequences [seq_begin, seq_end) owning tokens
// [token_begin, token_end); of them [seq_begin, decode_end) are decode sequences (one query token,
// decode attention), the rest run prefill attention through tiles [tile_begin, tile_end); the
// sampled rows of its tokens are [sample_begin, sample_end). May be empty.
struct NanoBatchRange {
  int32_t token_begin = 0, token_end = 0;
  int32_t seq_begin = 0, seq_end = 0;
  int32_t decode_end = 0;
  int32_t tile_begin = 0, tile_end = 0;
  int32_t sample_begin = 0, sample_end = 0;

  int32_t tokens() const { return token_end - token_begin; }
  int32_t decode_seqs() const { return decode_end - seq_begin; }
  int32_t tiles() const { return tile_end - tile_begin; }
  int32_t sampled() const { return sample_end - sample_begin; }
};

}  // namespace nanoflow
