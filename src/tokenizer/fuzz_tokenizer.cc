#include "core/error.h"
#include "hf_loader.h"
#include "tokenizer/fuzz.h"

namespace nanoflow {

void fuzz_tokenizer_json(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = tok::tokenizer_from_json_text(text, "fuzz tokenizer.json");
  } catch (const Error&) {
    return;  // refused with a reason: fine
  }
  const std::string samples[] = {"Hello world! 123 你好 🤖 <s> <|endoftext|>\n\n  x", "", "a", std::string(300, ' '),
                                 text.substr(0, 256)};
  for (const std::string& s : samples) {
    try {
      auto ids = tok->encode(s, true);
      for (int32_t id : ids) NF_CHECK(id >= 0 && id < tok->vocab_size()) << "encode produced id " << id;
      (void)tok->decode(ids, false);
      (void)tok->decode(ids, true);
      IncrementalDetokenizer d(*tok, false);
      for (int32_t id : ids) (void)d.push(id);
      (void)d.flush();
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kInternal) throw;  // a broken invariant is a bug
    }
  }
  for (int32_t id : {0, 1, tok->vocab_size() - 1}) {
    if (id < 0 || id >= tok->vocab_size()) continue;
    (void)tok->token_bytes(id);
    (void)tok->id_to_token(id);
    (void)tok->is_special(id);
  }
}

}  // namespace nanoflow
