// Reads the transformers goldens written by tools/golden/make_goldens.py: golden.json (prompts,
// greedy continuations, versions) + logits.bin (f32 tensors indexed in golden.json).
#pragma once
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "model/simple_runner.h"

namespace nanoflow::golden {

struct GoldenTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct Golden {
  nlohmann::json meta;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> greedy;
  std::map<std::string, GoldenTensor> logits;
};

// dir/golden.json + dir/logits.bin, or with suffix "_bf16": golden_bf16.json + logits_bf16.bin
// (transformers' bf16 forward of the same folder, tools/golden/make_bf16_goldens.py).
inline Golden read_golden(const std::string& dir, const std::string& suffix = "") {
  Golden g;
  g.meta = nlohmann::json::parse(read_text_file(dir + "/golden" + suffix + ".json"));
  g.prompts = g.meta.at("prompts").get<std::vector<std::vector<int32_t>>>();
  g.greedy = g.meta.at("greedy").get<std::vector<std::vector<int32_t>>>();
  std::ifstream f(dir + "/logits" + suffix + ".bin", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (const auto& e : g.meta.at("logits")) {
    GoldenTensor t;
    t.shape = e.at("shape").get<std::vector<int64_t>>();
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const int64_t off = e.at("offset").get<int64_t>();
    if ((off + n) * 4 > static_cast<int64_t>(bytes.size())) throw std::runtime_error("logits.bin too short");
    t.data.resize(n);
    std::memcpy(t.data.data(), bytes.data() + off * 4, n * 4);  // little-endian f32, as written
    g.logits[e.at("key").get<std::string>()] = std::move(t);
  }
  return g;
}

// Logits of every position of `prompt` from any backend's Model, fed in chunks of `chunk` tokens
// (0 = all at once): [prompt.size(), vocab] flattened.
inline std::vector<float> all_logits(Model& m, const std::vector<int32_t>& prompt, int chunk) {
  SimpleRunner r(m);
  const int s = r.add_sequence(prompt);
  std::vector<float> all, part;
  while (r.pending(s) > 0) {
    const int32_t n = chunk > 0 ? std::min<int32_t>(chunk, r.pending(s)) : r.pending(s);
    SimpleRunner::Work w{s, n, true, true};
    r.step({&w, 1}, part);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

}  // namespace nanoflow::golden
