// The few CUDA driver-API functions we use (green contexts), resolved at run time through the
// runtime's cudaGetDriverEntryPointByVersion instead of linking libcuda. Linking libcuda would make
// every binary fail to start on a machine without the NVIDIA driver — CI builds and runs the CPU
// tests of this same binary on such machines.
#pragma once
#include <cuda.h>

namespace nanoflow::cuda {

struct DriverApi {
  decltype(&::cuGetErrorString) GetErrorString = nullptr;
  decltype(&::cuDeviceGet) DeviceGet = nullptr;
  decltype(&::cuDeviceGetDevResource) DeviceGetDevResource = nullptr;
  decltype(&::cuDevSmResourceSplitByCount) DevSmResourceSplitByCount = nullptr;
  decltype(&::cuDevResourceGenerateDesc) DevResourceGenerateDesc = nullptr;
  decltype(&::cuGreenCtxCreate) GreenCtxCreate = nullptr;
  decltype(&::cuGreenCtxDestroy) GreenCtxDestroy = nullptr;
  decltype(&::cuGreenCtxStreamCreate) GreenCtxStreamCreate = nullptr;
  decltype(&::cuGreenCtxGetDevResource) GreenCtxGetDevResource = nullptr;
  decltype(&::cuStreamDestroy) StreamDestroy = nullptr;
  decltype(&::cuTensorMapEncodeTiled) TensorMapEncodeTiled = nullptr;  // TMA descriptors (decode attention)
};

// Resolves every entry once (thread-safe); throws nanoflow::Error naming a missing symbol.
const DriverApi& driver();

}  // namespace nanoflow::cuda
