// SM partitions through CUDA green contexts (DESIGN.md §4 "SM partitions").
//
// At start-up the device's SMs are split once into equal groups of `granularity` SMs (8 on Hopper;
// the driver's minimum) with cuDevSmResourceSplitByCount; the SMs left over (an H200's 132 SMs give
// 15 groups of 8 and 12 over: measured 2026-11-27) form the remainder, which no partition uses
// unless one asks for it (`remainder_to`: that partition gets its groups plus the remainder, one
// descriptor over both, as the driver allows for outputs of one split). Each
// requested partition takes the next `sm_count / granularity` unused groups, becomes one green
// context, and gets one non-blocking stream. Creation costs ~1.5 ms each, so it happens only here.
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include <string>
#include <vector>

namespace nanoflow::cuda {

struct SmPartitionsConfig {
  std::vector<int> sm_counts;  // one entry per partition, each a multiple of the granularity
  int granularity = 8;         // SMs per split group
  int remainder_to = -1;       // index into sm_counts whose partition also takes the remainder SMs
};

struct SmPartition {
  int sm_count = 0;               // SMs the green context actually holds (read back from the driver)
  CUgreenCtx ctx = nullptr;
  cudaStream_t stream = nullptr;  // launch work here to confine it to the partition
};

class SmPartitions {
 public:
  // Needs the device current (set_device). Throws kInvalidInput when the counts do not fit.
  explicit SmPartitions(const SmPartitionsConfig& cfg);
  ~SmPartitions();
  SmPartitions(const SmPartitions&) = delete;
  SmPartitions& operator=(const SmPartitions&) = delete;

  int size() const { return static_cast<int>(parts_.size()); }
  const SmPartition& operator[](int i) const { return parts_.at(i); }
  int groups_available() const { return groups_; }  // equal groups the device split into
  int remainder_sms() const { return remainder_sms_; }

 private:
  std::vector<SmPartition> parts_;
  int groups_ = 0;
  int remainder_sms_ = 0;
};

}  // namespace nanoflow::cuda
