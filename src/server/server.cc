// Routes, request guards (CORS, auth, body cap) and the generation handlers of `nanoflow serve`.
#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <ctime>
#include <set>
#include <thread>

#include "core/log.h"
#include "server/auth.h"
#include "server/generation.h"
#include "server/http_error.h"
#include "server/metrics.h"

namespace nanoflow {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e) {
  res.status = e.status;
  res.set_content(error_json(e), "application/json");
  if (e.status == 413 || e.status == 411) res.set_header("Connection", "close");
}

// Routes we name in metrics; anything else is "other" so clients cannot grow the label set.
std::string route_label(const std::string& path) {
  static const std::set<std::string> known = {"/v1/completions", "/v1/chat/completions", "/v1/models",
                                              "/tokenize", "/detokenize", "/health", "/ready",
                                              "/metrics", "/version"};
  if (known.count(path)) return path;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

struct Server::Impl {
  Engine& engine;
  ServerConfig config;
  ChatRenderer render_chat;
  httplib::Server http;
  ServerMetrics metrics;
  std::atomic<bool> draining{false};
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> in_flight{0};
  int port = -1;
  int64_t created = static_cast<int64_t>(std::time(nullptr));

  Impl(Engine& e, ServerConfig c, ChatRenderer r)
      : engine(e), config(std::move(c)), render_chat(std::move(r)) {}

  // Counts a generation request from its handler until its last byte (or abort).
  struct InFlight {
    std::atomic<int64_t>& n;
    explicit InFlight(std::atomic<int64_t>& c) : n(c) { ++n; }
    ~InFlight() { --n; }
  };

  void setup();
  httplib::Server::HandlerResponse guard(const httplib::Request& req, httplib::Response& res);
  void check_model(const std::string& model) const;
  json parse_body(const std::string& body) const;
  void handle_generate(const httplib::Request& req, httplib::Response& res, OpenAIEndpoint ep);
  void handle_tokenize(const httplib::Request& req, httplib::Response& res);
  void handle_detokenize(const httplib::Request& req, httplib::Response& res);
  void record_done(const Generation& gen);
};

void Server::Impl::check_model(const std::string& model) const {
  if (!model.empty() && model != config.served_model_name)
    throw RequestError(ErrorKind::kNotFound, "model",
                       "The model '" + model + "' does not exist (this server serves '" +
                           config.served_model_name + "')");
}

json Server::Impl::parse_body(const std::string& body) const {
  try {
    json j = json::parse(body);
    if (!j.is_object()) throw RequestError(ErrorKind::kInvalidInput, "", "the request body must be a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw RequestError(ErrorKind::kInvalidInput, "", std::string("invalid JSON body: ") + e.what());
  }
}

// Runs before the body is read: CORS, auth and the body-size cap, so that a refused request
// costs no body bytes.
httplib::Server::HandlerResponse Server::Impl::guard(const httplib::Request& req,
                                                     httplib::Response& res) {
  using HR = httplib::Server::HandlerResponse;
  if (!config.allowed_origins.empty() && req.has_header("Origin")) {
    std::string origin = req.get_header_value("Origin");
    bool any = false, listed = false;
    for (const auto& o : config.allowed_origins) {
      any |= o == "*";
      listed |= o == origin;
    }
    if (any || listed) {
      res.set_header("Access-Control-Allow-Origin", listed ? origin : "*");
      res.set_header("Vary", "Origin");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      if (req.method == "OPTIONS") {  // a preflight carries no credentials
        res.status = 204;
        return HR::Handled;
      }
    }
  }
  // Only the exact path "/health" is open: "//health", "/health/.." and the like are not.
  if (!config.api_key.empty() && req.path != "/health" &&
      !authorized(req.get_header_value("Authorization"), config.api_key)) {
    send_error(res, unauthorized());
    res.set_header("WWW-Authenticate", "Bearer");
    return HR::Handled;
  }
  if (req.has_header("Transfer-Encoding")) {
    send_error(res, {411, "invalid_request_error", "length_required", "",
                     "Chunked request bodies are not accepted; send Content-Length"});
    return HR::Handled;
  }
  if (req.has_header("Content-Length")) {
    const std::string v = req.get_header_value("Content-Length");
    bool digits = !v.empty() && v.size() <= 19 && v.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      send_error(res, bad_request("invalid Content-Length header"));
      res.set_header("Connection", "close");
      return HR::Handled;
    }
    if (std::stoull(v) > config.max_body_bytes) {
      send_error(res, payload_too_large(config.max_body_bytes));
      return HR::Handled;
    }
  }
  return HR::Unhandled;
}

void Server::Impl::record_done(const Generation& gen) {
  const auto& t = gen.timing();
  auto end = Clock::now();
  double ttft = t.has_token ? seconds(t.first_token - t.arrival) : 0.0;
  int64_t max_tokens = 0;
  for (const auto& c : gen.choices()) {
    max_tokens = std::max<int64_t>(max_tokens, c.completion_tokens);
    metrics.record_finish(finish_reason_name(c.finish));
  }
  double tpot = t.has_token && max_tokens > 1 ? seconds(t.last_token - t.first_token) / static_cast<double>(max_tokens - 1) : 0.0;
  metrics.observe_request(ttft, tpot, seconds(end - t.arrival), t.has_token);
}

void Server::Impl::handle_generate(const httplib::Request& req, httplib::Response& res,
                                   OpenAIEndpoint ep) {
  const auto arrival = Clock::now();
  // Counted before the draining check, so a drain never misses a request that passed it.
  auto guard = std::make_shared<InFlight>(in_flight);
  if (draining || stopping) return send_error(res, unavailable("The server is shutting down"));
  OpenAIRequest r = parse_openai_request(req.body, ep, config.limits);
  check_model(r.model);
  if (ep == OpenAIEndpoint::kChat && !render_chat)
    throw RequestError(ErrorKind::kInvalidInput, "messages", "this model has no chat template");
  auto prompts = prepare_prompts(r, engine.tokenizer(), engine.max_model_len(), render_chat);
  auto gen = std::make_shared<Generation>(r, std::move(prompts), engine.tokenizer(),
                                          config.served_model_name, arrival);
  try {
    gen->submit(engine);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kResource) {
      send_error(res, queue_full(e.what()));
      res.set_header("Retry-After", std::to_string(config.retry_after_s));
      return;
    }
    throw;
  }

  if (!r.stream) {
    // No socket access here: a non-streaming request runs to its end unless the server stops.
    while (!gen->finished()) {
      if (stopping) {
        gen->abort();
        return send_error(res, unavailable("The server stopped before the request finished"));
      }
      gen->poll(config.poll_interval * 2, nullptr);
    }
    record_done(*gen);
    if (gen->failed())
      return send_error(res, {500, "internal_error", "generation_failed", "", gen->first_error()});
    return send_json(res, 200, gen->response());
  }

  // Streaming: the worker polls the request with a short timeout and writes what came; a failed
  // write (client gone) aborts the request. Idle streams get an SSE comment line now and then so
  // that a client that hung up while queued is noticed too (SSE clients ignore comments).
  auto last_write = std::make_shared<Clock::time_point>(Clock::now());
  auto provider = [this, gen, guard, last_write](size_t, httplib::DataSink& sink) -> bool {
    // is_writable() also notices a peer that closed (where httplib probes the socket), before
    // a write would.
    if (stopping || (sink.is_writable && !sink.is_writable())) {
      gen->abort();
      return false;
    }
    std::string out;
    gen->poll(config.poll_interval, &out);
    bool end = false;
    if (gen->failed()) {
      gen->abort();
      out += Generation::stream_error(error_json({500, "internal_error", "generation_failed", "", gen->first_error()}));
      end = true;
    } else if (gen->finished()) {
      out += gen->stream_tail();
      end = true;
    }
    auto now = Clock::now();
    if (out.empty() && now - *last_write >= config.ping_interval) out = ": ping\n\n";
    if (!out.empty()) {
      if (!sink.write(out.data(), out.size())) {
        gen->abort();
        return false;
      }
      *last_write = now;
    }
    if (end) {
      record_done(*gen);
      sink.done();
    }
    return true;
  };
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider("text/event-stream", std::move(provider),
                                   [gen](bool) { gen->abort(); });
}

