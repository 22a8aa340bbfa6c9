#include "core/dtype.h"

#include <array>

namespace nanoflow {
namespace {
constexpr std::array<DTypeInfo, static_cast<size_t>(DType::kCount)> kInfo = {{
    {"f32", 1, 4}, {"f16", 1, 2}, {"bf16", 1, 2}, {"f64", 1, 8}, {"i8", 1, 1}, {"i16", 1, 2},
    {"i32", 1, 4}, {"i64", 1, 8}, {"u8", 1, 1}, {"bool", 1, 1},
    {"q4_0", 32, 18}, {"q4_1", 32, 20}, {"q5_0", 32, 22}, {"q5_1", 32, 24}, {"q8_0", 32, 34},
    {"q8_1", 32, 36}, {"q2_k", 256, 84}, {"q3_k", 256, 110}, {"q4_k", 256, 144},
    {"q5_k", 256, 176}, {"q6_k", 256, 210}, {"q8_k", 256, 292},
}};
static_assert(kInfo.size() == static_cast<size_t>(DType::kCount));
}  // namespace

const DTypeInfo& dtype_info(DType t) { return kInfo[static_cast<size_t>(t)]; }

bool dtype_from_name(std::string_view name, DType* out) {
  for (size_t i = 0; i < kInfo.size(); ++i) {
    if (kInfo[i].name == name) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      u = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;           // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;          // overflow -> inf (incl. rounding)
  if (abs < 0x38800000u) {                                // subnormal or zero in f16
    if (abs < 0x33000000u) return sign;                   // rounds to zero
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;                       // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);         // round to nearest even at bit 13
  r -= (127 - 15) << 23;
  return sign | static_cast<uint16_t>(r >> 13);
}

}  // namespace nanoflow
