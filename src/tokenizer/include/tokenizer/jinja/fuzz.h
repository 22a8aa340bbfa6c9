// Fuzz entry of the template parser and interpreter (fuzz/fuzz_jinja.cc wraps it for libFuzzer;
// tests/unit/chat_fuzz_replay.cc replays the committed corpus fuzz/corpus/jinja/ through it).
// The input bytes are a template: it is compiled, and if that succeeds, rendered against a fixed
// set of conversations. Returns normally whether the template was accepted or refused with
// nanoflow::Error; any other outcome (crash, hang, other exception, sanitizer report) is a bug.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nanoflow {

void fuzz_jinja(const uint8_t* data, size_t size);

}  // namespace nanoflow
