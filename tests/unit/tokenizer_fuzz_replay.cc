// Replays the committed tokenizer.json fuzz corpus (fuzz/corpus/tokenizer_json/), every 7-byte-step
// prefix of each seed, and single-byte corruptions, through the fuzz entry point with the normal
// build: each must load or be refused with nanoflow::Error, never crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/fuzz.h"

namespace nanoflow {
namespace {

TEST(TokenizerFuzzReplay, CorpusPrefixesAndCorruptions) {
  const std::filesystem::path dir = std::filesystem::path(NF_SOURCE_DIR) / "fuzz" / "corpus" / "tokenizer_json";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no corpus at " << dir;
  int files = 0;
  size_t runs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string bytes = ss.str();
    SCOPED_TRACE(entry.path().filename().string());
    auto run = [&](const std::string& b, size_t n) {
      EXPECT_NO_THROW(fuzz_tokenizer_json(reinterpret_cast<const uint8_t*>(b.data()), n));
      ++runs;
    };
    run(bytes, bytes.size());
    for (size_t n = 0; n < bytes.size(); n += 7) run(bytes, n);
    // Corruptions that keep the JSON parseable more often than truncation does.
    for (size_t pos = 0; pos < bytes.size(); pos += 97) {
      std::string c = bytes;
      c[pos] = "0\"9]}x-\\"[pos % 8];
      run(c, c.size());
    }
    ++files;
  }
  EXPECT_GE(files, 8);
  std::printf("replayed %d corpus files, %zu inputs\n", files, runs);
}

}  // namespace
}  // namespace nanoflow
