// A test double of nanoflow::Engine for the server's unit tests: a byte tokenizer (id = byte,
// 256 = EOS) and an engine thread that, every `iteration`, gives each running request one token
// (choice c's token i is the prompt's byte (i + c) mod prompt length), with pages counted as the
// real engine would (16 tokens a page), limits on running and queued requests, aborts honoured at
// the next iteration, and stop strings cut from the output. It lets the HTTP layer be tested
// without a model; the model tests run the same cases against the real engine.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "nanoflow/engine.h"

namespace nanoflow::testing {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kEos = 256;
  std::vector<int32_t> encode(std::string_view text, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids, bool skip_special) const override {
    std::string s;
    for (int32_t id : ids) {
      NF_CHECK_INPUT(id >= 0 && id <= kEos) << "id " << id;
      if (id == kEos) {
        if (!skip_special) s += "</s>";
      } else {
        s += static_cast<char>(id);
      }
    }
    return s;
  }
  std::string token_bytes(int32_t id) const override {
    NF_CHECK_INPUT(id >= 0 && id <= kEos) << "id " << id;  // as the real tokenizers refuse
    return id == kEos ? "</s>" : std::string(1, static_cast<char>(id));
  }
  std::string id_to_token(int32_t id) const override { return token_bytes(id); }
  std::optional<int32_t> token_to_id(std::string_view t) const override {
    if (t.size() == 1) return static_cast<unsigned char>(t[0]);
    return std::nullopt;
  }
  int32_t vocab_size() const override { return kEos + 1; }
  bool is_special(int32_t id) const override { return id == kEos; }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> eos_id() const override { return kEos; }
  const std::string& chat_template() const override { return template_; }
  std::string bos_token() const override { return ""; }
  std::string eos_token() const override { return "</s>"; }

 private:
  std::string template_;
};

struct FakeEngineConfig {
  int32_t max_model_len = 256;
  int32_t max_running = 8;
  int32_t max_queued = 64;
  std::chrono::milliseconds iteration{2};
  // > 0: the model has this many vocabulary rows past the tokenizer's (padded rows, as Qwen2's),
  // and the last top-logprob alternative of every token is the first of them.
  int32_t padded_rows = 0;
};

