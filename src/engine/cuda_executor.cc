#if defined(NANOFLOW_HAVE_CUDA)
#include "engine/cuda_executor.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "engine/sampler.h"
#include "kernels/cuda/sampling.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::engine {
namespace {

constexpr int kTop = cuda::kMaxLogprobs;

// Mixes the choice index into a request seed so n > 1 choices draw independently (the CPU
// sampler keys its stream by (seed, choice) too).
uint64_t row_seed(uint64_t seed, int32_t choice) {
  uint64_t z = seed ^ (static_cast<uint64_t>(static_cast<uint32_t>(choice)) * 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 31)) * 0xD6E8FEB86659FD93ull;
  return z ^ (z >> 32);
}

template <class T>
T* device_alloc(size_t n, const char* what) {
  void* p = nullptr;
  NF_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n * sizeof(T), 16))) << what;
  return static_cast<T*>(p);
}
template <class T>
T* host_alloc(size_t n, const char* what) {
  void* p = nullptr;
  NF_CUDA_CHECK(cudaMallocHost(&p, std::max<size_t>(n * sizeof(T), 16))) << what;
  return static_cast<T*>(p);
}

}  // namespace

CudaExecutor::CudaExecutor(CudaModel& model, const PipelineSchedule& schedule, const CudaExecutorOptions& options)
    : model_(model), schedule_(schedule), opt_(options), vocab_(static_cast<int32_t>(model.config().vocab_size)) {
  const CudaPlanLayout& L = model_.layout();
  graph_seq_cap_ = std::min({L.max_seqs, L.max_tokens, L.max_sampled});
  schedule_.validate(static_cast<int32_t>(model_.config().num_layers));
  if (!schedule_.is_sequential()) runner_ = std::make_unique<ScheduleRunner>(model_, schedule_);
  for (int k = 0; k < kRing; ++k) {
    staging_[k] = std::make_unique<CudaPlanStaging>(model_.layout());
    NF_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_[k], cudaEventDisableTiming)) << "event";
    NF_CUDA_CHECK(cudaEventCreate(&start_[k])) << "event";
    NF_CUDA_CHECK(cudaEventCreate(&done_[k])) << "event";
  }
  const size_t R = static_cast<size_t>(model_.layout().max_sampled);
  d_sampled_ = device_alloc<int32_t>(kRing * R, "sampled ids");
  d_logprob_ = device_alloc<float>(kRing * R, "sampled logprobs");
  d_top_ids_ = device_alloc<int32_t>(kRing * R * kTop, "top ids");
  d_top_lp_ = device_alloc<float>(kRing * R * kTop, "top logprobs");
  h_sampled_ = host_alloc<int32_t>(kRing * R, "pinned sampled ids");
  h_logprob_ = host_alloc<float>(kRing * R, "pinned logprobs");
  h_top_ids_ = host_alloc<int32_t>(kRing * R * kTop, "pinned top ids");
  h_top_lp_ = host_alloc<float>(kRing * R * kTop, "pinned top logprobs");
}

CudaExecutor::~CudaExecutor() {
  // Errors here have nowhere to go; the stream is drained so no copy targets freed memory.
  cudaStreamSynchronize(model_.stream());
  for (int k = 0; k < kRing; ++k) {
    cudaEventDestroy(uploaded_[k]);
    cudaEventDestroy(start_[k]);
    cudaEventDestroy(done_[k]);
  }
  cudaFree(d_sampled_);
  cudaFree(d_logprob_);
  cudaFree(d_top_ids_);
  cudaFree(d_top_lp_);
  cudaFreeHost(h_sampled_);
  cudaFreeHost(h_logprob_);
  cudaFreeHost(h_top_ids_);
  cudaFreeHost(h_top_lp_);
}

bool CudaExecutor::needs_host_sampling(const Slot& s) const {
  const SamplingParams& p = s.reg.params;
  return !p.logit_bias.empty() || p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f ||
         p.presence_penalty != 0.0f || p.logprobs > kTop ||
         (s.launched < p.min_tokens && !s.reg.eos_ids.empty());
}

