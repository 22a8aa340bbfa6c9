// Nano-batch pipeline schedules on the GPU (engine/schedule_runner.h): a mixed iteration (decode
// sequences + prefill chunks) run by the decode-overlap schedule — two nano-batches on two
// green-context partitions, decode attention on its own SMs — and a decode-only iteration run by
// the interleaved pipeline schedule give the logits of the sequential forward; the executor with
// the schedule samples their argmax. Random-weight Llama-3-8B shape, 2 layers (tuned attention).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "engine/cuda_executor.h"
#include "engine/pipeline_schedule.h"
#include "engine/schedule_kinds.h"
#include "engine/schedule_runner.h"
#include "model/cuda_model.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/sm_partitions.h"

using namespace nanoflow;

namespace {

bool have_gpu() { return cuda::device_count() > 0; }

engine::PipelineSchedule make(engine::ScheduleKind kind, int32_t gemm_sms, int32_t attn_sms, int32_t layers) {
  engine::ScheduleSpec sp;
  sp.kind = kind;
  sp.gemm_sms = gemm_sms;
  sp.attn_sms = attn_sms;
  return engine::make_schedule(sp, layers);
}

struct Lanes {
  int32_t gemm = 0, attn = 24;
};
Lanes lanes_for_device() {
  Lanes l;
  cuda::SmPartitionsConfig one;
  one.sm_counts = {8};
  const cuda::SmPartitions probe{one};  // one small partition, to learn how many groups there are
  l.gemm = (probe.groups_available() - 3) * 8;  // every equal group but the decode attention's three
  return l;
}

std::unique_ptr<CudaModel> preset_with_lanes(const Lanes& ln, bool attn_takes_remainder = false) {
  CudaModelOptions o;
  o.max_batch_tokens = 1024;
  o.max_seqs = 32;
  o.max_sampled = 32;
  o.num_kv_pages = 1024;
  o.autotune_gemms = false;
  o.num_layers_override = 2;
  o.lane_sm_counts = {ln.gemm, ln.attn};
  if (attn_takes_remainder) o.lane_remainder = 1;
  return CudaModel::load("preset:llama3-8b", o);
}

struct Seq {
  int32_t q, kv, page_base;  // query tokens, KV length after this step, first of its 64 pages
};

BatchPlan make_plan(const std::vector<Seq>& seqs, int64_t vocab, std::mt19937& rng) {
  BatchPlan p;
  p.q_start = {0};
  p.page_start = {0};
  for (const Seq& q : seqs) {
    for (int32_t j = 0; j < q.q; ++j) {
      p.token_ids.push_back(static_cast<int32_t>(rng() % vocab));
      p.positions.push_back(q.kv - q.q + j);
    }
    p.q_start.push_back(p.num_tokens());
    p.kv_len.push_back(q.kv);
    for (int32_t k = 0; k < (q.kv + 15) / 16; ++k) p.page_ids.push_back(q.page_base + k);
    p.page_start.push_back(static_cast<int32_t>(p.page_ids.size()));
    p.sample_rows.push_back(p.num_tokens() - 1);
  }
  return p;
}

std::vector<float> logits_of(CudaModel& m, int32_t rows) {
  std::vector<float> out(static_cast<size_t>(rows) * m.config().vocab_size);
  NF_CUDA_CHECK(cudaMemcpyAsync(out.data(), m.logits_device(), out.size() * 4, cudaMemcpyDeviceToHost, m.stream()))
      << "logits";
  NF_CUDA_CHECK(cudaStreamSynchronize(m.stream())) << "sync";
  return out;
}

double row_rel_err(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

int64_t argmax(const float* a, int64_t n) { return std::max_element(a, a + n) - a; }
// The GPU sampler's greedy choice (sampling.h, round_bf16): argmax of the row rounded to bf16,
// the lowest id among equal values.
int64_t argmax_bf16(const float* a, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (round_bf16(a[i]) > round_bf16(a[best])) best = i;
  return best;
}

// Runs the schedule over the uploaded plan, then the sequential forward over the same plan, and
// checks the schedule's logits against it. The schedule runs first, so its attention reads only the
// K/V its own RoPE nodes wrote for this iteration's tokens (an ordering bug between lanes would
// read the pool's zeros); the sequential forward then rewrites the same slots as the reference.
// The logits equal up to bf16 rounding (the lanes' GEMMs run other cuBLASLt algorithms with another
// SM_COUNT_TARGET and other row counts; 2 random-weight layers measured ~1e-2 on an H200).
struct Logits {
  std::vector<float> schedule, sequential;
};
Logits run_against_sequential(CudaModel& m, const engine::PipelineSchedule& s, const CudaPlanShape& sh,
                              const std::vector<NanoBatchRange>& ranges, const char* what) {
  const int64_t V = m.config().vocab_size;
  engine::ScheduleRunner runner(m, s);
  runner.run(sh, ranges, nullptr);
  std::vector<float> got = logits_of(m, sh.num_sampled);
  m.forward_device(sh, nullptr);
  std::vector<float> ref = logits_of(m, sh.num_sampled);
  double worst = 0;
  int same = 0;
  for (int32_t r = 0; r < sh.num_sampled; ++r) {
    const float* a = got.data() + static_cast<size_t>(r) * V;
    const float* b = ref.data() + static_cast<size_t>(r) * V;
    for (int64_t i = 0; i < V; ++i) EXPECT_TRUE(std::isfinite(a[i])) << "row " << r << " col " << i;
    worst = std::max(worst, row_rel_err(a, b, V));
    same += argmax(a, V) == argmax(b, V) ? 1 : 0;
  }
  std::printf("schedule %s (%s): logits rel err max %.2e, argmax equal %d of %d\n", s.name.c_str(), what, worst, same,
              sh.num_sampled);
  EXPECT_LT(worst, 2e-2);
  EXPECT_GE(same, sh.num_sampled - 1);
  return {std::move(got), std::move(ref)};
}

// The executor with the schedule runs the plan as one greedy step; its samples must be the argmax
// of the schedule's logits rounded to bf16 (the sampler's greedy). Returns the executor's counters (scheduled or graphed).
engine::CudaExecutorStats expect_executor_samples_argmax(CudaModel& m, const engine::PipelineSchedule& s,
                                                         const BatchPlan& plan, const std::vector<float>& logits,
                                                         bool graphs) {
  const int64_t V = m.config().vocab_size;
  engine::CudaExecutorOptions eo;
  eo.cuda_graphs = graphs;
  engine::CudaExecutor ex(m, s, eo);
  engine::StepInput step;
  step.iteration = 1;
  step.plan = plan;
  const auto rows = static_cast<int32_t>(plan.sample_rows.size());
  for (int32_t r = 0; r < rows; ++r) {
    engine::SlotRegistration reg;
    reg.slot = static_cast<uint64_t>(r);
    reg.params.temperature = 0.f;
    reg.seed = 1;
    step.registrations.push_back(reg);
    step.sample_slots.push_back(static_cast<uint64_t>(r));
  }
  ex.launch(std::move(step));
  const engine::StepOutput o = ex.wait();
  EXPECT_TRUE(o.error.empty()) << o.error;
  EXPECT_EQ(o.samples.size(), static_cast<size_t>(rows));
  int agree = 0;
  for (int32_t r = 0; r < rows && r < static_cast<int32_t>(o.samples.size()); ++r)
    agree += o.samples[static_cast<size_t>(r)].token == argmax_bf16(logits.data() + size_t(r) * V, V);
  EXPECT_EQ(agree, rows);
  return ex.stats();
}

class GpuSchedule : public ::testing::TestWithParam<bool> {};  // split at decode, or by tokens

// One mixed iteration: 8 decode sequences (contexts 5..380, written by a prefill first), a first
// prefill chunk and a later chunk of a longer prompt. The schedule's logits equal the sequential
// forward's up to bf16 rounding (the lanes' GEMMs run other cuBLASLt algorithms with another
// SM_COUNT_TARGET and other row counts; 2 random-weight layers measured ~1e-2 on an H200).
TEST_P(GpuSchedule, MatchesSequentialForward) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  const Lanes ln = lanes_for_device();
  std::unique_ptr<CudaModel> m;
  try {
    m = preset_with_lanes(ln);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) GTEST_SKIP() << e.what();
    throw;
  }
  const int64_t V = m->config().vocab_size;
  std::mt19937 rng(5);
  const std::vector<int32_t> ctx = {40, 300, 17, 129, 64, 380, 5, 50};
  std::vector<Seq> warm, mixed;
  for (size_t i = 0; i < ctx.size(); ++i) {
    warm.push_back({ctx[i], ctx[i], 64 * static_cast<int32_t>(i)});
    mixed.push_back({1, ctx[i] + 1, 64 * static_cast<int32_t>(i)});
  }
  mixed.push_back({200, 200, 64 * 8});
  mixed.push_back({100, 300, 64 * 9});  // a later chunk (its first 200 positions: whatever the pool holds)
  std::vector<float> sink(warm.size() * static_cast<size_t>(V));
  m->forward(make_plan(warm, V, rng), sink.data());

