// TMA-fed paged decode attention (variants 27-35 of decode_attention.h; G <= 8, head_dim 64 or 128).
//
// Why: on a 24-SM share the register-fed kernels (decode_attention.cu, best: 13) reach ~82 GB/s an
// SM against ~108 needed for 70% of a streaming read; by Little's law at ~1.5 us loaded latency an
// SM needs ~160-200 KB in flight, which registers cannot hold and a cp.async ring pays for with
// per-lane address math and two shared-memory passes per byte. Here the copy engine moves whole
// pages: each warp owns a ring of kStages stages, one 16-key step (one page of one KV head, K and V)
// a stage, and its lane 0 refills a stage with 2 * D / 64 TMA tile loads as soon as the warp has
// read it. The warp issues no per-byte instructions besides ldmatrix.
//
// Tensor map (host, cached per pool): 3-D over the pool [slots][hkv][D] bf16, innermost first
// (D, hkv, num_pages * 16), box (64, 1, 16): one box is 64 dims of the 16 slots of one page of one
// KV head, 16 rows of 128 bytes, so a D = 128 page-head is two boxes (128-byte swizzle needs rows of
// at most 128 bytes).
//
// Shared memory, per warp w and stage s (each box 2 KB, 1024-byte aligned for the swizzle):
//   [w][s] = K box (dims 0-63), K box (64-127), V box (0-63), V box (64-127)   (D = 128)
// Box layout with CU_TENSOR_MAP_SWIZZLE_128B: row r (slot) at r * 128 bytes, its 16-byte chunk ch
// (dims 8 ch .. 8 ch + 7 of the box) stored at chunk position ch ^ (r & 7). An ldmatrix 8x8
// matrix reads 8 consecutive rows at one chunk: positions ch ^ 0..7 are distinct, so the 8 row
// addresses cover all 32 banks (conflict-free).
//
// Orientation and fragments as in decode_attention_rk_kernel (ring mode): S^T = K Q^T (16 keys as
// M, heads as N), O^T = V^T P^T (16 dims as M). K is the A operand read by ldmatrix (no trans):
// matrix m = rows (m & 1) * 8 + (l & 7), dims 16 kk + (m >> 1) * 8, so Q is the B operand in plain
// dim order: lane (p, c) holds Q[head p][16 kk + 2c, +1] and Q[head p][16 kk + 8 + 2c, +1].
// V is read by ldmatrix.trans: matrix m = keys (m >> 1) * 8 + (l & 7), dims 16 t + (m & 1) * 8.
//
// mbarrier protocol (warp-private rings, so one "full" barrier a stage and no "empty" barrier):
//   init: thread 0 sets every barrier's arrival count to 1; fence; __syncthreads.
//   fill of step li into stage s = li % kStages: lane 0 does arrive.expect_tx(stage bytes) (the one
//     arrival) and issues the tile loads, which complete the announced bytes -> phase li / kStages
//     of barrier s completes.
//   use of step li: every lane waits for parity (li / kStages) & 1 on barrier s, reads the stage
//     (ldmatrix; their results feed mma before the warp moves on), __syncwarp, then lane 0 refills s
//     with step li + kStages. A refill is issued only after every lane has seen the phase complete,
//     so no lane can miss a phase; each step is issued once and waited once, so no copy is in flight
//     when the loop ends and the ring can become the merge scratch.
#include <cuda.h>

#include <cfloat>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "decode_attention_internal.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/mma.cuh"
#include "runtime/cuda/driver_api.h"