void Server::Impl::handle_tokenize(const httplib::Request& req, httplib::Response& res) {
  json body = parse_body(req.body);
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) throw RequestError(ErrorKind::kInvalidInput, "model", "'model' must be a string");
    check_model(body["model"].get<std::string>());
  }
  const Tokenizer& tok = engine.tokenizer();
  std::vector<int32_t> ids;
  auto flag = [&](const char* key, bool def) {
    if (!body.contains(key) || body[key].is_null()) return def;
    if (!body[key].is_boolean()) throw RequestError(ErrorKind::kInvalidInput, key, std::string("'") + key + "' must be a boolean");
    return body[key].get<bool>();
  };
  try {
    if (body.contains("messages")) {
      json chat = body;
      chat.erase("prompt");
      OpenAIRequest r = parse_openai_request_json(chat, OpenAIEndpoint::kChat, config.limits);
      if (!render_chat) throw RequestError(ErrorKind::kInvalidInput, "messages", "this model has no chat template");
      ids = tok.encode(render_chat(r.messages, r.add_generation_prompt), flag("add_special_tokens", false));
    } else {
      if (!body.contains("prompt") || !body["prompt"].is_string())
        throw RequestError(ErrorKind::kInvalidInput, "prompt", "'prompt' must be a string");
      ids = tok.encode(body["prompt"].get<std::string>(), flag("add_special_tokens", true));
    }
  } catch (const RequestError&) {
    throw;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kInvalidInput) throw;
    throw RequestError(ErrorKind::kInvalidInput, "prompt", e.what());
  }
  send_json(res, 200, {{"count", ids.size()}, {"max_model_len", engine.max_model_len()}, {"tokens", ids}});
}

