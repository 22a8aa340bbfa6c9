#include "engine/schedule_kinds.h"

#include <algorithm>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/strings.h"

namespace nanoflow::engine {
namespace {

constexpr const char* kKindNames[] = {"sequential", "decode-overlap", "decode-overlap-phased", "pipeline"};

constexpr PipelineOp kPre[] = {PipelineOp::kAttnNorm, PipelineOp::kQkv, PipelineOp::kRopeKv};
constexpr PipelineOp kPost[] = {PipelineOp::kOProj, PipelineOp::kMlpNorm, PipelineOp::kGateUp, PipelineOp::kAct,
                                PipelineOp::kDown};

// Appends nodes; each depends on its nano-batch's previous node (data flow) plus any extra ones.
class Builder {
 public:
  explicit Builder(PipelineSchedule* s) : s_(s) {}
  int32_t add(PipelineOp op, int32_t layer, int32_t nb, int32_t stream, std::vector<int32_t> extra = {}) {
    ScheduleNode n;
    n.op = op;
    n.layer = layer;
    n.nano_batch = nb;
    n.stream = stream;
    if (auto it = last_.find(nb); it != last_.end()) n.deps.push_back(it->second);
    for (int32_t d : extra)
      if (std::find(n.deps.begin(), n.deps.end(), d) == n.deps.end()) n.deps.push_back(d);
    s_->nodes.push_back(std::move(n));
    return last_[nb] = static_cast<int32_t>(s_->nodes.size()) - 1;
  }
  template <size_t N>
  void add_all(const PipelineOp (&ops)[N], int32_t layer, int32_t nb, int32_t stream) {
    for (PipelineOp op : ops) add(op, layer, nb, stream);
  }
  int32_t last(int32_t nb) const { return last_.at(nb); }

