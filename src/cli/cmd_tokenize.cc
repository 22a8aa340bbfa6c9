// `nanoflow tokenize MODEL [TEXT]`: inspect tokenization.
//   nanoflow tokenize MODEL "text"              ids and pieces, one per line
//   nanoflow tokenize MODEL --file F --json     one JSON object per input line (split on '\n'):
//                                               {"ids": [...], "decoded": "..."} or {"error": "..."}
//                                               (what tests/model/test_tokenizer_hf.py compares
//                                               against HF `tokenizers`)
//   nanoflow tokenize MODEL --file F --jsonl --json   each input line is a JSON string (texts with
//                                               newlines; the corpus of tools/tokenizer/make_corpus.py)
//   nanoflow tokenize MODEL --chat messages.json [--no-generation-prompt]
//                                               renders the chat template, then tokenizes it
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "core/mmap.h"
#include "engine/tokenizer_loading.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  std::string chat;
  bool json = false;
  bool jsonl = false;            // --file lines are JSON strings
  bool stream = false;           // also detokenize id by id (IncrementalDetokenizer)
  bool no_special = false;       // add_special_tokens=false
  bool skip_special = false;     // decode with skip_special_tokens
  bool no_generation_prompt = false;
};

// Lines of a file split on '\n' (a final newline does not start another line).
std::vector<std::string_view> split_lines(std::string_view all) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string_view::npos) nl = all.size();
    lines.push_back(all.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

void print_pieces(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    nlohmann::json piece = tok.id_to_token(id);
    std::printf("%8d  %s\n", id, piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  std::printf("%zu tokens\n", ids.size());
}

int run_tokenize(const TokenizeOptions& o) {
  auto tok = load_tokenizer(o.model);
  const bool add_special = !o.no_special;
  if (!o.file.empty()) {
    std::string all = read_text_file(o.file, size_t{1} << 30);
    std::string out;
    for (std::string_view line : split_lines(all)) {
      nlohmann::json j;
      try {
        std::string decoded_line;
        if (o.jsonl) {
          auto v = nlohmann::json::parse(line, nullptr, false);
          NF_CHECK_INPUT(v.is_string()) << "--jsonl: a line is not a JSON string";
          decoded_line = v.get<std::string>();
          line = decoded_line;
        }
        auto ids = tok->encode(line, add_special);
        j["ids"] = ids;
        j["decoded"] = tok->decode(ids, o.skip_special);
        if (o.stream) {
          // What a streaming client would receive: every chunk must be valid UTF-8 on its own.
          IncrementalDetokenizer detok(*tok, o.skip_special);
          std::string streamed;
          bool chunks_valid = true;
          auto take = [&](const std::string& chunk) {
            try {
              (void)nlohmann::json(chunk).dump();  // throws on invalid UTF-8
            } catch (const nlohmann::json::type_error&) {
              chunks_valid = false;
            }
            streamed += chunk;
          };
          for (int32_t id : ids) take(detok.push(id));
          take(detok.flush());
          j["streamed"] = streamed;
          j["chunks_valid_utf8"] = chunks_valid;
        }
      } catch (const Error& e) {
        j = {{"error", e.what()}};
      }
      if (o.json) {
        out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      } else if (j.contains("ids")) {
        for (auto& id : j["ids"]) out += std::to_string(id.get<int32_t>()) + " ";
      } else {
        out += "error: " + j["error"].get<std::string>();
      }
      out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  std::string text = o.text;
  if (!o.chat.empty()) {
    auto messages = nlohmann::ordered_json::parse(read_text_file(o.chat, size_t{64} << 20));
    NF_CHECK_INPUT(!tok->chat_template().empty()) << o.model << " has no chat template";
    ChatTemplate tpl = ChatTemplate::compile(tok->chat_template());
    text = tpl.render(ChatTemplate::join_text_parts(messages), !o.no_generation_prompt, tok->bos_token(),
                      tok->eos_token());
    std::printf("--- prompt ---\n%s\n--- tokens ---\n", text.c_str());
  }
  // A rendered chat prompt already holds its special tokens (BOS included): transformers'
  // apply_chat_template(tokenize=True) encodes it with add_special_tokens=False, and so do we.
  auto ids = tok->encode(text, add_special && o.chat.empty());
  if (o.json) {
    nlohmann::json j = {{"ids", ids}, {"decoded", tok->decode(ids, o.skip_special)}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    print_pieces(*tok, ids);
  }
  return 0;
}

std::function<int()> setup(CLI::App* app) {
  auto o = std::make_shared<TokenizeOptions>();
  app->add_option("model", o->model, "model folder (tokenizer.json) or .gguf file")->required();
  app->add_option("text", o->text, "text to tokenize");
  app->add_option("--file", o->file, "tokenize every line of this file");
  app->add_option("--chat", o->chat, "JSON file with chat messages: render the chat template, then tokenize");
  app->add_flag("--jsonl", o->jsonl, "with --file: each line is a JSON string");
  app->add_flag("--stream", o->stream, "with --file --json: add the text an IncrementalDetokenizer streams");
  app->add_flag("--json", o->json, "JSON output (one object per line with --file)");
  app->add_flag("--no-special", o->no_special, "do not add BOS/EOS (add_special_tokens=false)");
  app->add_flag("--skip-special", o->skip_special, "decode with skip_special_tokens=true");
  app->add_flag("--no-generation-prompt", o->no_generation_prompt, "with --chat: add_generation_prompt=false");
  return [o]() { return run_tokenize(*o); };
}

}  // namespace

NF_REGISTER_COMMAND(tokenize_command, "tokenize", "show the token ids of a text (or of each line of a file)", setup);

}  // namespace nanoflow::cli
