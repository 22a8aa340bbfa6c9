// Replays the committed fuzz corpus of the template parser/interpreter (fuzz/corpus/jinja/), and
// every 5-byte-step prefix of each entry, through the fuzz entry point with the normal build: each
// must be accepted or refused with nanoflow::Error (fuzz_jinja swallows only that), never crash.
#include <gtest/gtest.h>

#include <cstdio>

#include "tokenizer/jinja/fuzz.h"
#include "unit/fuzz_corpus_util.h"

namespace nanoflow {
namespace {

TEST(ChatFuzzReplay, CorpusAndPrefixes) {
  const auto files = testing::read_corpus("jinja");
  if (files.empty()) GTEST_SKIP() << "no corpus at " << testing::corpus_dir("jinja");
  size_t runs = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f.name);
    auto run = [&](size_t n) {
      EXPECT_NO_THROW(fuzz_jinja(testing::bytes_of(f.bytes), n));
      ++runs;
    };
    run(f.bytes.size());
    for (size_t n = 0; n < f.bytes.size(); n += 5) run(n);
  }
  EXPECT_GE(files.size(), 10u);
  std::printf("replayed %zu corpus files, %zu inputs\n", files.size(), runs);
}

}  // namespace
}  // namespace nanoflow
