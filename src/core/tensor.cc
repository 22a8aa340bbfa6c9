#include "core/tensor.h"

#include <sstream>

#include "core/checked.h"

namespace nanoflow {

int64_t Shape::numel() const {
  uint64_t n = 1;
  for (int i = 0; i < ndim_; ++i) {
    if (dims_[i] < 0) NF_THROW(kBadFile) << "negative dimension " << dims_[i] << " in " << str();
    n = checked_mul(n, static_cast<uint64_t>(dims_[i]), "element count");
  }
  if (n > static_cast<uint64_t>(INT64_MAX)) NF_THROW(kBadFile) << "element count too large in " << str();
  return static_cast<int64_t>(n);
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; ++i)
    if (dims_[i] != o.dims_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < ndim_; ++i) os << (i ? ", " : "") << dims_[i];
  os << "]";
  return os.str();
}

uint64_t dtype_bytes(DType t, uint64_t numel) {
  const DTypeInfo& info = dtype_info(t);
  if (numel % info.block_elems != 0)
    NF_THROW(kBadFile) << numel << " values are not a whole number of " << info.name << " blocks of "
                       << info.block_elems;
  return checked_mul(numel / info.block_elems, info.block_bytes, "tensor bytes");
}

uint64_t TensorView::nbytes() const {
  const DTypeInfo& info = dtype_info(dtype);
  if (info.block_elems > 1 && shape.ndim() > 0 && shape[shape.ndim() - 1] % info.block_elems != 0)
    NF_THROW(kBadFile) << "innermost dimension of " << shape.str() << " is not a multiple of the "
                       << info.name << " block (" << info.block_elems << ")";
  return dtype_bytes(dtype, static_cast<uint64_t>(numel()));
}

}  // namespace nanoflow
