// cuBLASLt GEMM runner: per-bucket algorithm cache, autotuning, SM_COUNT_TARGET (see gemm.h).
#include "kernels/cuda/gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <bit>

#include "check_util.h"
#include "core/log.h"
#include "runtime/cuda/arena.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"

#define NF_CUBLAS_CHECK(expr)                                                                    \
  if (cublasStatus_t nf_cublas_status_ = (expr); nf_cublas_status_ == CUBLAS_STATUS_SUCCESS) {   \
  } else                                                                                         \
    ::nanoflow::detail::CheckFailure(::nanoflow::ErrorKind::kInternal,                           \
                                     "cuBLASLt call failed: " #expr, std::source_location::current()) \
        << cublasLtGetStatusName(nf_cublas_status_) << " (" << static_cast<int>(nf_cublas_status_) << ")"

namespace nanoflow::cuda {

namespace {

// Descriptor and layouts of one exact problem; owned, destroyed with the runner.
struct Problem {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  void destroy() {
    if (desc) (void)cublasLtMatmulDescDestroy(desc);
    if (a) (void)cublasLtMatrixLayoutDestroy(a);
    if (b) (void)cublasLtMatrixLayoutDestroy(b);
    if (c) (void)cublasLtMatrixLayoutDestroy(c);
    desc = nullptr;
    a = b = c = nullptr;
  }
};

// (m, n, k, out_f32, bias, accumulate, sm_target); m is the bucket for algorithms, exact for plans.
using Key = std::tuple<int, int, int, bool, bool, bool, int>;
Key key_of(const GemmParams& p, int m) {
  return {m, p.n, p.k, p.out_f32, p.bias != nullptr, p.accumulate, p.sm_count_target};
}

}  // namespace

struct GemmRunner::Impl {
  GemmConfig cfg;
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer workspace;
  std::map<Key, cublasLtMatmulAlgo_t> algos;  // by bucket
  std::map<Key, GemmAlgoInfo> infos;
  std::map<Key, Problem> problems;            // by exact m
  std::map<Key, bool> checked;                // exact m: bucket algo verified

  Problem make_problem(const GemmParams& p, int m) {
    Problem pr;
    try {
      NF_CUBLAS_CHECK(cublasLtMatmulDescCreate(&pr.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
      NF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pr.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
      NF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pr.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
      if (p.bias != nullptr) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        NF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pr.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        const cudaDataType_t bt = CUDA_R_16BF;
        NF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pr.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
      }
      if (p.sm_count_target > 0) {
        const int32_t sms = p.sm_count_target;
        NF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pr.desc, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, &sms, sizeof sms));
      }
      const cudaDataType_t ct = p.out_f32 ? CUDA_R_32F : CUDA_R_16BF;
      NF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pr.a, CUDA_R_16BF, p.k, p.n, p.k));  // W^T view
      NF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pr.b, CUDA_R_16BF, p.k, m, p.k));    // X^T view
      NF_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pr.c, ct, p.n, m, p.n));             // Y^T view
    } catch (...) {
      pr.destroy();
      throw;
    }
    return pr;
  }

  Problem& problem(const GemmParams& p, int m) {
    auto k = key_of(p, m);
    auto it = problems.find(k);
    if (it != problems.end()) return it->second;
    return problems.emplace(k, make_problem(p, m)).first->second;
  }

  std::vector<cublasLtMatmulHeuristicResult_t> heuristics(const GemmParams& p, Problem& pr, int want) {
    cublasLtMatmulPreference_t pref = nullptr;
    NF_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    std::vector<cublasLtMatmulHeuristicResult_t> res(std::max(want, 1));
    int got = 0;
    const size_t ws = workspace.bytes();
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (st == CUBLAS_STATUS_SUCCESS && cfg.f32_reductions) {
      // COMPUTE_TYPE only: INPLACE reduces in the output buffer's type (bf16 here). Algorithms
      // without split-K (scheme NONE) stay allowed.
      const uint32_t mask = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
      st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatmulAlgoGetHeuristic(handle, pr.desc, pr.a, pr.b, pr.c, pr.c, pref,
                                          static_cast<int>(res.size()), res.data(), &got);
    }
    (void)cublasLtMatmulPreferenceDestroy(pref);
    NF_CUBLAS_CHECK(st) << "heuristic for m=" << p.m << " n=" << p.n << " k=" << p.k;
    NF_CHECK_KIND(ErrorKind::kUnsupported, got > 0)
        << "cuBLASLt has no algorithm for m=" << p.m << " n=" << p.n << " k=" << p.k;
    res.resize(got);
    return res;
  }

  void matmul(const GemmParams& p, Problem& pr, const cublasLtMatmulAlgo_t* algo, cudaStream_t s) {
    const float alpha = 1.f, beta = p.accumulate ? 1.f : 0.f;
    if (p.bias != nullptr) {
      NF_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pr.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
    }
    NF_CUBLAS_CHECK(cublasLtMatmul(handle, pr.desc, &alpha, p.w, pr.a, p.x, pr.b, &beta, p.y, pr.c, p.y,
                                   pr.c, algo, workspace.data(), workspace.bytes(), s))
        << "m=" << p.m << " n=" << p.n << " k=" << p.k;
  }

  // Scratch operands with random data for timing, the size of the problem.
  struct Scratch {
    DeviceBuffer x, w, y;
  };
  Scratch scratch_for(const GemmParams& p, int m) {
    Scratch s{DeviceBuffer(size_t(m) * p.k * 2), DeviceBuffer(size_t(p.n) * p.k * 2),
              DeviceBuffer(size_t(m) * p.n * (p.out_f32 ? 4 : 2))};
    fill_random_bf16(s.x.as<__nv_bfloat16>(), size_t(m) * p.k, 1, 1.f, nullptr);
    fill_random_bf16(s.w.as<__nv_bfloat16>(), size_t(p.n) * p.k, 2, 0.05f, nullptr);
    if (p.out_f32) {
      fill_random_f32(s.y.as<float>(), size_t(m) * p.n, 3, 1.f, nullptr);
    } else {
      fill_random_bf16(s.y.as<__nv_bfloat16>(), size_t(m) * p.n, 3, 1.f, nullptr);
    }
    return s;
  }

  float time_algo(const GemmParams& q, Problem& pr, const cublasLtMatmulAlgo_t& algo, int iters) {
    Stream stream;
    Event start, stop;
    matmul(q, pr, &algo, stream.get());  // warm-up
    start.record(stream.get());
    for (int i = 0; i < iters; ++i) matmul(q, pr, &algo, stream.get());
    stop.record(stream.get());
    stop.synchronize();
    return stop.elapsed_ms_since(start) / iters;
  }
};

