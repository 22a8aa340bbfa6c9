#include "runtime/cuda/sm_partitions.h"

#include "core/log.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/driver_api.h"

namespace nanoflow::cuda {

SmPartitions::SmPartitions(const SmPartitionsConfig& cfg) {
  NF_CHECK_INPUT(cfg.granularity > 0) << "granularity " << cfg.granularity;
  NF_CHECK_INPUT(!cfg.sm_counts.empty()) << "no partitions requested";
  const DriverApi& drv = driver();
  int ordinal = 0;
  NF_CUDA_CHECK(cudaGetDevice(&ordinal));
  CUdevice dev = 0;
  NF_CU_CHECK(drv.DeviceGet(&dev, ordinal));

  CUdevResource all{};
  NF_CU_CHECK(drv.DeviceGetDevResource(dev, &all, CU_DEV_RESOURCE_TYPE_SM));
  const unsigned total = all.sm.smCount;
  // First call counts the groups, second fills them (the driver's documented two-step use).
  unsigned n_groups = 0;
  NF_CU_CHECK(drv.DevSmResourceSplitByCount(nullptr, &n_groups, &all, nullptr, 0, cfg.granularity));
  std::vector<CUdevResource> groups(n_groups);
  CUdevResource remaining{};
  NF_CU_CHECK(drv.DevSmResourceSplitByCount(groups.data(), &n_groups, &all, &remaining, 0, cfg.granularity));
  groups_ = static_cast<int>(n_groups);
  remainder_sms_ = static_cast<int>(remaining.sm.smCount);

  int need = 0;
  for (int c : cfg.sm_counts) {
    NF_CHECK_INPUT(c > 0 && c % cfg.granularity == 0)
        << "partition of " << c << " SMs is not a positive multiple of " << cfg.granularity;
    need += c / cfg.granularity;
  }
  NF_CHECK_INPUT(need <= groups_) << "partitions need " << need * cfg.granularity << " SMs but the "
                                  << total << "-SM device has " << groups_ << " groups of "
                                  << cfg.granularity << " (remainder " << remainder_sms_ << " unused)";

  NF_CHECK_INPUT(cfg.remainder_to >= -1 && cfg.remainder_to < static_cast<int>(cfg.sm_counts.size()))
      << "remainder to partition " << cfg.remainder_to << " of " << cfg.sm_counts.size();
  try {
    int next = 0;
    for (size_t i = 0; i < cfg.sm_counts.size(); ++i) {
      const int k = cfg.sm_counts[i] / cfg.granularity;
      std::vector<CUdevResource> mine(groups.begin() + next, groups.begin() + next + k);
      if (static_cast<int>(i) == cfg.remainder_to && remaining.sm.smCount > 0) mine.push_back(remaining);
      CUdevResourceDesc desc = nullptr;
      NF_CU_CHECK(drv.DevResourceGenerateDesc(&desc, mine.data(), static_cast<unsigned>(mine.size())));
      next += k;
      SmPartition p;
      NF_CU_CHECK(drv.GreenCtxCreate(&p.ctx, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM));
      parts_.push_back(p);  // owned from here on, destroyed in ~SmPartitions on a later throw
      CUstream s = nullptr;
      NF_CU_CHECK(drv.GreenCtxStreamCreate(&s, parts_.back().ctx, CU_STREAM_NON_BLOCKING, 0));
      parts_.back().stream = s;
      CUdevResource got{};
      NF_CU_CHECK(drv.GreenCtxGetDevResource(parts_.back().ctx, &got, CU_DEV_RESOURCE_TYPE_SM));
      parts_.back().sm_count = static_cast<int>(got.sm.smCount);
    }
  } catch (...) {
    this->~SmPartitions();
    throw;
  }
  NF_LOG(kDebug) << "created " << parts_.size() << " SM partitions from " << groups_ << " groups";
}

SmPartitions::~SmPartitions() {
  if (parts_.empty()) return;
  const DriverApi& drv = driver();  // resolved already: partitions exist only after a successful load
  for (auto& p : parts_) {
    if (p.stream != nullptr) (void)drv.StreamDestroy(p.stream);
    if (p.ctx != nullptr) (void)drv.GreenCtxDestroy(p.ctx);
    p.stream = nullptr;
    p.ctx = nullptr;
  }
  parts_.clear();
}

}  // namespace nanoflow::cuda
