// Replays every committed seed of the loader's fuzz targets (fuzz/corpus/<target>/) through the
// same entry points libFuzzer drives, in the normal (g++) build: a corpus file that crashes, hangs
// or throws anything but nanoflow::Error fails CI. Crash reproducers found later go into the corpus.
#include <gtest/gtest.h>

#include "loader/fuzz_targets.h"
#include "unit/fuzz_corpus_util.h"

namespace nanoflow {
namespace {

void replay(const std::string& target, void (*fn)(const uint8_t*, size_t)) {
  const auto files = testing::read_corpus(target);
  EXPECT_GT(files.size(), 0u) << "empty or missing corpus " << testing::corpus_dir(target);
  for (const auto& f : files) {
    SCOPED_TRACE(f.name);
    EXPECT_NO_THROW(fn(testing::bytes_of(f.bytes), f.bytes.size()));
  }
}

TEST(LoaderFuzzCorpus, Safetensors) { replay("safetensors", fuzz_safetensors); }
TEST(LoaderFuzzCorpus, Gguf) { replay("gguf", fuzz_gguf); }
TEST(LoaderFuzzCorpus, ConfigJson) { replay("config_json", fuzz_config_json); }

}  // namespace
}  // namespace nanoflow
