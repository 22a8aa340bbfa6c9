#include "tokenizer/chat_template.h"

#include "core/error.h"

namespace nanoflow {

ChatTemplate ChatTemplate::compile(const std::string& source, const ChatTemplateLimits& limits) {
  ChatTemplate t;
  t.impl_ = jinja::Template::compile(source, limits);
  t.source_ = source;
  t.limits_ = limits;
  return t;
}

const std::string& ChatTemplate::source() const { return source_; }

namespace {

// transformers drops message keys whose value is None before rendering (templates handle a
// missing key better than a None one).
template <class J>
jinja::Value messages_value(const J& messages, int max_depth) {
  if (!messages.is_array())
    throw Error(ErrorKind::kInvalidInput, "chat template: messages must be a JSON array");
  // transformers refuses an empty conversation before rendering.
  if (messages.empty())
    throw Error(ErrorKind::kInvalidInput, "chat template: cannot apply a chat template to an empty conversation");
  std::vector<jinja::Value> items;
  items.reserve(messages.size());
  for (const auto& m : messages) {
    if (!m.is_object()) throw Error(ErrorKind::kInvalidInput, "chat template: each message must be a JSON object");
    jinja::DictData d;
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it.value().is_null()) continue;
      d.items.emplace_back(it.key(), jinja::Value::from_json(it.value(), max_depth - 2));
    }
    items.push_back(jinja::Value::dict(std::move(d)));
  }
  return jinja::Value::list(std::move(items));
}

template <class J>
std::string render_impl(const jinja::Template& tpl, const jinja::Limits& limits, const J& messages,
                        bool add_generation_prompt, const std::string& bos, const std::string& eos,
                        const J& extra) {
  if (!extra.is_null() && !extra.is_object())
    throw Error(ErrorKind::kInvalidInput, "chat template: extra context must be a JSON object");
  // The variables transformers passes: messages, tools, documents, add_generation_prompt, the
  // special tokens, then the caller's kwargs (which win).
  jinja::DictData ctx;
  ctx.set("messages", messages_value(messages, limits.max_input_depth));
  ctx.set("tools", jinja::Value::none());
  ctx.set("documents", jinja::Value::none());
  ctx.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  ctx.set("bos_token", jinja::Value(bos));
  ctx.set("eos_token", jinja::Value(eos));
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it)
      ctx.set(it.key(), jinja::Value::from_json(it.value(), limits.max_input_depth));
  return tpl.render(ctx);
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token,
                                 const nlohmann::json& extra) const {
  NF_CHECK(impl_) << "ChatTemplate used before compile()";
  return render_impl(*impl_, limits_, messages, add_generation_prompt, bos_token, eos_token, extra);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token,
                                 const nlohmann::ordered_json& extra) const {
  NF_CHECK(impl_) << "ChatTemplate used before compile()";
  return render_impl(*impl_, limits_, messages, add_generation_prompt, bos_token, eos_token, extra);
}

nlohmann::ordered_json ChatTemplate::join_text_parts(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) throw Error(ErrorKind::kInvalidInput, "chat template: messages must be a JSON array");
  nlohmann::ordered_json out = messages;
  for (auto& m : out) {
    if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
    std::string text;
    bool first = true;
    for (const auto& part : m["content"]) {
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string())
        throw Error(ErrorKind::kUnsupported, "chat template: only content parts of type \"text\" are supported");
      if (!first) text += "\n";
      first = false;
      text += part["text"].get<std::string>();
    }
    m["content"] = text;
  }
  return out;
}

}  // namespace nanoflow
