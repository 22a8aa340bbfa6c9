// RELIABILITY.md "API validation" over HTTP on a fake engine: each bad request gets its exact status
// and an OpenAI error envelope naming the parameter, then the "nothing lost" check.
#include "unit/server_test_util.h"

namespace nanoflow::testing {
namespace {

struct Case {
  const char* path;
  std::string body;
  int status;
  const char* param;  // expected error.param; nullptr = null, "*" = don't care
};

std::string big_stop_list(size_t n) {
  json j = {{"prompt", "a"}, {"stop", json::array()}};
  for (size_t i = 0; i < n; ++i) j["stop"].push_back("s" + std::to_string(i));
  return j.dump();
}

class ServerValidation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FakeEngineConfig ec;
    ec.max_model_len = 64;
    server_ = new TestServer({}, ec);
  }
  static void TearDownTestSuite() { delete server_; }
  static TestServer* server_;

  void check(const Case& c) {
    SCOPED_TRACE(std::string(c.path) + " " + c.body.substr(0, 200));
    auto t0 = std::chrono::steady_clock::now();
    auto r = server_->post(c.path, c.body);
    ASSERT_TRUE(r);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_EQ(r->status, c.status) << r->body;
    if (c.status != 200) {
      json j = json::parse(r->body);
      ASSERT_TRUE(j.contains("error")) << r->body;
      const json& e = j["error"];
      EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
      EXPECT_TRUE(e["type"].is_string());
      EXPECT_TRUE(e.contains("param") && e.contains("code"));
      if (c.param == nullptr) EXPECT_TRUE(e["param"].is_null()) << r->body;
      else if (std::string(c.param) != "*") EXPECT_EQ(e["param"], c.param) << r->body;
    }
    EXPECT_TRUE(server_->nothing_lost());
  }
};
TestServer* ServerValidation::server_ = nullptr;

const char* kC = "/v1/completions";
const char* kChat = "/v1/chat/completions";

TEST_F(ServerValidation, ContextLength) {
  std::string long_prompt(64, 'x');
  auto r = server_->post(kC, json{{"prompt", long_prompt}}.dump());
  EXPECT_EQ(r->status, 400);
  std::string msg = json::parse(r->body)["error"]["message"];
  EXPECT_NE(msg.find("64 tokens"), std::string::npos) << msg;  // both counts: 64 and 64
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "prompt");
  check({kC, json{{"prompt", std::string(63, 'x')}, {"max_tokens", 2}}.dump(), 400, "max_tokens"});
  check({kC, json{{"prompt", std::string(62, 'x')}, {"max_tokens", 2}}.dump(), 200, nullptr});
  check({kC, R"({"prompt": "a", "max_tokens": 0})", 400, "max_tokens"});
  check({kC, R"({"prompt": "a", "max_tokens": -1})", 400, "max_tokens"});
  check({kC, R"({"prompt": "a", "max_tokens": 9223372036854775808})", 400, "max_tokens"});
  check({kC, R"({"prompt": "a", "max_tokens": 9223372036854775807})", 400, "max_tokens"});
  check({kChat, R"({"messages": [{"role": "user", "content": "a"}], "max_completion_tokens": 100})", 400, "max_tokens"});
}

TEST_F(ServerValidation, SamplingRanges) {
  for (const char* v : {"-0.1", "2.1", "1e309", "\"1\"", "true"})
    check({kC, std::string(R"({"prompt": "a", "temperature": )") + v + "}", 400, "temperature"});
  for (const char* v : {"0", "1.0001", "-1"}) check({kC, std::string(R"({"prompt": "a", "top_p": )") + v + "}", 400, "top_p"});
  for (const char* v : {"-2", "1.5"}) check({kC, std::string(R"({"prompt": "a", "top_k": )") + v + "}", 400, "top_k"});
  for (const char* v : {"0", "17", "1000000000", "-1"}) check({kC, std::string(R"({"prompt": "a", "n": )") + v + "}", 400, "n"});
  check({kC, R"({"prompt": "a", "stop": [""]})", 400, "stop"});
  check({kC, R"({"prompt": "a", "stop": ""})", 400, "stop"});
  check({kC, R"({"prompt": "a", "stop": [1]})", 400, "stop"});
  check({kC, R"({"prompt": "a", "logprobs": 21})", 400, "logprobs"});
  check({kChat, R"({"messages": [{"role": "user", "content": "a"}], "logprobs": true, "top_logprobs": 21})", 400, "top_logprobs"});
  check({kC, R"({"prompt": "a", "min_p": 1.5})", 400, "min_p"});
  check({kC, R"({"prompt": "a", "presence_penalty": 3})", 400, "presence_penalty"});
  check({kC, R"({"prompt": "a", "frequency_penalty": -2.5})", 400, "frequency_penalty"});
  check({kC, R"({"prompt": "a", "repetition_penalty": 0})", 400, "repetition_penalty"});
  check({kC, R"({"prompt": "a", "logit_bias": {"abc": 1}})", 400, "logit_bias"});
  check({kC, R"({"prompt": "a", "logit_bias": {"5": 101}})", 400, "logit_bias"});
  check({kC, R"({"prompt": "a", "logit_bias": {"99999": 1}})", 400, "logit_bias"});
  check({kC, R"({"prompt": "a", "seed": "x"})", 400, "seed"});
  check({kC, R"({"prompt": "a", "stream_options": {"include_usage": true}})", 400, "stream_options"});
  check({kC, R"({"prompt": "a", "stop_token_ids": [-1]})", 400, "stop_token_ids"});
}

