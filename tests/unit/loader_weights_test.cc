// WeightStore over Hugging Face folders (single and sharded safetensors), built here byte by byte,
// and the folder-level refusals: shard missing from the index, vocab != embedding rows, missing or
// unknown weights.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "loader/weights.h"
#include "loader_test_util.h"

namespace nanoflow {
namespace {

using test::Bytes;
using test::expect_refusal;

// Tiny Llama: vocab 8, hidden 8, inter 12, 1 layer, 2 heads of 4, 1 KV head.
const char* kConfig = R"({"model_type":"llama","vocab_size":8,"hidden_size":8,"intermediate_size":12,
  "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"tie_word_embeddings":false})";

std::vector<std::pair<std::string, std::vector<int64_t>>> tiny_tensors() {
  return {{"model.embed_tokens.weight", {8, 8}},
          {"model.norm.weight", {8}},
          {"lm_head.weight", {8, 8}},
          {"model.layers.0.input_layernorm.weight", {8}},
          {"model.layers.0.post_attention_layernorm.weight", {8}},
          {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
          {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
          {"model.layers.0.self_attn.v_proj.weight", {4, 8}},
          {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
          {"model.layers.0.mlp.gate_proj.weight", {12, 8}},
          {"model.layers.0.mlp.up_proj.weight", {12, 8}},
          {"model.layers.0.mlp.down_proj.weight", {8, 12}},
          {"model.layers.0.self_attn.rotary_emb.inv_freq", {2}}};
}

// F32 safetensors with distinct values: tensor t, element i holds t * 1000 + i + 0.25.
Bytes f32_file(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors, std::map<std::string, float>* first = nullptr) {
  nlohmann::ordered_json h;
  std::vector<float> data;
  int t = 0;
  for (const auto& [name, shape] : tensors) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const size_t begin = data.size() * 4;
    for (int64_t i = 0; i < n; ++i) data.push_back(static_cast<float>(t * 1000 + i) + 0.25f);
    if (first) (*first)[name] = static_cast<float>(t * 1000) + 0.25f;
    h[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, data.size() * 4}}};
    ++t;
  }
  Bytes b = test::safetensors_bytes(h.dump(), data.size() * 4);
  std::memcpy(b.data() + b.size() - data.size() * 4, data.data(), data.size() * 4);
  return b;
}

TEST(WeightStoreHf, SingleFileCanonicalNamesAndValues) {
  test::TempDir dir;
  dir.write("config.json", std::string(kConfig));
  std::map<std::string, float> first;
  dir.write("model.safetensors", f32_file(tiny_tensors(), &first));
  auto ws = WeightStore::open(dir.path.string());
  EXPECT_EQ(ws->config().num_layers, 1);
  EXPECT_EQ(ws->names().size(), 12u);  // rotary cache ignored
  EXPECT_TRUE(ws->has("layers.0.q_proj"));
  EXPECT_FALSE(ws->get("layers.0.q_proj").permuted_qk);
  EXPECT_EQ(ws->get("layers.0.down_proj").view.shape, (Shape{8, 12}));
  std::vector<float> k(32);
  ws->read_f32("layers.0.k_proj", k.data());
  EXPECT_EQ(k[0], first["model.layers.0.self_attn.k_proj.weight"]);
  EXPECT_EQ(k[31], first["model.layers.0.self_attn.k_proj.weight"] + 31);
  std::vector<uint16_t> kb(32);
  ws->read_bf16("layers.0.k_proj", kb.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(kb[i], f32_to_bf16(k[i]));
  expect_refusal([&] { ws->get("layers.1.q_proj"); }, {"no weight 'layers.1.q_proj'"});
}

TEST(WeightStoreHf, ShardedFolder) {
  test::TempDir dir;
  dir.write("config.json", std::string(kConfig));
  auto all = tiny_tensors();
  decltype(all) a(all.begin(), all.begin() + 5), b(all.begin() + 5, all.end());
  dir.write("model-00001-of-00002.safetensors", f32_file(a));
  dir.write("model-00002-of-00002.safetensors", f32_file(b));
  nlohmann::json idx;
  for (auto& [n, s] : a) idx["weight_map"][n] = "model-00001-of-00002.safetensors";
  for (auto& [n, s] : b) idx["weight_map"][n] = "model-00002-of-00002.safetensors";
  dir.write("model.safetensors.index.json", idx.dump());
  auto ws = WeightStore::open(dir.path.string());
  EXPECT_EQ(ws->names().size(), 12u);
  EXPECT_NE(ws->get("embed_tokens").file.find("00001"), std::string::npos);
  EXPECT_NE(ws->get("layers.0.up_proj").file.find("00002"), std::string::npos);

  // Shard missing from the folder.
  std::filesystem::remove(dir.path / "model-00002-of-00002.safetensors");
  expect_refusal([&] { WeightStore::open(dir.path.string()); },
                 {"model.safetensors.index.json", "shard model-00002-of-00002.safetensors is missing"});
  // A tensor the index names but its shard lacks.
  dir.write("model-00002-of-00002.safetensors", f32_file(b));
  idx["weight_map"]["model.layers.0.mlp.extra"] = "model-00002-of-00002.safetensors";
  dir.write("model.safetensors.index.json", idx.dump());
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"'model.layers.0.mlp.extra' is not in its shard"});
  // A tensor in a shard that the index assigns elsewhere.
  idx["weight_map"].erase("model.layers.0.mlp.extra");
  idx["weight_map"]["model.norm.weight"] = "model-00002-of-00002.safetensors";
  dir.write("model.safetensors.index.json", idx.dump());
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"00001", "'model.norm.weight' is not assigned to this shard"});
}

