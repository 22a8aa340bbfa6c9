#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "core/buffer.h"
#include "core/checked.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/mmap.h"
#include "core/strings.h"
#include "core/tensor.h"

namespace nanoflow {
namespace {

TEST(Check, ThrowsWithValues) {
  try {
    int a = 3, b = 4;
    NF_CHECK_EQ(a, b) << "context " << 7;
    FAIL() << "no throw";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("3 vs 4"), std::string::npos) << m;
    EXPECT_NE(m.find("context 7"), std::string::npos) << m;
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
  }
  try {
    NF_THROW(kBadFile) << "bad " << 1;
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadFile);
    EXPECT_EQ(std::string(e.what()).rfind("bad 1", 0), 0u) << e.what();
  }
  EXPECT_NO_THROW(NF_CHECK(1 + 1 == 2) << "never");
}

TEST(Strings, SplitAllKeepsEmptyItems) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_all("a,b,c", ','), (V{"a", "b", "c"}));
  EXPECT_EQ(split_all("4,", ','), (V{"4", ""}));
  EXPECT_EQ(split_all(",4", ','), (V{"", "4"}));
  EXPECT_EQ(split_all("a::b", ':'), (V{"a", "", "b"}));
  EXPECT_EQ(split_all("", ','), (V{""}));
  EXPECT_EQ(split_all("inf", ','), (V{"inf"}));
}

TEST(Checked, Overflow) {
  EXPECT_EQ(checked_mul(1u << 20, 1u << 20), uint64_t{1} << 40);
  EXPECT_THROW(checked_mul(uint64_t{1} << 40, uint64_t{1} << 40), Error);
  EXPECT_THROW(checked_add(UINT64_MAX, 1), Error);
}

TEST(DType, Bf16RoundTripAndRounding) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 3.f);
  for (int i = 0; i < 10000; ++i) {
    float x = d(rng);
    float y = bf16_to_f32(f32_to_bf16(x));
    EXPECT_LE(std::fabs(x - y), std::fabs(x) * (1.0f / 256)) << x;
  }
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16MatchesKnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  // Every finite f16 round-trips through f32 exactly.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1f) == 0x1f) continue;
    EXPECT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(DType, BlockSizes) {
  EXPECT_EQ(dtype_info(DType::kQ4_K).block_elems, 256u);
  EXPECT_EQ(dtype_info(DType::kQ4_K).block_bytes, 144u);
  EXPECT_EQ(dtype_bytes(DType::kQ8_0, 64), 68u);
  EXPECT_THROW(dtype_bytes(DType::kQ8_0, 33), Error);
  DType t;
  ASSERT_TRUE(dtype_from_name("q6_k", &t));
  EXPECT_EQ(t, DType::kQ6_K);
  EXPECT_FALSE(dtype_from_name("q9_z", &t));
}

TEST(Shape, NumelChecks) {
  EXPECT_EQ((Shape{2, 3, 4}).numel(), 24);
  EXPECT_THROW((Shape{-1, 3}).numel(), Error);
  EXPECT_THROW((Shape{int64_t{1} << 40, int64_t{1} << 40}).numel(), Error);
  EXPECT_EQ((Shape{4096, 128}).str(), "[4096, 128]");
}

TEST(HostBuffer, AlignedAndZeroed) {
  HostBuffer b(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % HostBuffer::kAlign, 0u);
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(b.as<uint8_t>()[i], 0);
  HostBuffer c = std::move(b);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(c.size(), 1000u);
}

TEST(MappedFile, MapsAndRefuses) {
  std::string path = ::testing::TempDir() + "/nf_mmap_test.bin";
  { std::ofstream(path, std::ios::binary) << "hello"; }
  MappedFile f(path);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data()), 5), "hello");
  EXPECT_THROW(MappedFile("/nonexistent/file"), Error);
  EXPECT_THROW(MappedFile("/tmp"), Error);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace nanoflow
