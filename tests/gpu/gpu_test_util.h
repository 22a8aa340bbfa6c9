// Helpers for the GPU op tests: skip without a device, random bf16-representable inputs, device
// buffers from host vectors, poisoning (0xFF bytes: NaN for bf16/f32, -1 for int32) and the error
// metric of METHOD.md (||got - ref|| / ||ref||, NaN never passes).
#pragma once
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"

namespace nanoflow::gputest {

using cuda::DeviceBuffer;

#define NF_SKIP_WITHOUT_GPU()                                         \
  do {                                                                \
    if (::nanoflow::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
    ::nanoflow::cuda::set_device(0);                                  \
  } while (0)


// Uniform values in [lo, hi), rounded to bf16 so the CPU reference sees exactly the GPU's inputs.
inline std::vector<float> random_bf16_values(size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = round_bf16(d(rng));
  // Inputs must vary (STYLE.md): a constant vector hides indexing bugs.
  if (n > 1) {
    float mn = v[0], mx = v[0];
    for (float x : v) mn = std::min(mn, x), mx = std::max(mx, x);
    EXPECT_GT(mx - mn, 0.1f * (hi - lo)) << "random input does not vary";
  }
  return v;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = f32_to_bf16(v[i]);
  return o;
}
inline std::vector<float> from_bf16(const std::vector<uint16_t>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = bf16_to_f32(v[i]);
  return o;
}

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
  DeviceBuffer b(std::max<size_t>(v.size() * sizeof(T), 16));
  if (!v.empty()) b.upload(v.data(), v.size() * sizeof(T));
  return b;
}
inline DeviceBuffer upload_bf16(const std::vector<float>& v) { return upload(to_bf16(v)); }

template <class T>
std::vector<T> download(const DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  if (n) b.download(v.data(), n * sizeof(T));
  return v;
}
inline std::vector<float> download_bf16(const DeviceBuffer& b, size_t n) { return from_bf16(download<uint16_t>(b, n)); }

// Poison (bf16/f32 NaN, int -1): any element a kernel fails to write stays NaN and fails the test.
inline void poison(DeviceBuffer& b) { NF_CUDA_CHECK(cudaMemset(b.data(), 0xFF, b.bytes())); }

inline void sync() { cuda::device_synchronize(); }

struct ErrorStats {
  double rel = 0;      // ||got - ref|| / ||ref||
  size_t nan = 0;      // non-finite values in got
  double ref_norm = 0;
};
inline ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref) {
  ErrorStats s;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) {
      ++s.nan;
      continue;
    }
    const double d = double(got[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  s.ref_norm = std::sqrt(den);
  s.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return s;
}

#define EXPECT_CLOSE(got, ref, tol)                                                       \
  do {                                                                                    \
    auto nf_st_ = ::nanoflow::gputest::compare((got), (ref));                             \
    EXPECT_EQ((got).size(), (ref).size());                                                \
    EXPECT_EQ(nf_st_.nan, 0u) << "non-finite (unwritten?) outputs";                       \
    EXPECT_LE(nf_st_.rel, (tol)) << "relative error";                                     \
    EXPECT_GT(nf_st_.ref_norm, 0.0) << "reference is all zeros: the test proves nothing"; \
  } while (0)

}  // namespace nanoflow::gputest
