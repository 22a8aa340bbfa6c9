// RELIABILITY.md "Security" over HTTP on a fake engine: API key on every route but /health (also
// through path tricks), constant-time comparison, CORS only with an allow-list, body-size cap.
#include "server/auth.h"
#include "unit/server_test_util.h"

namespace nanoflow::testing {
namespace {

ServerConfig with_key() {
  ServerConfig c;
  c.api_key = "sk-Secret-123";
  return c;
}

std::string raw_request(const std::string& method, const std::string& target, const std::string& auth,
                        const std::string& body = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!auth.empty()) r += "Authorization: " + auth + "\r\n";
  if (!body.empty() || method == "POST")
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

TEST(ServerAuth, ConstantTimeCompare) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abd", "abc"));
  EXPECT_FALSE(constant_time_equal("ab", "abc"));
  EXPECT_FALSE(constant_time_equal("abcd", "abc"));
  EXPECT_FALSE(constant_time_equal("", "abc"));
  EXPECT_TRUE(authorized("Bearer k1", "k1"));
  EXPECT_TRUE(authorized("bearer k1", "k1"));
  EXPECT_FALSE(authorized("Bearer K1", "k1"));
  EXPECT_FALSE(authorized("k1", "k1"));
  EXPECT_FALSE(authorized("Basic k1", "k1"));
  EXPECT_FALSE(authorized("Bearer k1 ", "k1"));
  EXPECT_FALSE(authorized("", "k1"));
}

TEST(ServerAuth, EveryRouteButHealthNeedsTheKey) {
  TestServer s(with_key());
  const std::string good = "Bearer sk-Secret-123";
  const std::vector<std::string> bad_keys = {"", "Bearer sk-secret-123", "Bearer SK-SECRET-123", "Bearer sk-Secret-12",
                                             "Bearer sk-Secret-1234", "sk-Secret-123", "Bearer  sk-Secret-123"};
  struct Route {
    std::string method, target, body;
  };
  const std::vector<Route> routes = {
      {"POST", "/v1/completions", R"({"prompt": "a", "max_tokens": 1})"},
      {"POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "a"}], "max_tokens": 1})"},
      {"GET", "/v1/models", ""}, {"GET", "/v1/models/fake-model", ""},
      {"POST", "/tokenize", R"({"prompt": "a"})"}, {"POST", "/detokenize", R"({"tokens": [97]})"},
      {"GET", "/ready", ""}, {"GET", "/metrics", ""}, {"GET", "/version", ""},
      // path tricks
      {"GET", "//v1/models", ""}, {"GET", "/v1/../v1/models", ""}, {"GET", "/v1%2Fmodels", ""},
      {"POST", "//v1/completions", R"({"prompt": "a"})"}, {"POST", "/v1/./completions", R"({"prompt": "a"})"},
      {"POST", "/v1%2Fcompletions", R"({"prompt": "a"})"}, {"GET", "/health/../metrics", ""},
      {"GET", "//health", ""}, {"GET", "/health%2F..%2Fmetrics", ""}, {"GET", "/nope", ""},
      {"GET", "/V1/MODELS", ""}, {"POST", "/v1/completions?x=/health", R"({"prompt": "a"})"},
  };
  for (const auto& rt : routes) {
    for (const auto& k : bad_keys) {
      RawConn c(s.port());
      ASSERT_TRUE(c.ok());
      c.send(raw_request(rt.method, rt.target, k, rt.body));
      std::string resp = c.read(std::chrono::seconds(5));
      EXPECT_EQ(status_of(resp), 401) << rt.method << " " << rt.target << " key '" << k << "'\n" << resp;
      size_t at = resp.find("\r\n\r\n");
      ASSERT_NE(at, std::string::npos);
      json j = json::parse(resp.substr(at + 4));
      EXPECT_EQ(j["error"]["type"], "authentication_error");
    }
  }
  // /health is open; the right key opens the rest.
  RawConn h(s.port());
  h.send(raw_request("GET", "/health", ""));
  EXPECT_EQ(status_of(h.read(std::chrono::seconds(5))), 200);
  for (size_t i = 0; i < 9; ++i) {
    RawConn c(s.port());
    c.send(raw_request(routes[i].method, routes[i].target, good, routes[i].body));
    EXPECT_EQ(status_of(c.read(std::chrono::seconds(10))), 200) << routes[i].target;
  }
  s.set_auth({{"Authorization", good}});
  EXPECT_TRUE(s.nothing_lost());
}

TEST(ServerCors, NoHeadersWithoutAllowList) {
  TestServer s;
  auto r = s.get("/v1/models", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
  auto pre = s.client().Options("/v1/completions", {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_FALSE(pre->has_header("Access-Control-Allow-Origin"));
}

TEST(ServerCors, AllowListIsHonoured) {
  ServerConfig c = with_key();
  c.allowed_origins = {"http://good.example"};
  TestServer s(c);
  auto pre = s.client().Options("/v1/completions", {{"Origin", "http://good.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "http://good.example");
  auto bad = s.client().Options("/v1/completions", {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_FALSE(bad->has_header("Access-Control-Allow-Origin"));
  auto r = s.get("/v1/models", {{"Origin", "http://good.example"}, {"Authorization", "Bearer sk-Secret-123"}});
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://good.example");
  auto noauth = s.get("/v1/models", {{"Origin", "http://good.example"}});
  EXPECT_EQ(noauth->status, 401);
}

TEST(ServerLimits, OversizedBodyIs413WithoutReadingIt) {
  ServerConfig c;
  c.max_body_bytes = 1 << 20;
  TestServer s(c);
  // Announce 1 GB and send nothing: the answer must come without the body.
  RawConn conn(s.port());
  conn.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{");
  auto t0 = std::chrono::steady_clock::now();
  std::string resp = conn.read(std::chrono::seconds(5), "}}");
  EXPECT_EQ(status_of(resp), 413) << resp;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_NE(resp.find("payload_too_large"), std::string::npos);
  // With Expect: 100-continue the refusal comes before any body byte.
  RawConn e(s.port());
  e.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(status_of(e.read(std::chrono::seconds(5), "}}")), 413);
  // Just under the cap is read and validated normally.
  json j = {{"prompt", std::string((1 << 20) - 100, 'a')}, {"max_tokens", 1}};
  auto r = s.post("/v1/completions", j.dump());
  EXPECT_EQ(r->status, 400);  // longer than the fake's context, but read and parsed
  // Chunked uploads cannot announce a size: refused.
  RawConn ch(s.port());
  ch.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  EXPECT_EQ(status_of(ch.read(std::chrono::seconds(5), "}}")), 411);
  RawConn bad(s.port());
  bad.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n");
  EXPECT_EQ(status_of(bad.read(std::chrono::seconds(5), "}}")), 400);
  EXPECT_TRUE(s.nothing_lost());
}

}  // namespace
}  // namespace nanoflow::testing
