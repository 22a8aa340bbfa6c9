#include "server/generation.h"

#include <ctime>
#include <mutex>
#include <random>

#include "core/error.h"

namespace nanoflow {

using nlohmann::json;

std::string make_request_id(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t a, b;
  {
    std::lock_guard lock(mu);
    a = rng();
    b = rng();
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%08llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b & 0xffffffffu));
  return std::string(prefix) + buf;
}

Generation::Generation(const OpenAIRequest& request, std::vector<PreparedPrompt> prompts,
                       const Tokenizer& tokenizer, std::string model_name,
                       std::chrono::steady_clock::time_point arrival)
    : request_(request), prompts_(std::move(prompts)), tokenizer_(tokenizer),
      model_(std::move(model_name)) {
  chat_ = request.endpoint == OpenAIEndpoint::kChat;
  id_ = make_request_id(chat_ ? "chatcmpl-" : "cmpl-");
  created_ = static_cast<int64_t>(std::time(nullptr));
  n_ = request.params.n;
  choices_.resize(prompts_.size() * static_cast<size_t>(n_));
  timing_.arrival = arrival;
}

Generation::~Generation() { abort(); }

void Generation::submit(Engine& engine) {
  try {
    for (auto& p : prompts_) handles_.push_back(engine.submit(p.request));
  } catch (...) {
    abort();
    throw;
  }
}

void Generation::abort() {
  for (auto& h : handles_)
    if (h && !h->done()) h->abort();
}

bool Generation::finished() const {
  for (const auto& c : choices_)
    if (c.finish == FinishReason::kNone) return false;
  return true;
}

bool Generation::failed() const {
  for (const auto& c : choices_)
    if (c.finish == FinishReason::kError) return true;
  return false;
}

std::string Generation::first_error() const {
  for (const auto& c : choices_)
    if (c.finish == FinishReason::kError) return c.error.empty() ? "generation failed" : c.error;
  return {};
}

int32_t Generation::prompt_tokens() const {
  int64_t n = 0;
  for (const auto& p : prompts_) n += static_cast<int64_t>(p.request.prompt_ids.size());
  return static_cast<int32_t>(n);
}

