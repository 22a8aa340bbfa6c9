#include "engine/engine_core.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "engine/scheduler.h"
#include "engine/text_output.h"
#include "model/model.h"

namespace nanoflow::engine {
namespace {

using Clock = std::chrono::steady_clock;

// The output channel of one request, shared by the engine thread (producer) and the handle.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<TokenEvent> events;
  int32_t choices = 1;
  int32_t finished = 0;
  bool abort_requested = false;
};

class EngineCore;

class Handle final : public RequestHandle {
 public:
  Handle(uint64_t id, std::shared_ptr<Channel> ch, std::weak_ptr<std::function<void(uint64_t)>> abort_fn)
      : id_(id), ch_(std::move(ch)), abort_fn_(std::move(abort_fn)) {}
  ~Handle() override = default;
  uint64_t id() const override { return id_; }
  bool next(TokenEvent* event, std::chrono::milliseconds timeout) override {
    std::unique_lock lk(ch_->mu);
    ch_->cv.wait_for(lk, timeout, [&] { return !ch_->events.empty() || ch_->finished == ch_->choices; });
    if (ch_->events.empty()) return false;
    *event = std::move(ch_->events.front());
    ch_->events.pop_front();
    return true;
  }
  bool done() const override {
    std::lock_guard lk(ch_->mu);
    return ch_->finished == ch_->choices && ch_->events.empty();
  }
  void abort() override {
    if (auto fn = abort_fn_.lock()) (*fn)(id_);
  }

 private:
  uint64_t id_;
  std::shared_ptr<Channel> ch_;
  std::weak_ptr<std::function<void(uint64_t)>> abort_fn_;
};

}  // namespace

struct RequestState {
  uint64_t id = 0;
  std::shared_ptr<Channel> channel;
  std::shared_ptr<const SamplingSetup> sampling;
  std::vector<std::unique_ptr<Sequence>> seqs;  // [n], choice order
  std::unordered_set<int32_t> eos;              // finish on these (unless ignore_eos)
  std::unordered_set<int32_t> stop_ids;
  int32_t prompt_len = 0;
  int32_t unfinished = 0;
  bool counted_queued = true;  // still counts against max_queued (leader not admitted yet)
};

namespace {

class EngineCore final : public Engine {
 public:
  EngineCore(std::unique_ptr<Model> model, std::unique_ptr<Executor> executor, std::unique_ptr<Tokenizer> tokenizer,
             const ModelConfig& model_config, const EngineConfig& config)
      : config_(config),
        model_config_(model_config),
        model_(std::move(model)),
        executor_(std::move(executor)),
        tokenizer_(std::move(tokenizer)),
        kv_(kv::BlockManagerConfig{executor_->num_kv_pages(), config.enable_prefix_caching,
                                   config.prefix_hash_seed != 0 ? config.prefix_hash_seed : std::random_device{}() * 0x9E3779B97F4A7C15ull + std::random_device{}()}),
        scheduler_(SchedulerConfig{config.max_batch_tokens, config.max_running}, kv_) {
    NF_CHECK_INPUT(config.max_queued >= 1) << "max_queued = " << config.max_queued;
    max_model_len_ = config.max_model_len > 0 ? config.max_model_len
                                              : static_cast<int32_t>(std::min<int64_t>(model_config.max_position_embeddings, 1 << 30));
    NF_CHECK_INPUT(max_model_len_ >= 2) << "max_model_len = " << max_model_len_;
    NF_CHECK_EQ(static_cast<int64_t>(executor_->vocab_size()), model_config.vocab_size) << "executor vocabulary";
    if (tokenizer_->eos_id()) base_eos_.push_back(*tokenizer_->eos_id());
    if (model_config.eos_token_id >= 0) base_eos_.push_back(static_cast<int32_t>(model_config.eos_token_id));
    for (int64_t e : model_config.extra_eos_token_ids) base_eos_.push_back(static_cast<int32_t>(e));
    std::sort(base_eos_.begin(), base_eos_.end());
    base_eos_.erase(std::unique(base_eos_.begin(), base_eos_.end()), base_eos_.end());
    abort_fn_ = std::make_shared<std::function<void(uint64_t)>>([this](uint64_t id) { request_abort(id); });
    thread_ = std::thread([this] { loop(); });
  }

