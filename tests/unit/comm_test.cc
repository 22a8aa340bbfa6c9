#include <gtest/gtest.h>

#include <vector>

#include "comm/communicator.h"

namespace nanoflow {
namespace {

TEST(SingleRank, CollectivesAreIdentities) {
  auto comm = make_single_rank_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->world_size(), 1);
  std::vector<float> v = {1.5f, -2.0f, 3.25f};
  comm->all_reduce_sum(v.data(), v.size(), CommDType::kF32, nullptr);
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  std::vector<float> out(3, 0.0f);
  comm->all_gather(v.data(), out.data(), v.size(), CommDType::kF32, nullptr);
  EXPECT_EQ(out, v);
}

}  // namespace
}  // namespace nanoflow
