// GGUF parsing, metadata of every value type, and the malformed cases of RELIABILITY.md (after
// llama.cpp's tests/test-gguf.cpp: bad magic/version, huge counts, bad dims, offsets, types).
#include <gtest/gtest.h>

#include "loader/gguf.h"
#include "loader_test_util.h"

namespace nanoflow {
namespace {

using test::Bytes;
using test::expect_refusal;
using test::GgufSpec;
using test::put;
using test::put_str;

GgufFile parse(const Bytes& b, const std::string& name = "t.gguf") { return GgufFile::parse(b.data(), b.size(), name); }

GgufSpec two_tensors() {
  GgufSpec s;
  s.add_str("general.architecture", "llama");
  s.add_f32_tensor("a", {8, 2});  // shape [2, 8]
  s.add_f32_tensor("b", {3});
  return s;
}

TEST(Gguf, ParsesTensorsAndShapes) {
  Bytes b = two_tensors().build();
  GgufFile f = parse(b);
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensorInfo* a = f.find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (Shape{2, 8}));  // row-major: ne reversed
  EXPECT_EQ(a->nbytes, 64u);
  EXPECT_EQ(f.find_tensor("b")->offset, 64u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.tensor_data(*a), b.data() + f.data_offset());
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
}

TEST(Gguf, Version2Accepted) {
  GgufSpec s = two_tensors();
  s.version = 2;
  EXPECT_EQ(parse(s.build()).version(), 2u);
}

TEST(Gguf, EveryValueTypeIncludingNestedArrays) {
  GgufSpec s;
  auto kv = [&](const std::string& k, std::function<void(Bytes&)> w) { s.kvs.push_back({k, std::move(w)}); };
  kv("u8", [](Bytes& b) { put<uint32_t>(b, 0); put<uint8_t>(b, 200); });
  kv("i8", [](Bytes& b) { put<uint32_t>(b, 1); put<int8_t>(b, -100); });
  kv("u16", [](Bytes& b) { put<uint32_t>(b, 2); put<uint16_t>(b, 60000); });
  kv("i16", [](Bytes& b) { put<uint32_t>(b, 3); put<int16_t>(b, -30000); });
  kv("u32", [](Bytes& b) { put<uint32_t>(b, 4); put<uint32_t>(b, 4000000000u); });
  kv("i32", [](Bytes& b) { put<uint32_t>(b, 5); put<int32_t>(b, -2000000000); });
  kv("f32", [](Bytes& b) { put<uint32_t>(b, 6); put<float>(b, 1.5f); });
  kv("bool", [](Bytes& b) { put<uint32_t>(b, 7); put<uint8_t>(b, 1); });
  kv("str", [](Bytes& b) { put<uint32_t>(b, 8); put_str(b, "héllo"); });
  kv("u64", [](Bytes& b) { put<uint32_t>(b, 10); put<uint64_t>(b, 18000000000000000000ull); });
  kv("i64", [](Bytes& b) { put<uint32_t>(b, 11); put<int64_t>(b, -9000000000000000000ll); });
  kv("f64", [](Bytes& b) { put<uint32_t>(b, 12); put<double>(b, -0.25); });
  kv("arr_i32", [](Bytes& b) { put<uint32_t>(b, 9); put<uint32_t>(b, 5); put<uint64_t>(b, 3); put<int32_t>(b, -1); put<int32_t>(b, 0); put<int32_t>(b, 7); });
  kv("arr_f32", [](Bytes& b) { put<uint32_t>(b, 9); put<uint32_t>(b, 6); put<uint64_t>(b, 2); put<float>(b, 0.5f); put<float>(b, -2.0f); });
  kv("arr_str", [](Bytes& b) { put<uint32_t>(b, 9); put<uint32_t>(b, 8); put<uint64_t>(b, 2); put_str(b, "a"); put_str(b, ""); });
  kv("arr_nested", [](Bytes& b) {  // [[1, 2], []] of u16
    put<uint32_t>(b, 9); put<uint32_t>(b, 9); put<uint64_t>(b, 2);
    put<uint32_t>(b, 2); put<uint64_t>(b, 2); put<uint16_t>(b, 1); put<uint16_t>(b, 2);
    put<uint32_t>(b, 2); put<uint64_t>(b, 0);
  });
  const Bytes bytes = s.build();  // parse() views the bytes: keep them alive
  GgufFile f = parse(bytes);
  EXPECT_EQ(f.keys().size(), 16u);
  EXPECT_EQ(f.keys()[0], "u8");
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_float("f32"), 1.5);
  EXPECT_TRUE(f.get_bool("bool"));
  EXPECT_EQ(f.get_string("str"), "héllo");
  EXPECT_EQ(f.get("u64").u, 18000000000000000000ull);
  expect_refusal([&] { f.get_int("u64"); }, {"t.gguf", "'u64'", "out of range"});
  EXPECT_EQ(f.get_int("i64"), -9000000000000000000ll);
  EXPECT_EQ(f.get_float("f64"), -0.25);
  EXPECT_EQ(f.get_float("u8"), 200.0);  // integers read as floats
  EXPECT_EQ(f.get_int_array("arr_i32"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(f.get_float_array("arr_f32"), (std::vector<float>{0.5f, -2.0f}));
  EXPECT_EQ(f.get_string_array("arr_str"), (std::vector<std::string>{"a", ""}));
  const GgufValue& nested = f.get("arr_nested");
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[0].elem_type, GgufType::kUint16);
  EXPECT_EQ(nested.items[0].int_at(1), 2);
  EXPECT_EQ(nested.items[1].count, 0u);
  // Wrong-type access names the file, key and both types.
  expect_refusal([&] { f.get_string("u8"); }, {"t.gguf", "'u8'", "uint8", "expected a string"});
  expect_refusal([&] { f.get_string_array("arr_i32"); }, {"t.gguf", "'arr_i32'", "array of int32"});
  expect_refusal([&] { f.get_bool("missing"); }, {"t.gguf", "missing metadata key 'missing'"});
  EXPECT_EQ(f.get_int("missing", 5), 5);
  EXPECT_EQ(f.get_string("missing", "x"), "x");
}

TEST(Gguf, Alignment) {
  GgufSpec s = two_tensors();
  s.alignment = 64;
  s.tensors[1].offset = 64;
  const Bytes bytes = s.build();  // parse() views the bytes: keep them alive
  GgufFile f = parse(bytes);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  s.alignment = 48;  // not a power of two
  expect_refusal([&] { parse(s.build(), "al.gguf"); }, {"al.gguf", "not a power of two"});
}

TEST(Gguf, BadMagic) {
  GgufSpec s = two_tensors();
  s.magic = 0x46554748;
  expect_refusal([&] { parse(s.build(), "m.gguf"); }, {"m.gguf", "bad magic"});
  expect_refusal([&] { parse(Bytes{'G', 'G'}, "m2.gguf"); }, {"m2.gguf", "truncated"});
}

TEST(Gguf, BadVersion) {
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    GgufSpec s = two_tensors();
    s.version = v;
    expect_refusal([&] { parse(s.build(), "v.gguf"); }, {"v.gguf", "unsupported GGUF version " + std::to_string(v)});
  }
}

