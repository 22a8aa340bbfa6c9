// Checks shared by the kernels' entry points (C++20 side only).
#pragma once
#include <cstdint>

#include "core/error.h"

namespace nanoflow::cuda {

// 16-byte vector loads need 16-byte aligned rows.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace nanoflow::cuda

#define NF_CHECK_PTR(p) NF_CHECK_INPUT((p) != nullptr) << #p " is null"
#define NF_CHECK_ALIGNED(p) NF_CHECK_INPUT(::nanoflow::cuda::aligned16(p)) << #p " is not 16-byte aligned"