json Generation::usage() const {
  int64_t completion = 0;
  for (const auto& c : choices_) completion += c.reported_tokens >= 0 ? c.reported_tokens : c.completion_tokens;
  int64_t prompt = prompt_tokens();
  // The choices of one prompt share its pages: count each prompt's cache hits once (choice 0).
  int64_t cached = 0;
  for (size_t i = 0; i < choices_.size(); i += static_cast<size_t>(n_)) cached += choices_[i].cached_tokens;
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

json Generation::chunk_base() const {
  json j = {{"id", id_},
            {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", model_},
            {"choices", json::array()}};
  if (request_.include_usage) j["usage"] = nullptr;
  return j;
}

std::string Generation::sse(const json& chunk) const {
  // Token text may end inside a UTF-8 sequence only if the engine misbehaves; replace, never throw.
  return "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string Generation::stream_error(const std::string& error_json) {
  return "data: " + error_json + "\n\ndata: [DONE]\n\n";
}

void Generation::start_stream(std::string* out) {
  if (stream_started_ || !out) return;
  stream_started_ = true;
  // The first chat delta of each choice carries the role; echo sends the prompt first.
  for (size_t i = 0; i < choices_.size(); ++i) {
    json chunk = chunk_base();
    if (chat_) {
      chunk["choices"].push_back({{"index", i},
                                  {"delta", {{"role", "assistant"}, {"content", ""}}},
                                  {"logprobs", nullptr},
                                  {"finish_reason", nullptr}});
    } else if (request_.echo) {
      const std::string& prompt = prompts_[i / static_cast<size_t>(n_)].prompt_text;
      choices_[i].text_offset = static_cast<int32_t>(prompt.size());
      chunk["choices"].push_back({{"index", i}, {"text", prompt}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
    } else {
      continue;
    }
    choices_[i].started = true;
    *out += sse(chunk);
  }
}

// Text of one token for logprobs; ids past the tokenizer's vocabulary (a model's padded rows,
// e.g. Qwen2's) have none.
static std::string token_piece(const Tokenizer& t, int32_t id) {
  return id < t.vocab_size() ? t.token_bytes(id) : std::string();
}

json Generation::logprobs_delta(const std::vector<TokenOutput>& tokens, ChoiceState& c) const {
  auto bytes_of = [](const std::string& s) {
    json b = json::array();
    for (unsigned char ch : s) b.push_back(static_cast<int>(ch));
    return b;
  };
  if (chat_) {
    json content = json::array();
    for (const auto& t : tokens) {
      std::string s = token_piece(tokenizer_, t.token);
      json top = json::array();
      for (const auto& alt : t.top) {
        std::string a = token_piece(tokenizer_, alt.token);
        top.push_back({{"token", a}, {"logprob", alt.logprob}, {"bytes", bytes_of(a)}});
      }
      content.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const auto& t : tokens) {
    std::string s = token_piece(tokenizer_, t.token);
    toks.push_back(s);
    lps.push_back(t.logprob);
    json top = json::object();
    top[s] = t.logprob;
    for (const auto& alt : t.top) top[token_piece(tokenizer_, alt.token)] = alt.logprob;
    tops.push_back(top);
    offs.push_back(c.text_offset);
    c.text_offset += static_cast<int32_t>(s.size());
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

void Generation::append_logprobs(ChoiceState& c, const json& delta) const {
  if (c.logprobs.is_null()) {
    c.logprobs = delta;
    return;
  }
  for (auto it = delta.begin(); it != delta.end(); ++it)
    for (const auto& v : it.value()) c.logprobs[it.key()].push_back(v);
}

void Generation::apply(size_t prompt_index, const TokenEvent& ev, std::string* out) {
  if (ev.index < 0 || ev.index >= n_) return;  // not ours; never index out of range
  size_t ci = prompt_index * static_cast<size_t>(n_) + static_cast<size_t>(ev.index);
  ChoiceState& c = choices_[ci];
  if (c.finish != FinishReason::kNone) return;
  auto now = std::chrono::steady_clock::now();
  if (!ev.tokens.empty()) {
    if (!timing_.has_token) timing_.first_token = now;
    timing_.has_token = true;
    timing_.last_token = now;
  }
  c.completion_tokens += static_cast<int32_t>(ev.tokens.size());
  json lp;
  if (request_.params.logprobs >= 0 && !ev.tokens.empty()) lp = logprobs_delta(ev.tokens, c);
  if (ev.finish != FinishReason::kNone) {
    c.finish = ev.finish;
    c.error = ev.error;
    c.reported_tokens = ev.completion_tokens;
    c.cached_tokens = ev.cached_tokens;
  }
  if (!out) {  // non-streaming: accumulate
    if (!c.started && request_.echo && !chat_) {
      c.text = prompts_[prompt_index].prompt_text;
      c.text_offset = static_cast<int32_t>(c.text.size());
    }
    c.started = true;
    c.text += ev.text;
    if (!lp.is_null()) append_logprobs(c, lp);
    return;
  }
  if (c.finish == FinishReason::kError) return;  // reported once by the caller as an error event
  if (ev.text.empty() && lp.is_null() && c.finish == FinishReason::kNone) return;
  json chunk = chunk_base();
  const char* fr = c.finish == FinishReason::kNone ? nullptr : finish_reason_name(c.finish);
  json choice = {{"index", ci}, {"logprobs", lp.is_null() ? json() : lp}, {"finish_reason", fr ? json(fr) : json()}};
  if (chat_) {
    choice["delta"] = ev.text.empty() && fr ? json::object() : json{{"content", ev.text}};
  } else {
    choice["text"] = ev.text;
  }
  chunk["choices"].push_back(std::move(choice));
  *out += sse(chunk);
}

bool Generation::poll(std::chrono::milliseconds timeout, std::string* out) {
  start_stream(out);
  bool any = false;
  TokenEvent ev;
  // Drain whatever is ready on every handle, starting at a rotating one for fairness.
  for (size_t k = 0; k < handles_.size(); ++k) {
    size_t p = (next_poll_ + k) % handles_.size();
    while (handles_[p]->next(&ev, std::chrono::milliseconds(0))) {
      apply(p, ev, out);
      any = true;
    }
  }
  if (!any && !finished()) {
    for (size_t k = 0; k < handles_.size(); ++k) {
      size_t p = (next_poll_ + k) % handles_.size();
      if (handles_[p]->done()) continue;
      if (handles_[p]->next(&ev, timeout)) {
        apply(p, ev, out);
        any = true;
      }
      break;
    }
  }
  next_poll_ = handles_.empty() ? 0 : (next_poll_ + 1) % handles_.size();
  // A stream that ended without a finish event is an engine fault; never wait on it forever.
  for (size_t p = 0; p < handles_.size(); ++p) {
    if (!handles_[p]->done()) continue;
    for (int32_t i = 0; i < n_; ++i) {
      ChoiceState& c = choices_[p * static_cast<size_t>(n_) + static_cast<size_t>(i)];
      if (c.finish == FinishReason::kNone) {
        c.finish = FinishReason::kError;
        c.error = "the engine ended the request without a finish event";
      }
    }
  }
  return any;
}

std::string Generation::stream_tail() const {
  std::string out;
  if (request_.include_usage) {
    json chunk = chunk_base();
    chunk["usage"] = usage();
    out += sse(chunk);
  }
  out += "data: [DONE]\n\n";
  return out;
}

json Generation::response() const {
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceState& c = choices_[i];
    const char* fr = finish_reason_name(c.finish);
    json choice = {{"index", i}, {"logprobs", c.logprobs}, {"finish_reason", fr ? json(fr) : json()}};
    if (chat_) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    choices.push_back(std::move(choice));
  }
  return {{"id", id_},
          {"object", chat_ ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", model_},
          {"choices", choices},
          {"usage", usage()}};
}

}  // namespace nanoflow
