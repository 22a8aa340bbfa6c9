// `nanoflow bench roofline`: the GPU's measured ceilings, against which every op is judged
// (PERF.md): bf16 GEMM 8192^3 through cuBLASLt on random data (median of many, best algorithm),
// HBM copy bandwidth (bytes read + written), and a streaming read on the whole GPU and inside
// green-context SM partitions of 16/24/32 SMs with 2..16 loads in flight per thread.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "bench.h"

#if NANOFLOW_HAVE_CUDA
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream_bench.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/sm_partitions.h"
#include "runtime/cuda/timer.h"
#endif

namespace nanoflow::cli {
namespace {

struct RooflineOptions {
  std::string json_path;
  int gemm_size = 8192;
  int reps = 50;
  double copy_gib = 2.0;
};

#if NANOFLOW_HAVE_CUDA
using nlohmann::json;

int run_roofline(const RooflineOptions& o) {
  cuda::set_device(0);
  const auto dev = cuda::device_info(0);
  json out;
  out["device"] = dev.name;
  out["sm_count"] = dev.sm_count;
  out["l2_bytes"] = dev.l2_bytes;
  std::printf("device: %s, %d SMs, %.1f GiB\n", dev.name.c_str(), dev.sm_count, dev.total_bytes / double(1 << 30));
  cuda::Stream stream;

  // --- GEMM ----------------------------------------------------------------------------------
  {
    const int n = o.gemm_size;
    cuda::GemmConfig gc;
    gc.candidates = 16;
    cuda::GemmRunner runner(gc);
    cuda::DeviceBuffer a(size_t(n) * n * 2), b(size_t(n) * n * 2), c(size_t(n) * n * 2);
    cuda::fill_random_bf16(a.as<__nv_bfloat16>(), size_t(n) * n, 11, 1.f, stream.get());
    cuda::fill_random_bf16(b.as<__nv_bfloat16>(), size_t(n) * n, 12, 1.f, stream.get());
    cuda::GemmParams p;
    p.x = a.as<__nv_bfloat16>();
    p.w = b.as<__nv_bfloat16>();
    p.y = c.data();
    p.m = p.n = p.k = n;
    auto info = runner.prepare(p);
    auto t = cuda::time_on_stream(stream.get(), {5, o.reps, 1}, [&](int) { runner.run(p, stream.get()); });
    const double flop = 2.0 * n * n * double(n);
    const double tflops = flop / (t.median_ms * 1e-3) / 1e12;
    std::printf("gemm bf16 %d^3: %.3f ms median -> %.1f TFLOP/s (algo %d of %d candidates)\n", n, t.median_ms, tflops,
                info.chosen, info.candidates);
    out["gemm"] = {{"size", n}, {"median_ms", t.median_ms}, {"min_ms", t.min_ms}, {"tflops", tflops},
                   {"algo_candidates", info.candidates}, {"algo_chosen", info.chosen}};
  }

  // --- HBM copy ------------------------------------------------------------------------------
  const size_t bytes = static_cast<size_t>(o.copy_gib * double(1 << 30)) / 256 * 256;
  cuda::DeviceBuffer src(bytes), dst(bytes), sink(64);
  cuda::fill_random_bf16(src.as<__nv_bfloat16>(), bytes / 2, 13, 1.f, stream.get());
  {
    auto t = cuda::time_on_stream(stream.get(), {3, 20, 1}, [&](int) {
      NF_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
    });
    const double gbs = 2.0 * bytes / (t.median_ms * 1e-3) / 1e9;
    auto tk = cuda::time_on_stream(stream.get(), {3, 20, 1}, [&](int) {
      NF_CUDA_CHECK(cuda::launch_stream_copy(dst.data(), src.data(), bytes, dev.sm_count * 4, stream.get()));
    });
    const double gbs_k = 2.0 * bytes / (tk.median_ms * 1e-3) / 1e9;
    std::printf("hbm copy %.1f GiB: cudaMemcpy %.0f GB/s, kernel %.0f GB/s (read + write)\n", o.copy_gib, gbs, gbs_k);
    out["copy"] = {{"bytes", bytes}, {"memcpy_gbs", gbs}, {"kernel_gbs", gbs_k}};
  }

  // --- streaming read, whole GPU and SM partitions --------------------------------------------
  auto read_gbs = [&](cudaStream_t s, int sms, int in_flight) {
    const int ctas = sms * 4;  // 512 threads each: 4 per SM fill it
    auto t = cuda::time_on_stream(s, {2, 10, 1}, [&](int) {
      NF_CUDA_CHECK(cuda::launch_stream_read(src.data(), bytes, sink.as<float>(), in_flight, ctas, s));
    });
    return bytes / (t.median_ms * 1e-3) / 1e9;
  };
  json reads = json::array();
  for (int f : {2, 4, 8, 16}) {
    const double g = read_gbs(stream.get(), dev.sm_count, f);
    std::printf("stream read whole GPU, %2d in flight: %.0f GB/s\n", f, g);
    reads.push_back({{"sms", dev.sm_count}, {"in_flight", f}, {"gbs", g}});
  }
  {
    cuda::SmPartitions parts(cuda::SmPartitionsConfig{{16, 24, 32}});
    for (int i = 0; i < parts.size(); ++i) {
      for (int f : {2, 4, 8, 16}) {
        const double g = read_gbs(parts[i].stream, parts[i].sm_count, f);
        std::printf("stream read %3d-SM partition, %2d in flight: %.0f GB/s\n", parts[i].sm_count, f, g);
        reads.push_back({{"sms", parts[i].sm_count}, {"in_flight", f}, {"gbs", g}});
      }
    }
  }
  out["stream_read"] = reads;
  if (!o.json_path.empty()) {
    std::ofstream(o.json_path) << out.dump(2) << "\n";
  }
  return 0;
}
#endif

}  // namespace

NF_REGISTER_BENCH(bench_roofline, "roofline", "GPU ceilings: bf16 GEMM 8192^3, HBM copy, streaming reads on SM partitions",
                  [](CLI::App* sub) -> std::function<int()> {
                    auto o = std::make_shared<RooflineOptions>();
                    sub->add_option("--json", o->json_path, "write the results as JSON here");
                    sub->add_option("--gemm-size", o->gemm_size, "GEMM m = n = k")->check(CLI::Range(256, 16384));
                    sub->add_option("--reps", o->reps, "timed GEMM repetitions")->check(CLI::Range(1, 10000));
                    sub->add_option("--copy-gib", o->copy_gib, "copy/read buffer size in GiB")->check(CLI::Range(0.01, 64.0));
                    return [o]() -> int {
#if NANOFLOW_HAVE_CUDA
                      return run_roofline(*o);
#else
                      std::fprintf(stderr, "bench roofline: this build has no CUDA (NANOFLOW_CUDA=OFF)\n");
                      return 2;
#endif
                    };
                  });

}  // namespace nanoflow::cli
