// safetensors parsing and every malformed-file case of RELIABILITY.md "Model files".
#include <gtest/gtest.h>

#include "loader/safetensors.h"
#include "loader_test_util.h"

namespace nanoflow {
namespace {

using test::Bytes;
using test::expect_refusal;
using test::safetensors_bytes;

SafetensorsFile parse(const Bytes& b, const std::string& name = "t.safetensors") {
  return SafetensorsFile::parse(b.data(), b.size(), name);
}

TEST(Safetensors, ParsesTensorsMetadataAndZeroCopyViews) {
  const std::string h =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[16,24]},)"
      R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"z":{"dtype":"I64","shape":[0],"data_offsets":[24,24]}})";
  Bytes b = safetensors_bytes(h, 24);
  for (int i = 0; i < 24; ++i) b[8 + h.size() + i] = static_cast<uint8_t>(i);
  SafetensorsFile f = parse(b);
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const SafetensorsTensor* a = f.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->shape, (Shape{4}));
  EXPECT_EQ(f.tensor_data(*a), b.data() + 8 + h.size());  // points into the input: zero copy
  const SafetensorsTensor* bt = f.find("b");
  EXPECT_EQ(bt->dtype, DType::kBF16);
  EXPECT_EQ(f.tensor_data(*bt)[0], 16);
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(Safetensors, HeaderLengthOver100MB) {
  Bytes b;
  test::put<uint64_t>(b, (uint64_t{100} << 20) + 1);
  b.resize(64, ' ');
  expect_refusal([&] { parse(b, "big.safetensors"); }, {"big.safetensors", "over the limit"});
}

TEST(Safetensors, HeaderLengthPastEof) {
  Bytes b = safetensors_bytes("{}", 0);
  b[0] = 200;  // claims a 200-byte header in a 10-byte file
  expect_refusal([&] { parse(b, "eof.safetensors"); }, {"eof.safetensors", "past the end"});
}

TEST(Safetensors, TooShortForLength) {
  Bytes b = {1, 2, 3};
  expect_refusal([&] { parse(b, "tiny.safetensors"); }, {"tiny.safetensors", "too short"});
}

TEST(Safetensors, NonUtf8Header) {
  const std::string h = "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  expect_refusal([&] { parse(safetensors_bytes(h, 4), "utf.safetensors"); }, {"utf.safetensors", "not valid JSON"});
}

TEST(Safetensors, NonObjectHeader) {
  expect_refusal([&] { parse(safetensors_bytes("[1,2]", 0), "arr.safetensors"); }, {"arr.safetensors", "not a JSON object"});
  expect_refusal([&] { parse(safetensors_bytes("{\"a\":", 0), "cut.safetensors"); }, {"cut.safetensors", "not valid JSON"});
  expect_refusal([&] { parse(safetensors_bytes(R"({"a":[1]})", 0), "e.safetensors"); }, {"e.safetensors", "not an object"});
}

TEST(Safetensors, OverlappingOffsets) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_refusal([&] { parse(safetensors_bytes(h, 12), "ov.safetensors"); }, {"ov.safetensors", "overlaps"});
}

TEST(Safetensors, GappedOffsets) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  expect_refusal([&] { parse(safetensors_bytes(h, 12), "gap.safetensors"); }, {"gap.safetensors", "gap of 4 bytes"});
}

TEST(Safetensors, TrailingBytesAfterLastTensor) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_refusal([&] { parse(safetensors_bytes(h, 8), "tail.safetensors"); }, {"tail.safetensors", "after the last tensor"});
}

TEST(Safetensors, ShapeTimesDtypeNotByteLength) {
  const std::string h = R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})";
  expect_refusal([&] { parse(safetensors_bytes(h, 8), "sz.safetensors"); }, {"sz.safetensors", "'a'", "needs 6 bytes"});
}

TEST(Safetensors, DataPastEndOfFile) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  expect_refusal([&] { parse(safetensors_bytes(h, 15), "short.safetensors"); }, {"short.safetensors", "past the end"});
}

TEST(Safetensors, DuplicateNames) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_refusal([&] { parse(safetensors_bytes(h, 8), "dup.safetensors"); }, {"dup.safetensors", "duplicate key \"a\""});
}

TEST(Safetensors, BadEntries) {
  auto one = [](const std::string& entry) { return safetensors_bytes("{\"a\":" + entry + "}", 4); };
  expect_refusal([&] { parse(one(R"({"shape":[1],"data_offsets":[0,4]})"), "x.st"); }, {"x.st", "no dtype"});
  expect_refusal([&] { parse(one(R"({"dtype":"Q9","shape":[1],"data_offsets":[0,4]})"), "x.st"); }, {"x.st", "unsupported dtype Q9"});
  expect_refusal([&] { parse(one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"), "x.st"); }, {"x.st", "invalid dimension -1"});
  expect_refusal([&] { parse(one(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})"), "x.st"); }, {"x.st", "invalid dimension"});
  expect_refusal([&] { parse(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), "x.st"); }, {"x.st", "data_offsets"});
  expect_refusal([&] { parse(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})"), "x.st"); }, {"x.st", "before it begins"});
  expect_refusal([&] { parse(one(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})"), "x.st"); }, {"x.st", "data offset"});
  // Huge dims: the element count overflows instead of allocating anything.
  expect_refusal([&] { parse(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})"), "x.st"); },
                 {"x.st", "overflows"});
  expect_refusal([&] { parse(safetensors_bytes(R"({"__metadata__":{"k":1}})", 0), "m.st"); }, {"m.st", "not a string"});
}

TEST(SafetensorsIndex, ParsesAndRefusesEscapingShardNames) {
  SafetensorsIndex idx = parse_safetensors_index(
      R"({"metadata":{"total_size":8},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s1.safetensors"}})", "idx.json");
  EXPECT_EQ(idx.shards(), (std::vector<std::string>{"s1.safetensors", "s2.safetensors"}));
  expect_refusal([] { parse_safetensors_index(R"({"weight_map":{"a":"../x.safetensors"}})", "idx.json"); },
                 {"idx.json", "not a plain file name"});
  expect_refusal([] { parse_safetensors_index(R"({"weight_map":{}})", "idx.json"); }, {"idx.json", "weight_map"});
  expect_refusal([] { parse_safetensors_index(R"({"weight_map":{"a":1}})", "idx.json"); }, {"idx.json", "not a string"});
  expect_refusal([] { parse_safetensors_index("nope", "idx.json"); }, {"idx.json", "not valid JSON"});
}

TEST(Safetensors, OpenFromDiskAndMissingFile) {
  test::TempDir dir;
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string p = dir.write("ok.safetensors", safetensors_bytes(h, 4));
  EXPECT_EQ(SafetensorsFile::open(p).tensors().size(), 1u);
  expect_refusal([&] { SafetensorsFile::open((dir.path / "missing.safetensors").string()); }, {"missing.safetensors"});
}

}  // namespace
}  // namespace nanoflow