void CudaExecutor::launch(StepInput step) {
  NF_CHECK(in_flight_.size() < static_cast<size_t>(kRing)) << "more than " << kRing - 1 << " iterations in flight";
  cudaStream_t s = model_.stream();
  const int k = static_cast<int>(launches_++ % kRing);
  InFlight f;
  f.iteration = step.iteration;
  f.k = k;
  try {
    for (uint64_t d : step.drops) slots_.erase(d);
    for (auto& r : step.registrations) {
      Slot sl;
      sl.reg = r;
      sl.launched = static_cast<int64_t>(r.outputs.size());
      slots_.insert_or_assign(r.slot, std::move(sl));
    }
    for (const auto& c : step.copies) model_.copy_page(c.src, c.dst);
    BatchPlan& plan = step.plan;
    if (plan.num_tokens() == 0) {
      have_prev_ = false;
      in_flight_.push_back(std::move(f));
      return;
    }
    plan.validate(model_.num_kv_pages());
    NF_CHECK_EQ(step.sample_slots.size(), plan.sample_rows.size()) << "sampler per sample row";
    std::vector<int32_t> pairs;
    pairs.reserve(step.deferred.size() * 2);
    for (const auto& d : step.deferred) {
      NF_CHECK(have_prev_) << "deferred token without a previous iteration's samples";
      NF_CHECK(d.sample_index >= 0 && d.sample_index < prev_rows_)
          << "deferred token refers to sample " << d.sample_index << " of " << prev_rows_;
      pairs.push_back(d.token_index);
      pairs.push_back(d.sample_index);
    }
    // Sampling rows.
    const size_t R = plan.sample_rows.size();
    std::vector<SampleRowParams> rows(R);
    f.rows = static_cast<int32_t>(R);
    f.row_slots = step.sample_slots;
    f.row_logprobs.resize(R);
    for (size_t i = 0; i < R; ++i) {
      auto it = slots_.find(step.sample_slots[i]);
      NF_CHECK(it != slots_.end()) << "no sampler slot " << step.sample_slots[i];
      Slot& sl = it->second;
      const SamplingParams& p = sl.reg.params;
      f.host_sampled = f.host_sampled || needs_host_sampling(sl);
      rows[i].temperature = p.temperature;
      rows[i].top_p = p.top_p;
      rows[i].min_p = p.min_p;
      rows[i].top_k = p.top_k;
      rows[i].seed = row_seed(sl.reg.seed, sl.reg.choice);
      rows[i].step = sl.launched++;
      f.row_logprobs[i] = p.logprobs;
      f.num_logprobs = std::max(f.num_logprobs, std::min(p.logprobs, kTop));
    }
    // The staging buffer of ring slot k was last sent kRing launches ago; wait for that copy.
    NF_CUDA_CHECK(cudaEventSynchronize(uploaded_[k])) << "staging reuse";
    CudaPlanShape sh = staging_[k]->pack(plan, pairs, rows, vocab_);
    // Decode-only: pad to the bucket so the forward can run through its graph.
    const bool decode_only = sh.num_decode == sh.num_seqs && sh.num_tokens == sh.num_seqs;
    bool scheduled = runner_ != nullptr && schedule_.runs(decode_only);
    std::vector<NanoBatchRange> ranges;  // before the upload: the split regroups the tile list
    if (scheduled) {
      ranges = staging_[k]->split(sh, schedule_.nano_batches, schedule_.split_at_decode);
      // A nano-batch left empty (one sequence, no decodes, no prefill) would only confine the
      // iteration to a partition: it runs the sequential forward (or its graph) instead.
      scheduled = std::all_of(ranges.begin(), ranges.end(), [](const NanoBatchRange& r) { return r.tokens() > 0; });
    }
    bool graphed = false;
    if (opt_.cuda_graphs && decode_only && !scheduled) {
      const int32_t bucket = decode_graph_seq_bucket(sh.num_seqs, graph_seq_cap_);
      graphed = bucket > 0 &&
                staging_[k]->pad_decode(sh, bucket, decode_graph_kv_bucket(sh.max_decode_kv), model_.scratch_page());
    }
    NF_CUDA_CHECK(cudaEventRecord(start_[k], s)) << "start event";
    staging_[k]->upload(model_.plan_buffer(), sh, s);
    NF_CUDA_CHECK(cudaEventRecord(uploaded_[k], s)) << "upload event";
    const int32_t* prev = have_prev_ ? d_sampled_ + static_cast<size_t>(prev_k_) * model_.layout().max_sampled : nullptr;
    if (graphed && model_.forward_device_graphed(sh, prev, have_prev_ ? prev_rows_ : 0)) {
      ++stats_.graph_replays;
    } else {
      if (scheduled) {
        runner_->run(sh, ranges, prev);
        ++stats_.scheduled_iterations;
      } else if (!graphed) {
        model_.forward_device(sh, prev);
      }
      ++stats_.eager_iterations;
    }
    const size_t R0 = static_cast<size_t>(k) * model_.layout().max_sampled;
    if (f.host_sampled) {
      sample_on_host(f, sh);
    } else if (R > 0) {
      const CudaPlanLayout& L = model_.layout();
      auto P = [&](size_t off) { return static_cast<uint8_t*>(model_.plan_buffer()) + off; };
      cuda::SamplingParams sp;
      sp.logits = model_.logits_device();
      sp.rows = static_cast<int>(R);
      sp.vocab = vocab_;
      sp.round_bf16 = true;  // a bf16 model's logits, as transformers and vLLM sample from them
      sp.temperature = reinterpret_cast<const float*>(P(L.temperature));
      sp.top_k = reinterpret_cast<const int32_t*>(P(L.top_k));
      sp.top_p = reinterpret_cast<const float*>(P(L.top_p));
      sp.min_p = reinterpret_cast<const float*>(P(L.min_p));
      sp.seed = reinterpret_cast<const uint64_t*>(P(L.seed));
      sp.step = reinterpret_cast<const int64_t*>(P(L.step));
      sp.num_logprobs = f.num_logprobs;
      sp.sampled = d_sampled_ + R0;
      sp.sampled_logprob = d_logprob_ + R0;
      sp.top_ids = d_top_ids_ + R0 * kTop;
      sp.top_logprobs = d_top_lp_ + R0 * kTop;
      cuda::sample(sp, s);
      NF_CUDA_CHECK(cudaMemcpyAsync(h_sampled_ + R0, d_sampled_ + R0, R * 4, cudaMemcpyDeviceToHost, s)) << "ids";
      NF_CUDA_CHECK(cudaMemcpyAsync(h_logprob_ + R0, d_logprob_ + R0, R * 4, cudaMemcpyDeviceToHost, s)) << "logprobs";
      if (f.num_logprobs > 0) {
        NF_CUDA_CHECK(cudaMemcpyAsync(h_top_ids_ + R0 * kTop, d_top_ids_ + R0 * kTop, R * kTop * 4,
                                      cudaMemcpyDeviceToHost, s)) << "top ids";
        NF_CUDA_CHECK(cudaMemcpyAsync(h_top_lp_ + R0 * kTop, d_top_lp_ + R0 * kTop, R * kTop * 4,
                                      cudaMemcpyDeviceToHost, s)) << "top logprobs";
      }
    }
    NF_CUDA_CHECK(cudaEventRecord(done_[k], s)) << "done event";
    f.ran = true;
    have_prev_ = R > 0;
    prev_k_ = k;
    prev_rows_ = static_cast<int32_t>(R);
  } catch (const std::exception& e) {
    f.error = e.what();
    have_prev_ = false;
  }
  in_flight_.push_back(std::move(f));
}

