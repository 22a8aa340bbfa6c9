// libFuzzer target: the chat-template (Jinja subset) parser and interpreter (entry in
// src/tokenizer/jinja/fuzz.cc; corpus in fuzz/corpus/jinja/).
#include <cstddef>
#include <cstdint>

#include "tokenizer/jinja/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nanoflow::fuzz_jinja(data, size);
  return 0;
}
