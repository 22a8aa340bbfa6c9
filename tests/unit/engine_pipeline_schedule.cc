// Pipeline schedules as data (engine/pipeline_schedule.h): the sequential schedule is valid and
// sequential; JSON round-trips (with the decode split); the launch order is topological; every kind
// of broken schedule is refused with kInvalidInput; the committed schedules/ files are valid.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <numeric>

#include "core/error.h"
#include "engine/pipeline_schedule.h"
#if defined(NANOFLOW_HAVE_CUDA)
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "engine/cuda_engine.h"
#endif

using namespace nanoflow;
using namespace nanoflow::engine;

namespace {

void expect_invalid(const PipelineSchedule& s, int32_t layers, const std::string& what) {
  try {
    s.validate(layers);
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << what << ": " << e.what();
  }
}

// Two nano-batches on two streams: each nano-batch's ops in order on its own stream.
PipelineSchedule two_nano_batches(int32_t layers) {
  PipelineSchedule a = sequential_schedule(layers), s;
  s.name = "two";
  s.nano_batches = {{0, 512}, {512, 1024}};
  s.streams = {{64}, {64}};
  for (int32_t b = 0; b < 2; ++b) {
    const int32_t base = static_cast<int32_t>(s.nodes.size());
    for (size_t i = 0; i < a.nodes.size(); ++i) {
      ScheduleNode n = a.nodes[i];
      n.nano_batch = b;
      n.stream = b;
      for (auto& d : n.deps) d += base;
      s.nodes.push_back(n);
    }
  }
  return s;
}

TEST(PipelineSchedule, SequentialIsValid) {
  for (int32_t layers : {1, 2, 32}) {
    const PipelineSchedule s = sequential_schedule(layers);
    EXPECT_NO_THROW(s.validate(layers));
    EXPECT_TRUE(s.is_sequential());
    EXPECT_EQ(s.nodes.size(), static_cast<size_t>(layers) * 9 + 3);
  }
  expect_invalid(sequential_schedule(2), 3, "schedule for fewer layers than the model");
}

TEST(PipelineSchedule, JsonRoundTrip) {
  const PipelineSchedule s = two_nano_batches(3);
  EXPECT_NO_THROW(s.validate(3));
  EXPECT_FALSE(s.is_sequential());
  const PipelineSchedule r = PipelineSchedule::from_json(nlohmann::json::parse(s.to_json().dump()));
  EXPECT_EQ(r.to_json(), s.to_json());
  EXPECT_NO_THROW(r.validate(3));
  EXPECT_THROW(PipelineSchedule::from_json(nlohmann::json::parse(R"({"nano_batches": 3})")), Error);
}

TEST(PipelineSchedule, RefusesBrokenSchedules) {
  const int32_t L = 2;
  {
    auto s = sequential_schedule(L);
    s.nodes[0].deps = {static_cast<int32_t>(s.nodes.size()) - 1};  // embed waits for sample
    expect_invalid(s, L, "cycle");
  }
  {
    auto s = sequential_schedule(L);
    s.nodes.pop_back();
    expect_invalid(s, L, "missing op");
  }
  {
    auto s = sequential_schedule(L);
    s.nodes.push_back(s.nodes[4]);
    expect_invalid(s, L, "op covered twice");
  }
  {
    auto s = sequential_schedule(L);
    s.nodes[5].deps = {1};  // attention of layer 0 no longer waits for rope_kv
    expect_invalid(s, L, "op before its producer");
  }
  {
    auto s = sequential_schedule(L);
    s.nodes[3].deps.push_back(99);
    expect_invalid(s, L, "dependency out of range");
  }
  {
    auto s = sequential_schedule(L);
    s.nodes[3].stream = 1;
    expect_invalid(s, L, "stream out of range");
  }
  {
    auto s = sequential_schedule(L);
    s.nano_batches = {{0, 500}};
    expect_invalid(s, L, "nano-batches not tiling the batch");
  }
  {
    auto s = two_nano_batches(L);
    s.nano_batches = {{0, 512}, {600, 1024}};
    expect_invalid(s, L, "gap between nano-batches");
  }
  {
    auto s = sequential_schedule(L);
    s.streams[0].sm_count = 12;
    expect_invalid(s, L, "SM count not a multiple of 8");
  }
  {
    auto s = sequential_schedule(L);
    s.nodes[2].layer = 5;
    expect_invalid(s, L, "layer out of range");
  }
}


TEST(PipelineSchedule, LaunchOrderIsTopological) {
  const PipelineSchedule s = two_nano_batches(2);
  std::vector<int32_t> list(s.nodes.size());
  std::iota(list.begin(), list.end(), 0);
  EXPECT_EQ(s.validate(2), list);  // every dependency earlier in the list: the list order
  // Nano-batch 1's nodes first in the list, depending on nano-batch 0's (a forward reference).
  PipelineSchedule r = s;
  const int32_t n = static_cast<int32_t>(s.nodes.size()), half = n / 2;
  for (int32_t i = 0; i < n; ++i) {
    ScheduleNode x = s.nodes[static_cast<size_t>((i + half) % n)];
    for (auto& d : x.deps) d = (d + half) % n;
    r.nodes[static_cast<size_t>(i)] = x;
  }
  r.nodes[0].deps.push_back(half + 1);  // nano-batch 1's embed after nano-batch 0's first norm
  const std::vector<int32_t> order = r.validate(2);
  ASSERT_EQ(order.size(), static_cast<size_t>(n));
  std::vector<int32_t> pos(static_cast<size_t>(n), -1);
  for (int32_t k = 0; k < n; ++k) pos[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
  for (int32_t i = 0; i < n; ++i) {
    ASSERT_GE(pos[static_cast<size_t>(i)], 0) << "node " << i << " missing from the order";
    for (int32_t d : r.nodes[static_cast<size_t>(i)].deps)
      EXPECT_LT(pos[static_cast<size_t>(d)], pos[static_cast<size_t>(i)]) << d << " -> " << i;
  }
}

TEST(PipelineSchedule, GemmSmTargetInJson) {
  PipelineSchedule s = two_nano_batches(2);
  s.streams = {{0, 108}, {24, 0}};
  const PipelineSchedule r = PipelineSchedule::from_json(nlohmann::json::parse(s.to_json().dump()));
  EXPECT_EQ(r.streams[0].gemm_sm_count, 108);
  EXPECT_EQ(r.streams[1].gemm_sm_count, 0);
  EXPECT_NO_THROW(r.validate(2));
  EXPECT_FALSE(r.is_sequential());
  s.streams = {{24, 32}, {24, 0}};
  expect_invalid(s, 2, "GEMM target beyond the stream's partition");
  s.streams = {{0, -8}, {24, 0}};
  expect_invalid(s, 2, "negative GEMM target");
  PipelineSchedule one = sequential_schedule(2);
  one.streams[0].gemm_sm_count = 100;
  EXPECT_FALSE(one.is_sequential());  // runs through the schedule runner, with its GEMM target
}

TEST(PipelineSchedule, DecodeSplitInJson) {
  PipelineSchedule s = two_nano_batches(2);
  s.split_at_decode = true;
  const nlohmann::json j = s.to_json();
  EXPECT_EQ(j["split"], "decode");
  const PipelineSchedule r = PipelineSchedule::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(r.split_at_decode);
  EXPECT_NO_THROW(r.validate(2));
  nlohmann::json bad = j;
  bad["split"] = "halves";
  EXPECT_THROW(PipelineSchedule::from_json(bad), Error);
  auto three = sequential_schedule(2);
  three.nano_batches = {{0, 1024}};
  three.split_at_decode = true;
  expect_invalid(three, 2, "split at decode with one nano-batch");
  nlohmann::json old = sequential_schedule(2).to_json();
  old.erase("split");  // files written before the field: split by tokens
  EXPECT_FALSE(PipelineSchedule::from_json(old).split_at_decode);
}

TEST(PipelineSchedule, IterationsAndRemainderInJson) {
  PipelineSchedule s = two_nano_batches(2);
  EXPECT_EQ(s.iterations, ScheduleIterations::kMixed);  // the default: mixed iterations only
  EXPECT_TRUE(s.runs(false));
  EXPECT_FALSE(s.runs(true));
  s.iterations = ScheduleIterations::kDecode;
  s.streams[1].remainder = true;
  for (ScheduleNode& x : s.nodes)  // stream 1 runs attention only (no GEMM on the remainder SMs)
    if (x.op != PipelineOp::kAttention) x.stream = 0;
  const nlohmann::json j = s.to_json();
  EXPECT_EQ(j["iterations"], "decode");
  EXPECT_EQ(j["streams"][1]["remainder"], true);
  EXPECT_FALSE(j["streams"][0].contains("remainder"));
  const PipelineSchedule r = PipelineSchedule::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(r.iterations, ScheduleIterations::kDecode);
  EXPECT_TRUE(r.runs(true));
  EXPECT_FALSE(r.runs(false));
  EXPECT_FALSE(r.streams[0].remainder);
  EXPECT_TRUE(r.streams[1].remainder);
  EXPECT_NO_THROW(r.validate(2));
  nlohmann::json all = j;
  all["iterations"] = "all";
  const PipelineSchedule a = PipelineSchedule::from_json(all);
  EXPECT_TRUE(a.runs(true) && a.runs(false));
  nlohmann::json bad = j;
  bad["iterations"] = "prefill";
  EXPECT_THROW(PipelineSchedule::from_json(bad), Error);
  nlohmann::json old = j;
  old.erase("iterations");  // files written before the field: mixed iterations
  EXPECT_EQ(PipelineSchedule::from_json(old).iterations, ScheduleIterations::kMixed);

  PipelineSchedule two = r;  // a third, attention-only stream also taking the remainder
  two.streams.push_back({8, 0, true});
  for (ScheduleNode& x : two.nodes)
    if (x.op == PipelineOp::kAttention && x.nano_batch == 1) x.stream = 2;
  expect_invalid(two, 2, "two streams take the remainder");
  two.streams[2].remainder = false;
  EXPECT_NO_THROW(two.validate(2));
  PipelineSchedule targeted = r;
  targeted.streams[1].gemm_sm_count = 8;
  expect_invalid(targeted, 2, "a GEMM SM target on the stream that takes the remainder");
  PipelineSchedule at_decode = r;
  at_decode.split_at_decode = true;
  expect_invalid(at_decode, 2, "a split at decode run on decode-only iterations");
  at_decode.iterations = ScheduleIterations::kMixed;
  EXPECT_NO_THROW(at_decode.validate(2));
  PipelineSchedule whole = r;
  whole.streams[1].sm_count = 0;
  expect_invalid(whole, 2, "a whole-GPU stream takes the remainder");
  PipelineSchedule gemms = r;  // GEMMs never run on the remainder SMs
  for (ScheduleNode& x : gemms.nodes)
    if (x.op == PipelineOp::kGateUp && x.nano_batch == 1 && x.layer == 1) x.stream = 1;
  expect_invalid(gemms, 2, "a GEMM on the stream that takes the remainder");
}

// The schedules the project ships (`nanoflow schedule`, engine/schedule_kinds.h) are valid.
TEST(PipelineSchedule, ShippedSchedulesAreValid) {
  const std::string path = std::string(NF_SOURCE_DIR) + "/schedules/llama3-8b_decode-overlap_96-24.json";
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << path;
  const PipelineSchedule s = PipelineSchedule::from_json(nlohmann::json::parse(f));
  EXPECT_NO_THROW(s.validate(32));
  EXPECT_FALSE(s.is_sequential());
  EXPECT_TRUE(s.split_at_decode);
  ASSERT_EQ(s.streams.size(), 2u);
  EXPECT_EQ(s.streams[0].sm_count + s.streams[1].sm_count, 120);  // H100/H200: 15 equal groups of 8 SMs
  for (const ScheduleNode& x : s.nodes)
    if (x.op == PipelineOp::kAttention && x.nano_batch == 0) EXPECT_EQ(x.stream, 1);  // decode attention on its own SMs
  expect_invalid(s, 2, "a 32-layer schedule for a 2-layer model");
}


#if defined(NANOFLOW_HAVE_CUDA)
// A bad --schedule file fails before the model's weights load (no GPU is touched), naming the file.
TEST(PipelineSchedule, BadScheduleFileFailsBeforeTheModelLoads) {
  const std::string dir = std::filesystem::temp_directory_path() / "nf_schedule_file_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = dir + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
  };
  const std::string models = std::string(NF_SHARED_DIR) + "/models";
  if (std::getenv("NANOFLOW_MODELS_DIR") == nullptr && std::filesystem::exists(models))
    setenv("NANOFLOW_MODELS_DIR", models.c_str(), 0);
  EngineConfig c;
  c.backend = "cuda";
  c.model_path = "preset:llama3-8b";
  engine::CudaEngineOptions o;
  o.num_layers_override = 2;
  auto kind_of = [&](const std::string& schedule, std::string* what) {
    c.schedule_path = schedule;
    try {
      engine::create_cuda_engine(c, o);
    } catch (const Error& e) {
      *what = e.what();
      return e.kind();
    }
    return ErrorKind::kInternal;  // not expected: it would have needed a GPU
  };
  std::string what;
  ErrorKind k = kind_of(write("three.json", sequential_schedule(3).to_json().dump()), &what);
  if (k == ErrorKind::kNotFound && what.find("preset") != std::string::npos) GTEST_SKIP() << what;  // no ../shared
  EXPECT_EQ(k, ErrorKind::kInvalidInput) << what;
  EXPECT_NE(what.find("three.json"), std::string::npos) << what;
  EXPECT_EQ(kind_of(write("broken.json", "{\"nano_batches\": "), &what), ErrorKind::kInvalidInput) << what;
  EXPECT_NE(what.find("broken.json"), std::string::npos) << what;
  EXPECT_EQ(kind_of(dir + "/absent.json", &what), ErrorKind::kNotFound) << what;
  std::filesystem::remove_all(dir);
}
#endif

}  // namespace