class FakeEngine : public Engine {
 public:
  explicit FakeEngine(FakeEngineConfig c = {}) : cfg_(c) {
    config_.name = "fake";
    config_.vocab_size = ByteTokenizer::kEos + 1 + cfg_.padded_rows;
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeEngine() override { shutdown(false); }

  std::shared_ptr<RequestHandle> submit(GenerateRequest req) override {
    std::lock_guard lock(mu_);
    if (stopped_) NF_THROW(kResource) << "engine stopped";
    NF_CHECK_INPUT(static_cast<int32_t>(req.prompt_ids.size()) < cfg_.max_model_len) << "prompt too long";
    if (static_cast<int32_t>(waiting_.size()) >= cfg_.max_queued)
      NF_THROW(kResource) << "queue full (" << waiting_.size() << " waiting)";
    auto r = std::make_shared<Req>();
    r->id = ++next_id_;
    r->req = std::move(req);
    r->choices.resize(static_cast<size_t>(r->req.params.n));
    waiting_.push_back(r);
    ++submitted_;
    return std::make_shared<Handle>(r);
  }

  EngineStats stats() const override {
    std::lock_guard lock(mu_);
    EngineStats s;
    s.running = static_cast<int64_t>(running_.size());
    s.waiting = static_cast<int64_t>(waiting_.size());
    s.kv_pages_total = 1024;
    for (const auto& r : running_) s.kv_pages_used += r->pages();
    s.kv_pages_free = s.kv_pages_total - s.kv_pages_used;
    s.live_requests = s.running + s.waiting;
    s.generation_tokens = generated_;
    s.iterations = iterations_;
    s.finished_abort = aborted_;
    return s;
  }
  const ModelConfig& model_config() const override { return config_; }
  const Tokenizer& tokenizer() const override { return tok_; }
  int32_t max_model_len() const override { return cfg_.max_model_len; }
  void shutdown(bool drain) override {
    {
      std::unique_lock lock(mu_);
      if (stopped_) return;
      if (drain) cv_.wait(lock, [&] { return running_.empty() && waiting_.empty(); });
      stopped_ = true;
    }
    thread_.join();
    std::lock_guard lock(mu_);
    for (auto& r : running_) finish_all(*r, FinishReason::kAbort);
    for (auto& r : waiting_) finish_all(*r, FinishReason::kAbort);
    running_.clear();
    waiting_.clear();
  }

  // Test hooks.
  int64_t submitted() const { std::lock_guard l(mu_); return submitted_; }
  int64_t ever_scheduled() const { std::lock_guard l(mu_); return scheduled_; }
  int64_t aborted() const { std::lock_guard l(mu_); return aborted_; }

 private:
  struct Choice {
    int32_t generated = 0;
    std::string text;
    size_t emitted = 0;  // bytes of text already sent
    bool finished = false;
  };
  struct Req {
    uint64_t id = 0;
    GenerateRequest req;
    std::vector<Choice> choices;
    std::atomic<bool> abort{false};
    std::mutex mu;
    std::condition_variable cv;
    std::deque<TokenEvent> events;
    int open_choices = 0;
    bool ended = false;
    int64_t pages() const {
      int32_t most = 0;
      for (const auto& c : choices) most = std::max(most, c.generated);
      return (static_cast<int64_t>(req.prompt_ids.size()) + most + 15) / 16;
    }
    void push(TokenEvent ev) {
      std::lock_guard lock(mu);
      if (ev.finish != FinishReason::kNone) ended = --open_choices <= 0;
      events.push_back(std::move(ev));
      cv.notify_all();
    }
  };
  class Handle : public RequestHandle {
   public:
    explicit Handle(std::shared_ptr<Req> r) : r_(std::move(r)) {
      r_->open_choices = static_cast<int>(r_->choices.size());
    }
    uint64_t id() const override { return r_->id; }
    bool next(TokenEvent* ev, std::chrono::milliseconds timeout) override {
      std::unique_lock lock(r_->mu);
      if (!r_->cv.wait_for(lock, timeout, [&] { return !r_->events.empty() || r_->ended; })) return false;
      if (r_->events.empty()) return false;
      *ev = std::move(r_->events.front());
      r_->events.pop_front();
      return true;
    }
    bool done() const override {
      std::lock_guard lock(r_->mu);
      return r_->ended && r_->events.empty();
    }
    void abort() override { r_->abort = true; }

   private:
    std::shared_ptr<Req> r_;
  };

  void finish_all(Req& r, FinishReason why) {
    for (size_t c = 0; c < r.choices.size(); ++c) {
      if (r.choices[c].finished) continue;
      r.choices[c].finished = true;
      TokenEvent ev;
      ev.index = static_cast<int32_t>(c);
      ev.finish = why;
      ev.prompt_tokens = static_cast<int32_t>(r.req.prompt_ids.size());
      ev.completion_tokens = r.choices[c].generated;
      r.push(std::move(ev));
    }
    if (why == FinishReason::kAbort) ++aborted_;
  }

  // One token for choice c of r; returns true when the choice finished.
  bool step(Req& r, size_t c) {
    Choice& ch = r.choices[c];
    const auto& p = r.req.prompt_ids;
    int32_t tok = p[(static_cast<size_t>(ch.generated) + c) % p.size()];
    ++ch.generated;
    ++generated_;
    ch.text += tok_.token_bytes(tok);
    TokenEvent ev;
    ev.index = static_cast<int32_t>(c);
    TokenOutput out;
    out.token = tok;
    out.logprob = -0.5f;
    for (int32_t k = 0; k < std::max(0, r.req.params.logprobs); ++k) out.top.push_back({(tok + k) % 256, -0.5f - static_cast<float>(k)});
    if (cfg_.padded_rows > 0 && !out.top.empty()) out.top.back().token = ByteTokenizer::kEos + 1;
    ev.tokens.push_back(out);
    FinishReason fin = FinishReason::kNone;
    size_t keep = ch.text.size();
    for (const auto& s : r.req.params.stop) {
      size_t pos = ch.text.find(s);
      if (pos != std::string::npos && pos < keep) keep = pos, fin = FinishReason::kStop;
    }
    if (fin == FinishReason::kNone && ch.generated >= r.req.params.max_tokens) fin = FinishReason::kLength;
    // Hold back a tail that could still become a stop string.
    size_t hold = 0;
    if (fin == FinishReason::kNone)
      for (const auto& s : r.req.params.stop)
        for (size_t k = std::min(s.size() - 1, ch.text.size()); k > hold; --k)
          if (ch.text.compare(ch.text.size() - k, k, s, 0, k) == 0) { hold = k; break; }
    size_t final_end = fin == FinishReason::kNone ? ch.text.size() - hold : keep;
    if (final_end > ch.emitted) {
      ev.text = ch.text.substr(ch.emitted, final_end - ch.emitted);
      ch.emitted = final_end;
    }
    if (fin != FinishReason::kNone) {
      ch.finished = true;
      ev.finish = fin;
      ev.prompt_tokens = static_cast<int32_t>(p.size());
      ev.completion_tokens = ch.generated;
    }
    r.push(std::move(ev));
    return ch.finished;
  }

  void loop() {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        ++iterations_;
        for (auto it = waiting_.begin(); it != waiting_.end();) {  // aborted while queued
          if ((*it)->abort) {
            finish_all(**it, FinishReason::kAbort);
            it = waiting_.erase(it);
          } else {
            ++it;
          }
        }
        while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < cfg_.max_running) {
          running_.push_back(waiting_.front());
          waiting_.pop_front();
          ++scheduled_;
        }
        for (auto it = running_.begin(); it != running_.end();) {
          Req& r = **it;
          // Read the flag once: an abort that lands while this request steps is taken next
          // iteration; reading it again below would drop the request with no finish event.
          const bool abort = r.abort;
          bool all_done = true;
          if (abort) {
            finish_all(r, FinishReason::kAbort);
          } else {
            for (size_t c = 0; c < r.choices.size(); ++c)
              if (!r.choices[c].finished && !step(r, c)) all_done = false;
          }
          if (abort || all_done) it = running_.erase(it);
          else ++it;
        }
        cv_.notify_all();
      }
      std::this_thread::sleep_for(cfg_.iteration);
    }
  }

  FakeEngineConfig cfg_;
  ModelConfig config_;
  ByteTokenizer tok_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Req>> waiting_;
  std::list<std::shared_ptr<Req>> running_;
  uint64_t next_id_ = 0;
  int64_t submitted_ = 0, scheduled_ = 0, aborted_ = 0, generated_ = 0, iterations_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace nanoflow::testing
