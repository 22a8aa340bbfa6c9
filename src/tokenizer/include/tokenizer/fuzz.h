// Entry point of the tokenizer.json fuzz target (fuzz/fuzz_tokenizer_json.cc wraps it for
// libFuzzer; tests/unit/tokenizer_fuzz_replay.cc replays fuzz/corpus/tokenizer_json/ through it
// with the normal build). It parses untrusted bytes as tokenizer.json and, when they load, encodes
// and decodes sample texts; it returns normally whether the input was accepted or refused with
// nanoflow::Error. Any other outcome (crash, other exception, hang) is a bug.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nanoflow {

void fuzz_tokenizer_json(const uint8_t* data, size_t size);

}  // namespace nanoflow
