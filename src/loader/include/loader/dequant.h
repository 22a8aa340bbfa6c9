// Conversion of stored tensor data (plain floats and GGUF block types) to f32 and bf16.
//
// Supported sources: f32, f16, bf16, f64, and the ggml blocks Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K (block layouts in dequant.cc). `n` counts values and must be a whole number of blocks.
// These are the per-tensor conversion entry points the model uses (also via WeightStore::read_*).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nanoflow {

bool can_convert_to_float(DType t);
// Throws Error(kUnsupported) for a type we cannot convert, kInvalidInput when n is not whole blocks.
void dequantize_to_f32(DType t, const void* src, float* dst, int64_t n);
void convert_to_bf16(DType t, const void* src, uint16_t* dst, int64_t n);  // f32 -> bf16 round-to-nearest-even

}  // namespace nanoflow