TEST(Gguf, HugeCounts) {
  GgufSpec s = two_tensors();
  s.tensor_count_override = int64_t{1} << 62;
  expect_refusal([&] { parse(s.build(), "c.gguf"); }, {"c.gguf", "tensor count"});
  s = two_tensors();
  s.kv_count_override = int64_t{1} << 40;
  expect_refusal([&] { parse(s.build(), "c.gguf"); }, {"c.gguf", "metadata count"});
  // An array claiming 2^60 items, and a string claiming 2^50 bytes: refused, nothing allocated.
  s = two_tensors();
  s.kvs.push_back({"arr", [](Bytes& b) { put<uint32_t>(b, 9); put<uint32_t>(b, 4); put<uint64_t>(b, uint64_t{1} << 60); }});
  expect_refusal([&] { parse(s.build(), "c.gguf"); }, {"c.gguf", "array 'arr' claims"});
  s = two_tensors();
  s.kvs.push_back({"s", [](Bytes& b) { put<uint32_t>(b, 8); put<uint64_t>(b, uint64_t{1} << 50); }});
  expect_refusal([&] { parse(s.build(), "c.gguf"); }, {"c.gguf", "truncated"});
}

TEST(Gguf, BadDimensions) {
  GgufSpec s = two_tensors();
  s.tensors[0].ne = {8, static_cast<uint64_t>(-2)};  // negative as int64
  expect_refusal([&] { parse(s.build(), "d.gguf"); }, {"d.gguf", "'a'", "invalid dimension -2"});
  s = two_tensors();
  s.tensors[0].ne = {0, 2};
  expect_refusal([&] { parse(s.build(), "d.gguf"); }, {"d.gguf", "invalid dimension 0"});
  s = two_tensors();
  s.tensors[0].ne = {uint64_t{1} << 40, uint64_t{1} << 40};  // numel overflows 2^63
  expect_refusal([&] { parse(s.build(), "d.gguf"); }, {"d.gguf", "'a'", "overflows"});
  s = two_tensors();
  s.tensors[0].ne = {uint64_t{1} << 20, uint64_t{1} << 20};  // 4 TiB: fits in uint64, not in the file
  s.tensors[0].nbytes = 0;
  s.tensors[1].offset = 0;
  s.data_bytes_override = 64;
  expect_refusal([&] { parse(s.build(), "d.gguf"); }, {"d.gguf", "'a'", "past the end"});
  s = two_tensors();
  s.tensors[0].ne = {1, 1, 1, 1, 1};
  expect_refusal([&] { parse(s.build(), "d.gguf"); }, {"d.gguf", "5 dimensions"});
}

