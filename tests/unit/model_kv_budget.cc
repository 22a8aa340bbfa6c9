// kv_pool_pages (model/kv_budget.h): the GPU KV pool's size from free/total memory, the margin and
// --gpu-memory-utilization, checked on numbers without a GPU.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/kv_budget.h"

namespace nanoflow {
namespace {

constexpr size_t kGiB = size_t{1} << 30;
constexpr size_t kPage = size_t{4} << 20;  // 4 MiB of K + V per page over all layers

TEST(KvBudget, FreeMinusMarginWhenUtilizationIsOff) {
  // 141 GiB card, 16 GiB used by weights and workspaces: 125 free, 1 GiB margin -> 124 GiB of pages.
  EXPECT_EQ(kv_pool_pages(125 * kGiB, 141 * kGiB, kGiB, 0.0, kPage), static_cast<int64_t>(124 * kGiB / kPage));
}

TEST(KvBudget, UtilizationCapsTheDevicesUsedMemory) {
  // 0.9 of 141 GiB = 126.9 GiB may be used; 16 are used -> 110.9 GiB of pages (less than free - margin).
  const auto allowed = static_cast<size_t>(0.9 * static_cast<double>(141 * kGiB));
  EXPECT_EQ(kv_pool_pages(125 * kGiB, 141 * kGiB, kGiB, 0.9, kPage), static_cast<int64_t>((allowed - 16 * kGiB) / kPage));
  // A generous fraction leaves the margin as the binding limit.
  EXPECT_EQ(kv_pool_pages(125 * kGiB, 141 * kGiB, kGiB, 1.0, kPage), static_cast<int64_t>(124 * kGiB / kPage));
}

TEST(KvBudget, NothingFitsGivesZero) {
  EXPECT_EQ(kv_pool_pages(kGiB / 2, 80 * kGiB, kGiB, 0.0, kPage), 0);          // less free than the margin
  EXPECT_EQ(kv_pool_pages(40 * kGiB, 80 * kGiB, kGiB, 0.5, kPage), 0);         // already at half the card
  EXPECT_EQ(kv_pool_pages(40 * kGiB, 80 * kGiB, kGiB, 0.5 + 1e-3, kPage), static_cast<int64_t>(
      (static_cast<size_t>((0.5 + 1e-3) * static_cast<double>(80 * kGiB)) - 40 * kGiB) / kPage));
}

TEST(KvBudget, RefusesUtilizationOutsideZeroToOne) {
  for (double u : {-0.1, 1.01, 2.0}) {
    try {
      kv_pool_pages(10 * kGiB, 80 * kGiB, kGiB, u, kPage);
      ADD_FAILURE() << "accepted " << u;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
      EXPECT_NE(std::string(e.what()).find("--gpu-memory-utilization"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace nanoflow
