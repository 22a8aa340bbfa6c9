// GEMMs through cuBLASLt: bf16 inputs, f32 accumulation, bf16 or f32 output.
//
//   Y[m, n] = X[m, k] · W[n, k]^T (+ bias[n]) (+ Y when accumulate: residual add fused in)
//
// X, W and Y are row-major (W as Hugging Face stores nn.Linear weights: [out, in]). cuBLASLt is
// column-major, so this runs as the column-major product Y^T[n, m] = op_T(W)[n, k] · X^T[k, m].
//
// Algorithms: one per (m bucket, n, k, epilogue, output type, SM_COUNT_TARGET) — buckets are powers
// of two — chosen once (prepare() at start-up, or at first use) and cached; with `autotune` the best
// of the heuristic's top candidates by measured time on random scratch data, else the heuristic's
// first. Each exact m gets its own (cheap) layouts, checked against the bucket's algorithm.
// `sm_count_target` sets CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET: the SMs of the partition the GEMM
// runs in (PERF.md: 523 -> 701 TFLOP/s in a 112-SM green context).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace nanoflow::cuda {

struct GemmParams {
  const __nv_bfloat16* x = nullptr;     // [m, k]
  const __nv_bfloat16* w = nullptr;     // [n, k]
  void* y = nullptr;                    // [m, n] bf16, or f32 when out_f32
  const __nv_bfloat16* bias = nullptr;  // optional [n] (bf16 output only)
  int m = 0, n = 0, k = 0;
  bool out_f32 = false;
  bool accumulate = false;              // y += x·w^T (bf16 output only)
  int sm_count_target = 0;              // 0 = the whole GPU
};

struct GemmConfig {
  size_t workspace_bytes = size_t{32} << 20;
  bool autotune = true;      // time the heuristic's candidates once per bucket
  int candidates = 8;        // how many heuristic results to consider
  int tune_iters = 5;        // timed runs per candidate (after one warm-up)
  // Split-K partial sums only in f32 (no reduction in the bf16 output type): every output is one
  // f32 sum rounded once, as a reference computes it.
  bool f32_reductions = false;
};

struct GemmAlgoInfo {  // what was chosen for a bucket (for benchmarks and logs)
  int candidates = 0;
  int chosen = 0;              // index in the heuristic's order
  float chosen_ms = 0.f;       // measured (autotune) or 0
  float heuristic_first_ms = 0.f;
};

class GemmRunner {
 public:
  explicit GemmRunner(const GemmConfig& cfg = {});
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  // Chooses (and caches) the algorithm for the bucket of `p.m`; runs no GEMM on p's buffers.
  // Call outside graph capture: autotuning launches and synchronizes.
  GemmAlgoInfo prepare(const GemmParams& p);
  // Runs Y = X·W^T; checked; capturable once the bucket is prepared.
  void run(const GemmParams& p, cudaStream_t stream);

  // Every heuristic candidate's measured time for this exact problem (benchmarks: "best cuBLASLt
  // rate for the shape"). Uses scratch buffers; synchronizes.
  std::vector<float> time_all_candidates(const GemmParams& p, int iters);

  static int bucket_of(int m);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Mixtral experts: rows of x sorted by expert; expert e owns rows [offsets[e], offsets[e+1]) and
// weight w[e] ([n, k]). Runs one cuBLASLt GEMM per non-empty expert (host offsets: the router's
// counts are read back once per iteration).
struct GroupedGemmParams {
  const __nv_bfloat16* x = nullptr;                 // [rows, k]
  std::vector<const __nv_bfloat16*> w;              // per expert [n, k]
  std::vector<int> offsets;                         // [experts + 1]
  __nv_bfloat16* y = nullptr;                       // [rows, n]
  int n = 0, k = 0;
  int sm_count_target = 0;
};
void grouped_gemm(GemmRunner& runner, const GroupedGemmParams& p, cudaStream_t stream);

// Random bf16 values uniform in [-scale, scale) from a counter hash of (seed, index): tests,
// benchmarks and autotuning never run on zeros.
cudaError_t launch_fill_random_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float scale, cudaStream_t s);
cudaError_t launch_fill_random_f32(float* p, size_t n, uint64_t seed, float scale, cudaStream_t s);
void fill_random_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float scale, cudaStream_t s);
void fill_random_f32(float* p, size_t n, uint64_t seed, float scale, cudaStream_t s);

}  // namespace nanoflow::cuda
