#include <cstring>

#include "comm/communicator.h"
#include "core/error.h"

namespace nanoflow {
namespace {

size_t elem_size(CommDType t) { return t == CommDType::kF32 ? 4 : 2; }

class SingleRank final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(void*, size_t, CommDType, void*) override {}
  void all_gather(const void* in, void* out, size_t count, CommDType dtype, void* stream) override {
    // Device buffers belong to a device communicator; on one rank with host memory, a copy.
    NF_CHECK(stream == nullptr) << "single-rank all_gather on a device stream";
    if (in != out) std::memmove(out, in, count * elem_size(dtype));
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_rank_communicator() { return std::make_unique<SingleRank>(); }

}  // namespace nanoflow
