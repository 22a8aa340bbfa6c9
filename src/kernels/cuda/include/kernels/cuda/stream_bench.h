// Bandwidth probes for the ceilings of `nanoflow bench roofline/ops`: a plain device-to-device
// copy and a streaming read (each thread keeps `in_flight` 16-byte loads outstanding; the sum
// goes to a sink so the loads cannot be removed). The grid is capped by a CTA budget so the probe
// can run inside an SM partition.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace nanoflow::cuda {

cudaError_t launch_stream_read(const void* src, size_t bytes, float* sink, int in_flight, int ctas,
                               cudaStream_t stream);
cudaError_t launch_stream_copy(void* dst, const void* src, size_t bytes, int ctas, cudaStream_t stream);

}  // namespace nanoflow::cuda
