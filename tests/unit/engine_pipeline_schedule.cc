// Pipeline schedules as data (engine/pipeline_schedule.h): the sequential schedule is valid and
// sequential; JSON round-trips; every kind of broken schedule is refused with kInvalidInput.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/pipeline_schedule.h"

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

}  // namespace
