// GGUF metadata of the default model (SmolLM2-135M-Instruct Q4_1), values as the `gguf` package
// reports them (tools/loader/ has the script; numbers copied from its output).
#include <gtest/gtest.h>

#include <filesystem>

#include "loader/gguf.h"

namespace nanoflow {
namespace {

std::string default_gguf() { return std::string(NF_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"; }

TEST(GgufMetadata, DefaultModel) {
  if (!std::filesystem::exists(default_gguf())) GTEST_SKIP() << "no " << default_gguf();
  GgufFile f = GgufFile::open(default_gguf());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.keys().size(), 33u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 3);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("llama.rope.freq_base")), 100000.0f);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[1], "<|im_start|>");
  auto types = f.get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 49152u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.merges").size(), 48900u);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f.get_int("no.such.key", -7), -7);
  EXPECT_THROW(f.get_int("general.architecture"), Error);  // a string, not an int
  EXPECT_THROW(f.get_string("no.such.key"), Error);
  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::kQ8_0);
  EXPECT_EQ(emb->shape, (Shape{49152, 576}));
  EXPECT_EQ(f.data_offset() + emb->offset, 1785664u);  // gguf's ReaderTensor.data_offset
}

}  // namespace
}  // namespace nanoflow
