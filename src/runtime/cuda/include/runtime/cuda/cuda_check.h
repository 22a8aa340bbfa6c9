// Checks for CUDA runtime and driver status codes: a failure throws nanoflow::Error naming the call,
// the code and its description. No CUDA status is ever dropped (DESIGN.md §4 "Errors").
//   NF_CUDA_CHECK(cudaMemcpyAsync(...)) << "copying the plan";
//   NF_CU_CHECK(cuGreenCtxCreate(...));
//   NF_CUDA_CHECK_LAUNCH() << "rms_norm";   // after a kernel launch: cudaGetLastError()
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include "core/error.h"
#include "runtime/cuda/driver_api.h"

namespace nanoflow::cuda {

// Out-of-memory maps to kResource so callers can tell "too big" from "broken".
inline ErrorKind error_kind_of(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? ErrorKind::kResource : ErrorKind::kInternal;
}
inline ErrorKind error_kind_of(CUresult e) {
  return e == CUDA_ERROR_OUT_OF_MEMORY ? ErrorKind::kResource : ErrorKind::kInternal;
}
inline const char* error_string(cudaError_t e) { return cudaGetErrorString(e); }
inline const char* error_string(CUresult e) {
  const char* s = nullptr;
  if (driver().GetErrorString(e, &s) != CUDA_SUCCESS || s == nullptr) return "unknown CUresult";
  return s;
}

}  // namespace nanoflow::cuda

#define NF_CUDA_CHECK_STATUS_(expr, ok_value)                                                    \
  if (auto nf_cuda_status_ = (expr); nf_cuda_status_ == (ok_value)) {                            \
  } else                                                                                         \
    ::nanoflow::detail::CheckFailure(::nanoflow::cuda::error_kind_of(nf_cuda_status_),           \
                                     "CUDA call failed: " #expr, std::source_location::current()) \
        << ::nanoflow::cuda::error_string(nf_cuda_status_) << " (" << static_cast<int>(nf_cuda_status_) << ")"

#define NF_CUDA_CHECK(expr) NF_CUDA_CHECK_STATUS_(expr, cudaSuccess)
#define NF_CU_CHECK(expr) NF_CUDA_CHECK_STATUS_(expr, CUDA_SUCCESS)
// A launch reports configuration errors through cudaGetLastError (and clears it).
#define NF_CUDA_CHECK_LAUNCH() NF_CUDA_CHECK(cudaGetLastError())