GemmRunner::GemmRunner(const GemmConfig& cfg) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = cfg;
  NF_CHECK_INPUT(cfg.candidates >= 1 && cfg.tune_iters >= 1) << "gemm candidates/tune_iters";
  NF_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspace = DeviceBuffer(cfg.workspace_bytes);
}

GemmRunner::~GemmRunner() {
  for (auto& [k, pr] : impl_->problems) pr.destroy();
  if (impl_->handle) (void)cublasLtDestroy(impl_->handle);
}

int GemmRunner::bucket_of(int m) { return static_cast<int>(std::bit_ceil(static_cast<unsigned>(std::max(m, 16)))); }

namespace {
void check_params(const GemmParams& p) {
  NF_CHECK_INPUT(p.m >= 0 && p.n > 0 && p.k > 0) << "gemm m=" << p.m << " n=" << p.n << " k=" << p.k;
  NF_CHECK_INPUT(p.n % 8 == 0 && p.k % 8 == 0) << "gemm n=" << p.n << " k=" << p.k << " must be multiples of 8";
  NF_CHECK_INPUT(p.sm_count_target >= 0) << "sm_count_target " << p.sm_count_target;
  NF_CHECK_INPUT(!(p.out_f32 && (p.bias != nullptr || p.accumulate)))
      << "bias / accumulate only with bf16 output";
}
}  // namespace

GemmAlgoInfo GemmRunner::prepare(const GemmParams& p) {
  check_params(p);
  Impl& I = *impl_;
  const int bucket = bucket_of(p.m);
  const Key bk = key_of(p, bucket);
  if (auto it = I.infos.find(bk); it != I.infos.end()) return it->second;
  GemmParams q = p;
  q.m = bucket;
  Problem& pr = I.problem(q, bucket);
  auto cands = I.heuristics(q, pr, I.cfg.autotune ? I.cfg.candidates : 1);
  GemmAlgoInfo info;
  info.candidates = static_cast<int>(cands.size());
  int best = 0;
  if (I.cfg.autotune && cands.size() > 1) {
    auto s = I.scratch_for(q, bucket);
    q.x = s.x.as<__nv_bfloat16>();
    q.w = s.w.as<__nv_bfloat16>();
    q.y = s.y.data();
    if (q.bias != nullptr) q.bias = s.w.as<__nv_bfloat16>();  // any n values do for timing
    float best_ms = 0.f;
    for (size_t i = 0; i < cands.size(); ++i) {
      const float ms = I.time_algo(q, pr, cands[i].algo, I.cfg.tune_iters);
      if (i == 0) info.heuristic_first_ms = ms;
      if (i == 0 || ms < best_ms) {
        best_ms = ms;
        best = static_cast<int>(i);
      }
    }
    info.chosen_ms = best_ms;
    device_synchronize();
  }
  info.chosen = best;
  I.algos[bk] = cands[best].algo;
  I.infos[bk] = info;
  return info;
}

