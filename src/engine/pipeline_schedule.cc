#include "engine/pipeline_schedule.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <tuple>

#include "core/error.h"

namespace nanoflow::engine {
namespace {

constexpr PipelineOp kLayerOps[] = {PipelineOp::kAttnNorm, PipelineOp::kQkv,     PipelineOp::kRopeKv,
                                    PipelineOp::kAttention, PipelineOp::kOProj,  PipelineOp::kMlpNorm,
                                    PipelineOp::kGateUp,   PipelineOp::kAct,     PipelineOp::kDown};
constexpr const char* kOpNames[] = {"embed", "attn_norm", "qkv", "rope_kv", "attention", "o_proj",
                                    "mlp_norm", "gate_up", "act", "down", "lm_head", "sample"};
static_assert(std::size(kOpNames) == static_cast<size_t>(PipelineOp::kSample) + 1, "op names");
constexpr const char* kIterationNames[] = {"mixed", "decode", "all"};  // ScheduleIterations order

bool per_layer(PipelineOp op) { return op != PipelineOp::kEmbed && op != PipelineOp::kLmHead && op != PipelineOp::kSample; }

// Position of an op in data-flow order (embed first, sample last): a node may depend only on
// producers; the check below is that every node's (layer, op) predecessor of the same nano-batch
// is among its transitive dependencies.
int flow_rank(PipelineOp op, int32_t layer, int32_t num_layers) {
  if (op == PipelineOp::kEmbed) return 0;
  if (op == PipelineOp::kLmHead) return 1 + num_layers * 9;
  if (op == PipelineOp::kSample) return 2 + num_layers * 9;
  int i = 0;
  while (kLayerOps[i] != op) ++i;
  return 1 + layer * 9 + i;
}

}  // namespace

const char* pipeline_op_name(PipelineOp op) { return kOpNames[static_cast<size_t>(op)]; }

const char* schedule_iterations_name(ScheduleIterations it) { return kIterationNames[static_cast<size_t>(it)]; }

ScheduleIterations schedule_iterations_from_name(const std::string& name) {
  size_t k = 0;
  while (k < std::size(kIterationNames) && name != kIterationNames[k]) ++k;
  NF_CHECK_INPUT(k < std::size(kIterationNames)) << "schedule iterations '" << name << "' (mixed, decode or all)";
  return static_cast<ScheduleIterations>(k);
}

bool is_gemm_op(PipelineOp op) {
  return op == PipelineOp::kQkv || op == PipelineOp::kOProj || op == PipelineOp::kGateUp || op == PipelineOp::kDown ||
         op == PipelineOp::kLmHead;
}

std::vector<int32_t> PipelineSchedule::validate(int32_t num_layers) const {
  NF_CHECK_INPUT(num_layers > 0) << "schedule for " << num_layers << " layers";
  NF_CHECK_INPUT(!nano_batches.empty() && !streams.empty()) << "schedule '" << name << "' has no nano-batch or stream";
  int32_t at = 0;
  for (const auto& [b, e] : nano_batches) {
    NF_CHECK_INPUT(b == at && e > b) << "schedule '" << name << "': nano-batches must tile [0, 1024): got [" << b << ", "
                                     << e << ") after " << at;
    at = e;
  }
  NF_CHECK_INPUT(at == 1024) << "schedule '" << name << "': nano-batches end at " << at << ", not 1024";
  NF_CHECK_INPUT(!split_at_decode || nano_batches.size() == 2)
      << "schedule '" << name << "': split at decode needs 2 nano-batches, not " << nano_batches.size();
  NF_CHECK_INPUT(!split_at_decode || iterations == ScheduleIterations::kMixed)
      << "schedule '" << name << "': a split at decode leaves a decode-only iteration's prefill nano-batch empty "
      << "(\"iterations\" must be \"mixed\")";
  int remainders = 0;
  for (const auto& s : streams) {
    NF_CHECK_INPUT(s.sm_count >= 0 && s.sm_count % 8 == 0) << "stream SM count " << s.sm_count << " (multiple of 8)";
    NF_CHECK_INPUT(!s.remainder || s.sm_count > 0)
        << "schedule '" << name << "': only a partition (sm_count > 0) can take the remainder SMs";
    NF_CHECK_INPUT(!s.remainder || s.gemm_sm_count == 0)
        << "schedule '" << name << "': a stream that takes the remainder SMs runs no GEMM; gemm_sm_count "
        << s.gemm_sm_count;
    remainders += s.remainder ? 1 : 0;
    NF_CHECK_INPUT(s.gemm_sm_count >= 0 && (s.sm_count == 0 || s.gemm_sm_count <= s.sm_count))
        << "stream GEMM SM count " << s.gemm_sm_count << " (0, or at most the stream's " << s.sm_count << ")";
  }
  NF_CHECK_INPUT(remainders <= 1) << "schedule '" << name << "': " << remainders << " streams take the remainder SMs";
  const int32_t n = static_cast<int32_t>(nodes.size());
  std::map<std::tuple<int, int32_t, int32_t>, int32_t> seen;  // (op, layer, nano-batch) -> node
  for (int32_t i = 0; i < n; ++i) {
    const ScheduleNode& x = nodes[static_cast<size_t>(i)];
    NF_CHECK_INPUT(x.nano_batch >= 0 && x.nano_batch < static_cast<int32_t>(nano_batches.size()))
        << "node " << i << " nano-batch " << x.nano_batch;
    NF_CHECK_INPUT(x.stream >= 0 && x.stream < static_cast<int32_t>(streams.size())) << "node " << i << " stream " << x.stream;
    NF_CHECK_INPUT(per_layer(x.op) ? (x.layer >= 0 && x.layer < num_layers) : x.layer == -1)
        << "node " << i << " (" << pipeline_op_name(x.op) << ") layer " << x.layer;
    for (int32_t d : x.deps) NF_CHECK_INPUT(d >= 0 && d < n && d != i) << "node " << i << " depends on " << d;
    const bool fresh = seen.emplace(std::make_tuple(static_cast<int>(x.op), x.layer, x.nano_batch), i).second;
    NF_CHECK_INPUT(fresh) << "schedule '" << name << "' covers " << pipeline_op_name(x.op) << " layer " << x.layer
                          << " nano-batch " << x.nano_batch << " twice";
    // DESIGN.md: partitions are built from equal groups, never the remainder, for GEMMs (run 19:
    // GEMMs on 96 SMs + the remainder lost more than 96 alone).
    NF_CHECK_INPUT(!(is_gemm_op(x.op) && streams[static_cast<size_t>(x.stream)].remainder))
        << "schedule '" << name << "': " << pipeline_op_name(x.op) << " (a GEMM) on stream " << x.stream
        << ", which takes the remainder SMs (GEMMs run on equal groups only)";
  }
  const size_t want = (static_cast<size_t>(num_layers) * std::size(kLayerOps) + 3) * nano_batches.size();
  NF_CHECK_INPUT(seen.size() == want) << "schedule '" << name << "' has " << seen.size() << " distinct ops; "
                                      << want << " needed (every op of every layer and nano-batch once)";
  // Cycle check (Kahn) and a topological order.
  std::vector<int32_t> indeg(static_cast<size_t>(n), 0), order;
  std::vector<std::vector<int32_t>> users(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i)
    for (int32_t d : nodes[static_cast<size_t>(i)].deps) {
      users[static_cast<size_t>(d)].push_back(i);
      ++indeg[static_cast<size_t>(i)];
    }
  for (int32_t i = 0; i < n; ++i)
    if (indeg[static_cast<size_t>(i)] == 0) order.push_back(i);
  for (size_t k = 0; k < order.size(); ++k)
    for (int32_t u : users[static_cast<size_t>(order[k])])
      if (--indeg[static_cast<size_t>(u)] == 0) order.push_back(u);
  NF_CHECK_INPUT(order.size() == static_cast<size_t>(n)) << "schedule '" << name << "' has a dependency cycle";
  // Data flow: the producer of each node (same nano-batch, previous rank) must come before it,
  // i.e. be among its transitive dependencies. Ranks along a topological order: reach[i] = the
  // highest flow rank of the same nano-batch that i transitively depends on (inclusive).
  std::vector<std::vector<int>> reach(static_cast<size_t>(n), std::vector<int>(nano_batches.size(), -1));
  for (int32_t i : order) {
    const ScheduleNode& x = nodes[static_cast<size_t>(i)];
    auto& r = reach[static_cast<size_t>(i)];
    for (int32_t d : x.deps)
      for (size_t b = 0; b < r.size(); ++b) r[b] = std::max(r[b], reach[static_cast<size_t>(d)][b]);
    const int rank = flow_rank(x.op, x.layer, num_layers);
    NF_CHECK_INPUT(rank == 0 || r[static_cast<size_t>(x.nano_batch)] >= rank - 1)
        << "schedule '" << name << "': " << pipeline_op_name(x.op) << " layer " << x.layer << " nano-batch "
        << x.nano_batch << " does not wait for its producer";
    r[static_cast<size_t>(x.nano_batch)] = std::max(r[static_cast<size_t>(x.nano_batch)], rank);
  }
  bool list_order = true;
  for (int32_t i = 0; i < n && list_order; ++i)
    for (int32_t d : nodes[static_cast<size_t>(i)].deps) list_order = list_order && d < i;
  if (list_order)
    for (int32_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  return order;
}

bool PipelineSchedule::is_sequential() const {
  return nano_batches.size() == 1 && streams.size() == 1 && streams[0].sm_count == 0 && streams[0].gemm_sm_count == 0;
}

bool PipelineSchedule::runs(bool decode_only) const {
  switch (iterations) {
    case ScheduleIterations::kMixed:
      return !decode_only;
    case ScheduleIterations::kDecode:
      return decode_only;
    case ScheduleIterations::kAll:
      return true;
  }
  return false;
}

nlohmann::json PipelineSchedule::to_json() const {
  nlohmann::json j;
  j["name"] = name;
  j["nano_batches"] = nano_batches;
  j["split"] = split_at_decode ? "decode" : "tokens";
  j["iterations"] = schedule_iterations_name(iterations);
  for (const auto& s : streams) {
    nlohmann::json x = {{"sm_count", s.sm_count}};
    if (s.gemm_sm_count > 0) x["gemm_sm_count"] = s.gemm_sm_count;
    if (s.remainder) x["remainder"] = true;
    j["streams"].push_back(x);
  }
  for (const auto& x : nodes)
    j["nodes"].push_back({{"op", pipeline_op_name(x.op)}, {"layer", x.layer}, {"nano_batch", x.nano_batch},
                          {"stream", x.stream}, {"deps", x.deps}});
  return j;
}

PipelineSchedule PipelineSchedule::from_json(const nlohmann::json& j) {
  try {
    PipelineSchedule s;
    s.name = j.value("name", "");
    s.nano_batches = j.at("nano_batches").get<std::vector<std::pair<int32_t, int32_t>>>();
    const std::string split = j.value("split", "tokens");
    NF_CHECK_INPUT(split == "tokens" || split == "decode") << "schedule split '" << split << "' (tokens or decode)";
    s.split_at_decode = split == "decode";
    s.iterations = schedule_iterations_from_name(j.value("iterations", "mixed"));
    for (const auto& x : j.at("streams"))
      s.streams.push_back({x.at("sm_count").get<int32_t>(), x.value("gemm_sm_count", 0), x.value("remainder", false)});
    for (const auto& x : j.at("nodes")) {
      ScheduleNode n;
      const std::string op = x.at("op").get<std::string>();
      size_t k = 0;
      while (k < std::size(kOpNames) && op != kOpNames[k]) ++k;
      NF_CHECK_INPUT(k < std::size(kOpNames)) << "unknown schedule op '" << op << "'";
      n.op = static_cast<PipelineOp>(k);
      n.layer = x.at("layer").get<int32_t>();
      n.nano_batch = x.at("nano_batch").get<int32_t>();
      n.stream = x.at("stream").get<int32_t>();
      n.deps = x.at("deps").get<std::vector<int32_t>>();
      s.nodes.push_back(std::move(n));
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    NF_THROW(kInvalidInput) << "bad schedule JSON: " << e.what();
  }
}

PipelineSchedule read_schedule_file(const std::string& path) {
  std::ifstream f(path);
  NF_CHECK_KIND(ErrorKind::kNotFound, f.good()) << "schedule file " << path << " cannot be read";
  nlohmann::json j;
  try {
    f >> j;
  } catch (const nlohmann::json::exception& e) {
    NF_THROW(kInvalidInput) << "schedule file " << path << ": " << e.what();
  }
  return PipelineSchedule::from_json(j);
}

void write_schedule_file(const PipelineSchedule& s, const std::string& path) {
  std::ofstream f(path);
  NF_CHECK_INPUT(static_cast<bool>(f)) << "cannot write " << path;
  f << s.to_json().dump() << "\n";
  f.close();
  NF_CHECK_INPUT(static_cast<bool>(f)) << "cannot write " << path;
}

PipelineSchedule sequential_schedule(int32_t num_layers) {
  PipelineSchedule s;
  s.name = "sequential";
  s.nano_batches = {{0, 1024}};
  s.streams = {{0}};
  auto add = [&](PipelineOp op, int32_t layer) {
    ScheduleNode n;
    n.op = op;
    n.layer = layer;
    if (!s.nodes.empty()) n.deps = {static_cast<int32_t>(s.nodes.size()) - 1};
    s.nodes.push_back(std::move(n));
  };
  add(PipelineOp::kEmbed, -1);
  for (int32_t l = 0; l < num_layers; ++l)
    for (PipelineOp op : kLayerOps) add(op, l);
  add(PipelineOp::kLmHead, -1);
  add(PipelineOp::kSample, -1);
  return s;
}

}  // namespace nanoflow::engine
