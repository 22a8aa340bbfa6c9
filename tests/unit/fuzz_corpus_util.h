// Reads the committed fuzz corpora (fuzz/corpus/<target>/) for the replay tests, which run the
// libFuzzer entry points in the normal build so that CI replays every seed.
#pragma once
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace nanoflow::testing {

struct CorpusFile {
  std::string name;   // file name, for SCOPED_TRACE
  std::string bytes;  // whole content
};

inline std::filesystem::path corpus_dir(const std::string& target) {
  return std::filesystem::path(NF_SOURCE_DIR) / "fuzz" / "corpus" / target;
}

// Every regular file of the target's corpus (empty if the folder is missing).
inline std::vector<CorpusFile> read_corpus(const std::string& target) {
  std::vector<CorpusFile> files;
  const auto dir = corpus_dir(target);
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    files.push_back({e.path().filename().string(),
                     std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())});
  }
  return files;
}

inline const uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace nanoflow::testing
