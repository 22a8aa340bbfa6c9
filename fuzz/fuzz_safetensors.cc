// libFuzzer target: the safetensors parser (entry in src/loader/fuzz_targets.cc; corpus in fuzz/corpus/safetensors/).
#include <cstddef>
#include <cstdint>

#include "loader/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nanoflow::fuzz_safetensors(data, size);
  return 0;
}
