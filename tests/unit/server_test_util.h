// Shared pieces of the server unit tests: a Server on a FakeEngine on a free loopback port, an
// httplib client, a raw-socket client (for bodies that lie, hang-ups and path tricks), an SSE parser
// and the "nothing lost" check of ../shared/RELIABILITY.md.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/server.h"
#include "unit/server_fake_engine.h"

namespace nanoflow::testing {

using nlohmann::json;

// A renderer standing in for a chat template: "<role>: content\n" lines.
inline ChatRenderer simple_chat_renderer() {
  return [](const json& messages, bool add_generation_prompt) {
    std::string s;
    for (const auto& m : messages) s += m["role"].get<std::string>() + ": " + m["content"].get<std::string>() + "\n";
    if (add_generation_prompt) s += "assistant:";
    return s;
  };
}

class TestServer {
 public:
  explicit TestServer(ServerConfig sc = {}, FakeEngineConfig ec = {})
      : engine_(std::make_unique<FakeEngine>(ec)) {
    sc.host = "127.0.0.1";
    sc.port = 0;
    if (sc.served_model_name.empty()) sc.served_model_name = "fake-model";
    if (sc.http_threads == 0) sc.http_threads = 64;
    server_ = std::make_unique<Server>(*engine_, sc, simple_chat_renderer());
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }
  ~TestServer() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  FakeEngine& engine() { return *engine_; }
  Server& server() { return *server_; }
  httplib::Client client(int timeout_s = 30) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_s, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body, const httplib::Headers& h = {}) const {
    return client().Post(path, h, body, "application/json");
  }
  httplib::Result get(const std::string& path, const httplib::Headers& h = {}) const { return client().Get(path, h); }

  // Metrics: the value of an unlabelled sample.
  double metric(const std::string& name) const {
    auto r = get("/metrics", auth_);
    if (!r || r->status != 200) return -1;
    std::regex re("\n" + name + " ([-0-9.e+]+)");
    std::smatch m;
    if (!std::regex_search(r->body, m, re)) return -1;
    return std::stod(m[1].str());
  }
  // Nothing lost: no live requests, no KV pages held, no handler running; waits for stragglers
  // (an abort lands within an iteration) up to `timeout`.
  ::testing::AssertionResult nothing_lost(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    double live = 0, pages = 0, inflight = 0;
    do {
      live = metric("nanoflow_live_requests");
      pages = metric("nanoflow_kv_pages_used");
      inflight = metric("nanoflow_http_in_flight");
      if (live == 0 && pages == 0 && inflight == 0) {
        auto ok = post("/v1/completions", R"({"prompt": "ok", "max_tokens": 2})", auth_);
        if (ok && ok->status == 200) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "follow-up request failed: " << (ok ? ok->status : -1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    return ::testing::AssertionFailure() << "live=" << live << " pages=" << pages << " in_flight=" << inflight;
  }
  void set_auth(httplib::Headers h) { auth_ = std::move(h); }

 private:
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
  httplib::Headers auth_;
};

// A raw TCP client: sends exactly the bytes given.
class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConn() { close(); }
  bool ok() const { return connected_; }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until `until` appears, the peer closes, or the timeout.
  std::string read(std::chrono::milliseconds timeout, const std::string& until = "") {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (!until.empty() && out.find(until) != std::string::npos) break;
    }
    return out;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

inline int status_of(const std::string& raw) {
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || raw.size() < 12) return -1;
  return std::stoi(raw.substr(9, 3));
}

// "data: ..." events of an SSE body, in order ("[DONE]" included as a string).
inline std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    if (ev.rfind("data: ", 0) == 0) out.push_back(ev.substr(6));
  }
  return out;
}

}  // namespace nanoflow::testing
