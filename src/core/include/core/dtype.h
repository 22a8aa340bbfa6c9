// Element types: plain floats/ints and the GGUF (ggml) block-quantized types.
// A block type packs `block_elems()` values into `block_bytes()` bytes.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace nanoflow {

enum class DType : uint8_t {
  kF32, kF16, kBF16, kF64, kI8, kI16, kI32, kI64, kU8, kBool,
  // GGUF block types
  kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ8_1, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kQ8_K,
  kCount,
};

struct DTypeInfo {
  std::string_view name;
  uint32_t block_elems;  // values per block (1 for plain types)
  uint32_t block_bytes;  // bytes per block
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
inline bool dtype_is_quantized(DType t) { return dtype_info(t).block_elems > 1; }
// Parses a name as dtype_name prints it ("f32", "bf16", "q4_k", ...); returns false if unknown.
bool dtype_from_name(std::string_view name, DType* out);

// --- scalar conversions -----------------------------------------------------------------------
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
// f rounded to the nearest bf16 value (ties to even), as f32.
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace nanoflow
