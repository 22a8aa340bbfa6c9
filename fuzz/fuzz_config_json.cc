// libFuzzer target: the config_json parser (entry in src/loader/fuzz_targets.cc; corpus in fuzz/corpus/config_json/).
#include <cstddef>
#include <cstdint>

#include "loader/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nanoflow::fuzz_config_json(data, size);
  return 0;
}
