// Entry points of the loader's fuzz targets (fuzz/fuzz_<name>.cc wraps each for libFuzzer, and
// tests/unit/loader_fuzz_replay.cc replays the committed corpus through them with the normal build).
// Each parses untrusted bytes, touches everything the parse claims is valid, and returns normally
// whether the input was accepted or refused with nanoflow::Error; any other outcome is a bug.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nanoflow {

void fuzz_safetensors(const uint8_t* data, size_t size);
void fuzz_gguf(const uint8_t* data, size_t size);
void fuzz_config_json(const uint8_t* data, size_t size);  // config.json and model.safetensors.index.json

}  // namespace nanoflow
