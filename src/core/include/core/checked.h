// Checked integer arithmetic for sizes read from untrusted files.
#pragma once
#include <cstdint>

#include "core/error.h"

namespace nanoflow {

inline uint64_t checked_mul(uint64_t a, uint64_t b, const char* what = "size") {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) NF_THROW(kBadFile) << what << " overflows: " << a << " * " << b;
  return r;
}
inline uint64_t checked_add(uint64_t a, uint64_t b, const char* what = "size") {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) NF_THROW(kBadFile) << what << " overflows: " << a << " + " << b;
  return r;
}

}  // namespace nanoflow
