// A pipeline schedule as data (DESIGN.md §4 "Pipeline schedule as data"): a small DAG whose nodes
// are (op, layer, nano-batch token range, stream, SM count) and whose edges are dependencies. The
// executor takes a schedule and validates it before running it; the sequential engine is the
// schedule with one nano-batch on one stream (`sequential_schedule`); any other comes from JSON
// (written by `nanoflow schedule` / engine/schedule_kinds.h or `nanoflow tune`) and runs through
// engine/schedule_runner.h.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/forward_ops.h"

namespace nanoflow::engine {

// The ops of one layer, in data-flow order; kEmbed, kLmHead and kSample appear once (layer -1).
using PipelineOp = ForwardOp;
const char* pipeline_op_name(PipelineOp op);
// The ops that run GEMMs (QKV, O, gate-up, down projections and the LM head).
bool is_gemm_op(PipelineOp op);

struct ScheduleNode {
  PipelineOp op = PipelineOp::kEmbed;
  int32_t layer = -1;            // -1 for kEmbed / kLmHead / kSample
  int32_t nano_batch = 0;        // index into PipelineSchedule::nano_batches
  int32_t stream = 0;            // index into PipelineSchedule::streams
  std::vector<int32_t> deps;     // indices of nodes that must finish first
};

struct ScheduleStream {
  int32_t sm_count = 0;          // 0 = the whole GPU (no partition); else a multiple of 8
  int32_t gemm_sm_count = 0;     // > 0: the stream's GEMMs target this many SMs (SM_COUNT_TARGET)
                                 // instead of sm_count (JSON "gemm_sm_count", optional)
  bool remainder = false;        // the partition also takes the SMs left over from the driver's equal
                                 // groups (12 on a 132-SM Hopper; JSON "remainder", optional); such
                                 // a stream may run no GEMM (DESIGN.md: GEMMs on equal groups only)
};

// Which iterations run through the schedule; the others run the sequential forward (decode-only
// ones through their CUDA graphs). JSON "iterations": "mixed" (the default: those with prefill
// tokens), "decode" (decode-only ones) or "all".
enum class ScheduleIterations : uint8_t { kMixed, kDecode, kAll };
const char* schedule_iterations_name(ScheduleIterations it);  // "mixed", "decode", "all"
// Throws Error(kInvalidInput) for any other name.
ScheduleIterations schedule_iterations_from_name(const std::string& name);

struct PipelineSchedule {
  std::string name;
  // Nano-batches as fractions of the iteration's tokens: [begin, end) in 1/1024ths; together they
  // must tile [0, 1024) exactly. Each boundary is moved to the nearest sequence boundary of the
  // iteration (nano-batches hold whole sequences) ...
  std::vector<std::pair<int32_t, int32_t>> nano_batches;
  // ... unless `split_at_decode` (JSON "split": "decode"; needs exactly two nano-batches): then
  // nano-batch 0 is the decode sequences and 1 the prefill chunks, whatever the fractions say.
  bool split_at_decode = false;
  ScheduleIterations iterations = ScheduleIterations::kMixed;
  std::vector<ScheduleStream> streams;
  std::vector<ScheduleNode> nodes;

  // Throws Error(kInvalidInput) naming the problem: a dependency out of range or a cycle; a
  // stream/nano-batch index out of range; nano-batches that do not tile the batch; any
  // (op, layer, nano-batch) missing or covered twice; a per-layer op before its producer.
  // Returns an order to launch the nodes in: the list order when every dependency comes earlier in
  // the list (streams then run their nodes in list order), else a topological order.
  std::vector<int32_t> validate(int32_t num_layers) const;
  // True when this is one nano-batch on one whole-GPU stream (what the CUDA executor runs now).
  bool is_sequential() const;
  // Whether an iteration (decode-only or not) runs through this schedule.
  bool runs(bool decode_only) const;

  nlohmann::json to_json() const;
  static PipelineSchedule from_json(const nlohmann::json& j);
};

// A schedule file (JSON): kNotFound when it cannot be read, kInvalidInput when it is not a schedule;
// validated against a model separately (validate). Writing throws kInvalidInput when it fails.
PipelineSchedule read_schedule_file(const std::string& path);
void write_schedule_file(const PipelineSchedule& s, const std::string& path);

// The sequential schedule: one nano-batch, one stream, every op after the previous one.
PipelineSchedule sequential_schedule(int32_t num_layers);

}  // namespace nanoflow::engine