// Appends an iteration's sampled tokens to the slots' histories (for later host sampling).
void CudaExecutor::absorb(InFlight& f) {
  if (f.absorbed || !f.error.empty()) return;
  f.absorbed = true;
  const size_t R0 = static_cast<size_t>(f.k) * model_.layout().max_sampled;
  for (int32_t i = 0; i < f.rows; ++i) {
    auto it = slots_.find(f.row_slots[static_cast<size_t>(i)]);
    if (it == slots_.end()) continue;  // dropped meanwhile
    const int32_t tok = f.host_sampled ? f.out.samples[static_cast<size_t>(i)].token : h_sampled_[R0 + i];
    it->second.reg.outputs.push_back(tok);
  }
}

// Synchronous path: logits to the host, CPU sampler per row, ids back to the device ring slot so
// the next iteration's deferred tokens read them as usual.
void CudaExecutor::sample_on_host(InFlight& f, const CudaPlanShape& sh) {
  cudaStream_t s = model_.stream();
  const size_t R = static_cast<size_t>(f.rows);
  host_logits_.resize(R * static_cast<size_t>(vocab_));
  NF_CUDA_CHECK(cudaMemcpyAsync(host_logits_.data(), model_.logits_device(), host_logits_.size() * 4,
                                cudaMemcpyDeviceToHost, s)) << "logits download";
  NF_CUDA_CHECK(cudaStreamSynchronize(s)) << "host sampling";
  for (float& l : host_logits_) l = round_bf16(l);  // as the GPU sampler (round_bf16)
  for (auto& g : in_flight_) absorb(g);  // every earlier iteration is complete now
  ++stats_.host_sampled_iterations;
  const size_t R0 = static_cast<size_t>(f.k) * model_.layout().max_sampled;
  f.out.samples.reserve(R);
  for (size_t i = 0; i < R; ++i) {
    Slot& sl = slots_.at(f.row_slots[i]);
    SlotRegistration reg = sl.reg;  // history as known now: prompt + every earlier output
    SamplerSlot sampler(reg);
    f.out.samples.push_back(sampler.sample(&host_logits_[i * static_cast<size_t>(vocab_)], vocab_));
    h_sampled_[R0 + i] = f.out.samples.back().token;
  }
  NF_CUDA_CHECK(cudaMemcpyAsync(d_sampled_ + R0, h_sampled_ + R0, R * 4, cudaMemcpyHostToDevice, s)) << "ids upload";
  (void)sh;
}

