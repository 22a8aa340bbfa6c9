// WeightStore over a tiny GGUF built here: a llama-architecture MoE with merged expert tensors
// (ffn_*_exps, split into one view per expert) and the Q/K row order (llama.cpp stores each head's
// rotary halves interleaved: file row 2j + half of a head is HF row half * head_dim/2 + j; the real
// model check against transformers is tests/model/loader_weights_gguf.cc).
#include <gtest/gtest.h>

#include "loader/gguf.h"
#include "loader/weights.h"
#include "loader_test_util.h"

namespace nanoflow {
namespace {

using test::Bytes;
using test::expect_refusal;
using test::GgufSpec;

GgufSpec tiny_moe() {
  GgufSpec s;
  s.add_str("general.architecture", "llama");
  s.add_u32("llama.block_count", 1);
  s.add_u32("llama.embedding_length", 8);
  s.add_u32("llama.feed_forward_length", 4);
  s.add_u32("llama.attention.head_count", 2);
  s.add_u32("llama.attention.head_count_kv", 1);
  s.add_u32("llama.expert_count", 2);
  s.add_u32("llama.expert_used_count", 1);
  s.add_u32("llama.vocab_size", 8);
  s.add_f32("llama.rope.freq_base", 500000.0f);
  s.add_f32_tensor("token_embd.weight", {8, 8});
  s.add_f32_tensor("output_norm.weight", {8});
  s.add_f32_tensor("output.weight", {8, 8});
  s.add_f32_tensor("blk.0.attn_norm.weight", {8});
  s.add_f32_tensor("blk.0.ffn_norm.weight", {8});
  s.add_f32_tensor("blk.0.attn_q.weight", {8, 8});
  s.add_f32_tensor("blk.0.attn_k.weight", {8, 4});
  s.add_f32_tensor("blk.0.attn_v.weight", {8, 4});
  s.add_f32_tensor("blk.0.attn_output.weight", {8, 8});
  s.add_f32_tensor("blk.0.ffn_gate_inp.weight", {8, 2});
  s.add_f32_tensor("blk.0.ffn_gate_exps.weight", {8, 4, 2});
  s.add_f32_tensor("blk.0.ffn_up_exps.weight", {8, 4, 2});
  s.add_f32_tensor("blk.0.ffn_down_exps.weight", {4, 8, 2});
  return s;
}

// Fills tensor k's element i with k * 1000 + i, so every value says where it came from.
Bytes fill(Bytes b) {
  GgufFile f = GgufFile::parse(b.data(), b.size(), "fill");
  for (size_t k = 0; k < f.tensors().size(); ++k) {
    const auto& t = f.tensors()[k];
    float* p = reinterpret_cast<float*>(b.data() + f.data_offset() + t.offset);
    for (int64_t i = 0; i < t.shape.numel(); ++i) p[i] = static_cast<float>(k * 1000 + i);
  }
  return b;
}

TEST(WeightStoreGguf, MoeExpertsAndQkOrder) {
  test::TempDir dir;
  const std::string path = dir.write("tiny.gguf", fill(tiny_moe().build()));
  auto ws = WeightStore::open(path);
  const ModelConfig& c = ws->config();
  EXPECT_EQ(c.num_experts, 2);
  EXPECT_EQ(c.num_experts_per_tok, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(ws->names().size(), 3u + 2u + 4u + 1u + 6u);
  EXPECT_EQ(ws->get("layers.0.experts.1.down_proj").view.shape, (Shape{8, 4}));
  std::vector<float> g(32);
  ws->read_f32("layers.0.experts.1.gate_proj", g.data());
  EXPECT_EQ(g[0], 10 * 1000 + 32);  // tensor #10, second expert starts at element 4*8
  EXPECT_EQ(g[31], 10 * 1000 + 63);
  std::vector<float> q(64);
  ws->read_f32("layers.0.q_proj", q.data());
  // head_dim 4: HF rows 0,1,2,3 of a head come from file rows 0,2,1,3.
  const int file_row_of[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) EXPECT_EQ(q[r * 8], 5 * 1000 + file_row_of[r] * 8) << "row " << r;
  std::vector<float> v(32);
  ws->read_f32("layers.0.v_proj", v.data());
  EXPECT_EQ(v[8], 7 * 1000 + 8);  // V is not permuted
}

TEST(WeightStoreGguf, Refusals) {
  test::TempDir dir;
  GgufSpec s = tiny_moe();
  s.tensors[10].ne = {8, 4, 3};  // 3 experts in the tensor, 2 in the metadata
  for (size_t k = 11; k < s.tensors.size(); ++k) s.tensors[k].offset += 4 * 8 * 4 * 1;  // keep offsets apart
  expect_refusal([&] { WeightStore::open(dir.write("e.gguf", s.build())); }, {"e.gguf", "ffn_gate_exps", "[3, 4, 8]"});
  s = tiny_moe();
  s.tensors.erase(s.tensors.begin() + 8);  // attn_output
  expect_refusal([&] { WeightStore::open(dir.write("m.gguf", s.build())); }, {"m.gguf", "missing weight 'layers.0.o_proj'"});
  s = tiny_moe();
  s.tensors[0].ne = {8, 9};  // 9 embedding rows, vocab 8
  for (size_t k = 1; k < s.tensors.size(); ++k) s.tensors[k].offset += 32;
  expect_refusal([&] { WeightStore::open(dir.write("v.gguf", s.build())); }, {"v.gguf", "vocab_size 8 != embedding rows 9"});
  s = tiny_moe();
  s.tensors[3].name = "blk.0.mystery.weight";
  expect_refusal([&] { WeightStore::open(dir.write("u.gguf", s.build())); }, {"u.gguf", "blk.0.mystery.weight", "not used"});
  s = tiny_moe();
  s.kvs[0] = {"general.architecture", [](Bytes& b) { test::put<uint32_t>(b, 8); test::put_str(b, "gpt2"); }};
  expect_refusal([&] { WeightStore::open(dir.write("a.gguf", s.build())); }, {"a.gguf", "gpt2", "not supported"});
  s = tiny_moe();
  s.add_u32("llama.attention.head_count_kv", 3);  // duplicate key
  expect_refusal([&] { WeightStore::open(dir.write("d.gguf", s.build())); }, {"d.gguf", "duplicate metadata key"});
}

}  // namespace
}  // namespace nanoflow
