// Tensor-core and async-copy helpers (nvcc only): cp.async 16-byte copies with zero fill,
// mbarrier + TMA tile loads, ldmatrix, and mma.sync m16n8k16 bf16 -> f32 in the fragment layouts of the PTX ISA.
#pragma once
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace nanoflow::cuda::dev {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Transposes an 8x8 b16 matrix held in the ldmatrix / mma fragment layout (lane l holds row l / 4,
// columns 2 (l % 4), +1): afterwards lane l holds row l / 4 of the transpose.
__device__ __forceinline__ uint32_t movmatrix_t(uint32_t a) {
  uint32_t d;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(d) : "r"(a));
  return d;
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// mbarrier and TMA (sm_90). A barrier completes a phase when its arrival count is reached and the
// bytes announced by expect_tx have landed; waiters name the parity of the phase they wait for.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// Makes barrier initialisation visible to the async proxy (TMA) before the first copy names it.
__device__ __forceinline__ void fence_mbar_init() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
// One 3-D tile of the tensor map at `tmap` (a __grid_constant__ CUtensorMap kernel parameter) at
// coordinates (c0, c1, c2), innermost first, into shared memory at dst; completes `bytes` on bar.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const void* tmap, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];" ::"r"(dst),
      "l"(tmap), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

// One online-softmax step for the two rows an m16n8 MMA fragment gives each thread (lo = row g,
// hi = row g + 8; the 4 threads of a quad share them). mx_lo/mx_hi: this thread's running max
// over the old max and the new tile's scores. Finishes the max across the quad, rescales the
// running sums l and outputs o by exp2(old max - new max), stores the new max in m, and returns in
// use_lo/use_hi what to subtract from this tile's scores: 0 for a fully masked row, which thus
// stays all-zero instead of turning into NaN.
template <int D>
__device__ __forceinline__ void online_softmax_rescale(float mx_lo, float mx_hi, float& m_lo, float& m_hi,
                                                       float& l_lo, float& l_hi, float (&o)[D / 8][4],
                                                       float& use_lo, float& use_hi) {
#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    mx_lo = fmaxf(mx_lo, __shfl_xor_sync(0xffffffffu, mx_lo, off));
    mx_hi = fmaxf(mx_hi, __shfl_xor_sync(0xffffffffu, mx_hi, off));
  }
  use_lo = mx_lo == -INFINITY ? 0.f : mx_lo;
  use_hi = mx_hi == -INFINITY ? 0.f : mx_hi;
  const float c_lo = exp2f(m_lo - use_lo), c_hi = exp2f(m_hi - use_hi);
  m_lo = mx_lo;
  m_hi = mx_hi;
  l_lo *= c_lo;
  l_hi *= c_hi;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    o[i][0] *= c_lo;
    o[i][1] *= c_lo;
    o[i][2] *= c_hi;
    o[i][3] *= c_hi;
  }
}

}  // namespace nanoflow::cuda::dev