TEST(Gguf, MisalignedAndOutOfFileOffsets) {
  GgufSpec s = two_tensors();
  s.tensors[1].offset = 65;
  expect_refusal([&] { parse(s.build(), "o.gguf"); }, {"o.gguf", "'b'", "not a multiple of the alignment 32"});
  s = two_tensors();
  s.tensors[1].offset = uint64_t{1} << 40;
  s.data_bytes_override = 128;  // the builder must not try to write 2^40 bytes
  expect_refusal([&] { parse(s.build(), "o.gguf"); }, {"o.gguf", "'b'", "past the end"});
  s = two_tensors();
  s.tensors[1].offset = ~uint64_t{31};  // offset + size overflows
  s.tensors[1].ne = {64};
  s.data_bytes_override = 128;
  expect_refusal([&] { parse(s.build(), "o.gguf"); }, {"o.gguf", "overflows"});
}

TEST(Gguf, OverlappingTensors) {
  GgufSpec s = two_tensors();
  s.tensors[1].offset = 32;  // inside a's 64 bytes
  expect_refusal([&] { parse(s.build(), "ov.gguf"); }, {"ov.gguf", "overlap"});
}

TEST(Gguf, DataOneByteShort) {
  GgufSpec s = two_tensors();
  s.data_bytes_delta = -1;
  expect_refusal([&] { parse(s.build(), "short.gguf"); }, {"short.gguf", "'b'", "past the end"});
}

TEST(Gguf, UnknownTensorType) {
  for (uint32_t t : {4u, 16u, 31u, 39u, 1000u}) {
    GgufSpec s = two_tensors();
    s.tensors[0].type = t;
    expect_refusal([&] { parse(s.build(), "ty.gguf"); }, {"ty.gguf", "'a'", "unknown or unsupported type " + std::to_string(t)});
  }
}

TEST(Gguf, QuantizedRowNotWholeBlocks) {
  GgufSpec s = two_tensors();
  s.tensors[0].type = 8;  // Q8_0 needs rows of multiples of 32; ne[0] is 8
  expect_refusal([&] { parse(s.build(), "q.gguf"); }, {"q.gguf", "'a'", "whole number of q8_0 blocks"});
}

TEST(Gguf, DuplicateKeysAndTensorNames) {
  GgufSpec s = two_tensors();
  s.add_str("general.architecture", "qwen2");
  expect_refusal([&] { parse(s.build(), "dup.gguf"); }, {"dup.gguf", "duplicate metadata key 'general.architecture'"});
  s = two_tensors();
  s.tensors[1].name = "a";
  expect_refusal([&] { parse(s.build(), "dup.gguf"); }, {"dup.gguf", "duplicate tensor name 'a'"});
}

TEST(Gguf, BadValueTypesAndBools) {
  GgufSpec s = two_tensors();
  s.kvs.push_back({"x", [](Bytes& b) { put<uint32_t>(b, 13); }});
  expect_refusal([&] { parse(s.build(), "vt.gguf"); }, {"vt.gguf", "unknown value type 13"});
  s = two_tensors();
  s.kvs.push_back({"x", [](Bytes& b) { put<uint32_t>(b, 7); put<uint8_t>(b, 2); }});
  expect_refusal([&] { parse(s.build(), "vt.gguf"); }, {"vt.gguf", "bool value 2"});
  s = two_tensors();
  s.kvs.push_back({"x", [](Bytes& b) { put<uint32_t>(b, 9); put<uint32_t>(b, 77); put<uint64_t>(b, 0); }});
  expect_refusal([&] { parse(s.build(), "vt.gguf"); }, {"vt.gguf", "unknown array element type 77"});
  s = two_tensors();
  s.kvs.push_back({"deep", [](Bytes& b) {  // arrays nested 100 deep: refused, no recursion blow-up
    put<uint32_t>(b, 9);
    for (int i = 0; i < 100; ++i) { put<uint32_t>(b, 9); put<uint64_t>(b, 1); }
    put<uint32_t>(b, 4);
    put<uint64_t>(b, 0);
  }});
  expect_refusal([&] { parse(s.build(), "vt.gguf"); }, {"vt.gguf", "nested deeper"});
}

TEST(Gguf, TruncatedEverywhereIsRefusedNeverCrashes) {
  Bytes full = two_tensors().build();
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(parse(cut), Error) << "prefix of " << n << " bytes";
  }
}

}  // namespace
}  // namespace nanoflow
