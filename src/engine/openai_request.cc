#include "engine/openai_request.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "tokenizer/tokenizer.h"

namespace nanoflow {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  throw RequestError(ErrorKind::kInvalidInput, param, msg);
}

const char* type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

// A present, non-null field; null means "default" as in the OpenAI API.
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double get_number(const json& v, const std::string& param) {
  if (!v.is_number()) bad(param, "'" + param + "' must be a number, got " + type_name(v));
  double d = v.get<double>();
  if (!std::isfinite(d)) bad(param, "'" + param + "' must be finite");
  return d;
}

// Integers; an integral float (2.0) is accepted as Python clients may send one.
int64_t get_int(const json& v, const std::string& param) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      bad(param, "'" + param + "' = " + std::to_string(u) + " is out of range");
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
    bad(param, "'" + param + "' must be an integer, got " + json(d).dump());
  }
  bad(param, "'" + param + "' must be an integer, got " + type_name(v));
}

bool get_bool(const json& v, const std::string& param) {
  if (!v.is_boolean()) bad(param, "'" + param + "' must be a boolean, got " + type_name(v));
  return v.get<bool>();
}

std::string fmt(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

float number_in(const json& body, const char* key, float def, double lo, double hi, bool lo_open,
                bool hi_open) {
  const json* v = field(body, key);
  if (!v) return def;
  double d = get_number(*v, key);
  bool ok = (lo_open ? d > lo : d >= lo) && (hi_open ? d < hi : d <= hi);
  if (!ok)
    bad(key, std::string("'") + key + "' = " + fmt(d) + " is out of range " + (lo_open ? "(" : "[") +
                 fmt(lo) + ", " + fmt(hi) + (hi_open ? ")" : "]"));
  return static_cast<float>(d);
}

int64_t int_in(const json& body, const char* key, int64_t def, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return def;
  int64_t i = get_int(*v, key);
  if (i < lo || i > hi)
    bad(key, std::string("'") + key + "' = " + std::to_string(i) + " is out of range [" +
                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return i;
}

std::vector<int32_t> token_list(const json& v, const std::string& param, size_t cap) {
  if (!v.is_array()) bad(param, "'" + param + "' must be an array of token ids");
  if (v.size() > cap) bad(param, "'" + param + "' has " + std::to_string(v.size()) + " entries, at most " + std::to_string(cap) + " allowed");
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const auto& e : v) {
    int64_t id = get_int(e, param);
    if (id < 0 || id > std::numeric_limits<int32_t>::max())
      bad(param, "token id " + std::to_string(id) + " in '" + param + "' is out of range");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// Prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...].
std::vector<PromptInput> parse_prompts(const json& v, size_t cap) {
  std::vector<PromptInput> out;
  // Token arrays can be long; they are bounded by the body size cap, not by `cap`.
  constexpr size_t kMaxIds = size_t{1} << 24;
  if (v.is_string()) {
    out.push_back({false, v.get<std::string>(), {}});
  } else if (v.is_array()) {
    if (v.empty()) bad("prompt", "'prompt' must not be empty");
    if (v[0].is_number()) {
      out.push_back({true, {}, token_list(v, "prompt", kMaxIds)});
    } else {
      if (v.size() > cap) bad("prompt", "'prompt' has " + std::to_string(v.size()) + " prompts, at most " + std::to_string(cap) + " allowed");
      for (const auto& p : v) {
        if (p.is_string()) out.push_back({false, p.get<std::string>(), {}});
        else if (p.is_array()) out.push_back({true, {}, token_list(p, "prompt", kMaxIds)});
        else bad("prompt", std::string("'prompt' entries must be strings or token id arrays, got ") + type_name(p));
      }
    }
  } else {
    bad("prompt", std::string("'prompt' must be a string or an array, got ") + type_name(v));
  }
  for (const auto& p : out)
    if ((p.is_tokens && p.ids.empty()) || (!p.is_tokens && p.text.empty()))
      bad("prompt", "'prompt' must not be empty");
  return out;
}

// Messages: content as a string, or a list of {type: "text", text} parts (joined with "\n", as
// vLLM does); other part types are not supported by a text-only model.
json parse_messages(const json& v, size_t cap) {
  if (!v.is_array()) bad("messages", std::string("'messages' must be an array, got ") + type_name(v));
  if (v.empty()) bad("messages", "'messages' must not be empty");
  if (v.size() > cap) bad("messages", "'messages' has " + std::to_string(v.size()) + " entries, at most " + std::to_string(cap) + " allowed");
  json out = json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const json& m = v[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad("messages", where + " must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) bad("messages", where + ".role must be a string");
    std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer")
      bad("messages", where + ".role '" + r + "' is not one of system, user, assistant, tool, developer");
    std::string content;
    const json* c = field(m, "content");
    if (c && c->is_string()) {
      content = c->get<std::string>();
    } else if (c && c->is_array()) {
      for (size_t k = 0; k < c->size(); ++k) {
        const json& part = (*c)[k];
        const json* type = part.is_object() ? field(part, "type") : nullptr;
        const json* text = part.is_object() ? field(part, "text") : nullptr;
        if (!type || *type != "text" || !text || !text->is_string())
          bad("messages", where + ".content[" + std::to_string(k) + "] must be {\"type\": \"text\", \"text\": string}");
        if (k) content += "\n";
        content += text->get<std::string>();
      }
    } else if (c) {
      bad("messages", where + ".content must be a string or an array of text parts");
    } else if (r != "assistant") {
      bad("messages", where + ".content is required");
    }
    json msg = {{"role", r}, {"content", content}};
    if (const json* name = field(m, "name"); name && name->is_string()) msg["name"] = *name;
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<std::string> parse_stop(const json& v, const OpenAILimits& lim) {
  std::vector<std::string> stop;
  auto add = [&](const json& s) {
    if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
    std::string t = s.get<std::string>();
    if (t.empty()) bad("stop", "'stop' strings must not be empty");
    if (t.size() > lim.max_stop_bytes)
      bad("stop", "a 'stop' string has " + std::to_string(t.size()) + " bytes, at most " + std::to_string(lim.max_stop_bytes) + " allowed");
    stop.push_back(std::move(t));
  };
  if (v.is_array()) {
    if (v.size() > lim.max_stop)
      bad("stop", "'stop' has " + std::to_string(v.size()) + " strings, at most " + std::to_string(lim.max_stop) + " allowed");
    for (const auto& s : v) add(s);
  } else {
    add(v);
  }
  return stop;
}

}  // namespace

OpenAIRequest parse_openai_request(std::string_view body, OpenAIEndpoint endpoint,
                                   const OpenAILimits& limits) {
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    // A number too large for a double (1e309) is a parse error; name the key it belongs to.
    std::string param;
    if (e.id == 406) {
      std::string_view head = body;
      if (auto* pe = dynamic_cast<const json::parse_error*>(&e); pe && pe->byte <= body.size())
        head = body.substr(0, pe->byte);
      size_t colon = head.rfind(':');
      size_t close = colon == std::string_view::npos ? colon : head.rfind('"', colon);
      size_t open = close == std::string_view::npos || close == 0 ? std::string_view::npos : head.rfind('"', close - 1);
      if (open != std::string_view::npos) param = std::string(head.substr(open + 1, close - open - 1));
    }
    std::string what = e.what();
    if (param.size() > 64) param.clear();
    throw RequestError(ErrorKind::kInvalidInput, param,
                       (param.empty() ? "" : "'" + param + "': ") + "invalid JSON body: " + what);
  }
  return parse_openai_request_json(j, endpoint, limits);
}

OpenAIRequest parse_openai_request_json(const json& body, OpenAIEndpoint endpoint,
                                   const OpenAILimits& lim) {
  if (!body.is_object()) bad("", std::string("the request body must be a JSON object, got ") + type_name(body));
  OpenAIRequest r;
  r.endpoint = endpoint;
  const bool chat = endpoint == OpenAIEndpoint::kChat;

  if (const json* m = field(body, "model")) {
    if (!m->is_string()) bad("model", "'model' must be a string");
    r.model = m->get<std::string>();
  }
  if (chat) {
    const json* m = field(body, "messages");
    if (!m) bad("messages", "'messages' is required");
    r.messages = parse_messages(*m, lim.max_messages);
    if (const json* g = field(body, "add_generation_prompt")) r.add_generation_prompt = get_bool(*g, "add_generation_prompt");
  } else {
    const json* p = field(body, "prompt");
    if (!p) bad("prompt", "'prompt' is required");
    r.prompts = parse_prompts(*p, static_cast<size_t>(lim.max_choices));
  }

  SamplingParams& sp = r.params;
  // max_completion_tokens is the newer name of max_tokens; either may be given.
  const char* mt_key = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (const json* mt = field(body, mt_key)) {
    int64_t v = get_int(*mt, "max_tokens");
    if (v <= 0) bad("max_tokens", "'max_tokens' = " + std::to_string(v) + " must be at least 1");
    if (v > std::numeric_limits<int32_t>::max())
      bad("max_tokens", "'max_tokens' = " + std::to_string(v) + " exceeds any context length");
    sp.max_tokens = static_cast<int32_t>(v);
    r.max_tokens_set = true;
  }
  sp.temperature = number_in(body, "temperature", 1.0f, 0.0, 2.0, false, false);
  sp.top_p = number_in(body, "top_p", 1.0f, 0.0, 1.0, true, false);
  sp.top_k = static_cast<int32_t>(int_in(body, "top_k", 0, -1, std::numeric_limits<int32_t>::max()));
  sp.min_p = number_in(body, "min_p", 0.0f, 0.0, 1.0, false, false);
  sp.presence_penalty = number_in(body, "presence_penalty", 0.0f, -2.0, 2.0, false, false);
  sp.frequency_penalty = number_in(body, "frequency_penalty", 0.0f, -2.0, 2.0, false, false);
  sp.repetition_penalty = number_in(body, "repetition_penalty", 1.0f, 0.0, 100.0, true, false);
  sp.n = static_cast<int32_t>(int_in(body, "n", 1, 1, lim.max_n));
  sp.min_tokens = static_cast<int32_t>(int_in(body, "min_tokens", 0, 0, std::numeric_limits<int32_t>::max()));
  if (r.max_tokens_set && sp.min_tokens > sp.max_tokens)
    bad("min_tokens", "'min_tokens' = " + std::to_string(sp.min_tokens) + " exceeds 'max_tokens' = " + std::to_string(sp.max_tokens));
  if (const json* s = field(body, "seed")) sp.seed = static_cast<uint64_t>(get_int(*s, "seed"));
  if (const json* s = field(body, "stop")) sp.stop = parse_stop(*s, lim);
  if (const json* s = field(body, "stop_token_ids")) sp.stop_token_ids = token_list(*s, "stop_token_ids", lim.max_stop_token_ids);
  if (const json* s = field(body, "ignore_eos")) sp.ignore_eos = get_bool(*s, "ignore_eos");
  if (const json* s = field(body, "skip_special_tokens")) r.skip_special_tokens = get_bool(*s, "skip_special_tokens");
  if (const json* b = field(body, "logit_bias")) {
    if (!b->is_object()) bad("logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
    if (b->size() > lim.max_logit_bias)
      bad("logit_bias", "'logit_bias' has " + std::to_string(b->size()) + " entries, at most " + std::to_string(lim.max_logit_bias) + " allowed");
    for (auto it = b->begin(); it != b->end(); ++it) {
      const std::string& key = it.key();
      int64_t id = -1;
      bool digits = !key.empty() && key.size() <= 10 && key.find_first_not_of("0123456789") == std::string::npos;
      if (digits) id = std::stoll(key);
      if (!digits || id > std::numeric_limits<int32_t>::max())
        bad("logit_bias", "'logit_bias' key '" + key + "' is not a token id");
      double bias = get_number(it.value(), "logit_bias");
      if (bias < -100.0 || bias > 100.0) bad("logit_bias", "'logit_bias' values must be in [-100, 100], got " + fmt(bias));
      sp.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias));
    }
  }
  if (chat) {
    bool want = false;
    if (const json* l = field(body, "logprobs")) want = get_bool(*l, "logprobs");
    int64_t top = int_in(body, "top_logprobs", 0, 0, lim.max_logprobs);
    if (field(body, "top_logprobs") && !want) bad("top_logprobs", "'top_logprobs' requires 'logprobs': true");
    sp.logprobs = want ? static_cast<int32_t>(top) : -1;
  } else {
    sp.logprobs = static_cast<int32_t>(int_in(body, "logprobs", -1, 0, lim.max_logprobs));
    if (const json* e = field(body, "echo")) r.echo = get_bool(*e, "echo");
    if (r.echo && sp.logprobs >= 0) bad("echo", "'echo' together with 'logprobs' is not supported (no prompt logprobs)");
    if (field(body, "suffix")) bad("suffix", "'suffix' is not supported");
    if (const json* bo = field(body, "best_of"); bo && get_int(*bo, "best_of") != sp.n)
      bad("best_of", "'best_of' other than n is not supported");
  }
  if (const json* s = field(body, "stream")) r.stream = get_bool(*s, "stream");
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (const json* iu = field(*so, "include_usage")) r.include_usage = get_bool(*iu, "stream_options.include_usage");
  }
  if (const json* u = field(body, "user")) {
    if (!u->is_string()) bad("user", "'user' must be a string");
    r.user = u->get<std::string>();
  }
  int64_t choices = static_cast<int64_t>(chat ? 1 : r.prompts.size()) * sp.n;
  if (choices > lim.max_choices)
    bad("n", std::to_string(choices) + " choices (prompts x n) requested, at most " + std::to_string(lim.max_choices) + " allowed");
  return r;
}

std::vector<PreparedPrompt> prepare_prompts(const OpenAIRequest& req, const Tokenizer& tok,
                                            int32_t max_model_len, const ChatRenderer& render_chat) {
  const int32_t vocab = tok.vocab_size();
  auto check_ids = [&](const std::vector<int32_t>& ids, const char* param) {
    for (int32_t id : ids)
      if (id < 0 || id >= vocab)
        bad(param, std::string("token id ") + std::to_string(id) + " in '" + param + "' is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  };
  check_ids(req.params.stop_token_ids, "stop_token_ids");
  for (const auto& [id, b] : req.params.logit_bias)
    if (id >= vocab) bad("logit_bias", "'logit_bias' token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");

  std::vector<PreparedPrompt> out;
  const char* prompt_param = req.endpoint == OpenAIEndpoint::kChat ? "messages" : "prompt";
  auto add = [&](std::vector<int32_t> ids, std::string text) {
    PreparedPrompt p;
    p.request.params = req.params;
    int64_t n = static_cast<int64_t>(ids.size());
    if (n >= max_model_len)
      bad(prompt_param, "the prompt has " + std::to_string(n) + " tokens, which is not less than the maximum context length of " + std::to_string(max_model_len) + " tokens");
    if (req.max_tokens_set) {
      if (n + req.params.max_tokens > max_model_len)
        bad("max_tokens", "the prompt has " + std::to_string(n) + " tokens and max_tokens is " + std::to_string(req.params.max_tokens) + ", more than the maximum context length of " + std::to_string(max_model_len) + " tokens");
    } else {
      int64_t rest = max_model_len - n;
      p.request.params.max_tokens = static_cast<int32_t>(req.endpoint == OpenAIEndpoint::kChat ? rest : std::min<int64_t>(16, rest));
    }
    if (p.request.params.min_tokens > p.request.params.max_tokens)
      bad("min_tokens", "'min_tokens' = " + std::to_string(p.request.params.min_tokens) + " exceeds max_tokens = " + std::to_string(p.request.params.max_tokens));
    p.request.prompt_ids = std::move(ids);
    p.prompt_text = std::move(text);
    out.push_back(std::move(p));
  };
  try {
    if (req.endpoint == OpenAIEndpoint::kChat) {
      NF_CHECK(render_chat) << "no chat renderer for a chat request";
      std::string text = render_chat(req.messages, req.add_generation_prompt);
      add(tok.encode(text, /*add_special_tokens=*/false), text);
    } else {
      for (const auto& p : req.prompts) {
        if (p.is_tokens) {
          check_ids(p.ids, "prompt");
          add(p.ids, req.echo ? tok.decode(p.ids, false) : std::string());
        } else {
          add(tok.encode(p.text, /*add_special_tokens=*/true), p.text);
        }
      }
    }
  } catch (const RequestError&) {
    throw;
  } catch (const Error& e) {
    // The tokenizer and the chat template report bad input as kInvalidInput; pass it on as a 400.
    if (e.kind() != ErrorKind::kInvalidInput) throw;
    bad(prompt_param, e.what());
  }
  return out;
}

}  // namespace nanoflow
