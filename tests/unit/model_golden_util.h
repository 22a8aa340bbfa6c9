// Reads the transformers goldens written by tools/golden/make_goldens.py: golden.json (prompts,
// greedy continuations, versions) + logits.bin (f32 tensors indexed in golden.json).
#pragma once
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/mmap.h"

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

inline Golden read_golden(const std::string& dir) {
  Golden g;
  g.meta = nlohmann::json::parse(read_text_file(dir + "/golden.json"));
  g.prompts = g.meta.at("prompts").get<std::vector<std::vector<int32_t>>>();
  g.greedy = g.meta.at("greedy").get<std::vector<std::vector<int32_t>>>();
  std::ifstream f(dir + "/logits.bin", std::ios::binary);
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

}  // namespace nanoflow::golden
