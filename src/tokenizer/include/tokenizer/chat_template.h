// Chat templates: renders OpenAI-style chat messages into the prompt string a model expects, byte
// for byte as Hugging Face `transformers` `apply_chat_template(messages, tokenize=False,
// add_generation_prompt=...)` does (Jinja2 with trim_blocks=True, lstrip_blocks=True, the
// loopcontrols extension, and transformers' globals raise_exception / strftime_now / namespace /
// dict and its `tojson` filter).
//
// The template language is the Jinja subset that real chat templates use (src/tokenizer/jinja/).
// Anything outside that subset (macros, call blocks, includes, unknown filters/tests/functions...)
// is refused by compile() with Error(kUnsupported); a syntax error gives Error(kBadFile). So a
// template either compiles and renders as transformers would, or fails at load time.
//
// Usage (the server, once per model at load time, then per request):
//   ChatTemplate tpl = ChatTemplate::compile(tokenizer.chat_template());
//   std::string prompt = tpl.render(messages, /*add_generation_prompt=*/true,
//                                   tokenizer.bos_token(), tokenizer.eos_token());
//
// render() throws nanoflow::Error:
//   kInvalidInput  messages that the template rejects (raise_exception, e.g. Llama 2 / Mixtral
//                  require user/assistant alternation), or that it cannot render (a missing key it
//                  reads, content of the wrong type, ...): map to HTTP 400. The message says why.
//                  An empty conversation is refused, as transformers refuses it.
//   kResource      output or an intermediate value beyond ChatTemplateLimits (hostile template).
//   kUnsupported   a value-dependent construct we do not evaluate (Python big integers, '%'
//                  string formatting, printing a generator), so it is refused, never approximated.
// A compiled ChatTemplate is immutable; render() is const and safe to call from many threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"

namespace nanoflow {

// Bounds on output size, steps and nesting (see jinja::Limits for the fields and defaults).
using ChatTemplateLimits = jinja::Limits;

class ChatTemplate {
 public:
  // Parses and checks `source`. Throws Error(kBadFile) on syntax errors, Error(kUnsupported) for
  // constructs outside the supported subset (both name the line).
  static ChatTemplate compile(const std::string& source, const ChatTemplateLimits& limits = {});

  // messages: a JSON array of objects, as in an OpenAI chat request ({"role", "content", ...}).
  //   Keys whose value is null are dropped first, as transformers does. `content` is passed to the
  //   template as is: a list of parts ({"type":"text","text":...}) is what transformers would pass
  //   too, and then Qwen2/SmolLM2/Mixtral/Llama 2 fail with kInvalidInput while Llama 3/3.1 print
  //   the list's Python repr (exactly as transformers does). Call join_text_parts() first to
  //   flatten such content into a string.
  // bos_token / eos_token: the tokenizer's special-token strings (e.g. "<|begin_of_text|>").
  // extra: an object of further template variables (e.g. {"tools": [...], "date_string": "..."});
  //   `tools` and `documents` default to none, as transformers passes them.
  // nlohmann::json keeps object keys sorted; pass nlohmann::ordered_json to keep the client's key
  // order where a template prints objects (tojson of tool schemas, arguments).
  std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token,
                     const nlohmann::json& extra = nlohmann::json::object()) const;
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  // Returns a copy of `messages` in which every `content` that is a list of parts of type "text"
  // becomes the parts' texts joined by "\n" (what vLLM does for string-content templates). A part
  // of another type (image, audio...) throws Error(kUnsupported); other content is kept as is.
  static nlohmann::ordered_json join_text_parts(const nlohmann::ordered_json& messages);

  const std::string& source() const;

 private:
  ChatTemplate() = default;
  std::shared_ptr<const jinja::Template> impl_;  // immutable once compiled; copies share it
  std::string source_;
  ChatTemplateLimits limits_;
};

}  // namespace nanoflow
