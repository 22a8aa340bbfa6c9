// Chat templates and the Jinja interpreter against goldens rendered by Hugging Face transformers
// (tests/data/chat/*.json, made by tools/chat/make_goldens.py): every prompt byte for byte, every
// error where transformers raises. Plus: what we refuse at compile time, and the resource bounds.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/template.h"

namespace nanoflow {
namespace {

using ojson = nlohmann::ordered_json;

std::filesystem::path data_dir() { return std::filesystem::path(NF_SOURCE_DIR) / "tests" / "data" / "chat"; }

ojson load(const std::string& name) {
  std::ifstream f(data_dir() / name);
  EXPECT_TRUE(f.good()) << "missing golden " << name;
  std::stringstream ss;
  ss << f.rdbuf();
  return ojson::parse(ss.str());
}

// Where two strings first differ, for a readable failure.
std::string first_diff(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto ctx = [&](const std::string& s) { return s.substr(i > 20 ? i - 20 : 0, 60); };
  return "first difference at byte " + std::to_string(i) + "\n  ours:     [" + ctx(a) + "]\n  expected: [" + ctx(b) + "]";
}

std::string str_or_empty(const ojson& j) { return j.is_string() ? j.get<std::string>() : std::string(); }

void check_model_golden(const std::string& file) {
  const ojson g = load(file);
  ASSERT_TRUE(g.contains("cases"));
  const ChatTemplate tpl = ChatTemplate::compile(g["chat_template"].get<std::string>());
  const std::string bos = str_or_empty(g["bos_token"]), eos = str_or_empty(g["eos_token"]);
  int rendered = 0, errors = 0;
  for (const ojson& c : g["cases"]) {
    const std::string name = c["name"];
    const ojson extra = c.contains("extra") ? c["extra"] : ojson::object();
    const bool gen = c["add_generation_prompt"];
    if (c.contains("expected")) {
      std::string out;
      try {
        out = tpl.render(c["messages"], gen, bos, eos, extra);
      } catch (const Error& e) {
        ADD_FAILURE() << file << " / " << name << ": unexpected error: " << e.what();
        continue;
      }
      const std::string want = c["expected"];
      EXPECT_EQ(out, want) << file << " / " << name << ": " << first_diff(out, want);
      ++rendered;
    } else {
      const std::string type = c["error"]["type"], msg = c["error"]["message"];
      try {
        const std::string out = tpl.render(c["messages"], gen, bos, eos, extra);
        ADD_FAILURE() << file << " / " << name << ": expected " << type << " (" << msg << "), rendered: " << out;
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << file << " / " << name << ": " << e.what();
        if (type == "TemplateError")  // raise_exception: the template's own message reaches the client
          EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << e.what() << " vs " << msg;
      }
      ++errors;
    }
  }
  EXPECT_GE(rendered + errors, 40) << file;
  EXPECT_GE(rendered, 20) << file;
}

TEST(ChatTemplateGolden, Llama3) { check_model_golden("llama3.json"); }
TEST(ChatTemplateGolden, Llama31) { check_model_golden("llama31.json"); }
TEST(ChatTemplateGolden, Llama2) { check_model_golden("llama2.json"); }
TEST(ChatTemplateGolden, Mixtral) { check_model_golden("mixtral.json"); }
TEST(ChatTemplateGolden, Qwen2) { check_model_golden("qwen2.json"); }
TEST(ChatTemplateGolden, SmolLM2) { check_model_golden("smollm2.json"); }

jinja::DictData context_of(const ojson& ctx) {
  jinja::DictData d;
  for (auto it = ctx.begin(); it != ctx.end(); ++it) d.set(it.key(), jinja::Value::from_json(it.value(), 64));
  return d;
}

// Where we knowingly differ from Python, we must refuse clearly rather than render differently.
const char* const kRefusedOnPurpose[] = {
    "int_overflow_is_error",  // Python has big integers; we have int64 and say so
};

void check_feature_golden(const std::string& file, int min_cases) {
  const ojson g = load(file);
  int n = 0;
  for (const ojson& c : g["cases"]) {
    const std::string name = c["name"];
    const std::string src = c["template"];
    SCOPED_TRACE(name);
    bool refused = false;
    for (const char* r : kRefusedOnPurpose) refused |= name == r;
    std::string out;
    try {
      auto t = jinja::Template::compile(src);
      out = t->render(context_of(c["context"]));
    } catch (const Error& e) {
      // Python prints some objects with their address ("<generator object ... at 0x...>"): we
      // refuse to print those (kUnsupported) instead of inventing text.
      const bool unprintable = c.contains("expected") && c["expected"].get<std::string>().find(" at 0x") != std::string::npos;
      // Python's printf-style '%' formatting is not implemented: a documented refusal.
      const bool printf_style = std::string(e.what()).find("printf-style") != std::string::npos;
      if (refused || unprintable || printf_style) {
        EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
      } else if (c.contains("error")) {
        // Jinja's syntax errors are ours at compile time (kBadFile); the rest happen while rendering.
        // (kUnsupported is also a refusal: e.g. '%' on a string, which we never evaluate.)
        const ErrorKind want = c["error"]["type"] == "TemplateSyntaxError" ? ErrorKind::kBadFile : ErrorKind::kInvalidInput;
        EXPECT_TRUE(e.kind() == want || e.kind() == ErrorKind::kUnsupported) << e.what();
      } else {
        ADD_FAILURE() << name << ": unexpected error: " << e.what();
      }
      ++n;
      continue;
    }
    if (c.contains("expected")) {
      EXPECT_FALSE(refused) << name << " was expected to be refused";
      const std::string want = c["expected"];
      EXPECT_EQ(out, want) << name << ": " << first_diff(out, want);
    } else {
      ADD_FAILURE() << name << ": expected " << c["error"]["type"] << " (" << c["error"]["message"]
                    << "), rendered: [" << out << "]";
    }
    ++n;
  }
  EXPECT_GE(n, min_cases);
}

TEST(JinjaGolden, Features) { check_feature_golden("jinja_features.json", 100); }
// Seeded random whitespace-control / block-structure templates (tools/chat/jinja_random.py).
TEST(JinjaGolden, RandomWhitespaceAndBlocks) { check_feature_golden("jinja_random.json", 300); }
// Seeded random expressions over mixed values (tools/chat/jinja_random_expr.py).
TEST(JinjaGolden, RandomExpressions) { check_feature_golden("jinja_random_expr.json", 300); }

ErrorKind compile_error_kind(const std::string& src) {
  try {
    jinja::Template::compile(src);
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::kInternal;  // compiled: callers expect otherwise
}

TEST(JinjaCompile, RefusesUnsupportedConstructs) {
  const char* const unsupported[] = {
      "{% macro m() %}x{% endmacro %}{{ m() }}",
      "{% call foo() %}x{% endcall %}",
      "{% include 'other' %}",
      "{% extends 'base' %}",
      "{% filter upper %}x{% endfilter %}",
      "{% with a = 1 %}{{ a }}{% endwith %}",
      "{% do x.append(1) %}",
      "{{ x | wordcount }}",
      "{{ x | sort }}",
      "{{ x is foo }}",
      "{{ lipsum() }}",
      "{{ unknown_fn(1) }}",
      "{{ s.format(1) }}",
      "{{ l.append(1) }}",
      "{{ (x)(1) }}",
      "{% for x in y recursive %}{% endfor %}",
      "{{ f(*args) }}",
      "{{ '\\N{BULLET}' }}",
      "{{ x | map('wordcount') }}",
      "{{ x | select('foo') }}",
      "{{ '%s and %d' % (a, 1) }}",
      "{{ x | title }}",
      "{{ 'a'.title() }}",
  };
  for (const char* src : unsupported) EXPECT_EQ(compile_error_kind(src), ErrorKind::kUnsupported) << src;
}

TEST(JinjaCompile, RefusesSyntaxErrors) {
  const char* const bad[] = {
      "{% if %}x{% endif %}", "{{ 1 + }}", "{% for x in %}{% endfor %}", "{% endif %}", "{{ 'abc }}",
      "{% if true %}x", "{# unclosed", "{{ x", "{% for x in y %}", "{{ (1 }}", "{{ [1, 2 }}",
      "{% set %}", "{% break %}", "{{ 1 2 }}", "{% if true %}{% else %}{% elif x %}{% endif %}",
      "{% bogus %}", "{{ x is }}", "{{ }}", "{{ x.  }}",
  };
  for (const char* src : bad) EXPECT_EQ(compile_error_kind(src), ErrorKind::kBadFile) << src;
}

std::string render_err(const std::string& src, const jinja::Limits& limits, ErrorKind* kind) {
  try {
    auto t = jinja::Template::compile(src, limits);
    return t->render({});
  } catch (const Error& e) {
    *kind = e.kind();
    return e.what();
  }
}

TEST(JinjaLimits, HostileTemplatesAreBounded) {
  jinja::Limits lim;
  lim.max_output_bytes = 1 << 18;
  lim.max_list_items = 1 << 16;
  lim.max_steps = 300'000;
  const char* const resource[] = {
      "{% for i in range(60000) %}{% for j in range(60000) %}xxxxxxxx{% endfor %}{% endfor %}",  // output
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
      "{{ 'x' * 100000000 }}",
      "{{ [1] * 100000000 }}",
      "{{ range(1000000000) | length }}",
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
      "{% set ns = namespace(x=[]) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}{% endfor %}",
      "{% for i in range(60000) %}{% for j in range(60000) %}{% endfor %}{% endfor %}",           // steps
      "{% for i in range(60000) %}{% for j in range(60000) %}{% if loop.last %}{% endif %}{% endfor %}{% endfor %}",
      "{{ 'ab' | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx')"
      " | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') }}",
      "{{ ('x\n' * 1000) | indent(width=100000) }}",
      "{{ ('x\n' * 1000) | indent(width=100000000000000) }}",
      "{{ range(60000) | list | tojson(indent=100000) }}",
      "{{ [1] | tojson(indent=100000000000000) }}",
      "{{ ('a,' * 500000).split(',') | length }}",
  };
  for (const char* src : resource) {
    const auto t0 = std::chrono::steady_clock::now();
    ErrorKind kind = ErrorKind::kInternal;
    const std::string r = render_err(src, lim, &kind);
    EXPECT_EQ(kind, ErrorKind::kResource) << src << " -> " << r.substr(0, 200);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 5.0) << src;
    std::printf("%.3fs  %.60s\n", secs, src);
  }
}

TEST(JinjaLimits, DeepNestingRefusedAtCompile) {
  const std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_EQ(compile_error_kind("{{ " + parens + " }}"), ErrorKind::kUnsupported);
  std::string chain = "{{ x";
  for (int i = 0; i < 5000; ++i) chain += " | trim";
  EXPECT_EQ(compile_error_kind(chain + " }}"), ErrorKind::kUnsupported);
  std::string sum = "{{ 1";
  for (int i = 0; i < 5000; ++i) sum += " + 1";
  EXPECT_EQ(compile_error_kind(sum + " }}"), ErrorKind::kUnsupported);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(compile_error_kind(ifs), ErrorKind::kUnsupported);
  std::string nots = "{{ ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_EQ(compile_error_kind(nots + "x }}"), ErrorKind::kUnsupported);
  // Moderate nesting is fine.
  EXPECT_EQ(jinja::Template::compile("{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}")->render({}), "1");
}

