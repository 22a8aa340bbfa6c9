// Shape and a non-owning, contiguous (row-major) tensor view.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace nanoflow {

class Shape {
 public:
  static constexpr int kMaxDims = 8;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    NF_CHECK_LE(dims.size(), size_t{kMaxDims});
    for (int64_t d : dims) dims_[ndim_++] = d;
  }
  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t& operator[](int i) { return dims_[i]; }
  void push_back(int64_t d) {
    NF_CHECK_LT(ndim_, kMaxDims);
    dims_[ndim_++] = d;
  }
  // Number of elements; throws kBadFile on overflow or negative dims (shapes come from files).
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  std::string str() const;  // "[4096, 128]"

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

enum class Device : uint8_t { kCpu, kCuda };

struct TensorView {
  void* data = nullptr;  // first element (or first block for quantized types)
  DType dtype = DType::kF32;
  Shape shape;           // row-major, innermost dimension last
  Device device = Device::kCpu;

  int64_t numel() const { return shape.numel(); }
  // Bytes the data occupies; for block types the innermost dim must be a multiple of the block.
  uint64_t nbytes() const;
  template <class T>
  T* as() const { return static_cast<T*>(data); }
};

// Bytes for `numel` values of `t`; throws kBadFile when numel is not a whole number of blocks.
uint64_t dtype_bytes(DType t, uint64_t numel);

}  // namespace nanoflow
