// The kinds of pipeline schedule the project generates (DESIGN.md §4: schedules are data, written
// by a generator or the tuner, never by hand in C++), for `nanoflow schedule` and `nanoflow tune`:
//   sequential       one nano-batch on one whole-GPU stream (the engine's default).
//   decode-overlap   two nano-batches split at the decode sequences; stream 0 (gemm_sms) runs every
//                    GEMM and elementwise op and the prefill attention, stream 1 (attn_sms) the decode
//                    attention of nano-batch 0 under nano-batch 1's layer.
//   decode-overlap-phased
//                    the same on three streams in two phases per layer: stream 0 (whole GPU) runs
//                    nano-batch 0's O projection, MLP and next norm + QKV + RoPE alone; then stream 1
//                    (gemm_sms) runs nano-batch 1's layer while stream 2 (attn_sms) runs nano-batch 0's
//                    decode attention.
//   pipeline         NanoFlow's interleaving: two nano-batches by tokens (share: nano-batch 0's part in
//                    1/1024ths), every attention on stream 1 under the other nano-batch's O projection,
//                    MLP and next QKV on stream 0 — for decode-heavy iterations (iterations: decode).
// SM counts are 0 (the whole GPU, a plain stream) or multiples of 8 (green-context partitions);
// attn_remainder gives the attention stream's partition the SMs the driver's equal groups leave
// over. Names match the specs ("pipeline-88-32-rattn-decode"), so a tuner report reads back.
#pragma once
#include <cstdint>
#include <string>

#include "engine/pipeline_schedule.h"

namespace nanoflow::engine {

enum class ScheduleKind : uint8_t { kSequential, kDecodeOverlap, kDecodeOverlapPhased, kPipeline };

struct ScheduleSpec {
  ScheduleKind kind = ScheduleKind::kSequential;
  int32_t gemm_sms = 96;        // the GEMM stream's partition (0 = whole GPU)
  int32_t attn_sms = 24;        // the attention stream's partition (0 = whole GPU)
  int32_t gemm_sm_target = 0;   // > 0: the GEMM stream's GEMMs target this many SMs
  int32_t share = 512;          // pipeline: nano-batch 0's share of the tokens, 1/1024ths
  bool attn_remainder = false;  // the attention partition also takes the remainder SMs
  ScheduleIterations iterations = ScheduleIterations::kMixed;
};

const char* schedule_kind_name(ScheduleKind k);
// Throws Error(kInvalidInput) for an unknown name.
ScheduleKind schedule_kind_from_name(const std::string& name);

// The schedule for a model of `layers` layers, validated. Throws Error(kInvalidInput) naming the
// problem (SM counts not 0 or multiples of 8, a share outside 1..1023 or on another kind, the
// remainder on a whole-GPU stream or the sequential kind, a split at decode on decode-only
// iterations).
PipelineSchedule make_schedule(const ScheduleSpec& spec, int32_t layers);

// "KIND[:GEMM_SMS:ATTN_SMS[:REMAINDER[:ITERATIONS]]]", REMAINDER none|attn, ITERATIONS
// mixed|decode|all: e.g. "sequential", "decode-overlap:0:24", "pipeline:88:32:attn:decode".
// Throws Error(kInvalidInput) naming the bad part.
ScheduleSpec parse_schedule_spec(const std::string& text);

}  // namespace nanoflow::engine
