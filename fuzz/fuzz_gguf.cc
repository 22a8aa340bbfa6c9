// libFuzzer target: the gguf parser (entry in src/loader/fuzz_targets.cc; corpus in fuzz/corpus/gguf/).
#include <cstddef>
#include <cstdint>

#include "loader/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nanoflow::fuzz_gguf(data, size);
  return 0;
}