StepOutput CudaExecutor::wait() {
  NF_CHECK(!in_flight_.empty()) << "wait() without a launched iteration";
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  StepOutput out;
  out.iteration = f.iteration;
  if (!f.error.empty()) {
    out.error = f.error;
    return out;
  }
  if (!f.ran) return out;  // a step with no tokens: drops/copies only
  try {
    NF_CUDA_CHECK(cudaEventSynchronize(done_[f.k])) << "iteration " << f.iteration;
    float ms = 0.f;
    if (cudaEventElapsedTime(&ms, start_[f.k], done_[f.k]) == cudaSuccess) {
      out.forward_ms = ms;
      stats_.gpu_ms += ms;
    }
    ++stats_.iterations;
    if (f.host_sampled) {
      out.samples = f.out.samples;
    } else {
      const size_t R0 = static_cast<size_t>(f.k) * model_.layout().max_sampled;
      out.samples.resize(static_cast<size_t>(f.rows));
      for (int32_t i = 0; i < f.rows; ++i) {
        SampledToken& t = out.samples[static_cast<size_t>(i)];
        t.token = h_sampled_[R0 + i];
        t.logprob = h_logprob_[R0 + i];
        const int32_t want = std::min(f.row_logprobs[static_cast<size_t>(i)], f.num_logprobs);
        // The sampler packs the rows at a stride of the iteration's num_logprobs (sampling.h).
        const size_t row = R0 * kTop + static_cast<size_t>(i) * static_cast<size_t>(f.num_logprobs);
        for (int32_t j = 0; j < want; ++j) t.top.push_back({h_top_ids_[row + j], h_top_lp_[row + j]});
      }
    }
    absorb(f);
  } catch (const std::exception& e) {
    out.error = e.what();
    out.samples.clear();
  }
  return out;
}

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
