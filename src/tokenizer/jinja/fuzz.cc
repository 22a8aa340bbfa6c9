#include "tokenizer/jinja/fuzz.h"

#include <string>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace nanoflow {

void fuzz_jinja(const uint8_t* data, size_t size) {
  // Small bounds keep each run fast; they are the same code paths as the defaults.
  ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_list_items = 1 << 12;
  limits.max_steps = 100'000;
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const ChatTemplate tpl = ChatTemplate::compile(source, limits);
    static const nlohmann::ordered_json kConversations[] = {
        nlohmann::ordered_json::parse(R"([{"role":"user","content":"Hi"}])"),
        nlohmann::ordered_json::parse(
            R"([{"role":"system","content":" sys "},{"role":"user","content":"héllo 🌍"},
                {"role":"assistant","content":"a","tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]},
                {"role":"tool","content":{"k":[1,2.5,null,true]}},{"role":"user","content":[{"type":"text","text":"t"}]}])"),
    };
    static const nlohmann::ordered_json kExtra = nlohmann::ordered_json::parse(
        R"({"tools":[{"name":"f","parameters":{"type":"object"}}],"date_string":"1 Jan 2025"})");
    for (const auto& conv : kConversations) {
      for (bool gen : {false, true}) {
        try {
          (void)tpl.render(conv, gen, "<s>", "</s>");
          (void)tpl.render(conv, gen, "<s>", "</s>", kExtra);
        } catch (const Error&) {
        }
      }
    }
  } catch (const Error&) {
  }
}

}  // namespace nanoflow
