#include "loader/dequant.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

// Block layouts (ggml; all little-endian, f16 scales). Blocks of 32 values:
//   Q4_0 (18 B): f16 d | u8 qs[16]          value j: (lo nibble of qs[j] - 8) * d, j+16: hi nibble
//   Q4_1 (20 B): f16 d | f16 m | u8 qs[16]  value = nibble * d + m
//   Q5_0 (22 B): f16 d | u8 qh[4] | u8 qs[16]  5th bit of value j in bit j of qh (u32); value - 16
//   Q5_1 (24 B): f16 d | f16 m | u8 qh[4] | u8 qs[16]  value = q * d + m
//   Q8_0 (34 B): f16 d | i8 qs[32]
// Super-blocks of 256 values (8 sub-blocks of 32, or 16 of 16 for Q6_K):
//   Q4_K (144 B): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//     scales packs 8 (scale, min) pairs of 6 bits; sub-block values = d*scale*q - dmin*min.
//     qs: each 32-byte group holds two sub-blocks: low nibbles first, then high nibbles.
//   Q5_K (176 B): f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
//     as Q4_K, 5th bit of value l of sub-block s is bit s of qh[l].
//   Q6_K (210 B): u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
//     per 128 values: ql 64 B (low 4 bits), qh 32 B (high 2 bits, 4 values a byte), 8 scales;
//     value = d * scale * (q - 32).

namespace nanoflow {
namespace {

inline float h2f(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

void deq_q4_0(const uint8_t* b, float* y) {
  const float d = h2f(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0xF) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void deq_q4_1(const uint8_t* b, float* y) {
  const float d = h2f(b), m = h2f(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0xF) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

void deq_q5(const uint8_t* b, float* y, bool with_min) {
  const float d = h2f(b);
  const float m = with_min ? h2f(b + 2) : 0.0f;
  const uint8_t* p = b + (with_min ? 4 : 2);
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const uint8_t* qs = p + 4;
  const int offset = with_min ? 0 : 16;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0xF) | (((qh >> j) & 1) << 4);
    const int hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
    if (with_min) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - offset);
      y[j + 16] = d * static_cast<float>(hi - offset);
    }
  }
}

void deq_q8_0(const uint8_t* b, float* y) {
  const float d = h2f(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// The 6-bit (scale, min) of sub-block j (0..7) from the 12-byte packed array: sub-blocks 0..3 keep
// theirs in the low 6 bits of bytes j / j+4; 4..7 split theirs into nibbles of bytes j+4 plus the
// top two bits of bytes j-4 / j.
inline void k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

void deq_q45_k(const uint8_t* b, float* y, bool five_bit) {
  const float d = h2f(b), dmin = h2f(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = five_bit ? b + 16 : nullptr;
  const uint8_t* qs = b + (five_bit ? 48 : 16);
  for (int g = 0; g < 4; ++g) {  // 4 groups of 64 values = 2 sub-blocks each
    for (int half = 0; half < 2; ++half) {
      const int sub = 2 * g + half;
      uint8_t sc, mn;
      k_scale_min(sub, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) {
        int q = half ? (qs[l] >> 4) : (qs[l] & 0xF);
        if (five_bit && (qh[l] >> sub) & 1) q += 16;
        y[l] = d1 * static_cast<float>(q) - m1;
      }
      y += 32;
    }
    qs += 32;
  }
}

void deq_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = h2f(b + 208);
  for (int n = 0; n < 2; ++n) {  // two halves of 128 values
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = (d * static_cast<float>(sc[is + 0])) * static_cast<float>(q1);
      y[l + 32] = (d * static_cast<float>(sc[is + 2])) * static_cast<float>(q2);
      y[l + 64] = (d * static_cast<float>(sc[is + 4])) * static_cast<float>(q3);
      y[l + 96] = (d * static_cast<float>(sc[is + 6])) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

using BlockFn = void (*)(const uint8_t*, float*);
BlockFn block_fn(DType t) {
  switch (t) {
    case DType::kQ4_0: return deq_q4_0;
    case DType::kQ4_1: return deq_q4_1;
    case DType::kQ5_0: return [](const uint8_t* b, float* y) { deq_q5(b, y, false); };
    case DType::kQ5_1: return [](const uint8_t* b, float* y) { deq_q5(b, y, true); };
    case DType::kQ8_0: return deq_q8_0;
    case DType::kQ4_K: return [](const uint8_t* b, float* y) { deq_q45_k(b, y, false); };
    case DType::kQ5_K: return [](const uint8_t* b, float* y) { deq_q45_k(b, y, true); };
    case DType::kQ6_K: return deq_q6_k;
    default: return nullptr;
  }
}

void check_args(DType t, int64_t n) {
  if (!can_convert_to_float(t)) NF_THROW(kUnsupported) << "cannot convert " << dtype_name(t) << " to float";
  const DTypeInfo& info = dtype_info(t);
  NF_CHECK_INPUT(n >= 0 && n % info.block_elems == 0)
      << n << " values are not a whole number of " << info.name << " blocks of " << info.block_elems;
}

}  // namespace

bool can_convert_to_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64 || block_fn(t) != nullptr;
}

void dequantize_to_f32(DType t, const void* src, float* dst, int64_t n) {
  check_args(t, n);
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, s, static_cast<size_t>(n) * 4);
      return;
    case DType::kF16:
      for (int64_t k = 0; k < n; ++k) dst[k] = h2f(s + 2 * k);
      return;
    case DType::kBF16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, s + 2 * k, 2);
        dst[k] = bf16_to_f32(h);
      }
      return;
    case DType::kF64:
      for (int64_t k = 0; k < n; ++k) {
        double v;
        std::memcpy(&v, s + 8 * k, 8);
        dst[k] = static_cast<float>(v);
      }
      return;
    default:
      break;
  }
  const DTypeInfo& info = dtype_info(t);
  const BlockFn fn = block_fn(t);
  const int64_t blocks = n / info.block_elems;
  for (int64_t b = 0; b < blocks; ++b) fn(s + b * info.block_bytes, dst + b * info.block_elems);
}

void convert_to_bf16(DType t, const void* src, uint16_t* dst, int64_t n) {
  check_args(t, n);
  if (t == DType::kBF16) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 2);
    return;
  }
  // Through f32 in chunks of whole blocks (256 values is a multiple of every block size).
  constexpr int64_t kChunk = 4096;
  static_assert(kChunk % 256 == 0);
  float tmp[kChunk];
  const auto* s = static_cast<const uint8_t*>(src);
  const DTypeInfo& info = dtype_info(t);
  for (int64_t k = 0; k < n; k += kChunk) {
    const int64_t m = std::min(kChunk, n - k);
    dequantize_to_f32(t, s + static_cast<uint64_t>(k / info.block_elems) * info.block_bytes, tmp, m);
    for (int64_t j = 0; j < m; ++j) dst[k + j] = f32_to_bf16(tmp[j]);
  }
}

}  // namespace nanoflow
