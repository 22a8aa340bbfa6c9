// RMSNorm, optionally fused with the residual add before it, optionally gathering rows (the final
// norm before the LM head runs on sampled rows only).
//
//   s      = x[r] (+ residual[r])           rounded to bf16 (the residual stream is bf16, as in HF)
//   out[i] = s * rsqrt(mean(s^2) + eps) * weight     (f32 math, bf16 out)
//
// Kernel file: norm.cu (kernel + launcher, C++17 for nvcc), norm.cc (checked entry, C++20).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace nanoflow::cuda {

struct RmsNormParams {
  const __nv_bfloat16* x = nullptr;         // [in_rows, hidden] row-major
  const __nv_bfloat16* residual = nullptr;  // optional [in_rows, hidden]: s = x + residual
  __nv_bfloat16* residual_out = nullptr;    // [in_rows, hidden] gets s when residual is set (may
                                            // alias residual; never aliases x)
  const __nv_bfloat16* weight = nullptr;    // [hidden]
  __nv_bfloat16* out = nullptr;             // [rows, hidden] (may alias x when no gather)
  const int32_t* row_index = nullptr;       // optional [rows]: out row i normalizes input row
                                            // row_index[i] (no residual with a gather)
  int rows = 0;
  int hidden = 0;                           // multiple of 8 (16-byte vectors), <= 32768
  float eps = 1e-5f;
};

// Launcher on raw pointers; returns the launch status (no checks of the params).
cudaError_t launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);
// Checked entry: validates the params (throws nanoflow::Error), launches, checks the launch.
void rms_norm(const RmsNormParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