TEST_F(ServerValidation, AcceptedEdges) {
  check({kC, R"({"prompt": "a", "temperature": 0, "max_tokens": 2})", 200, nullptr});
  check({kC, R"({"prompt": "a", "temperature": 2, "max_tokens": 2})", 200, nullptr});
  check({kC, R"({"prompt": "a", "top_p": 1, "max_tokens": 2})", 200, nullptr});
  check({kC, R"({"prompt": "a", "top_k": 0, "max_tokens": 2})", 200, nullptr});
  check({kC, R"({"prompt": "a", "top_k": -1, "max_tokens": 2})", 200, nullptr});
  check({kC, R"({"prompt": "a", "top_k": 5.0, "max_tokens": 2, "seed": -3, "user": "u", "unknown_field": 1})", 200, nullptr});
  check({kC, R"({"prompt": "a", "max_tokens": null, "temperature": null, "stop": null})", 200, nullptr});
  check({kC, R"({"prompt": "a", "max_tokens": 2, "n": 16})", 200, nullptr});
  check({kChat, R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": 2})", 200, nullptr});
}

TEST_F(ServerValidation, MalformedBodies) {
  for (std::string b : {std::string("{"), std::string(R"({"prompt": "a")"), std::string(R"({"prompt": "a",})"),
                        std::string("\"s\""), std::string("[1]"), std::string("null"), std::string(""), std::string("12"),
                        std::string("{\"prompt\": \"\xff\xfe\"}"), std::string(R"({"prompt": "\ud800"})"),
                        std::string(R"({"prompt": "a\udc00b"})"), std::string("{\"prompt\": \"a\xc3\"}")})
    check({kC, b, 400, "*"});
  check({kC, R"({"prompt": 5})", 400, "prompt"});
  check({kC, R"({"prompt": {"a": 1}})", 400, "prompt"});
  check({kC, R"({"prompt": "a", "max_tokens": "10"})", 400, "max_tokens"});
  check({kC, R"({"prompt": "a", "stream": "yes"})", 400, "stream"});
  check({kC, R"({"prompt": "a", "model": 3})", 400, "model"});
  check({kChat, R"({"messages": "hi"})", 400, "messages"});
  check({kChat, R"({"messages": [{"role": "wizard", "content": "x"}]})", 400, "messages"});
  check({kChat, R"({"messages": [{"content": "x"}]})", 400, "messages"});
  check({kChat, R"({"messages": [{"role": "user", "content": 5}]})", 400, "messages"});
  check({kChat, R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})", 400, "messages"});
}

TEST_F(ServerValidation, EmptyAndTokens) {
  check({kC, R"({"prompt": ""})", 400, "prompt"});
  check({kC, R"({"prompt": []})", 400, "prompt"});
  check({kC, R"({"prompt": [[]]})", 400, "prompt"});
  check({kC, R"({})", 400, "prompt"});
  check({kChat, R"({"messages": []})", 400, "messages"});
  check({kChat, R"({})", 400, "messages"});
  check({kC, R"({"prompt": [1, -1]})", 400, "prompt"});
  check({kC, R"({"prompt": [1, 257]})", 400, "prompt"});
  check({kC, R"({"prompt": [1, 4294967296]})", 400, "prompt"});
  check({kC, R"({"prompt": [1, 2.5]})", 400, "prompt"});
}

TEST_F(ServerValidation, UnknownModel) {
  check({kC, R"({"prompt": "a", "model": "gpt-4"})", 404, "model"});
  check({kChat, R"({"messages": [{"role": "user", "content": "a"}], "model": "FAKE-MODEL"})", 404, "model"});
}

TEST_F(ServerValidation, HugeCountsAreRefusedFast) {
  check({kC, big_stop_list(10000), 400, "stop"});
  check({kC, R"({"prompt": "a", "n": 100000000000})", 400, "n"});
  json many = {{"prompt", json::array()}};
  for (int i = 0; i < 1000; ++i) many["prompt"].push_back("p");
  check({kC, many.dump(), 400, "prompt"});
  json bias = {{"prompt", "a"}, {"logit_bias", json::object()}};
  for (int i = 0; i < 5000; ++i) bias["logit_bias"][std::to_string(i)] = 1;
  check({kC, bias.dump(), 400, "logit_bias"});
}

}  // namespace
}  // namespace nanoflow::testing
