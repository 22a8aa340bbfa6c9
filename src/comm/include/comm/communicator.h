// Tensor-parallel collectives. A Communicator spans the ranks of one model replica; with one rank
// every collective is a no-op, so the model code calls them unconditionally.
#pragma once
#include <cstddef>
#include <memory>

namespace nanoflow {

enum class CommDType { kF32, kBF16 };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In-place sum over ranks of `count` elements at `data`. `stream` is a cudaStream_t for device
  // communicators (nullptr on the host).
  virtual void all_reduce_sum(void* data, size_t count, CommDType dtype, void* stream) = 0;
  // Gathers `count` elements from each rank into `out` ([world_size][count]).
  virtual void all_gather(const void* in, void* out, size_t count, CommDType dtype, void* stream) = 0;
};

// The single-rank communicator: collectives are identities.
std::unique_ptr<Communicator> make_single_rank_communicator();

}  // namespace nanoflow
