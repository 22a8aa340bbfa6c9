// Replays the committed tokenizer.json fuzz corpus (fuzz/corpus/tokenizer_json/), every 7-byte-step
// prefix of each seed, and single-byte corruptions, through the fuzz entry point with the normal
// build: each must load or be refused with nanoflow::Error, never crash.
#include <gtest/gtest.h>

#include <cstdio>

#include "tokenizer/fuzz.h"
#include "unit/fuzz_corpus_util.h"

namespace nanoflow {
namespace {

TEST(TokenizerFuzzReplay, CorpusPrefixesAndCorruptions) {
  const auto files = testing::read_corpus("tokenizer_json");
  if (files.empty()) GTEST_SKIP() << "no corpus at " << testing::corpus_dir("tokenizer_json");
  size_t runs = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f.name);
    auto run = [&](const std::string& b, size_t n) {
      EXPECT_NO_THROW(fuzz_tokenizer_json(testing::bytes_of(b), n));
      ++runs;
    };
    run(f.bytes, f.bytes.size());
    for (size_t n = 0; n < f.bytes.size(); n += 7) run(f.bytes, n);
    // Corruptions that keep the JSON parseable more often than truncation does.
    for (size_t pos = 0; pos < f.bytes.size(); pos += 97) {
      std::string c = f.bytes;
      c[pos] = "0\"9]}x-\\"[pos % 8];
      run(c, c.size());
    }
  }
  EXPECT_GE(files.size(), 8u);
  std::printf("replayed %zu corpus files, %zu inputs\n", files.size(), runs);
}

}  // namespace
}  // namespace nanoflow