void Server::Impl::handle_detokenize(const httplib::Request& req, httplib::Response& res) {
  json body = parse_body(req.body);
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) throw RequestError(ErrorKind::kInvalidInput, "model", "'model' must be a string");
    check_model(body["model"].get<std::string>());
  }
  const json& t = body.contains("tokens") ? body["tokens"] : json();
  if (!t.is_array()) throw RequestError(ErrorKind::kInvalidInput, "tokens", "'tokens' must be an array of token ids");
  const int64_t vocab = engine.tokenizer().vocab_size();
  std::vector<int32_t> ids;
  ids.reserve(t.size());
  for (const auto& v : t) {
    if (!v.is_number_integer()) throw RequestError(ErrorKind::kInvalidInput, "tokens", "'tokens' must hold integers");
    int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) ? -1 : v.get<int64_t>();
    if (id < 0 || id >= vocab)
      throw RequestError(ErrorKind::kInvalidInput, "tokens", "token id " + v.dump() + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  send_json(res, 200, {{"prompt", engine.tokenizer().decode(ids, false)}});
}

void Server::Impl::setup() {
  int threads = config.http_threads;
  if (threads <= 0) threads = 256;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_keep_alive_timeout(config.keep_alive_timeout_s);
  http.set_read_timeout(config.read_timeout_s, 0);
  http.set_write_timeout(config.read_timeout_s, 0);
  http.set_payload_max_length(config.max_body_bytes);
  http.set_tcp_nodelay(true);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) { return guard(req, res); });
  // Expect: 100-continue: refuse before the client sends the body.
  http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    return guard(req, res) == httplib::Server::HandlerResponse::Handled ? res.status : 100;
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      send_error(res, http_error_from(e));
    } catch (...) {
      send_error(res, {500, "internal_error", "internal_error", "", "unknown exception"});
    }
  });
  // httplib's own errors (no route, bad request line) get the OpenAI envelope too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    using HR = httplib::Server::HandlerResponse;
    if (!res.body.empty()) return HR::Unhandled;
    if (res.status == 404) send_error(res, not_found("No route for " + req.method + " " + req.path));
    else if (res.status == 413) send_error(res, payload_too_large(0));
    else send_error(res, {res.status, "invalid_request_error", "bad_request", "", "bad request"});
    return HR::Handled;
  }));
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.record_http(route_label(req.path), res.status);
  });

  // Handlers wrap their work so every exception becomes an OpenAI envelope with its status.
  auto wrap = [](auto fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const std::exception& e) {
        send_error(res, http_error_from(e));
      }
    };
  };
  http.Post("/v1/completions", wrap([this](const auto& q, auto& s) { handle_generate(q, s, OpenAIEndpoint::kCompletions); }));
  http.Post("/v1/chat/completions", wrap([this](const auto& q, auto& s) { handle_generate(q, s, OpenAIEndpoint::kChat); }));
  http.Post("/tokenize", wrap([this](const auto& q, auto& s) { handle_tokenize(q, s); }));
  http.Post("/detokenize", wrap([this](const auto& q, auto& s) { handle_detokenize(q, s); }));
  auto model_card = [this] {
    return json{{"id", config.served_model_name}, {"object", "model"}, {"created", created},
                {"owned_by", "nanoflow"}, {"root", config.served_model_name},
                {"max_model_len", engine.max_model_len()}};
  };
  http.Get("/v1/models", wrap([model_card](const auto&, auto& s) {
    send_json(s, 200, {{"object", "list"}, {"data", json::array({model_card()})}});
  }));
  http.Get(R"(/v1/models/(.+))", wrap([this, model_card](const auto& q, auto& s) {
    check_model(q.matches[1].str());
    send_json(s, 200, model_card());
  }));
  http.Get("/health", [](const auto&, auto& s) { s.status = 200; });
  http.Get("/ready", wrap([this](const auto&, auto& s) {
    if (draining || stopping) return send_error(s, unavailable("draining"));
    send_json(s, 200, {{"status", "ready"}});
  }));
  http.Get("/version", wrap([this](const auto&, auto& s) { send_json(s, 200, {{"version", config.version}}); }));
  http.Get("/metrics", wrap([this](const auto&, auto& s) {
    s.set_content(metrics.render(engine.stats(), in_flight.load(), !(draining || stopping)),
                  "text/plain; version=0.0.4; charset=utf-8");
  }));
}

Server::Server(Engine& engine, ServerConfig config, ChatRenderer render_chat)
    : impl_(std::make_unique<Impl>(engine, std::move(config), std::move(render_chat))) {
  if (impl_->config.served_model_name.empty()) impl_->config.served_model_name = "model";
  impl_->setup();
}

Server::~Server() { stop(); }

int Server::bind() {
  auto& c = impl_->config;
  if (c.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(c.host);
  } else {
    impl_->port = impl_->http.bind_to_port(c.host, c.port) ? c.port : -1;
  }
  if (impl_->port <= 0) NF_THROW(kIo) << "cannot listen on " << c.host << ":" << c.port;
  return impl_->port;
}

void Server::serve() {
  NF_CHECK(impl_->port > 0) << "Server::serve before bind";
  if (impl_->stopping) return;
  impl_->http.listen_after_bind();
}

void Server::begin_drain() { impl_->draining = true; }
bool Server::draining() const { return impl_->draining; }
int64_t Server::in_flight() const { return impl_->in_flight.load(); }
const ServerConfig& Server::config() const { return impl_->config; }

void Server::stop() {
  impl_->stopping = true;
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace nanoflow
