// RELIABILITY.md "Overload" and "Cancellation and shutdown" over HTTP on a fake engine: queue limits
// (429 + Retry-After), clients that hang up (streaming or queued), many random cancellations, drain.
#include <future>
#include <random>

#include "unit/server_test_util.h"

namespace nanoflow::testing {
namespace {

std::string stream_request(const std::string& body) {
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

TEST(ServerOverload, QueueFullGives429WithRetryAfter) {
  FakeEngineConfig ec;
  ec.max_running = 1;
  ec.max_queued = 1;
  ec.max_model_len = 1 << 20;
  ec.iteration = std::chrono::milliseconds(5);
  TestServer s({}, ec);
  // One request running (until we hang up), then nine at once: one fits the queue, eight are
  // refused; the queued one completes once the running one is gone.
  RawConn first(s.port());
  first.send(stream_request(R"({"prompt": "a", "max_tokens": 100000, "stream": true})"));
  ASSERT_TRUE(wait_for([&] { return s.metric("nanoflow_num_requests_running") == 1; }, std::chrono::seconds(5)));
  std::vector<std::future<std::pair<int, std::string>>> rest;
  for (int i = 0; i < 9; ++i)
    rest.push_back(std::async(std::launch::async, [&] {
      auto r = s.post("/v1/completions", R"({"prompt": "b", "max_tokens": 2})");
      return std::make_pair(r ? r->status : -1, r ? r->get_header_value("Retry-After") : "");
    }));
  auto ready = [&] {
    int n = 0;
    for (auto& f : rest) n += f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    return n;
  };
  EXPECT_TRUE(wait_for([&] { return ready() == 8; }, std::chrono::seconds(10)));
  first.close();
  int ok = 0, refused = 0;
  for (auto& f : rest) {
    auto [status, retry] = f.get();
    if (status == 200) ++ok;
    if (status == 429) {
      ++refused;
      EXPECT_EQ(retry, "1");
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(refused, 8);
  EXPECT_TRUE(s.nothing_lost());
}

TEST(ServerCancel, ClientClosingAStreamAbortsTheRequest) {
  FakeEngineConfig ec;
  ec.max_model_len = 1 << 20;
  ec.iteration = std::chrono::milliseconds(5);
  TestServer s({}, ec);
  RawConn c(s.port());
  c.send(stream_request(R"({"prompt": "abc", "max_tokens": 100000, "stream": true})"));
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {  // three token chunks
    got += c.read(std::chrono::milliseconds(20));
    size_t n = 0;
    for (size_t p = got.find("data: "); p != std::string::npos; p = got.find("data: ", p + 1)) ++n;
    if (n >= 3) break;
  }
  c.close();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_for([&] { return s.engine().aborted() == 1; }, std::chrono::seconds(2)));
  auto took = std::chrono::steady_clock::now() - t0;
  // Two writes notice a closed socket (the first draws the reset): a few iterations at most.
  EXPECT_LT(took, std::chrono::milliseconds(200));
  EXPECT_LT(s.metric("nanoflow_generation_tokens_total"), 500);
  EXPECT_TRUE(s.nothing_lost());
}

TEST(ServerCancel, ClientLeavingWhileQueuedIsNeverScheduled) {
  FakeEngineConfig ec;
  ec.max_running = 1;
  ec.max_model_len = 1 << 20;
  ec.iteration = std::chrono::milliseconds(5);
  TestServer s({}, ec);
  RawConn a(s.port());
  a.send(stream_request(R"({"prompt": "a", "max_tokens": 100000, "stream": true})"));
  ASSERT_TRUE(wait_for([&] { return s.engine().ever_scheduled() == 1; }, std::chrono::seconds(5)));
  {
    RawConn b(s.port());
    b.send(stream_request(R"({"prompt": "b", "max_tokens": 5, "stream": true})"));
    ASSERT_TRUE(wait_for([&] { return s.engine().submitted() == 2; }, std::chrono::seconds(5)));
    b.close();
  }
  // The queued one is noticed through the idle ping and aborted before it ever runs.
  EXPECT_TRUE(wait_for([&] { return s.engine().aborted() == 1; }, std::chrono::seconds(3)));
  EXPECT_EQ(s.engine().ever_scheduled(), 1);
  a.close();
  EXPECT_TRUE(wait_for([&] { return s.engine().aborted() == 2; }, std::chrono::seconds(3)));
  EXPECT_EQ(s.engine().ever_scheduled(), 1);
  EXPECT_TRUE(s.nothing_lost());
}

TEST(ServerCancel, ThousandRandomCancellations) {
  FakeEngineConfig ec;
  ec.max_running = 32;
  ec.max_queued = 2000;
  ec.iteration = std::chrono::milliseconds(1);
  TestServer s({}, ec);
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t)
    clients.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      while (next.fetch_add(1) < 1000) {
        RawConn c(s.port());
        bool stream = rng() % 4 != 0;
        c.send(stream_request(std::string(R"({"prompt": "hello", "max_tokens": 40, "stream": )") + (stream ? "true" : "false") + "}"));
        c.read(std::chrono::milliseconds(rng() % 30));
        c.close();
      }
    });
  for (auto& c : clients) c.join();
  EXPECT_TRUE(s.nothing_lost(std::chrono::seconds(10)));
  EXPECT_EQ(s.metric("nanoflow_http_in_flight"), 0);
}

TEST(ServerDrain, ReadyGoes503NewRequests503InFlightFinish) {
  FakeEngineConfig ec;
  ec.iteration = std::chrono::milliseconds(5);
  TestServer s({}, ec);
  auto inflight = std::async(std::launch::async, [&] {
    return s.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 100, "stream": true})");
  });
  auto plain = std::async(std::launch::async, [&] {
    return s.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 100})");
  });
  ASSERT_TRUE(wait_for([&] { return s.server().in_flight() == 2; }, std::chrono::seconds(5)));
  s.server().begin_drain();
  EXPECT_EQ(s.get("/ready")->status, 503);
  auto refused = s.post("/v1/completions", R"({"prompt": "x"})");
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "service_unavailable");
  EXPECT_EQ(s.get("/health")->status, 200);
  auto r = inflight.get();
  ASSERT_EQ(r->status, 200);
  auto ev = sse_events(r->body);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back(), "[DONE]");
  EXPECT_EQ(json::parse(ev[ev.size() - 2])["choices"][0]["finish_reason"], "length");
  auto p = plain.get();
  EXPECT_EQ(p->status, 200);
  EXPECT_EQ(json::parse(p->body)["usage"]["completion_tokens"], 100);
  // The stream's count drops when the server lets go of its response, just after the last byte
  // (the client may see that byte first): wait for it, but it must come.
  EXPECT_TRUE(wait_for([&] { return s.server().in_flight() == 0; }, std::chrono::seconds(5)));
}

}  // namespace
}  // namespace nanoflow::testing
