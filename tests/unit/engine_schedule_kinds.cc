// The schedule generator (engine/schedule_kinds.h): the decode-overlap schedule it writes equals
// the shipped one (written by the Python generator it replaced), every kind is valid at several
// depths with the expected node count and stream use, names spell the spec, bad specs are refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "engine/schedule_kinds.h"

using namespace nanoflow;
using namespace nanoflow::engine;

namespace {

void expect_bad(const ScheduleSpec& sp, int32_t layers, const std::string& what) {
  try {
    make_schedule(sp, layers);
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << what << ": " << e.what();
  }
}

ScheduleSpec spec(ScheduleKind k, int32_t g, int32_t a) {
  ScheduleSpec s;
  s.kind = k;
  s.gemm_sms = g;
  s.attn_sms = a;
  return s;
}

TEST(ScheduleKinds, DecodeOverlapEqualsTheShippedFile) {
  const std::string path = std::string(NF_SOURCE_DIR) + "/schedules/llama3-8b_decode-overlap_96-24.json";
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << path;
  const PipelineSchedule shipped = PipelineSchedule::from_json(nlohmann::json::parse(f));
  const PipelineSchedule made = make_schedule(spec(ScheduleKind::kDecodeOverlap, 96, 24), 32);
  EXPECT_EQ(made.to_json(), shipped.to_json());
}

// Every other kind against the Python generator's output (tests/data/schedules/README.md).
TEST(ScheduleKinds, OtherKindsEqualThePythonGenerator) {
  struct Case {
    const char* file;
    ScheduleSpec spec;
  };
  ScheduleSpec t108 = spec(ScheduleKind::kDecodeOverlap, 0, 24);
  t108.gemm_sm_target = 108;
  ScheduleSpec phased = spec(ScheduleKind::kDecodeOverlapPhased, 96, 24);
  phased.attn_remainder = true;
  ScheduleSpec decode = spec(ScheduleKind::kPipeline, 88, 32);
  decode.attn_remainder = true;
  decode.iterations = ScheduleIterations::kDecode;
  ScheduleSpec all = spec(ScheduleKind::kPipeline, 0, 0);
  all.share = 400;
  all.gemm_sm_target = 80;
  all.iterations = ScheduleIterations::kAll;
  for (const Case& c : {Case{"decode-overlap-0-24-t108_4layers.json", t108},
                        Case{"decode-overlap-phased-96-24-rattn_4layers.json", phased},
                        Case{"pipeline-88-32-rattn-decode_4layers.json", decode},
                        Case{"pipeline-0-0-s400-t80-all_4layers.json", all}}) {
    const std::string path = std::string(NF_SOURCE_DIR) + "/tests/data/schedules/" + c.file;
    std::ifstream f(path);
    ASSERT_TRUE(f.good()) << path;
    const PipelineSchedule python = PipelineSchedule::from_json(nlohmann::json::parse(f));
    EXPECT_EQ(make_schedule(c.spec, 4).to_json(), python.to_json()) << c.file;
  }
}

TEST(ScheduleKinds, EveryKindIsValidWithItsShape) {
  for (int32_t layers : {1, 2, 32}) {
    const size_t per_nb = static_cast<size_t>(9 * layers + 3);
    const PipelineSchedule seq = make_schedule(ScheduleSpec{}, layers);
    EXPECT_TRUE(seq.is_sequential());
    EXPECT_EQ(seq.nodes.size(), per_nb);
    EXPECT_EQ(seq.to_json(), sequential_schedule(layers).to_json());
    for (ScheduleKind k : {ScheduleKind::kDecodeOverlap, ScheduleKind::kDecodeOverlapPhased, ScheduleKind::kPipeline}) {
      const PipelineSchedule s = make_schedule(spec(k, 96, 24), layers);
      EXPECT_NO_THROW(s.validate(layers)) << s.name;
      EXPECT_EQ(s.nodes.size(), 2 * per_nb) << s.name;
      const int32_t attn_stream = static_cast<int32_t>(s.streams.size()) - 1;
      EXPECT_EQ(s.streams.back().sm_count, 24) << s.name;
      for (const ScheduleNode& x : s.nodes) {
        if (is_gemm_op(x.op)) EXPECT_NE(x.stream, attn_stream) << s.name;
        // Every attention of the pipeline, and nano-batch 0's decode attention of the others, on
        // the attention stream; nothing else there.
        const bool on_attn = x.op == PipelineOp::kAttention && (k == ScheduleKind::kPipeline || x.nano_batch == 0);
        EXPECT_EQ(x.stream == attn_stream, on_attn) << s.name << " " << pipeline_op_name(x.op) << " nb " << x.nano_batch;
      }
    }
  }
  const PipelineSchedule phased = make_schedule(spec(ScheduleKind::kDecodeOverlapPhased, 96, 24), 4);
  ASSERT_EQ(phased.streams.size(), 3u);
  EXPECT_EQ(phased.streams[0].sm_count, 0);  // phase one on the whole GPU
  EXPECT_EQ(phased.streams[1].sm_count, 96);
  EXPECT_TRUE(phased.split_at_decode);
  const PipelineSchedule pl = make_schedule(spec(ScheduleKind::kPipeline, 88, 32), 4);
  EXPECT_FALSE(pl.split_at_decode);
  EXPECT_EQ(pl.nano_batches, (std::vector<std::pair<int32_t, int32_t>>{{0, 512}, {512, 1024}}));
}

TEST(ScheduleKinds, NamesSpellTheSpec) {
  ScheduleSpec sp = spec(ScheduleKind::kPipeline, 88, 32);
  sp.attn_remainder = true;
  sp.iterations = ScheduleIterations::kDecode;
  const PipelineSchedule s = make_schedule(sp, 32);
  EXPECT_EQ(s.name, "pipeline-88-32-rattn-decode");
  EXPECT_TRUE(s.streams[1].remainder);
  EXPECT_FALSE(s.streams[0].remainder);
  EXPECT_EQ(s.iterations, ScheduleIterations::kDecode);
  sp.share = 400;
  sp.gemm_sm_target = 80;
  sp.attn_remainder = false;
  sp.iterations = ScheduleIterations::kAll;
  const PipelineSchedule t = make_schedule(sp, 32);
  EXPECT_EQ(t.name, "pipeline-88-32-s400-t80-all");
  EXPECT_EQ(t.nano_batches[0].second, 400);
  EXPECT_EQ(t.streams[0].gemm_sm_count, 80);
  EXPECT_EQ(make_schedule(spec(ScheduleKind::kDecodeOverlapPhased, 0, 24), 2).name, "decode-overlap-phased-0-24");
}

TEST(ScheduleKinds, BadSpecsAreRefused) {
  expect_bad(spec(ScheduleKind::kPipeline, 20, 32), 2, "SM count not a multiple of 8");
  expect_bad(spec(ScheduleKind::kPipeline, 88, -8), 2, "negative SM count");
  expect_bad(spec(ScheduleKind::kPipeline, 88, 32), 0, "no layers");
  ScheduleSpec share = spec(ScheduleKind::kDecodeOverlap, 96, 24);
  share.share = 300;
  expect_bad(share, 2, "a share on a kind with fixed nano-batches");
  share.kind = ScheduleKind::kPipeline;
  share.share = 1024;
  expect_bad(share, 2, "a share that leaves nano-batch 1 empty");
  ScheduleSpec rem = spec(ScheduleKind::kPipeline, 88, 0);
  rem.attn_remainder = true;
  expect_bad(rem, 2, "the remainder on a whole-GPU attention stream");
  ScheduleSpec seq;
  seq.attn_remainder = true;
  expect_bad(seq, 2, "the remainder on the sequential schedule");
  seq.attn_remainder = false;
  seq.gemm_sm_target = 100;
  expect_bad(seq, 2, "a GEMM target on the sequential schedule");
  ScheduleSpec dec = spec(ScheduleKind::kDecodeOverlap, 96, 24);
  dec.iterations = ScheduleIterations::kDecode;
  expect_bad(dec, 2, "a split at decode on decode-only iterations");
}

TEST(ScheduleKinds, ParsesSpecs) {
  EXPECT_EQ(parse_schedule_spec("sequential").kind, ScheduleKind::kSequential);
  const ScheduleSpec p = parse_schedule_spec("pipeline:88:32:attn:decode");
  EXPECT_EQ(p.kind, ScheduleKind::kPipeline);
  EXPECT_EQ(p.gemm_sms, 88);
  EXPECT_EQ(p.attn_sms, 32);
  EXPECT_TRUE(p.attn_remainder);
  EXPECT_EQ(p.iterations, ScheduleIterations::kDecode);
  const ScheduleSpec d = parse_schedule_spec("decode-overlap:0:24");
  EXPECT_EQ(d.kind, ScheduleKind::kDecodeOverlap);
  EXPECT_EQ(d.gemm_sms, 0);
  EXPECT_FALSE(d.attn_remainder);
  EXPECT_EQ(d.iterations, ScheduleIterations::kMixed);
  for (const char* bad : {"", "foo", "pipeline:88", "pipeline:8x:32", "pipeline:88:32:gemm", "pipeline:88:32:attn:sometimes",
                          "sequential:0:0", "pipeline:88:32:attn:decode:extra", "pipeline::32"}) {
    try {
      parse_schedule_spec(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << bad;
    }
  }
}

}  // namespace
