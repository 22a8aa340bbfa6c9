// libFuzzer target: tokenizer.json loading + encode/decode (entry in src/tokenizer/fuzz_tokenizer.cc;
// corpus in fuzz/corpus/tokenizer_json/).
#include <cstddef>
#include <cstdint>

#include "tokenizer/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nanoflow::fuzz_tokenizer_json(data, size);
  return 0;
}