namespace nanoflow::cuda {
namespace {

using namespace dev;
using decode_detail::store_merged;

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kBoxDims = 64;                    // dims a TMA box holds (128 bytes: the swizzle's row limit)
constexpr int kBoxBytes = 16 * kBoxDims * 2;    // 16 slots x 64 dims bf16
constexpr int kSlots = 8;                       // head columns (G <= 8)

template <int D>
constexpr int stage_bytes() {
  return 2 * (D / kBoxDims) * kBoxBytes;  // K and V of one page-head
}
template <int D, int kWarps, int kStages>
constexpr int ring_bytes() {
  const int ring = kWarps * kStages * stage_bytes<D>();
  const int merge = (kWarps * kSlots * D + 2 * kWarps * kSlots) * 4;
  return ring > merge ? ring : merge;
}
template <int D, int kWarps, int kStages, bool kSplitKV>
constexpr int tma_smem_bytes() {
  return 1024 + ring_bytes<D, kWarps, kStages>() + kWarps * kStages * (kSplitKV ? 16 : 8);  // + slack, barriers
}

// Page ids of this warp's steps warp, warp + kWarps, ... of the split, 32 at a time (lane i holds
// the one of local step 32 * window + i), with the next window's load issued a window ahead so the
// refills never wait on a page-id load. get() must be called by the whole warp with warp-uniform,
// non-decreasing li advancing by at most 32 a call.
struct TmaPageWindow {
  const int32_t* pages;  // page ids of the split's first 16-key block onwards
  int n_blocks, warp, n_warps;
  int cur = 0, nxt = 0, window = 0;
  __device__ __forceinline__ int load(int w, int lane) const {
    const int block = warp + n_warps * (w * 32 + lane);
    return block < n_blocks ? __ldg(pages + block) : 0;
  }
  __device__ __forceinline__ void init(int lane) {
    cur = load(0, lane);
    nxt = load(1, lane);
  }
  __device__ __forceinline__ int get(int li, int lane) {
    if ((li >> 5) != window) {
      ++window;
      cur = nxt;
      nxt = load(window + 1, lane);
    }
    return __shfl_sync(0xffffffffu, cur, li & 31);
  }
};

// Byte offset in a box of row r, 16-byte chunk ch (128-byte swizzle).
__device__ __forceinline__ uint32_t box_off(int r, int ch) { return r * 128 + ((ch ^ (r & 7)) << 4); }

// Keeps the bf16 halves of a word holding keys k, k + 1 that are < n (tail step masking).
__device__ __forceinline__ uint32_t key_mask(int k, int n) {
  return (k < n ? 0x0000ffffu : 0u) | (k + 1 < n ? 0xffff0000u : 0u);
}

// Lane 0: fills the stage at dst with the K and V page-head of page pg, KV head kvh. One barrier a
// stage (bar) takes both; with kSplitKV, K completes on bar and V on bar + 8, so the warp can start
// S^T = K Q^T while V is still landing.
template <int D, bool kSplitKV>
__device__ __forceinline__ void issue_stage(uint32_t dst, uint32_t bar, const CUtensorMap* tk, const CUtensorMap* tv,
                                            int kvh, int pg) {
  constexpr int kBoxes = D / kBoxDims;
  constexpr int kHalf = kBoxes * kBoxBytes;  // K (or V) of one page-head
  const uint32_t bar_v = kSplitKV ? bar + 8 : bar;
  mbar_arrive_expect_tx(bar, kSplitKV ? kHalf : 2 * kHalf);
#pragma unroll
  for (int b = 0; b < kBoxes; ++b) tma_load_3d(dst + b * kBoxBytes, tk, b * kBoxDims, kvh, pg * 16, bar);
  if (kSplitKV) mbar_arrive_expect_tx(bar_v, kHalf);
#pragma unroll
  for (int b = 0; b < kBoxes; ++b) tma_load_3d(dst + kHalf + b * kBoxBytes, tv, b * kBoxDims, kvh, pg * 16, bar_v);
}

// One 16-key step of a warp from the stage at tk (filled by issue_stage: phase `parity` of bar, and
// of bar + 8 for V with kSplitKV): S^T = K Q^T, online softmax per head column, O^T += V^T P^T.
// Keys >= end are masked (their slots may hold anything). Every lane's ldmatrix results of the stage
// feed an mma before it returns; the caller's __syncwarp then frees the stage for a refill.
template <int D, bool kSplitKV>
__device__ __forceinline__ void tma_step(uint32_t tk, uint32_t bar, uint32_t parity, const uint32_t (&qb)[D / 16][2],
                                         float (&o)[D / 16][4], float (&m)[2], float (&l)[2], int key0, int end,
                                         float sl2, int lane) {
  constexpr int kBoxes = D / kBoxDims;
  constexpr int kKK = D / 16;  // k-steps of S^T
  constexpr int kMT = D / 16;  // m-tiles of O^T
  const int pr = lane >> 2, c = lane & 3;
  // Lane's ldmatrix rows: K (A of S^T, no trans) and V (A of O^T, trans); see the header.
  const int k_row = (lane & 7) + ((lane >> 3) & 1) * 8, k_ch = lane >> 4;
  const int v_row = (lane & 7) + (lane >> 4) * 8, v_ch = (lane >> 3) & 1;
  const uint32_t tv = tk + kBoxes * kBoxBytes;
  mbar_wait(bar, parity);

  // S^T = K Q^T; two accumulator chains.
  float sa[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
  for (int kk = 0; kk < kKK; ++kk) {
    uint32_t a[4];
    const int box = kk / 4, ch = (kk % 4) * 2 + k_ch;
    ldsm_x4(tk + box * kBoxBytes + box_off(k_row, ch), a[0], a[1], a[2], a[3]);
    mma_bf16(sa[kk & 1], a, qb[kk][0], qb[kk][1]);
  }
  float sc[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) sc[e] = sa[0][e] + sa[1][e];

  // Online softmax per head column.
  const bool ok0 = key0 + pr < end, ok1 = key0 + pr + 8 < end;
  float pv[4];
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const float s_lo = ok0 ? sc[e] * sl2 : -INFINITY;
    const float s_hi = ok1 ? sc[e + 2] * sl2 : -INFINITY;
    float mx = fmaxf(s_lo, s_hi);
#pragma unroll
    for (int off = 4; off <= 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    mx = fmaxf(mx, m[e]);
    const float use = mx == -INFINITY ? 0.f : mx;  // a fully masked column stays zero, not NaN
    const float corr = exp2f(m[e] - use);
    m[e] = mx;
    pv[e] = exp2f(s_lo - use);
    pv[e + 2] = exp2f(s_hi - use);
    l[e] = fmaf(l[e], corr, pv[e] + pv[e + 2]);
#pragma unroll
    for (int t = 0; t < kMT; ++t) {
      o[t][e] *= corr;
      o[t][e + 2] *= corr;
    }
  }
  const uint32_t pb0 = movmatrix_t(pack_bf16(pv[0], pv[1]));  // keys 2c, 2c+1; head p
  const uint32_t pb1 = movmatrix_t(pack_bf16(pv[2], pv[3]));  // keys 2c+8, 2c+9; head p

  // O^T += V^T P^T. In a tail step the V rows past the end may be NaN (NaN * 0 = NaN): the A
  // fragment words of keys >= end are zeroed (a0, a1: keys 2c, 2c+1; a2, a3: keys 2c+8, 2c+9).
  if (kSplitKV) mbar_wait(bar + 8, parity);
  const int n_valid = end - key0;
  const uint32_t mask_lo = key_mask(2 * c, n_valid), mask_hi = key_mask(2 * c + 8, n_valid);
#pragma unroll
  for (int t = 0; t < kMT; ++t) {
    uint32_t a[4];
    const int box = t / 4, ch = (t % 4) * 2 + v_ch;
    ldsm_x4_t(tv + box * kBoxBytes + box_off(v_row, ch), a[0], a[1], a[2], a[3]);
    a[0] &= mask_lo;
    a[1] &= mask_lo;
    a[2] &= mask_hi;
    a[3] &= mask_hi;
    mma_bf16(o[t], a, pb0, pb1);
  }
}

template <int D, int kWarps, int kStages, int kMinBlocks, bool kSplitKV>

__global__ void __launch_bounds__(kWarps * 32, kMinBlocks)
    decode_attention_tma_kernel(DecodeAttentionParams p, const __grid_constant__ CUtensorMap tmap_k,
                                const __grid_constant__ CUtensorMap tmap_v) {
  constexpr int kStage = stage_bytes<D>();
  constexpr int kKK = D / 16;           // k-steps of S^T
  constexpr int kMT = D / 16;           // m-tiles of O^T
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const uint32_t raw_u32 = smem_u32(smem_raw);
  const uint32_t pad = ((raw_u32 + 1023u) & ~1023u) - raw_u32;
  unsigned char* ring = smem_raw + pad;                     // [kWarps][kStages][kStage], then merge scratch
  const uint32_t ring_u32 = raw_u32 + pad;
  constexpr int kBars = kSplitKV ? 2 : 1;  // mbarriers a stage
  const uint32_t bars = ring_u32 + ring_bytes<D, kWarps, kStages>();  // [kWarps][kStages][kBars] mbarriers

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.hq / p.hkv;  // <= 8
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int pr = lane >> 2, c = lane & 3;
  const int kv = p.kv_len[seq];
  const int start = split * p.chunk_tokens;  // a multiple of 64: steps start at multiples of 16
  const int end = min(kv, start + p.chunk_tokens);
  const int n_blocks = end > start ? (end - start + 15) / 16 : 0;
  const int n_mine = n_blocks > warp ? (n_blocks - warp + kWarps - 1) / kWarps : 0;  // steps warp + kWarps*li

  if (tid == 0) {
    for (int i = 0; i < kWarps * kStages * kBars; ++i) mbar_init(bars + 8 * i, 1);
    fence_mbar_init();
  }
  __syncthreads();

  const uint32_t my_ring = ring_u32 + warp * kStages * kStage;
  const uint32_t my_bars = bars + warp * kStages * kBars * 8;
  TmaPageWindow win{p.page_ids + p.page_start[seq] + start / 16, n_blocks, warp, kWarps};
  win.init(lane);
  auto issue = [&](int li) {  // whole warp; lane 0 issues
    const int pg = win.get(li, lane);
    if (lane == 0) {
      const int s = li % kStages;
      issue_stage<D, kSplitKV>(my_ring + s * kStage, my_bars + 8 * kBars * s, &tmap_k, &tmap_v, kvh, pg);
    }
  };
#pragma unroll 1
  for (int r = 0; r < kStages; ++r)
    if (r < n_mine) issue(r);

  // Q as B fragments of S^T (plain dim order); heads >= G are zero.
  uint32_t qb[kKK][2];
  {
    const __nv_bfloat16* qrow = p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + min(pr, G - 1)) * D + 2 * c;
#pragma unroll
    for (int kk = 0; kk < kKK; ++kk) {
      qb[kk][0] = pr < G ? __ldg(reinterpret_cast<const unsigned int*>(qrow + 16 * kk)) : 0u;
      qb[kk][1] = pr < G ? __ldg(reinterpret_cast<const unsigned int*>(qrow + 16 * kk + 8)) : 0u;
    }
  }

  float o[kMT][4];
#pragma unroll
  for (int t = 0; t < kMT; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // head columns 2c, 2c + 1 (log2 domain)
  const float sl2 = p.scale * kLog2e;

#pragma unroll 1
  for (int li = 0; li < n_mine; ++li) {
    const int s = li % kStages;
    tma_step<D, kSplitKV>(my_ring + s * kStage, my_bars + 8 * kBars * s, (li / kStages) & 1, qb, o, m, l,
                          start + 16 * (warp + kWarps * li), end, sl2, lane);
    __syncwarp();  // every lane has read stage s (its ldmatrix results fed the mma above)
    if (li + kStages < n_mine) issue(li + kStages);
  }
  __syncthreads();  // every warp is done with its ring: it becomes the merge scratch

  // Merge the warps' states: s_o [kWarps][kSlots][D], s_m / s_l [kWarps][kSlots]. The same steps
  // as decode_detail::publish_and_store_merged (the register-fed kernels' epilogue), written out
  // here: called with this kernel's ring as the scratch, the helper lets the compiler pair the
  // s_m / s_l stores into st.shared.v2 (different SASS), so this kernel keeps its own copy.
#pragma unroll
  for (int e = 0; e < 2; ++e)
#pragma unroll
    for (int off = 4; off <= 16; off <<= 1) l[e] += __shfl_xor_sync(0xffffffffu, l[e], off);
  float* s_o = reinterpret_cast<float*>(ring);
  float* s_m = s_o + kWarps * kSlots * D;
  float* s_l = s_m + kWarps * kSlots;
  float* w_o = s_o + (warp * kSlots + 2 * c) * D;  // head 2c; head 2c + 1 is + D
#pragma unroll
  for (int t = 0; t < kMT; ++t) {
    const int d_lo = 16 * t + pr, d_hi = d_lo + 8;
    w_o[d_lo] = o[t][0];
    w_o[D + d_lo] = o[t][1];
    w_o[d_hi] = o[t][2];
    w_o[D + d_hi] = o[t][3];
  }
  if (pr == 0) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      s_m[warp * kSlots + 2 * c + e] = m[e];
      s_l[warp * kSlots + 2 * c + e] = l[e];
    }
  }
  __syncthreads();
  store_merged<D, kWarps, kSlots>(p, s_o, s_m, s_l, split, kvh, seq, tid);
}

// Tensor maps of a pool, encoded once per (base pointer, head_dim, hkv, pages) and cached: the
// encode is host-only work, but not free, and decode runs every iteration on the same pools.
struct TmapKey {
  const void* base;
  int d, hkv, num_pages;
  bool operator<(const TmapKey& o) const {
    return std::tie(base, d, hkv, num_pages) < std::tie(o.base, o.d, o.hkv, o.num_pages);
  }
};

cudaError_t pool_tensor_map(const void* base, int d, int hkv, int num_pages, CUtensorMap* out) {
  static std::mutex mu;
  static std::map<TmapKey, CUtensorMap> cache;
  const TmapKey key{base, d, hkv, num_pages};
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) {
    *out = it->second;
    return cudaSuccess;
  }
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(d), static_cast<cuuint64_t>(hkv),
                              static_cast<cuuint64_t>(num_pages) * 16};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(d) * 2, static_cast<cuuint64_t>(hkv) * d * 2};  // bytes
  const cuuint32_t box[3] = {kBoxDims, 1, 16};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  CUtensorMap map;
  std::memset(&map, 0, sizeof(map));
  const CUresult r = driver().TensorMapEncodeTiled(
      &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, elem_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) return cudaErrorInvalidValue;
  if (cache.size() >= 64) cache.clear();  // pools are few; stale pointers must not pile up
  cache.emplace(key, map);
  *out = map;
  return cudaSuccess;
}

