// Replays the committed fuzz corpus of the template parser/interpreter (fuzz/corpus/jinja/), and
// every 5-byte-step prefix of each entry, through the fuzz entry point with the normal build: each
// must be accepted or refused with nanoflow::Error (fuzz_jinja swallows only that), never crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/jinja/fuzz.h"

namespace nanoflow {
namespace {

TEST(ChatFuzzReplay, CorpusAndPrefixes) {
  const std::filesystem::path dir = std::filesystem::path(NF_SOURCE_DIR) / "fuzz" / "corpus" / "jinja";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no corpus at " << dir;
  int files = 0;
  size_t runs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string bytes = ss.str();
    SCOPED_TRACE(entry.path().filename().string());
    auto run = [&](size_t n) {
      EXPECT_NO_THROW(fuzz_jinja(reinterpret_cast<const uint8_t*>(bytes.data()), n));
      ++runs;
    };
    run(bytes.size());
    for (size_t n = 0; n < bytes.size(); n += 5) run(n);
    ++files;
  }
  EXPECT_GE(files, 10);
  std::printf("replayed %d corpus files, %zu inputs\n", files, runs);
}

}  // namespace
}  // namespace nanoflow
