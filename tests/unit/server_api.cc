// The OpenAI surface of the server over HTTP, on a fake engine: response shapes, streaming rules,
// n, logprobs, stop, usage, echo, tokenize/detokenize, models, health/ready/version/metrics.
#include "unit/server_test_util.h"

namespace nanoflow::testing {
namespace {

json body_of(const httplib::Result& r) { return json::parse(r->body); }

TEST(ServerApi, CompletionNonStreaming) {
  TestServer s;
  auto r = s.post("/v1/completions", R"({"model": "fake-model", "prompt": "abcdef", "max_tokens": 4})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = body_of(r);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(j["model"], "fake-model");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["text"], "abcd");  // the fake echoes prompt bytes
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6);
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"], 10);
  EXPECT_TRUE(s.nothing_lost());
}

TEST(ServerApi, CompletionDefaultMaxTokensIs16AndModelOptional) {
  TestServer s;
  auto r = s.post("/v1/completions", R"({"prompt": "xyz"})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_of(r)["usage"]["completion_tokens"], 16);
}

TEST(ServerApi, ChatDefaultMaxTokensIsRestOfContext) {
  FakeEngineConfig ec;
  ec.max_model_len = 64;
  TestServer s({}, ec);
  auto r = s.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_EQ(r->status, 200) << r->body;
  json j = body_of(r);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  int prompt = j["usage"]["prompt_tokens"];
  EXPECT_EQ(prompt, static_cast<int>(std::string("user: hi\nassistant:").size()));
  EXPECT_EQ(j["usage"]["completion_tokens"], 64 - prompt);
}

TEST(ServerApi, StreamingEqualsNonStreamingAndFollowsSseRules) {
  TestServer s;
  std::string req = R"({"prompt": "hello world", "max_tokens": 9, "n": 2, "stream": true,
                        "stream_options": {"include_usage": true}})";
  auto r = s.post("/v1/completions", req);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text[2];
  int finals = 0;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json c = json::parse(events[i]);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
    for (const auto& ch : c["choices"]) {
      int idx = ch["index"];
      ASSERT_TRUE(idx == 0 || idx == 1);
      text[idx] += ch["text"].get<std::string>();
      if (!ch["finish_reason"].is_null()) ++finals;
    }
  }
  EXPECT_EQ(finals, 2);
  json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 18);
  EXPECT_EQ(usage["usage"]["prompt_tokens"], 11);

  auto plain = s.post("/v1/completions", R"({"prompt": "hello world", "max_tokens": 9, "n": 2})");
  json j = body_of(plain);
  EXPECT_EQ(j["choices"][0]["text"], text[0]);
  EXPECT_EQ(j["choices"][1]["text"], text[1]);
  EXPECT_NE(text[0], text[1]);
  EXPECT_TRUE(s.nothing_lost());
}

TEST(ServerApi, ChatStreamingFirstDeltaHasRole) {
  TestServer s;
  auto r = s.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "abc"}], "max_tokens": 5, "stream": true})");
  ASSERT_EQ(r->status, 200);
  auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 3u);
  json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_FALSE(first.contains("usage"));
  std::string content;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json c = json::parse(events[i]);
    const auto& ch = c["choices"][0];
    if (i + 2 < events.size()) EXPECT_TRUE(ch["finish_reason"].is_null()) << events[i];
    else EXPECT_EQ(ch["finish_reason"], "length");
    if (ch["delta"].contains("content")) content += ch["delta"]["content"].get<std::string>();
  }
  auto plain = s.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "abc"}], "max_tokens": 5})");
  EXPECT_EQ(body_of(plain)["choices"][0]["message"]["content"], content);
}

TEST(ServerApi, StopStringsAreExcluded) {
  TestServer s;
  auto r = s.post("/v1/completions", R"({"prompt": "abcdefgh", "max_tokens": 8, "stop": ["de"]})");
  json j = body_of(r);
  EXPECT_EQ(j["choices"][0]["text"], "abc");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  auto st = s.post("/v1/completions", R"({"prompt": "abcdefgh", "max_tokens": 8, "stop": "de", "stream": true})");
  std::string text;
  for (const auto& e : sse_events(st->body))
    if (e != "[DONE]") text += json::parse(e)["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, "abc");
}

// A model's padded vocabulary rows (ids past the tokenizer's) may show up among the top
// alternatives: they are rendered as tokens without text, not as an error.
TEST(ServerApi, LogprobsOfPaddedVocabularyIdsHaveNoText) {
  FakeEngineConfig ec;
  ec.padded_rows = 4;
  TestServer s({}, ec);
  auto r = s.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 2, "logprobs": 2})");
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
  json tops = body_of(r)["choices"][0]["logprobs"]["top_logprobs"];
  ASSERT_EQ(tops.size(), 2u);
  EXPECT_TRUE(tops[0].contains("")) << tops[0].dump();
  auto c = s.post("/v1/chat/completions",
                  R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1, "logprobs": true, "top_logprobs": 2})");
  ASSERT_TRUE(c && c->status == 200) << (c ? c->body : "no response");
  json alt = body_of(c)["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1];
  EXPECT_EQ(alt["token"], "");
  EXPECT_EQ(alt["bytes"], json::array());
}