// What every TMA launch needs first: the tensor maps of both pools and the kernel's shared memory
// (its dynamic size, and the carveout at its maximum).
template <int D, class Kernel>
cudaError_t prepare_tma_launch(Kernel kernel, int smem, const DecodeAttentionParams& p, CUtensorMap* tk,
                               CUtensorMap* tv) {
  cudaError_t e = pool_tensor_map(p.k_cache, D, p.hkv, p.num_pages, tk);
  if (e != cudaSuccess) return e;
  e = pool_tensor_map(p.v_cache, D, p.hkv, p.num_pages, tv);
  if (e != cudaSuccess) return e;
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
}

template <int D, int kWarps, int kStages, int kMinBlocks, bool kSplitKV = false>
cudaError_t launch_tma(const DecodeAttentionParams& p, cudaStream_t stream) {
  constexpr int smem = tma_smem_bytes<D, kWarps, kStages, kSplitKV>();
  static_assert(kMinBlocks * (smem + 1024) <= 228 * 1024, "CTAs per SM fit the shared memory of an SM");
  auto kernel = decode_attention_tma_kernel<D, kWarps, kStages, kMinBlocks, kSplitKV>;
  CUtensorMap tk, tv;
  const cudaError_t e = prepare_tma_launch<D>(kernel, smem, p, &tk, &tv);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(p.num_splits, p.hkv, p.num_seqs), kWarps * 32, smem, stream>>>(p, tk, tv);
  return cudaGetLastError();
}