  ~EngineCore() override { shutdown(false); }

  std::shared_ptr<RequestHandle> submit(GenerateRequest request) override;
  EngineStats stats() const override {
    std::lock_guard lk(stats_mu_);
    EngineStats s = stats_;
    s.live_requests = live_.load();
    return s;
  }
  const ModelConfig& model_config() const override { return model_config_; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  int32_t max_model_len() const override { return max_model_len_; }
  void shutdown(bool drain) override;

 private:
  void validate(const GenerateRequest& r) const;
  void request_abort(uint64_t id);
  void loop();
  void take_inbox();
  void process(const ScheduledStep& step, const StepOutput& out);
  void on_token(Sequence& s, const SampledToken& tok);
  void finish(Sequence& s, FinishReason why, const std::string& text, std::vector<TokenOutput> tokens,
              const std::string& error = {});
  void abort_request(RequestState& r, const std::string& error = {});
  void reap();
  void publish_stats();
  void idle_check();

  EngineConfig config_;
  ModelConfig model_config_;
  std::unique_ptr<Model> model_;  // declared before executor_: destroyed after it
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Tokenizer> tokenizer_;
  int32_t max_model_len_ = 0;
  std::vector<int32_t> base_eos_;

  // Shared with submitters (mu_).
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<RequestState>> inbox_;
  std::vector<uint64_t> aborts_;
  bool stop_ = false, accepting_ = true, abort_all_ = false;
  std::atomic<int64_t> queued_{0}, live_{0};
  std::atomic<uint64_t> next_request_{1};
  std::shared_ptr<std::function<void(uint64_t)>> abort_fn_;
  std::condition_variable drained_cv_;

  // Engine-thread state.
  kv::BlockManager kv_;
  Scheduler scheduler_;
  std::unordered_map<uint64_t, std::unique_ptr<RequestState>> requests_;
  std::unordered_map<SeqId, Sequence*> seqs_;
  std::vector<Sequence*> to_remove_;
  SeqId next_seq_ = 1;
  int64_t iteration_ = 0;
  bool dirty_ = false;  // state changed since the last idle integrity check

  mutable std::mutex stats_mu_;
  EngineStats stats_;
  std::thread thread_;
};

void EngineCore::validate(const GenerateRequest& r) const {
  const auto& p = r.params;
  const int64_t n = static_cast<int64_t>(r.prompt_ids.size());
  NF_CHECK_INPUT(n > 0) << "the prompt is empty";
  NF_CHECK_INPUT(n < max_model_len_) << "the prompt has " << n << " tokens; the maximum context length is "
                                     << max_model_len_;
  const int32_t vocab = executor_->vocab_size();
  for (int32_t t : r.prompt_ids) NF_CHECK_INPUT(t >= 0 && t < vocab) << "token id " << t << " is outside [0, " << vocab << ")";
  NF_CHECK_INPUT(p.max_tokens >= 1) << "max_tokens = " << p.max_tokens << " must be at least 1";
  NF_CHECK_INPUT(n + p.max_tokens <= max_model_len_)
      << "the prompt has " << n << " tokens and max_tokens is " << p.max_tokens
      << ", more than the maximum context length of " << max_model_len_;
  NF_CHECK_INPUT(p.min_tokens >= 0 && p.min_tokens <= p.max_tokens) << "min_tokens = " << p.min_tokens;
  NF_CHECK_INPUT(p.n >= 1 && p.n <= 128) << "n = " << p.n;
  NF_CHECK_INPUT(p.temperature >= 0.0f && p.temperature <= 1e4f) << "temperature = " << p.temperature;
  NF_CHECK_INPUT(p.top_p > 0.0f && p.top_p <= 1.0f) << "top_p = " << p.top_p;
  NF_CHECK_INPUT(p.top_k >= -1) << "top_k = " << p.top_k;
  NF_CHECK_INPUT(p.min_p >= 0.0f && p.min_p <= 1.0f) << "min_p = " << p.min_p;
  NF_CHECK_INPUT(p.repetition_penalty > 0.0f && p.repetition_penalty <= 1e4f) << "repetition_penalty = " << p.repetition_penalty;
  NF_CHECK_INPUT(p.logprobs >= -1 && p.logprobs <= 1024) << "logprobs = " << p.logprobs;
  for (const auto& s : p.stop) NF_CHECK_INPUT(!s.empty() && s.size() <= 4096) << "stop strings must be 1..4096 bytes";
  const int64_t pages = kv::BlockManager::pages_for_tokens(n + p.max_tokens);
  NF_CHECK_INPUT(pages <= kv_.num_pages()) << "the request needs " << pages << " KV pages (" << n + p.max_tokens
                                           << " tokens); the whole pool has " << kv_.num_pages();
}

std::shared_ptr<RequestHandle> EngineCore::submit(GenerateRequest request) {
  validate(request);
  auto r = std::make_unique<RequestState>();
  r->id = next_request_.fetch_add(1);
  r->channel = std::make_shared<Channel>();
  r->channel->choices = request.params.n;
  r->prompt_len = static_cast<int32_t>(request.prompt_ids.size());
  auto setup = std::make_shared<SamplingSetup>();
  setup->params = request.params;
  setup->seed = request.params.seed ? *request.params.seed
                                    : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  if (!request.params.ignore_eos) setup->eos_ids = base_eos_;
  for (int32_t t : request.params.stop_token_ids) setup->eos_ids.push_back(t);
  if (!request.params.ignore_eos) r->eos.insert(base_eos_.begin(), base_eos_.end());
  r->stop_ids.insert(request.params.stop_token_ids.begin(), request.params.stop_token_ids.end());
  r->sampling = setup;
  size_t max_stop = 0;
  for (const auto& s : request.params.stop) max_stop = std::max(max_stop, s.size());
  for (int32_t c = 0; c < request.params.n; ++c) {
    auto s = std::make_unique<Sequence>();
    s->request = r.get();
    s->choice = c;
    s->sampling = setup;
    s->tokens = request.prompt_ids;
    s->prompt_len = r->prompt_len;
    s->status = c == 0 ? SeqStatus::kWaiting : SeqStatus::kWaitingFork;
    s->text.detok = std::make_unique<IncrementalDetokenizer>(*tokenizer_, true, request.prompt_ids);
    s->text.max_stop_len = max_stop;
    r->seqs.push_back(std::move(s));
  }
  for (int32_t c = 1; c < request.params.n; ++c) r->seqs[0]->children.push_back(r->seqs[static_cast<size_t>(c)].get());
  r->unfinished = request.params.n;
  auto handle = std::make_shared<Handle>(r->id, r->channel, abort_fn_);
  {
    std::lock_guard lk(mu_);
    if (!accepting_) NF_THROW(kResource) << "the engine is shutting down";
    if (queued_.load() >= config_.max_queued)
      NF_THROW(kResource) << "the queue is full (" << config_.max_queued << " waiting requests)";
    ++queued_;
    ++live_;
    inbox_.push_back(std::move(r));
  }
  cv_.notify_all();
  return handle;
}

void EngineCore::request_abort(uint64_t id) {
  {
    std::lock_guard lk(mu_);
    aborts_.push_back(id);
  }
  cv_.notify_all();
}

void EngineCore::shutdown(bool drain) {
  {
    std::unique_lock lk(mu_);
    accepting_ = false;
    // Timed waits: reap() notifies without holding mu_, so a wake-up may slip between checks.
    while (drain && live_.load() != 0 && !stop_) drained_cv_.wait_for(lk, std::chrono::milliseconds(20));
    abort_all_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EngineCore::take_inbox() {
  std::deque<std::unique_ptr<RequestState>> in;
  std::vector<uint64_t> aborts;
  bool abort_all;
  {
    std::lock_guard lk(mu_);
    in.swap(inbox_);
    aborts.swap(aborts_);
    abort_all = abort_all_;
  }
  for (auto& r : in) {
    dirty_ = true;
    for (auto& s : r->seqs) {
      s->id = next_seq_++;
      seqs_[s->id] = s.get();
    }
    scheduler_.enqueue(r->seqs[0].get());
    const uint64_t id = r->id;
    requests_[id] = std::move(r);
  }
  for (uint64_t id : aborts) {
    auto it = requests_.find(id);
    if (it != requests_.end()) abort_request(*it->second);
  }
  if (abort_all)
    for (auto& [id, r] : requests_) abort_request(*r, {});
}

void EngineCore::abort_request(RequestState& r, const std::string& error) {
  for (auto& s : r.seqs)
    if (s->status != SeqStatus::kFinished)
      finish(*s, error.empty() ? FinishReason::kAbort : FinishReason::kError, text_finish(s->text), {}, error);
}

void EngineCore::finish(Sequence& s, FinishReason why, const std::string& text, std::vector<TokenOutput> tokens,
                        const std::string& error) {
  RequestState& r = *s.request;
  s.status = SeqStatus::kFinished;
  to_remove_.push_back(&s);
  TokenEvent ev;
  ev.index = s.choice;
  ev.tokens = std::move(tokens);
  ev.text = text;
  ev.finish = why;
  ev.error = error;
  ev.prompt_tokens = r.prompt_len;
  ev.completion_tokens = s.outputs();
  ev.cached_tokens = s.cached_tokens;
  {
    std::lock_guard lk(stats_mu_);
    switch (why) {
      case FinishReason::kStop: ++stats_.finished_stop; break;
      case FinishReason::kLength: ++stats_.finished_length; break;
      case FinishReason::kAbort: ++stats_.finished_abort; break;
      default: ++stats_.finished_error; break;
    }
  }
  {
    std::lock_guard lk(r.channel->mu);
    r.channel->events.push_back(std::move(ev));
    ++r.channel->finished;
  }
  r.channel->cv.notify_all();
  --r.unfinished;
}

void EngineCore::on_token(Sequence& s, const SampledToken& tok) {
  RequestState& r = *s.request;
  const SamplingParams& p = s.sampling->params;
  // A sampled id outside the model's vocabulary is our fault (500), never the client's.
  NF_CHECK(tok.token >= 0 && tok.token < executor_->vocab_size())
      << "the model produced token id " << tok.token << " outside its vocabulary [0, " << executor_->vocab_size() << ")";
  s.tokens.push_back(tok.token);
  std::vector<TokenOutput> toks(1);
  toks[0].token = tok.token;
  if (p.logprobs >= 0) {
    toks[0].logprob = tok.logprob;
    toks[0].top = tok.top;
  }
  const bool min_reached = s.outputs() >= p.min_tokens;
  if ((r.eos.count(tok.token) || r.stop_ids.count(tok.token)) && min_reached) {
    finish(s, FinishReason::kStop, text_finish(s.text), std::move(toks));
    return;
  }
  bool stopped = false;
  // Ids past the tokenizer's vocabulary (a model's padded rows, e.g. Qwen2's 152064 vs 151646) have
  // no text: they add nothing to the output text, as in transformers' decode.
  const bool has_text = tok.token < tokenizer_->vocab_size();
  std::string text = text_push(s.text, has_text ? s.text.detok->push(tok.token) : std::string(), p.stop, min_reached,
                               &stopped);
  if (stopped) {
    finish(s, FinishReason::kStop, text, std::move(toks));
    return;
  }
  // Known tokens only: an output still in flight (pending) is the surplus one, dropped on finish.
  if (s.outputs() >= p.max_tokens || static_cast<int32_t>(s.tokens.size()) >= max_model_len_) {
    finish(s, FinishReason::kLength, text + text_finish(s.text), std::move(toks));
    return;
  }
  TokenEvent ev;
  ev.index = s.choice;
  ev.tokens = std::move(toks);
  ev.text = std::move(text);
  {
    std::lock_guard lk(r.channel->mu);
    r.channel->events.push_back(std::move(ev));
  }
  r.channel->cv.notify_all();
}

void EngineCore::process(const ScheduledStep& step, const StepOutput& out) {
  if (!out.error.empty()) {
    NF_LOG(kError) << "iteration " << out.iteration << " failed: " << out.error;
    for (const auto& rec : step.seqs) {
      auto it = seqs_.find(rec.id);
      if (it != seqs_.end() && it->second->status != SeqStatus::kFinished)
        abort_request(*it->second->request, "internal error: " + out.error);
    }
    return;
  }
  int64_t prompt_tokens = 0, gen_tokens = 0;
  for (const auto& rec : step.seqs) {
    auto it = seqs_.find(rec.id);
    if (it == seqs_.end()) continue;
    Sequence& s = *it->second;
    if (s.status == SeqStatus::kFinished) continue;  // includes the surplus token after a stop
    if (rec.kv_end > rec.kv_begin && rec.epoch == s.epoch && kv_.has(s.id)) {
      const int32_t committed = kv_.committed_tokens(s.id);
      // A prefix-cache hit after the chunk was planned cannot happen for the same sequence, so
      // the chunk starts exactly where the committed tokens end.
      NF_CHECK_EQ(committed, rec.kv_begin) << "KV commit of sequence " << s.id;
      kv_.apply(kv::CommitOp{s.id, std::span(s.tokens).subspan(static_cast<size_t>(rec.kv_begin),
                                                               static_cast<size_t>(rec.kv_end - rec.kv_begin))});
      prompt_tokens += std::max(0, std::min(rec.kv_end, s.prompt_len) - rec.kv_begin);
    }
    if (rec.sample_index < 0) continue;
    NF_CHECK_LT(static_cast<size_t>(rec.sample_index), out.samples.size()) << "sample of sequence " << s.id;
    s.pending -= 1;
    ++gen_tokens;
    if (s.status == SeqStatus::kWaitingFork) {
      // First token of choice > 0; rec.epoch is the leader's epoch at planning.
      scheduler_.fork(s.request->seqs[0].get(), rec.epoch, &s);
    }
    on_token(s, out.samples[static_cast<size_t>(rec.sample_index)]);
  }
  std::lock_guard lk(stats_mu_);
  stats_.prompt_tokens += prompt_tokens;
  stats_.generation_tokens += gen_tokens;
}

void EngineCore::reap() {
  for (Sequence* s : to_remove_) scheduler_.remove(s);
  for (Sequence* s : to_remove_) {
    RequestState* r = s->request;
    if (r->counted_queued && r->seqs[0]->status != SeqStatus::kWaiting) {
      r->counted_queued = false;
      --queued_;
    }
  }
  // Requests whose choices are all finished are forgotten here (their handles keep the channel).
  std::vector<uint64_t> done;
  for (Sequence* s : to_remove_)
    if (s->request->unfinished == 0) done.push_back(s->request->id);
  to_remove_.clear();
  for (uint64_t id : done) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    for (auto& s : it->second->seqs) seqs_.erase(s->id);
    requests_.erase(it);
    --live_;
  }
  if (!done.empty()) drained_cv_.notify_all();
}

void EngineCore::publish_stats() {
  // Requests whose leader got admitted no longer count as queued.
  for (auto& [id, r] : requests_) {
    if (r->counted_queued && r->seqs[0]->status != SeqStatus::kWaiting) {
      r->counted_queued = false;
      --queued_;
    }
  }
  const auto kst = kv_.stats();
  std::lock_guard lk(stats_mu_);
  stats_.running = static_cast<int64_t>(scheduler_.num_running());
  stats_.waiting = static_cast<int64_t>(scheduler_.num_waiting());
  stats_.kv_pages_total = kst.num_pages;
  stats_.kv_pages_used = kst.referenced;
  stats_.kv_pages_free = kst.free + kst.cached;
  stats_.prefix_queries = kst.prefix_queries;
  stats_.prefix_hits = kst.prefix_hits;
  stats_.kv_evictions = kst.evictions;
  stats_.preemptions = scheduler_.stats().preemptions;
  stats_.iterations = iteration_;
}

void EngineCore::idle_check() {
  if (!dirty_) return;
  dirty_ = false;
  kv_.check_integrity();
  scheduler_.check_integrity();
  NF_CHECK_EQ(kv_.stats().referenced, 0) << "KV pages still referenced with no request running";
}

void EngineCore::loop() {
  std::deque<ScheduledStep> in_flight;
  for (;;) {
    const auto t0 = Clock::now();
    take_inbox();
    reap();
    ScheduledStep step;
    try {
      step = scheduler_.schedule(iteration_ + 1);
    } catch (const std::exception& e) {
      // A broken invariant: fail every request rather than take the process down.
      NF_LOG(kError) << "engine: scheduling failed: " << e.what();
      for (auto& [id, r] : requests_) abort_request(*r, std::string("internal error: ") + e.what());
      reap();
      publish_stats();
      continue;
    }
    // Slot drops and page copies travel with a step even when it has no tokens.
    const bool launch = !step.empty();
    if (launch) {
      ++iteration_;
      dirty_ = true;
      executor_->launch(std::move(step.input));
      step.input = StepInput{};  // only the records stay on this side
      step.input.iteration = iteration_;
      in_flight.push_back(std::move(step));
    }
    int64_t host_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    // Read the results of the previous iteration only now that the next one runs.
    if (in_flight.size() > (launch ? 1u : 0u)) {
      StepOutput out = executor_->wait();
      const auto t1 = Clock::now();
      ScheduledStep done = std::move(in_flight.front());
      in_flight.pop_front();
      NF_CHECK_EQ(out.iteration, done.input.iteration) << "executor results out of order";
      try {
        process(done, out);
      } catch (const std::exception& e) {
        NF_LOG(kError) << "engine: " << e.what();
        for (const auto& rec : done.seqs) {
          auto it = seqs_.find(rec.id);
          if (it != seqs_.end() && it->second->status != SeqStatus::kFinished)
            abort_request(*it->second->request, std::string("internal error: ") + e.what());
        }
      }
      reap();
      publish_stats();
      host_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t1).count();
    }
    {
      std::lock_guard lk(stats_mu_);
      stats_.host_ns += host_ns;
    }
    if (launch || !in_flight.empty()) continue;
    publish_stats();
    std::unique_lock lk(mu_);
    if (stop_ && inbox_.empty() && requests_.empty()) return;
    if (stop_ && abort_all_ && requests_.empty()) return;
    if (inbox_.empty() && aborts_.empty() && !stop_) {
      if (scheduler_.num_running() == 0 && scheduler_.num_waiting() == 0) {
        lk.unlock();
        try {
          idle_check();
        } catch (const std::exception& e) {
          NF_LOG(kError) << "engine integrity check failed: " << e.what();
        }
        lk.lock();
      }
      cv_.wait_for(lk, std::chrono::milliseconds(50), [this] { return !inbox_.empty() || !aborts_.empty() || stop_; });
    }
  }
}

}  // namespace

std::unique_ptr<Engine> make_engine(std::unique_ptr<Model> model, std::unique_ptr<Executor> executor,
                                    std::unique_ptr<Tokenizer> tokenizer, const ModelConfig& model_config,
                                    const EngineConfig& config) {
  NF_CHECK(executor && tokenizer) << "an engine needs an executor and a tokenizer";
  return std::make_unique<EngineCore>(std::move(model), std::move(executor), std::move(tokenizer), model_config, config);
}

}  // namespace nanoflow::engine

namespace nanoflow {

std::unique_ptr<Engine> Engine::create(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tokenizer,
                                       const EngineConfig& config) {
  NF_CHECK(model) << "Engine::create needs a model";
  const ModelConfig mc = model->config();
  auto executor = std::make_unique<engine::ThreadedExecutor>(*model);
  return engine::make_engine(std::move(model), std::move(executor), std::move(tokenizer), mc, config);
}

}  // namespace nanoflow
