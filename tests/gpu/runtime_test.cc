// The CUDA runtime layer on a real device: device info, arena accounting and limits, graph
// capture/replay, and green-context SM partitions (kernels confined to them, also from a graph).
#include <chrono>

#include "gpu/gpu_test_util.h"
#include "kernels/cuda/elementwise.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/graph.h"
#include "runtime/cuda/sm_partitions.h"

namespace nanoflow::gputest {
namespace {

using bf16 = __nv_bfloat16;

TEST(GpuRuntime, DeviceInfo) {
  NF_SKIP_WITHOUT_GPU();
  auto d = cuda::device_info(0);
  EXPECT_GT(d.sm_count, 0);
  EXPECT_GT(d.total_bytes, size_t{1} << 30);
  std::printf("device: %s, %d SMs, cc %d.%d, %.1f GiB, L2 %d MiB\n", d.name.c_str(), d.sm_count, d.cc_major,
              d.cc_minor, d.total_bytes / double(1 << 30), d.l2_bytes >> 20);
  EXPECT_THROW(cuda::set_device(1000), Error);
}

TEST(GpuRuntime, ArenaRegionsAndLimits) {
  NF_SKIP_WITHOUT_GPU();
  cuda::DeviceArena a(size_t{64} << 20);
  void* w = a.allocate(1000, "weights");
  void* x = a.allocate(10, "workspace");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w) % 256, 0u);
  EXPECT_EQ(static_cast<char*>(x) - static_cast<char*>(w), 1024);
  void* kv = nullptr;
  const size_t pages = a.allocate_rest(size_t{1} << 20, "kv pool", &kv);
  EXPECT_EQ(pages, 63u);  // 64 MiB minus the two 256-byte-aligned regions above
  EXPECT_THROW(a.allocate(size_t{2} << 20, "too much"), Error);
  try {
    a.allocate(size_t{2} << 20, "too much");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kResource);
  }
  EXPECT_THROW(cuda::DeviceArena(cuda::ArenaConfig{1.5}), Error);
  EXPECT_THROW(cuda::DeviceArena(cuda::ArenaConfig{0.0}), Error);
  cuda::DeviceArena util(cuda::ArenaConfig{0.2, size_t{64} << 20});
  EXPECT_GT(util.capacity(), size_t{1} << 30);
}

TEST(GpuRuntime, GraphCaptureReplay) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(31);
  const int rows = 64, cols = 1024;
  auto x = random_bf16_values(size_t(rows) * cols, rng);
  auto b = random_bf16_values(cols, rng);
  auto dx = upload_bf16(x), db = upload_bf16(b);
  cuda::Stream s;
  cuda::CudaGraph g;
  g.capture(s.get(), [&] { cuda::add_bias({dx.as<bf16>(), db.as<bf16>(), rows, cols, 0}, s.get()); });
  EXPECT_EQ(g.num_nodes(), 1u);
  for (int i = 0; i < 3; ++i) g.replay(s.get());
  s.synchronize();
  auto got = download_bf16(dx, x.size());
  for (int i = 0; i < 3; ++i)
    for (size_t j = 0; j < x.size(); ++j) x[j] = round_bf16(x[j] + b[j % cols]);
  EXPECT_CLOSE(got, x, 1e-2);
  // A throwing body ends the capture and leaves the stream usable.
  EXPECT_THROW(g.capture(s.get(), [&] { cuda::add_bias({nullptr, nullptr, rows, cols, 0}, s.get()); }), Error);
  cuda::add_bias({dx.as<bf16>(), db.as<bf16>(), rows, cols, 0}, s.get());
  s.synchronize();
}

TEST(GpuRuntime, SmPartitions) {
  NF_SKIP_WITHOUT_GPU();
  cuda::SmPartitions parts(cuda::SmPartitionsConfig{{16, 24, 32}});
  ASSERT_EQ(parts.size(), 3);
  EXPECT_EQ(parts[0].sm_count, 16);
  EXPECT_EQ(parts[1].sm_count, 24);
  EXPECT_EQ(parts[2].sm_count, 32);
  std::printf("split groups: %d x 8 SMs, remainder %d SMs\n", parts.groups_available(), parts.remainder_sms());
  EXPECT_THROW(cuda::SmPartitions(cuda::SmPartitionsConfig{{12}}), Error);
  EXPECT_THROW(cuda::SmPartitions(cuda::SmPartitionsConfig{{8 * 100}}), Error);
  // Work launched on a partition's stream (directly and from a captured graph) runs and is correct.
  std::mt19937 rng(32);
  const int rows = 512, cols = 4096;
  auto x = random_bf16_values(size_t(rows) * cols, rng);
  auto b = random_bf16_values(cols, rng);
  auto dx = upload_bf16(x), db = upload_bf16(b);
  cudaStream_t st = parts[1].stream;
  cuda::add_bias({dx.as<bf16>(), db.as<bf16>(), rows, cols, 0}, st);
  cuda::CudaGraph g;
  g.capture(st, [&] { cuda::add_bias({dx.as<bf16>(), db.as<bf16>(), rows, cols, 0}, st); });
  g.replay(st);
  NF_CUDA_CHECK(cudaStreamSynchronize(st));
  for (int i = 0; i < 2; ++i)
    for (size_t j = 0; j < x.size(); ++j) x[j] = round_bf16(x[j] + b[j % cols]);
  EXPECT_CLOSE(download_bf16(dx, x.size()), x, 1e-2);
}

}  // namespace
}  // namespace nanoflow::gputest