 private:
  PipelineSchedule* s_;
  std::map<int32_t, int32_t> last_;
};

void layer(Builder& b, int32_t l, int32_t nb, int32_t stream) {
  b.add_all(kPre, l, nb, stream);
  b.add(PipelineOp::kAttention, l, nb, stream);
  b.add_all(kPost, l, nb, stream);
}

ScheduleStream gemm_stream(const ScheduleSpec& sp) { return {sp.gemm_sms, sp.gemm_sm_target, false}; }

void decode_overlap(PipelineSchedule& s, const ScheduleSpec& sp, int32_t layers) {
  constexpr int32_t G = 0, A = 1;
  s.name = "decode-overlap-" + std::to_string(sp.gemm_sms) + "-" + std::to_string(sp.attn_sms);
  s.nano_batches = {{0, 341}, {341, 1024}};
  s.split_at_decode = true;
  s.streams = {gemm_stream(sp), {sp.attn_sms, 0, false}};
  Builder b(&s);
  b.add(PipelineOp::kEmbed, -1, 0, G);
  b.add(PipelineOp::kEmbed, -1, 1, G);
  for (int32_t l = 0; l < layers; ++l) {
    b.add_all(kPre, l, 0, G);
    b.add(PipelineOp::kAttention, l, 0, A);
    layer(b, l, 1, G);
    b.add_all(kPost, l, 0, G);
  }
  for (int32_t nb : {0, 1}) b.add(PipelineOp::kLmHead, -1, nb, G);
  for (int32_t nb : {0, 1}) b.add(PipelineOp::kSample, -1, nb, G);
}

void decode_overlap_phased(PipelineSchedule& s, const ScheduleSpec& sp, int32_t layers) {
  constexpr int32_t F = 0, G = 1, A = 2;
  s.name = "decode-overlap-phased-" + std::to_string(sp.gemm_sms) + "-" + std::to_string(sp.attn_sms);
  s.nano_batches = {{0, 341}, {341, 1024}};
  s.split_at_decode = true;
  s.streams = {{0, 0, false}, gemm_stream(sp), {sp.attn_sms, 0, false}};
  Builder b(&s);
  b.add(PipelineOp::kEmbed, -1, 0, F);
  b.add(PipelineOp::kEmbed, -1, 1, G);
  b.add_all(kPre, 0, 0, F);
  for (int32_t l = 0; l < layers; ++l) {
    const int32_t prelude = b.last(0);
    b.add(PipelineOp::kAttention, l, 0, A);
    // Nano-batch 1's layer starts after nano-batch 0's prelude (the phases stay apart) ...
    b.add(kPre[0], l, 1, G, {prelude});
    for (size_t i = 1; i < std::size(kPre); ++i) b.add(kPre[i], l, 1, G);
    b.add(PipelineOp::kAttention, l, 1, G);
    b.add_all(kPost, l, 1, G);
    // ... and nano-batch 0's O projection after nano-batch 1's whole layer.
    b.add(PipelineOp::kOProj, l, 0, F, {b.last(1)});
    for (size_t i = 1; i < std::size(kPost); ++i) b.add(kPost[i], l, 0, F);
    if (l + 1 < layers) b.add_all(kPre, l + 1, 0, F);
  }
  b.add(PipelineOp::kLmHead, -1, 0, F);
  b.add(PipelineOp::kLmHead, -1, 1, G);
  b.add(PipelineOp::kSample, -1, 0, F);
  b.add(PipelineOp::kSample, -1, 1, G);
}

void pipeline(PipelineSchedule& s, const ScheduleSpec& sp, int32_t layers) {
  constexpr int32_t G = 0, A = 1;
  s.name = "pipeline-" + std::to_string(sp.gemm_sms) + "-" + std::to_string(sp.attn_sms);
  if (sp.share != 512) s.name += "-s" + std::to_string(sp.share);
  s.nano_batches = {{0, sp.share}, {sp.share, 1024}};
  s.streams = {gemm_stream(sp), {sp.attn_sms, 0, false}};
  Builder b(&s);
  b.add(PipelineOp::kEmbed, -1, 0, G);
  b.add(PipelineOp::kEmbed, -1, 1, G);
  b.add_all(kPre, 0, 0, G);
  for (int32_t l = 0; l < layers; ++l) {
    b.add(PipelineOp::kAttention, l, 0, A);
    if (l > 0) b.add_all(kPost, l - 1, 1, G);  // under nano-batch 0's attention: 1 finishes l-1, starts l
    b.add_all(kPre, l, 1, G);
    b.add(PipelineOp::kAttention, l, 1, A);
    b.add_all(kPost, l, 0, G);  // under nano-batch 1's attention: 0 finishes l, starts l+1
    if (l + 1 < layers) b.add_all(kPre, l + 1, 0, G);
  }
  b.add_all(kPost, layers - 1, 1, G);
  for (int32_t nb : {0, 1}) b.add(PipelineOp::kLmHead, -1, nb, G);
  for (int32_t nb : {0, 1}) b.add(PipelineOp::kSample, -1, nb, G);
}

int32_t parse_int(const std::string& text, const std::string& what, const std::string& spec) {
  size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  NF_CHECK_INPUT(!text.empty() && used == text.size()) << "schedule spec '" << spec << "': " << what << " '" << text
                                                       << "' is not a number";
  return v;
}

}  // namespace

const char* schedule_kind_name(ScheduleKind k) { return kKindNames[static_cast<size_t>(k)]; }

ScheduleKind schedule_kind_from_name(const std::string& name) {
  size_t k = 0;
  while (k < std::size(kKindNames) && name != kKindNames[k]) ++k;
  NF_CHECK_INPUT(k < std::size(kKindNames)) << "schedule kind '" << name
                                            << "' (sequential, decode-overlap, decode-overlap-phased or pipeline)";
  return static_cast<ScheduleKind>(k);
}

PipelineSchedule make_schedule(const ScheduleSpec& sp, int32_t layers) {
  NF_CHECK_INPUT(layers > 0) << "schedule for " << layers << " layers";
  for (int32_t v : {sp.gemm_sms, sp.attn_sms})
    NF_CHECK_INPUT(v >= 0 && v % 8 == 0) << "SM counts are 0 (the whole GPU, no partition) or multiples of 8 "
                                            "(green contexts), got "
                                         << v;
  NF_CHECK_INPUT(sp.gemm_sm_target >= 0) << "GEMM SM target " << sp.gemm_sm_target;
  NF_CHECK_INPUT(sp.share > 0 && sp.share < 1024) << "share " << sp.share << " (nano-batch 0's 1/1024ths, 1..1023)";
  NF_CHECK_INPUT(sp.share == 512 || sp.kind == ScheduleKind::kPipeline)
      << "a share is for the pipeline kind (the other kinds fix their nano-batches)";
  PipelineSchedule s;
  switch (sp.kind) {
    case ScheduleKind::kSequential:
      NF_CHECK_INPUT(!sp.attn_remainder) << "the sequential schedule has no attention stream to take the remainder SMs";
      NF_CHECK_INPUT(sp.gemm_sm_target == 0) << "the sequential schedule runs on the whole GPU: no GEMM SM target";
      s = sequential_schedule(layers);
      break;
    case ScheduleKind::kDecodeOverlap:
      decode_overlap(s, sp, layers);
      break;
    case ScheduleKind::kDecodeOverlapPhased:
      decode_overlap_phased(s, sp, layers);
      break;
    case ScheduleKind::kPipeline:
      pipeline(s, sp, layers);
      break;
  }
  if (sp.kind != ScheduleKind::kSequential && sp.gemm_sm_target > 0) {
    s.name += "-t" + std::to_string(sp.gemm_sm_target);
  }
  if (sp.attn_remainder) {
    NF_CHECK_INPUT(sp.attn_sms > 0) << "the attention stream is the whole GPU, not a partition: it cannot take the "
                                       "remainder SMs";
    s.streams.back().remainder = true;  // the attention stream is the last of every overlapping kind
    s.name += "-rattn";
  }
  s.iterations = sp.iterations;
  if (sp.iterations != ScheduleIterations::kMixed) s.name += std::string("-") + schedule_iterations_name(sp.iterations);
  s.validate(layers);
  return s;
}

ScheduleSpec parse_schedule_spec(const std::string& text) {
  const std::vector<std::string> parts = split_all(text, ':');
  NF_CHECK_INPUT(parts.size() == 1 || (parts.size() >= 3 && parts.size() <= 5))
      << "schedule spec '" << text << "': KIND[:GEMM_SMS:ATTN_SMS[:REMAINDER[:ITERATIONS]]]";
  ScheduleSpec sp;
  sp.kind = schedule_kind_from_name(parts[0]);
  if (parts.size() >= 3) {
    NF_CHECK_INPUT(sp.kind != ScheduleKind::kSequential) << "schedule spec '" << text << "': sequential takes no SM counts";
    sp.gemm_sms = parse_int(parts[1], "GEMM SM count", text);
    sp.attn_sms = parse_int(parts[2], "attention SM count", text);
  }
  if (parts.size() >= 4) {
    NF_CHECK_INPUT(parts[3] == "none" || parts[3] == "attn")
        << "schedule spec '" << text << "': remainder '" << parts[3] << "' (none or attn)";
    sp.attn_remainder = parts[3] == "attn";
  }
  if (parts.size() == 5) sp.iterations = schedule_iterations_from_name(parts[4]);
  return sp;
}

}  // namespace nanoflow::engine