TEST(WeightStoreHf, VocabNotEmbeddingRows) {
  test::TempDir dir;
  auto t = tiny_tensors();
  t[0].second = {9, 8};
  dir.write("config.json", std::string(kConfig));
  dir.write("model.safetensors", f32_file(t));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"model.safetensors", "vocab_size 8 != embedding rows 9"});
}

TEST(WeightStoreHf, MissingWrongAndUnknownWeights) {
  test::TempDir dir;
  dir.write("config.json", std::string(kConfig));
  auto t = tiny_tensors();
  t.erase(t.begin() + 8);  // o_proj
  dir.write("model.safetensors", f32_file(t));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {dir.path.string(), "missing weight 'layers.0.o_proj'"});

  t = tiny_tensors();
  t.erase(t.begin() + 2);  // lm_head, while the config says untied
  dir.write("model.safetensors", f32_file(t));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"missing weight 'lm_head'"});

  t = tiny_tensors();
  t[6].second = {8, 8};  // k_proj with q's shape
  dir.write("model.safetensors", f32_file(t));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"model.safetensors", "'layers.0.k_proj' has shape [8, 8]", "[4, 8]"});

  t = tiny_tensors();
  t.push_back({"model.layers.0.self_attn.o_proj.bias", {8}});
  dir.write("model.safetensors", f32_file(t));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"model.safetensors", "o_proj.bias", "not used by any supported"});

  t = tiny_tensors();
  t.push_back({"model.layers.1.input_layernorm.weight", {8}});  // more layers than configured
  dir.write("model.safetensors", f32_file(t));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"'layers.1.attn_norm' is not part of the configured model"});
}

TEST(WeightStoreHf, FolderWithoutWeightsOrConfig) {
  test::TempDir dir;
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {dir.path.string(), "no config.json"});
  dir.write("config.json", std::string(kConfig));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {dir.path.string(), "no model.safetensors"});
  dir.write("config.json", std::string("{\"model_type\":"));
  expect_refusal([&] { WeightStore::open(dir.path.string()); }, {"config.json", "not valid JSON"});
  expect_refusal([&] { WeightStore::open((dir.path / "none").string()); }, {"none", "no such file"});
}

}  // namespace
}  // namespace nanoflow