TEST(ServerApi, LogprobsShapes) {
  TestServer s;
  auto r = s.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 3, "logprobs": 2})");
  json lp = body_of(r)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 3u);
  EXPECT_EQ(lp["tokens"][0], "a");
  EXPECT_EQ(lp["token_logprobs"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"].size(), 3u);
  EXPECT_EQ(lp["text_offset"], json({0, 1, 2}));
  auto c = s.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "logprobs": true, "top_logprobs": 3})");
  json content = body_of(c)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"].size(), 3u);
  EXPECT_TRUE(content[0]["bytes"].is_array());
  auto none = s.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 2})");
  EXPECT_TRUE(body_of(none)["choices"][0]["logprobs"].is_null());
}

TEST(ServerApi, EchoAndTokenPrompts) {
  TestServer s;
  auto r = s.post("/v1/completions", R"({"prompt": [104, 105], "max_tokens": 2, "echo": true})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_of(r)["choices"][0]["text"], "hihi");
  auto multi = s.post("/v1/completions", R"({"prompt": ["ab", "cd"], "max_tokens": 2, "n": 2})");
  json j = body_of(multi);
  ASSERT_EQ(j["choices"].size(), 4u);
  EXPECT_EQ(j["choices"][0]["text"], "ab");
  EXPECT_EQ(j["choices"][2]["text"], "cd");
  EXPECT_EQ(j["choices"][3]["index"], 3);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);
}

TEST(ServerApi, TokenizeDetokenize) {
  TestServer s;
  auto t = s.post("/tokenize", R"({"prompt": "hey"})");
  ASSERT_EQ(t->status, 200) << t->body;
  json j = body_of(t);
  EXPECT_EQ(j["tokens"], json({104, 101, 121}));
  EXPECT_EQ(j["count"], 3);
  EXPECT_EQ(j["max_model_len"], 256);
  auto d = s.post("/detokenize", R"({"tokens": [104, 101, 121]})");
  EXPECT_EQ(body_of(d)["prompt"], "hey");
  EXPECT_EQ(s.post("/detokenize", R"({"tokens": [999]})")->status, 400);
  EXPECT_EQ(s.post("/tokenize", R"({"prompt": 5})")->status, 400);
  EXPECT_EQ(s.post("/tokenize", R"({"prompt": "a", "model": "nope"})")->status, 404);
  auto c = s.post("/tokenize", R"({"messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(body_of(c)["count"], std::string("user: x\nassistant:").size());
}

TEST(ServerApi, InfoRoutes) {
  TestServer s;
  auto m = s.get("/v1/models");
  ASSERT_EQ(m->status, 200);
  json j = body_of(m);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "fake-model");
  EXPECT_EQ(s.get("/v1/models/fake-model")->status, 200);
  EXPECT_EQ(s.get("/v1/models/other")->status, 404);
  EXPECT_EQ(s.get("/health")->status, 200);
  EXPECT_EQ(s.get("/ready")->status, 200);
  EXPECT_EQ(s.get("/version")->status, 200);
  auto met = s.get("/metrics");
  ASSERT_EQ(met->status, 200);
  for (const char* name : {"nanoflow_http_requests_total", "nanoflow_num_requests_running", "nanoflow_num_requests_waiting",
                           "nanoflow_kv_pages_used", "nanoflow_kv_pages_free", "nanoflow_prefix_cache_hit_rate",
                           "nanoflow_num_preemptions_total", "nanoflow_time_to_first_token_seconds_bucket",
                           "nanoflow_time_per_output_token_seconds_bucket", "nanoflow_e2e_request_latency_seconds_bucket",
                           "nanoflow_generation_tokens_per_second", "process_threads"})
    EXPECT_NE(met->body.find(name), std::string::npos) << name;
  auto nf = s.get("/v1/nothing");
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(body_of(nf)["error"]["type"], "invalid_request_error");
}

TEST(ServerApi, MetricsCountRequestsByStatus) {
  TestServer s;
  s.post("/v1/completions", R"({"prompt": "a", "max_tokens": 1})");
  s.post("/v1/completions", R"({"prompt": ""})");
  auto met = s.get("/metrics")->body;
  EXPECT_NE(met.find(R"(nanoflow_http_requests_total{route="/v1/completions",status="200"} 1)"), std::string::npos) << met;
  EXPECT_NE(met.find(R"(nanoflow_http_requests_total{route="/v1/completions",status="400"} 1)"), std::string::npos);
  EXPECT_NE(met.find(R"(nanoflow_time_to_first_token_seconds_count 1)"), std::string::npos);
}

}  // namespace
}  // namespace nanoflow::testing
