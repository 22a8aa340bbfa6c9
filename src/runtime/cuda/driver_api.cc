#include "runtime/cuda/driver_api.h"

#include <cuda_runtime.h>

#include "core/error.h"

namespace nanoflow::cuda {
namespace {

template <class F>
void resolve(const char* name, F* out) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e = cudaGetDriverEntryPointByVersion(name, &fn, CUDA_VERSION, cudaEnableDefault, &found);
  if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr)
    NF_THROW(kUnsupported) << "CUDA driver function " << name << " is not available ("
                           << cudaGetErrorString(e) << "); is the NVIDIA driver installed and recent?";
  *out = reinterpret_cast<F>(fn);
}

DriverApi load() {
  DriverApi d;
  resolve("cuGetErrorString", &d.GetErrorString);
  resolve("cuDeviceGet", &d.DeviceGet);
  resolve("cuDeviceGetDevResource", &d.DeviceGetDevResource);
  resolve("cuDevSmResourceSplitByCount", &d.DevSmResourceSplitByCount);
  resolve("cuDevResourceGenerateDesc", &d.DevResourceGenerateDesc);
  resolve("cuGreenCtxCreate", &d.GreenCtxCreate);
  resolve("cuGreenCtxDestroy", &d.GreenCtxDestroy);
  resolve("cuGreenCtxStreamCreate", &d.GreenCtxStreamCreate);
  resolve("cuGreenCtxGetDevResource", &d.GreenCtxGetDevResource);
  resolve("cuStreamDestroy", &d.StreamDestroy);
  resolve("cuTensorMapEncodeTiled", &d.TensorMapEncodeTiled);
  return d;
}

}  // namespace

const DriverApi& driver() {
  static const DriverApi api = load();
  return api;
}

}  // namespace nanoflow::cuda