  const BatchPlan plan = make_plan(mixed, V, rng);
  CudaPlanStaging st(m->layout());
  const CudaPlanShape sh = st.pack(plan, {}, {}, V);
  engine::PipelineSchedule s =
      make(engine::ScheduleKind::kDecodeOverlap, ln.gemm, ln.attn, static_cast<int32_t>(m->config().num_layers));
  s.split_at_decode = GetParam();
  if (!s.split_at_decode) s.nano_batches = {{0, 512}, {512, 1024}};
  const auto ranges = st.split(sh, s.nano_batches, s.split_at_decode);  // regroups the tiles: before the upload
  st.upload(m->plan_buffer(), sh, m->stream());
  ASSERT_EQ(ranges.size(), 2u);
  if (s.split_at_decode) {
    EXPECT_EQ(ranges[0].seq_end, 8);
    EXPECT_EQ(ranges[0].decode_seqs(), 8);
    EXPECT_EQ(ranges[1].tiles(), sh.num_tiles);
  } else {
    EXPECT_EQ(ranges[0].seq_end, 9);  // half of 308 tokens is 154; the nearest sequence boundary is 208
    EXPECT_EQ(ranges[0].tiles(), 4);  // the 200-token chunk's tiles: prefill attention on the 24-SM lane too
    EXPECT_EQ(ranges[1].tiles(), 2);  // the 100-token later chunk
  }
  const Logits got = run_against_sequential(*m, s, sh, ranges, s.split_at_decode ? "split at decode" : "split by tokens");
  // The executor with the schedule: greedy samples of the same iteration are the argmax rows.
  const engine::CudaExecutorStats stats = expect_executor_samples_argmax(*m, s, plan, got.schedule, false);
  EXPECT_EQ(stats.scheduled_iterations, 1);
}