TEST(ChatTemplate, InputValidation) {
  const ChatTemplate t = ChatTemplate::compile("{% for m in messages %}{{ m.content }}{% endfor %}");
  auto kind_of = [&](const nlohmann::json& msgs) {
    try {
      t.render(msgs, false, "", "");
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::kInternal;
  };
  EXPECT_EQ(kind_of(nlohmann::json::object()), ErrorKind::kInvalidInput);
  EXPECT_EQ(kind_of(nlohmann::json::array()), ErrorKind::kInvalidInput);
  EXPECT_EQ(kind_of(nlohmann::json::parse(R"([1])")), ErrorKind::kInvalidInput);
  nlohmann::json deep = "x";
  for (int i = 0; i < 200; ++i) deep = nlohmann::json::array({deep});
  EXPECT_EQ(kind_of(nlohmann::json::array({{{"role", "user"}, {"content", deep}}})), ErrorKind::kInvalidInput);
  // nlohmann::json (sorted keys) works as well as ordered_json.
  EXPECT_EQ(t.render(nlohmann::json::parse(R"([{"role":"user","content":"a"},{"role":"assistant","content":"b"}])"),
                     false, "", ""),
            "ab");
}

TEST(ChatTemplate, JoinTextParts) {
  const ojson msgs = ojson::parse(R"([{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                                      {"role":"assistant","content":"plain"}])");
  const ojson flat = ChatTemplate::join_text_parts(msgs);
  EXPECT_EQ(flat[0]["content"], "a\nb");
  EXPECT_EQ(flat[1]["content"], "plain");
  EXPECT_THROW(ChatTemplate::join_text_parts(ojson::parse(R"([{"role":"user","content":[{"type":"image_url"}]}])")), Error);
}

TEST(ChatTemplate, ConcurrentRendersAgree) {
  const ojson g = load("llama31.json");
  const ChatTemplate tpl = ChatTemplate::compile(g["chat_template"].get<std::string>());
  const ojson& c = g["cases"][2];
  const std::string want = c["expected"];
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i)
        if (tpl.render(c["messages"], c["add_generation_prompt"], "<|begin_of_text|>", "<|eot_id|>") != want) ++bad;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace nanoflow