// <warps, stages a warp, CTAs per SM>; stage = 8 KB for D = 128 (K + V of one page-head).
template <int D>
cudaError_t launch_tma_d(const DecodeAttentionParams& p, cudaStream_t stream) {
  switch (p.variant) {
    case 27: return launch_tma<D, 4, 3, 2>(p, stream);  // 8 warps/SM, 24 stages (192 KB) an SM
    case 28: return launch_tma<D, 4, 6, 1>(p, stream);  // 4 warps/SM, 24 stages (192 KB)
    case 29: return launch_tma<D, 2, 6, 2>(p, stream);  // 4 warps/SM in 2 CTAs, 24 stages
    case 30: return launch_tma<D, 8, 3, 1>(p, stream);  // 8 warps/SM in 1 CTA, 24 stages
    case 31: return launch_tma<D, 2, 4, 3>(p, stream);  // 6 warps/SM in 3 CTAs, 24 stages
    case 32: return launch_tma<D, 4, 2, 3>(p, stream);  // 12 warps/SM in 3 CTAs, 24 stages
    case 33: return launch_tma<D, 2, 2, 6>(p, stream);  // 12 warps/SM in 6 CTAs, 24 stages
    case 34: return launch_tma<D, 3, 2, 4>(p, stream);  // 12 warps/SM in 4 CTAs, 24 stages
    case 35: return launch_tma<D, 4, 2, 3, true>(p, stream);  // 32 with K and V on separate barriers
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool decode_attention_tma_supported(const DecodeAttentionParams& p) {
  const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  return p.num_pages > 0 && p.hkv > 0 && p.hq / p.hkv <= 8 && (p.head_dim == 64 || p.head_dim == 128) &&
         aligned(p.k_cache) && aligned(p.v_cache);
}

cudaError_t launch_decode_attention_tma(const DecodeAttentionParams& p, cudaStream_t stream) {
  return p.head_dim == 128 ? launch_tma_d<128>(p, stream) : launch_tma_d<64>(p, stream);
}

}  // namespace nanoflow::cuda
