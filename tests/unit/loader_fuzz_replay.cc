// Replays every committed seed of the loader's fuzz targets (fuzz/corpus/<target>/) through the
// same entry points libFuzzer drives, in the normal (g++) build: a corpus file that crashes, hangs
// or throws anything but nanoflow::Error fails CI. Crash reproducers found later go into the corpus.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "loader/fuzz_targets.h"

namespace nanoflow {
namespace {

namespace fs = std::filesystem;

void replay(const std::string& target, void (*fn)(const uint8_t*, size_t)) {
  const fs::path dir = fs::path(NF_SOURCE_DIR) / "fuzz" / "corpus" / target;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(fn(bytes.data(), bytes.size()));
    ++n;
  }
  EXPECT_GT(n, 0) << "empty corpus " << dir;
}

TEST(LoaderFuzzCorpus, Safetensors) { replay("safetensors", fuzz_safetensors); }
TEST(LoaderFuzzCorpus, Gguf) { replay("gguf", fuzz_gguf); }
TEST(LoaderFuzzCorpus, ConfigJson) { replay("config_json", fuzz_config_json); }

}  // namespace
}  // namespace nanoflow