void GemmRunner::run(const GemmParams& p, cudaStream_t stream) {
  check_params(p);
  if (p.m == 0) return;
  NF_CHECK_PTR(p.x);
  NF_CHECK_PTR(p.w);
  NF_CHECK_PTR(p.y);
  Impl& I = *impl_;
  const Key bk = key_of(p, bucket_of(p.m));
  if (I.algos.find(bk) == I.algos.end()) {
    // Not prepared at start-up: take the heuristic's choice without timing, since autotuning
    // would allocate scratch memory that the KV pool may already own.
    GemmParams q = p;
    q.m = bucket_of(p.m);
    Problem& bpr = I.problem(q, q.m);
    I.algos[bk] = I.heuristics(q, bpr, 1)[0].algo;
    NF_LOG(kWarn) << "gemm m=" << p.m << " n=" << p.n << " k=" << p.k << " was not prepared; using the heuristic";
  }
  Problem& pr = I.problem(p, p.m);
  const Key ek = key_of(p, p.m);
  cublasLtMatmulAlgo_t algo = I.algos.at(bk);
  auto ck = I.checked.find(ek);
  if (ck == I.checked.end()) {
    cublasLtMatmulHeuristicResult_t r{};
    const bool ok = cublasLtMatmulAlgoCheck(I.handle, pr.desc, pr.a, pr.b, pr.c, pr.c, &algo, &r) ==
                        CUBLAS_STATUS_SUCCESS &&
                    r.workspaceSize <= I.workspace.bytes();
    if (!ok) {
      // The bucket's algorithm does not fit this exact m: cache the heuristic's own choice.
      NF_LOG(kDebug) << "gemm m=" << p.m << ": bucket algorithm rejected, using the heuristic";
      auto cands = I.heuristics(p, pr, 1);
      I.algos[ek] = cands[0].algo;
    }
    ck = I.checked.emplace(ek, ok).first;
  }
  if (!ck->second) algo = I.algos.at(ek);
  I.matmul(p, pr, &algo, stream);
}

std::vector<float> GemmRunner::time_all_candidates(const GemmParams& p, int iters) {
  check_params(p);
  Impl& I = *impl_;
  Problem& pr = I.problem(p, p.m);
  auto cands = I.heuristics(p, pr, I.cfg.candidates);
  auto s = I.scratch_for(p, p.m);
  GemmParams q = p;
  q.x = s.x.as<__nv_bfloat16>();
  q.w = s.w.as<__nv_bfloat16>();
  q.y = s.y.data();
  if (q.bias != nullptr) q.bias = s.w.as<__nv_bfloat16>();
  std::vector<float> ms;
  for (auto& c : cands) ms.push_back(I.time_algo(q, pr, c.algo, iters));
  device_synchronize();
  return ms;
}

void grouped_gemm(GemmRunner& runner, const GroupedGemmParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.offsets.size() == p.w.size() + 1) << "grouped_gemm: " << p.w.size()
                                                     << " experts but " << p.offsets.size() << " offsets";
  NF_CHECK_INPUT(!p.offsets.empty() && p.offsets.front() == 0) << "grouped_gemm offsets must start at 0";
  for (size_t e = 0; e < p.w.size(); ++e) {
    const int rows = p.offsets[e + 1] - p.offsets[e];
    NF_CHECK_INPUT(rows >= 0) << "grouped_gemm offsets decrease at expert " << e;
    if (rows == 0) continue;
    GemmParams g;
    g.x = p.x + static_cast<size_t>(p.offsets[e]) * p.k;
    g.w = p.w[e];
    g.y = p.y + static_cast<size_t>(p.offsets[e]) * p.n;
    g.m = rows;
    g.n = p.n;
    g.k = p.k;
    g.sm_count_target = p.sm_count_target;
    runner.run(g, stream);
  }
}

void fill_random_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float scale, cudaStream_t s) {
  NF_CUDA_CHECK(launch_fill_random_bf16(p, n, seed, scale, s));
}
void fill_random_f32(float* p, size_t n, uint64_t seed, float scale, cudaStream_t s) {
  NF_CUDA_CHECK(launch_fill_random_f32(p, n, seed, scale, s));
}

}  // namespace nanoflow::cuda
