#include "server/chat_renderer.h"

#include "core/log.h"
#include "tokenizer/chat_template.h"

namespace nanoflow {

ChatRenderer make_chat_renderer(const Tokenizer& tokenizer) {
  const std::string& source = tokenizer.chat_template();
  if (source.empty()) {
    NF_LOG(kWarn) << "the model has no chat template; /v1/chat/completions will answer 400";
    return {};
  }
  std::shared_ptr<const ChatTemplate> tpl;
  try {
    tpl = std::make_shared<const ChatTemplate>(ChatTemplate::compile(source));
  } catch (const Error& e) {
    NF_LOG(kWarn) << "the chat template cannot be used (" << e.what() << "); /v1/chat/completions will answer 400";
    return {};
  }
  return [tpl, bos = tokenizer.bos_token(), eos = tokenizer.eos_token()](
             const nlohmann::json& messages, bool add_generation_prompt) {
    try {
      // Text-part lists become strings first (as vLLM does), so every template sees plain content.
      return tpl->render(ChatTemplate::join_text_parts(nlohmann::ordered_json(messages)), add_generation_prompt, bos, eos);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kInvalidInput) throw;
      // A template that hits its output/step limits on these messages: the request's fault.
      throw Error(ErrorKind::kInvalidInput, std::string("chat template: ") + e.what());
    }
  };
}

}  // namespace nanoflow