// A decode-only iteration through the pipeline schedule (NanoFlow's interleaving: each
// nano-batch's decode attention on its own partition under the other's GEMMs), the attention
// partition also holding the SMs the equal groups leave over; with "iterations": "decode" the
// executor runs it through the schedule instead of its CUDA graph, and with the default ("mixed")
// through the graph.
TEST(GpuSchedulePipeline, DecodeOnlyIterationOnRemainderSms) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::set_device(0);
  {
    cuda::SmPartitionsConfig pc;
    pc.sm_counts = {16};
    pc.remainder_to = 0;
    const cuda::SmPartitions p{pc};
    std::printf("partition of 16 SMs + the remainder: %d SMs (remainder %d)\n", p[0].sm_count, p.remainder_sms());
    EXPECT_EQ(p[0].sm_count, 16 + p.remainder_sms());
  }
  Lanes ln = lanes_for_device();
  std::unique_ptr<CudaModel> m;
  try {
    m = preset_with_lanes(ln, /*attention lane takes the remainder*/ true);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) GTEST_SKIP() << e.what();
    throw;
  }
  const int64_t V = m->config().vocab_size;
  std::mt19937 rng(9);
  const std::vector<int32_t> ctx = {40, 300, 17, 129, 64, 380, 5, 50, 700, 1, 33, 256, 90, 512, 8, 222};
  std::vector<Seq> warm, decode;
  for (size_t i = 0; i < ctx.size(); ++i) {
    warm.push_back({ctx[i], ctx[i], 64 * static_cast<int32_t>(i)});
    decode.push_back({1, ctx[i] + 1, 64 * static_cast<int32_t>(i)});
  }
  std::vector<float> sink(static_cast<size_t>(V));
  for (const Seq& w : warm) m->forward(make_plan({w}, V, rng), sink.data());  // one prompt a pass: max 1024 tokens
  const BatchPlan plan = make_plan(decode, V, rng);
  CudaPlanStaging st(m->layout());
  const CudaPlanShape sh = st.pack(plan, {}, {}, V);
  engine::ScheduleSpec sp;  // NanoFlow's interleaving, each nano-batch's attention on the partition
  sp.kind = engine::ScheduleKind::kPipeline;
  sp.gemm_sms = ln.gemm;
  sp.attn_sms = ln.attn;
  sp.attn_remainder = true;
  sp.iterations = engine::ScheduleIterations::kDecode;
  engine::PipelineSchedule s = engine::make_schedule(sp, static_cast<int32_t>(m->config().num_layers));
  const auto ranges = st.split(sh, s.nano_batches, s.split_at_decode);
  st.upload(m->plan_buffer(), sh, m->stream());
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].decode_seqs(), 8);  // 16 decode tokens, halved
  EXPECT_EQ(ranges[1].decode_seqs(), 8);
  const Logits got = run_against_sequential(*m, s, sh, ranges, "pipeline, decode-only");
  const engine::CudaExecutorStats scheduled = expect_executor_samples_argmax(*m, s, plan, got.schedule, true);
  EXPECT_EQ(scheduled.scheduled_iterations, 1);
  EXPECT_EQ(scheduled.graph_replays, 0);
  s.iterations = engine::ScheduleIterations::kMixed;  // decode-only iterations keep their graphs
  const int64_t warmups = m->graph_stats().warmups;
  // (that path runs the sequential forward: its samples are the sequential logits' argmax)
  const engine::CudaExecutorStats graphed = expect_executor_samples_argmax(*m, s, plan, got.sequential, true);
  EXPECT_EQ(graphed.scheduled_iterations, 0);
  EXPECT_EQ(m->graph_stats().warmups, warmups + 1);  // a bucket's first iteration: its graph's warm-up
}

INSTANTIATE_TEST_SUITE_P(Splits, GpuSchedule, ::testing::Bool());

}  // namespace
