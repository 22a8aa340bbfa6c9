// Paged GQA decode attention on tensor cores: split-KV kernel + merge kernel (decode_attention.h).
//
// The G query heads of a KV group form the M dimension of mma.m16n8k16 (rows >= G are zero), so
// one K/V load serves every head of the group and scores cost one mma per 8 keys and 16 dims
// instead of per-key shuffles. A CTA (kWarps warps) walks its split in tiles of 16 * kWarps keys
// gathered from pages into shared memory by cp.async (a ring of kStages tiles: kStages - 1 in flight
// while one is used). Warp w takes keys [16w, 16w + 16) of each tile and keeps its own
// online-softmax state; the states merge through shared memory at the end.
//
// Measured (H100, docs/perf/RESULTS.md): on the whole GPU every variant but the deepest reaches
// ~95% of HBM copy; on small SM shares throughput follows the number of resident warps, not the
// bytes in flight, so the old default (5) was 4 warps x 2 stages x 3 CTAs per SM (12 warps, 74 KB a CTA).
// The default is now variant 13 (register-fed, see below; measured best on an H200).
//
// Variants 7-8 and 13-17 (decode_attention_rk_kernel, further down) are built for small SM shares:
// K goes from global memory straight to registers (no shared-memory pass), V either too
// (transposed by movmatrix) or through a per-warp cp.async ring, and each warp pipelines its own
// 16-key steps with no CTA barrier until the final merge. Measured on an H200 (256 seqs x 2k,
// 24-SM share, % of a streaming read): 7 reaches 50% (default 5: 39%); the removed 9, 10 and 12
// (V ring of >= 3 stages at ~209 KB of shared memory an SM) ~30%. Their cp.async group accounting
// was exact (SASS: DEPBAR.LE SB0, kVStages - 1 after kVStages - 1 prologue groups, one commit a
// step), so the ring did not drain; what they shared was the least L1 left beside shared memory
// (probe: variant 16, a 3-stage ring at 157 KB an SM). 8 (and the removed 11) were held back by
// ptxas's single load scoreboard (see "Pipelining" below). Variants 13-17 test L1-allocating
// register loads (a 128-byte line is read by two instructions, 64 bytes each), 22-24 32-key warp
// steps (decode_attention_rk32_kernel). Variants 27-35 (decode_attention_tma.cu) feed per-warp
// rings of page-sized shared-memory stages by TMA. Removed after measurement (RESULTS.md): 9-12,
// an L2 prefetch a few steps ahead (18-21, 25-26), persistent TMA CTAs (36-39).
//
// Shared memory (bf16, rows padded by 8 elements for conflict-free ldmatrix):
//   sQ [16][D+8]   sK [kStages][tile][D+8]   sV [kStages][tile][D+8];
//   merge: reuses sK as f32 [kWarps][16][D] + m/l.
#include <array>
#include <atomic>
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/mma.cuh"
#include "decode_attention_internal.cuh"

namespace nanoflow::cuda {
namespace {

using namespace dev;
using decode_detail::publish_and_store_merged;
using decode_detail::store_merged;

constexpr int kRows = 16;    // mma M: query heads of the group, zero-padded
constexpr float kLog2e = 1.4426950408889634f;

// Variants: warps per CTA (each takes 16 keys of a tile, so a tile is 16 * kWarps keys), stages of
// the cp.async ring (kStages - 1 tiles in flight while one is used), CTAs an SM holds.
template <int D, int kWarps, int kStages>
constexpr int smem_bytes() {
  return (kRows + 2 * kStages * 16 * kWarps) * (D + 8) * 2;
}

template <int D, int kWarps, int kStages, int kMinBlocks>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) decode_attention_kernel(DecodeAttentionParams p) {
  constexpr int kTile = 16 * kWarps;
  constexpr int kPitch = D + 8;
  constexpr int kChunks = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + kRows * kPitch;
  __nv_bfloat16* sV = sK + kStages * kTile * kPitch;

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.hq / p.hkv;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int kv = p.kv_len[seq];
  const int start = split * p.chunk_tokens;
  const int end = min(kv, start + p.chunk_tokens);
  const int n_tiles = end > start ? (end - start + kTile - 1) / kTile : 0;
  const int32_t* pages = p.page_ids + p.page_start[seq];
  const int64_t slot_stride = static_cast<int64_t>(p.hkv) * D;

  for (int i = tid; i < kRows * kChunks; i += kWarps * 32) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < G;
    const __nv_bfloat16* src = p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + (ok ? r : 0)) * D + c * 8;
    cp_async16(smem_u32(sQ + r * kPitch + c * 8), src, ok);
  }
  // Each thread copies the same 16-byte column c of rows r0, r0 + kRowStep, ... of a tile. The
  // tile's page ids are loaded first, all at once, so the cp.async addresses wait on one load
  // latency instead of one per copy.
  constexpr int kThreads = kWarps * 32;
  constexpr int kRowStep = kThreads / kChunks;
  constexpr int kRowsPerThread = kTile / kRowStep;
  static_assert(kThreads % kChunks == 0 && kTile % kRowStep == 0, "tile copy layout");
  const int c_col = tid % kChunks, r0 = tid / kChunks;
  auto load_tile = [&](int tile) {
    const int stage = tile % kStages;
    const int key_base = start + tile * kTile;  // a multiple of 16: tiles never straddle a page start
    int32_t pg[kRowsPerThread];
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int key = min(key_base + r0 + j * kRowStep, end - 1);
      pg[j] = __ldg(pages + (key >> 4));
    }
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int r = r0 + j * kRowStep;
      const int key = key_base + r;
      const bool ok = key < end;
      const int64_t off = (static_cast<int64_t>(pg[j]) * 16 + (key & 15)) * slot_stride +
                          static_cast<int64_t>(kvh) * D + c_col * 8;
      cp_async16(smem_u32(sK + (stage * kTile + r) * kPitch + c_col * 8), p.k_cache + off, ok);
      cp_async16(smem_u32(sV + (stage * kTile + r) * kPitch + c_col * 8), p.v_cache + off, ok);
    }
  };
  // Prologue: Q with tile 0 (one group), then tiles 1 .. kStages - 2 (possibly empty groups: the
  // count of committed groups stays uniform, so wait_group below is exact).
#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < n_tiles) load_tile(t);
    cp_async_commit();
  }

  uint32_t qa[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;
  const float sl2 = p.scale * kLog2e;

  for (int t = 0; t < n_tiles; ++t) {
    if (t + kStages - 1 < n_tiles) load_tile(t + kStages - 1);  // stage freed by the barrier ending t - 1
    cp_async_commit();
    cp_async_wait<kStages - 1>();           // tile t (and Q) have landed for this thread
    __syncthreads();                        // ... and for every thread
    if (t == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const int mtx = lane >> 3;
        ldsm_x4(smem_u32(sQ + ((lane & 7) + (mtx & 1) * 8) * kPitch + kk * 16 + (mtx >> 1) * 8), qa[kk][0],
                qa[kk][1], qa[kk][2], qa[kk][3]);
      }
    }
    const int stage = t % kStages;
    const __nv_bfloat16* tK = sK + (stage * kTile + warp * 16) * kPitch;
    const __nv_bfloat16* tV = sV + (stage * kTile + warp * 16) * kPitch;
    float s[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int k2 = 0; k2 < D / 32; ++k2) {
        uint32_t b0, b1, b2, b3;
        ldsm_x4(smem_u32(tK + (nt * 8 + (lane & 7)) * kPitch + k2 * 32 + (lane >> 3) * 8), b0, b1, b2, b3);
        mma_bf16(s[nt], qa[2 * k2], b0, b1);
        mma_bf16(s[nt], qa[2 * k2 + 1], b2, b3);
      }
    }
    const int key0 = start + t * kTile + warp * 16;
    float mx_lo = m_lo, mx_hi = m_hi;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + nt * 8 + (lane & 3) * 2 + (e & 1);
        s[nt][e] = key < end ? s[nt][e] * sl2 : -INFINITY;
      }
      mx_lo = fmaxf(mx_lo, fmaxf(s[nt][0], s[nt][1]));
      mx_hi = fmaxf(mx_hi, fmaxf(s[nt][2], s[nt][3]));
    }
    float use_lo, use_hi;
    online_softmax_rescale<D>(mx_lo, mx_hi, m_lo, m_hi, l_lo, l_hi, o, use_lo, use_hi);
    uint32_t pa[4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const float p0 = exp2f(s[nt][0] - use_lo), p1 = exp2f(s[nt][1] - use_lo);
      const float p2 = exp2f(s[nt][2] - use_hi), p3 = exp2f(s[nt][3] - use_hi);
      l_lo += p0 + p1;
      l_hi += p2 + p3;
      pa[nt * 2] = pack_bf16(p0, p1);
      pa[nt * 2 + 1] = pack_bf16(p2, p3);
    }
#pragma unroll
    for (int n2 = 0; n2 < D / 16; ++n2) {
      uint32_t b0, b1, b2, b3;
      const int mtx = lane >> 3;
      ldsm_x4_t(smem_u32(tV + ((lane & 7) + (mtx & 1) * 8) * kPitch + n2 * 16 + (mtx >> 1) * 8), b0, b1, b2, b3);
      mma_bf16(o[2 * n2], pa, b0, b1);
      mma_bf16(o[2 * n2 + 1], pa, b2, b3);
    }
    __syncthreads();  // stage t % kStages is refilled kStages - 1 iterations later
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the 4 warps' states (rows < G only) through shared memory.
#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
    l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
  }
  float* s_o = reinterpret_cast<float*>(sK);              // [4][16][D]
  float* s_m = s_o + kWarps * kRows * D;                  // [4][16]
  float* s_l = s_m + kWarps * kRows;                      // [4][16]
  const int r_lo = lane >> 2, col = (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < D / 8; ++i) {
    float* base = s_o + (warp * kRows) * D + i * 8 + col;
    base[r_lo * D] = o[i][0];
    base[r_lo * D + 1] = o[i][1];
    base[(r_lo + 8) * D] = o[i][2];
    base[(r_lo + 8) * D + 1] = o[i][3];
  }
  if ((lane & 3) == 0) {
    s_m[warp * kRows + r_lo] = m_lo;
    s_m[warp * kRows + r_lo + 8] = m_hi;
    s_l[warp * kRows + r_lo] = l_lo;
    s_l[warp * kRows + r_lo + 8] = l_hi;
  }
  __syncthreads();
  store_merged<D, kWarps, kRows>(p, s_o, s_m, s_l, split, kvh, seq, tid);
}

// ---------------------------------------------------------------------------------------------
// Register-fed variants (7+), built for small SM shares: K (and V, or V through a per-warp ring)
// go from global memory straight to registers, and every warp runs its own pipeline over its own
// keys with no CTA barrier until the final merge.
//
// Orientation: transposed against the kernel above. S^T = K Q^T takes 16 keys as the M rows and
// the heads of the group as N (8 per n-tile, kNT = 1 tile for G <= 8, 2 for G <= 16), and
// O^T = V^T P^T takes 16 head dims as M, the 16 keys as K and the heads as N. So the accumulators
// hold only 8 * kNT head columns (o: D / 16 m-tiles x kNT x 4 floats = 32 for D = 128, G <= 8)
// instead of 16 mostly-empty rows.
//
// A warp step is 16 keys, always inside one page (split starts are multiples of 64, so step
// starts are multiples of 16). Step i of a split belongs to warp i % kWarps. Lane l has
// p = l / 4 (mma groupID) and c = l % 4 (thread in group). Fragment layouts (PTX ISA, m16n8k16):
//   A (16x16, row): reg0 = A[p][2c,2c+1], reg1 = A[p+8][2c,2c+1], reg2 = A[p][2c+8,+9], reg3 = A[p+8][2c+8,+9]
//   B (16x8, col) : reg0 = B[2c,2c+1][p], reg1 = B[2c+8,2c+9][p]
//   C (16x8)      : c0,c1 = C[p][2c,2c+1], c2,c3 = C[p+8][2c,2c+1]
//
// K -> A of S^T, loaded with 16-byte loads. Lane (p, c) loads, for half hf in {0, 1} (key
// p + 8 hf of the step) and j in [0, D/32), the 8 dims of chunk j*4 + c: kb[hf][j] = words w0..w3,
// word w holding dims (j*4+c)*8 + 2w, +1. The dot product over dims does not care about their
// order, so k-step kk = 2j + h (h in {0, 1}) of the mma uses, for lane c, k-slots 2c,2c+1 = dims
// (j*4+c)*8 + 4h + {0,1} (word 2h) and k-slots 2c+8,2c+9 = dims (j*4+c)*8 + 4h + {2,3} (word 2h+1):
//   A regs for kk = { kb[0][j].w[2h], kb[1][j].w[2h], kb[0][j].w[2h+1], kb[1][j].w[2h+1] }.
// Q -> B of S^T with the same permutation: lane (p, c) loads head nt*8 + p, chunk j*4 + c into
// qf[nt][j]; B regs for kk = { qf[nt][j].w[2h], qf[nt][j].w[2h+1] } (k-slots of lane c match A).
// K comes from global memory with no shared-memory pass. Q is held in registers, or (kQSmem, to
// free 16 registers for D = 128) in shared memory sQ [8 kNT][D + 32] and read back with one 16-byte
// load per k-step pair (pitch D + 32: the two head rows of a quarter-warp phase fall in disjoint banks).
//
// S^T accumulators: s[nt][0] = (key p, head 2c), [1] = (key p, head 2c+1), [2] = (key p+8, head 2c),
// [3] = (key p+8, head 2c+1). Softmax runs per head column: reduce over the 8 lanes of equal c
// (xor 4, 8, 16).
// P^T -> B of O^T: the 8x8 block of keys 0-7 x heads 0-7 is held as C-layout rows (lane: key p,
// heads 2c,2c+1) = pack(P[0], P[1]); movmatrix.trans turns it into (keys 2c,2c+1; head p), which is
// exactly B reg0 with the K index = key of the step. Keys 8-15: pack(P[2], P[3]) -> B reg1.
//
// V^T -> A of O^T, two ways (template kVStages):
//  kVStages == 0, V in registers: loaded like K (vb[hf][j]). Word w of vb[hf][j] is row p, columns
//    2c,2c+1 of the 8x8 block (j, w) of keys (8 hf .. 8 hf + 7) x dims {(j*4+q/2)*8 + 2w + q%2, q < 8};
//    movmatrix.trans gives lane (p, c): block row p = dim (j*4+p/2)*8 + 2w + p%2, keys 2c,2c+1 (+8 hf).
//    M-tile t = 2j + ih pairs block (j, 2ih) (rows p) with block (j, 2ih+1) (rows p+8):
//      A regs = { T(vb[0][j].w[2ih]), T(vb[0][j].w[2ih+1]), T(vb[1][j].w[2ih]), T(vb[1][j].w[2ih+1]) },
//    so O^T row p of m-tile t is dim (j*4 + p/2)*8 + 4ih + (p&1), row p+8 is that + 2 (o_dim,
//    decode_attention_internal.cuh).
//  kVStages >= 2: a per-warp cp.async ring of kVStages steps [kVStages][16 keys][D + 8] in shared
//    memory, read by ldmatrix.x4.trans: matrix m (lanes 8m..8m+7 give row addresses) = keys
//    (m >> 1) * 8 + (l & 7), dims 16t + (m & 1) * 8, so m-tile t is dims 16t .. 16t+15 in order.
// O^T accumulators: o[nt][t][0] = (dim row p, head 2c), [1] = (row p, head 2c+1), [2] = (row p+8,
// head 2c), [3] = (row p+8, head 2c+1).
//
// Pipelining: a ring of kDepth register buffers per warp; the loads of step i + kDepth are issued
// into the buffer of step i as soon as step i's mma has read it (K after S, V after PV). But ptxas
// tracks all these loads on one scoreboard and makes a register's reader wait for it to drain
// (SASS: every LDG writes SB5, readers wait on SB5), so a wait covers every load issued before it:
// K kDepth > 1 steps ahead still lands one step ahead, and with one V register buffer the V wait
// drains the K load issued after S. Register mode with kDepth = 2 therefore issues step i + 1 into
// the other buffers right after S of step i (see the loop). The cp.async V ring is exempt
// (wait_group counts groups). Page ids come in windows of 32 steps (one per lane), consumed once
// per window and broadcast by shuffle.

// Register loads of K/V rows that allocate in L1 (kL1 variants). A lane's 16-byte load covers a
// quarter of a 128-byte line half per instruction (4 lanes x 16 B of a 256-byte row), so a line is
// fetched by two instructions; with L1::no_allocate each half is its own L2 request, while an
// allocating load lets the second one hit the line the first one has pending.
__device__ __forceinline__ uint4 ld_l1(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// Page ids of the steps warp, warp + kWarps, ... of a split, 32 at a time (lane i holds the
// (32 * window + i)-th). A step is kSub 16-key blocks (one page each); entry e is block e % kSub
// of the warp's step e / kSub. Blocks past the split read page 0 (their keys are masked). Calls
// must come with warp-uniform e.
template <int kWarps, int kSub = 1>
struct PageWindow {
  const int32_t* pages;  // page ids of the split's first block onwards
  int n_blocks;          // 16-key blocks of the split
  int ids = 0, window = -1;
  __device__ __forceinline__ int get(int li, int lane) {
    if ((li >> 5) != window) {
      window = li >> 5;
      const int e = window * 32 + lane;
      const int block = kSub * (static_cast<int>(threadIdx.x >> 5) + kWarps * (e / kSub)) + e % kSub;
      ids = block < n_blocks ? __ldg(pages + block) : 0;
      // Consume the load here, once per window. ptxas puts every global load of the kernel on one
      // scoreboard and waits for it to drain; a shuffle reading `ids` straight from the load would
      // wait, every step, for the K/V loads issued since (the register-fed pipeline collapses).
      ids = __shfl_sync(0xffffffffu, ids, lane);
    }
    return __shfl_sync(0xffffffffu, ids, li & 31);
  }
};

// Shared memory of the register-fed kernel: the V ring (or, after the loop, the merge scratch),
// then sQ when kQSmem.
template <int D, int kNT, int kWarps, int kVStages>
constexpr int rk_ring_bytes() {
  const int merge = (kWarps * 8 * kNT * D + 2 * kWarps * 8 * kNT) * 4;
  const int ring = kWarps * kVStages * 16 * (D + 8) * 2;
  return merge > ring ? merge : ring;
}
template <int D, int kNT, int kWarps, int kVStages, bool kQSmem>
constexpr int rk_smem_bytes() {
  return rk_ring_bytes<D, kNT, kWarps, kVStages>() + (kQSmem ? 8 * kNT * (D + 32) * 2 : 0);
}

template <int D, int kNT, int kWarps, int kDepth, int kVStages, bool kQSmem, int kMinBlocks, bool kL1>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) decode_attention_rk_kernel(DecodeAttentionParams p) {
  constexpr bool kVRegs = kVStages == 0;
  constexpr int kJ = D / 32;      // 16-byte loads per key row per lane (4 lanes a row)
  constexpr int kMT = D / 16;     // m-tiles of O^T
  constexpr int kSlots = 8 * kNT; // head columns
  constexpr int kPitch = D + 8;   // V ring row, bf16 (16-byte skew: conflict-free ldmatrix)
  static_assert(kVStages == 0 || kVStages >= 2, "V ring needs >= 2 stages");
  extern __shared__ __align__(16) unsigned char smem_raw[];

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.hq / p.hkv;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int pr = lane >> 2, c = lane & 3;
  const int kv = p.kv_len[seq];
  const int start = split * p.chunk_tokens;  // a multiple of 64
  const int end = min(kv, start + p.chunk_tokens);
  const int n_steps = end > start ? (end - start + 15) / 16 : 0;
  const int n_mine = n_steps > warp ? (n_steps - warp + kWarps - 1) / kWarps : 0;  // steps warp + kWarps*li
  const int64_t slot_stride = static_cast<int64_t>(p.hkv) * D;  // elements between slots
  const int32_t* split_pages = p.page_ids + p.page_start[seq] + start / 16;
  // In 16-byte units from a page's start: chunk c of slot pr of this kv head (+ j * 4 for chunk
  // j*4 + c, + 8 slots for key pr + 8); see load_rows.
  const int lane_off = (pr * p.hkv + kvh) * (D / 8) + c;

  // Q as B fragments (permuted dims, see above); heads >= G are zero.
  constexpr int kQPitch = D + 32;
  uint4* sQ = reinterpret_cast<uint4*>(smem_raw + rk_ring_bytes<D, kNT, kWarps, kVStages>());  // [kSlots][kQPitch / 8]
  uint4 qf[kQSmem ? 1 : kNT][kJ];
  if constexpr (kQSmem) {
    for (int i = tid; i < kSlots * (D / 8); i += kWarps * 32) {
      const int g = i / (D / 8), ch = i % (D / 8);
      sQ[g * (kQPitch / 8) + ch] =
          g < G ? __ldg(reinterpret_cast<const uint4*>(p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + g) * D) + ch)
                : make_uint4(0, 0, 0, 0);
    }
    __syncthreads();
  } else {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      const int g = nt * 8 + pr;
      const __nv_bfloat16* qrow = p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + min(g, G - 1)) * D + c * 8;
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        qf[nt][j] = g < G ? __ldg(reinterpret_cast<const uint4*>(qrow + j * 32)) : make_uint4(0, 0, 0, 0);
      }
    }
  }
  // Lane's Q words for n-tile nt, chunk j * 4 + c.
  auto q_of = [&](int nt, int j) -> uint4 {
    if constexpr (kQSmem) {
      return sQ[(nt * 8 + pr) * (kQPitch / 8) + j * 4 + c];
    } else {
      return qf[nt][j];
    }
  };

  PageWindow<kWarps> win_k{split_pages, n_steps};
  PageWindow<kWarps> win_v{split_pages, n_steps};  // V may run ahead of K (ring mode)
  uint4 kb[kDepth][2][kJ];
  uint4 vb[kVRegs ? kDepth : 1][2][kJ];
  auto load_rows = [&](const __nv_bfloat16* cache, int pg, uint4 (&buf)[2][kJ]) {
    const uint4* page = reinterpret_cast<const uint4*>(cache) + static_cast<int64_t>(pg) * 16 * p.hkv * (D / 8);
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const uint4* src = page + lane_off + hf * 8 * p.hkv * (D / 8) + j * 4;
        buf[hf][j] = kL1 ? ld_l1(src) : ld_stream(src);
      }
    }
  };
  // V ring (ring mode): this warp's [kVStages][16][kPitch].
  __nv_bfloat16* sV = reinterpret_cast<__nv_bfloat16*>(smem_raw) + warp * kVStages * 16 * kPitch;
  auto issue_v_ring = [&](int li) {
    const int pg = win_v.get(li, lane);
    const int key0 = start + 16 * (warp + kWarps * li);
    __nv_bfloat16* dst = sV + (li % (kVStages > 0 ? kVStages : 1)) * 16 * kPitch;
    constexpr int kChunks = D / 8;
#pragma unroll
    for (int i = 0; i < 16 * kChunks / 32; ++i) {
      const int idx = i * 32 + lane, row = idx / kChunks, ch = idx % kChunks;
      const int64_t off = (static_cast<int64_t>(pg) * 16 + row) * slot_stride + static_cast<int64_t>(kvh) * D + ch * 8;
      cp_async16(smem_u32(dst + row * kPitch + ch * 8), p.v_cache + off, key0 + row < end);
    }
  };

  // Prologue: the first kDepth steps (register mode with two buffers: the first step; see the loop).
  static_assert(!kVRegs || kDepth <= 2, "register mode: one or two buffers");
  constexpr int kLead = kVRegs && kDepth == 2 ? 1 : kDepth;
#pragma unroll
  for (int r = 0; r < kLead; ++r) {
    if (r < n_mine) {
      const int pg = win_k.get(r, lane);
      load_rows(p.k_cache, pg, kb[r]);
      if constexpr (kVRegs) load_rows(p.v_cache, pg, vb[r]);
    }
  }
  if constexpr (!kVRegs) {
#pragma unroll
    for (int r = 0; r < kVStages - 1; ++r) {
      if (r < n_mine) issue_v_ring(r);
      cp_async_commit();  // possibly empty: the group count stays uniform for wait_group
    }
  }

  float o[kNT][kMT][4];
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
    for (int t = 0; t < kMT; ++t) o[nt][t][0] = o[nt][t][1] = o[nt][t][2] = o[nt][t][3] = 0.f;
  float m[kNT][2], l[kNT][2];  // per head column 2c + e of n-tile nt (log2 domain)
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) m[nt][0] = m[nt][1] = -INFINITY, l[nt][0] = l[nt][1] = 0.f;
  const float sl2 = p.scale * kLog2e;

  for (int li0 = 0; li0 < n_mine; li0 += kDepth) {
#pragma unroll
    for (int r = 0; r < kDepth; ++r) {
      const int li = li0 + r;
      if (li >= n_mine) break;
      if constexpr (!kVRegs) {
        __syncwarp();  // every lane is done reading the stage that step li - 1 used
        if (li + kVStages - 1 < n_mine) issue_v_ring(li + kVStages - 1);
        cp_async_commit();
      }
      const int key0 = start + 16 * (warp + kWarps * li);

      // S^T = K Q^T over D / 16 permuted k-steps.
      float s[kNT][4];
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        uint4 qj[kNT];
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) qj[nt] = q_of(nt, j);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t a[4] = {word(kb[r][0][j], 2 * h), word(kb[r][1][j], 2 * h), word(kb[r][0][j], 2 * h + 1),
                                 word(kb[r][1][j], 2 * h + 1)};
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_bf16(s[nt], a, word(qj[nt], 2 * h), word(qj[nt], 2 * h + 1));
        }
      }
      // ptxas puts every global load on one scoreboard, and a register's first reader waits for
      // that scoreboard to drain: for all loads issued so far, not just its own. So with V in
      // registers and two buffers, step li + 1 is issued here, after S has drained the scoreboard
      // for step li (both K and V of it), into the buffers step li - 1 freed, and lands while
      // step li computes. (Issuing step li + 2 would make the next drain wait for it.)
      if constexpr (!kVRegs || kDepth == 1) {
        if (li + kDepth < n_mine) load_rows(p.k_cache, win_k.get(li + kDepth, lane), kb[r]);
      } else {
        if (li + 1 < n_mine) {
          const int pg = win_k.get(li + 1, lane);
          load_rows(p.k_cache, pg, kb[r ^ 1]);
          load_rows(p.v_cache, pg, vb[r ^ 1]);
        }
      }

      // Online softmax per head column; keys >= end are masked (their K may be stale slots).
      const bool ok0 = key0 + pr < end, ok1 = key0 + pr + 8 < end;
      uint32_t pb[kNT][2];
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        float pv[4];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float s_lo = ok0 ? s[nt][e] * sl2 : -INFINITY;
          const float s_hi = ok1 ? s[nt][e + 2] * sl2 : -INFINITY;
          float mx = fmaxf(s_lo, s_hi);
#pragma unroll
          for (int off = 4; off <= 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
          mx = fmaxf(mx, m[nt][e]);
          const float use = mx == -INFINITY ? 0.f : mx;  // a fully masked column stays zero, not NaN
          const float corr = exp2f(m[nt][e] - use);
          m[nt][e] = mx;
          pv[e] = exp2f(s_lo - use);
          pv[e + 2] = exp2f(s_hi - use);
          l[nt][e] = fmaf(l[nt][e], corr, pv[e] + pv[e + 2]);
#pragma unroll
          for (int t = 0; t < kMT; ++t) {
            o[nt][t][e] *= corr;
            o[nt][t][e + 2] *= corr;
          }
        }
        pb[nt][0] = movmatrix_t(pack_bf16(pv[0], pv[1]));  // keys 2c, 2c+1; head p
        pb[nt][1] = movmatrix_t(pack_bf16(pv[2], pv[3]));  // keys 2c+8, 2c+9; head p
      }

      // O^T += V^T P^T.
      if constexpr (kVRegs) {
        if (key0 + 16 > end) {  // tail step: slots past the end may hold anything (NaN * 0 = NaN)
#pragma unroll
          for (int j = 0; j < kJ; ++j) {
            if (!ok0) vb[r][0][j] = make_uint4(0, 0, 0, 0);
            if (!ok1) vb[r][1][j] = make_uint4(0, 0, 0, 0);
          }
        }
#pragma unroll
        for (int t = 0; t < kMT; ++t) {
          const int j = t >> 1, ih = t & 1;
          const uint32_t a[4] = {movmatrix_t(word(vb[r][0][j], 2 * ih)), movmatrix_t(word(vb[r][0][j], 2 * ih + 1)),
                                 movmatrix_t(word(vb[r][1][j], 2 * ih)), movmatrix_t(word(vb[r][1][j], 2 * ih + 1))};
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_bf16(o[nt][t], a, pb[nt][0], pb[nt][1]);
        }
        if constexpr (kDepth == 1) {
          if (li + 1 < n_mine) load_rows(p.v_cache, win_k.get(li + 1, lane), vb[r]);
        }
      } else {
        cp_async_wait<kVStages - 1>();  // this lane's copies of step li have landed
        __syncwarp();                   // ... and every lane's
        const __nv_bfloat16* tV = sV + (li % kVStages) * 16 * kPitch;
        const int mtx = lane >> 3;
        const __nv_bfloat16* lane_row = tV + ((lane & 7) + (mtx >> 1) * 8) * kPitch + (mtx & 1) * 8;
#pragma unroll
        for (int t = 0; t < kMT; ++t) {
          uint32_t a[4];
          ldsm_x4_t(smem_u32(lane_row + 16 * t), a[0], a[1], a[2], a[3]);
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_bf16(o[nt][t], a, pb[nt][0], pb[nt][1]);
        }
      }
    }
  }
  if constexpr (!kVRegs) cp_async_wait<0>();
  __syncthreads();  // the ring becomes the merge scratch
  publish_and_store_merged<D, kWarps, kNT, kVRegs>(p, reinterpret_cast<float*>(smem_raw), o, m, l, split, kvh, seq,
                                                   tid);
}

// 32-key steps (variants 22-24): the register-fed ring-mode kernel above with G <= 8 (one n-tile),
// Q in registers, and each warp step covering two 16-key blocks (two pages): K of both blocks in
// registers (64 per lane, loaded one step ahead), V through a per-warp cp.async ring of
// kVStages 32-row stages. Per 32 keys it pays one max/sum shuffle reduction, one rescale (skipped
// when no column's max moved: warp-uniform branch) and one scoreboard drain instead of two, and
// the two blocks' S chains interleave. Fragment layouts as in decode_attention_rk_kernel.
template <int D, int kWarps, int kVStages, int kMinBlocks, bool kL1>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) decode_attention_rk32_kernel(DecodeAttentionParams p) {
  constexpr int kSub = 2;         // 16-key blocks a step
  constexpr int kJ = D / 32;      // 16-byte loads per key row per lane
  constexpr int kMT = D / 16;     // m-tiles of O^T
  constexpr int kPitch = D + 8;   // V ring row, bf16
  constexpr int kRows = 16 * kSub;
  static_assert(kVStages >= 2, "V ring needs >= 2 stages");
  extern __shared__ __align__(16) unsigned char smem_raw[];

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = p.hq / p.hkv;  // <= 8
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int pr = lane >> 2, c = lane & 3;
  const int kv = p.kv_len[seq];
  const int start = split * p.chunk_tokens;  // a multiple of 64, so steps start at multiples of 32
  const int end = min(kv, start + p.chunk_tokens);
  const int n_blocks = end > start ? (end - start + 15) / 16 : 0;
  const int n_steps = (n_blocks + kSub - 1) / kSub;
  const int n_mine = n_steps > warp ? (n_steps - warp + kWarps - 1) / kWarps : 0;  // steps warp + kWarps*li
  const int64_t slot_stride = static_cast<int64_t>(p.hkv) * D;
  const int32_t* split_pages = p.page_ids + p.page_start[seq] + start / 16;
  const int lane_off = (pr * p.hkv + kvh) * (D / 8) + c;

  uint4 qf[kJ];  // head pr, chunks j * 4 + c (zero for heads >= G)
  {
    const __nv_bfloat16* qrow = p.q + (static_cast<int64_t>(seq) * p.hq + kvh * G + min(pr, G - 1)) * D + c * 8;
#pragma unroll
    for (int j = 0; j < kJ; ++j) qf[j] = pr < G ? __ldg(reinterpret_cast<const uint4*>(qrow + j * 32)) : make_uint4(0, 0, 0, 0);
  }

  PageWindow<kWarps, kSub> win_k{split_pages, n_blocks};
  PageWindow<kWarps, kSub> win_v{split_pages, n_blocks};
  uint4 kb[kSub][2][kJ];  // [block][key pr / pr + 8][chunk j * 4 + c]
  auto load_k = [&](int li) {
#pragma unroll
    for (int b = 0; b < kSub; ++b) {
      const int pg = win_k.get(kSub * li + b, lane);
      const uint4* page = reinterpret_cast<const uint4*>(p.k_cache) + static_cast<int64_t>(pg) * 16 * p.hkv * (D / 8);
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
#pragma unroll
        for (int j = 0; j < kJ; ++j) {
          const uint4* src = page + lane_off + hf * 8 * p.hkv * (D / 8) + j * 4;
          kb[b][hf][j] = kL1 ? ld_l1(src) : ld_stream(src);
        }
      }
    }
  };
  // V ring: this warp's [kVStages][kRows][kPitch].
  __nv_bfloat16* sV = reinterpret_cast<__nv_bfloat16*>(smem_raw) + warp * kVStages * kRows * kPitch;
  auto issue_v_ring = [&](int li) {
    const int pg0 = win_v.get(kSub * li, lane), pg1 = win_v.get(kSub * li + 1, lane);
    const int key0 = start + kRows * (warp + kWarps * li);
    __nv_bfloat16* dst = sV + (li % kVStages) * kRows * kPitch;
    constexpr int kChunks = D / 8;
#pragma unroll
    for (int i = 0; i < kRows * kChunks / 32; ++i) {
      const int idx = i * 32 + lane, row = idx / kChunks, ch = idx % kChunks;
      const int pg = row < 16 ? pg0 : pg1;
      const int64_t off = (static_cast<int64_t>(pg) * 16 + (row & 15)) * slot_stride + static_cast<int64_t>(kvh) * D + ch * 8;
      cp_async16(smem_u32(dst + row * kPitch + ch * 8), p.v_cache + off, key0 + row < end);
    }
  };

  if (n_mine > 0) load_k(0);
#pragma unroll
  for (int r = 0; r < kVStages - 1; ++r) {
    if (r < n_mine) issue_v_ring(r);
    cp_async_commit();  // possibly empty: the group count stays uniform for wait_group
  }

  float o[kMT][4];
#pragma unroll
  for (int t = 0; t < kMT; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // head columns 2c, 2c + 1 (log2 domain)
  const float sl2 = p.scale * kLog2e;

  for (int li = 0; li < n_mine; ++li) {
    __syncwarp();  // every lane is done reading the stage that step li - 1 used
    if (li + kVStages - 1 < n_mine) issue_v_ring(li + kVStages - 1);
    cp_async_commit();
    const int key0 = start + kRows * (warp + kWarps * li);

    // S^T of both blocks; their mma chains are independent.
    float s[kSub][4];
#pragma unroll
    for (int b = 0; b < kSub; ++b) s[b][0] = s[b][1] = s[b][2] = s[b][3] = 0.f;
#pragma unroll
    for (int j = 0; j < kJ; ++j) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int b = 0; b < kSub; ++b) {
          const uint32_t a[4] = {word(kb[b][0][j], 2 * h), word(kb[b][1][j], 2 * h), word(kb[b][0][j], 2 * h + 1),
                                 word(kb[b][1][j], 2 * h + 1)};
          mma_bf16(s[b], a, word(qf[j], 2 * h), word(qf[j], 2 * h + 1));
        }
      }
    }
    if (li + 1 < n_mine) load_k(li + 1);  // lands while this step's softmax and PV run

    // Online softmax per head column over the step's 32 keys (rows >= end masked).
    float pv[kSub][4];
    float corr[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float mx = m[e];
#pragma unroll
      for (int b = 0; b < kSub; ++b) {
        const int kb0 = key0 + 16 * b + pr;
        s[b][e] = kb0 < end ? s[b][e] * sl2 : -INFINITY;
        s[b][e + 2] = kb0 + 8 < end ? s[b][e + 2] * sl2 : -INFINITY;
        mx = fmaxf(mx, fmaxf(s[b][e], s[b][e + 2]));
      }
#pragma unroll
      for (int off = 4; off <= 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float use = mx == -INFINITY ? 0.f : mx;  // a fully masked column stays zero, not NaN
      corr[e] = exp2f(m[e] - use);
      m[e] = mx;
      float sum = 0.f;
#pragma unroll
      for (int b = 0; b < kSub; ++b) {
        pv[b][e] = exp2f(s[b][e] - use);
        pv[b][e + 2] = exp2f(s[b][e + 2] - use);
        sum += pv[b][e] + pv[b][e + 2];
      }
      l[e] = fmaf(l[e], corr[e], sum);
    }
    if (__any_sync(0xffffffffu, corr[0] != 1.f || corr[1] != 1.f)) {  // some column's max moved
#pragma unroll
      for (int t = 0; t < kMT; ++t) {
        o[t][0] *= corr[0];
        o[t][1] *= corr[1];
        o[t][2] *= corr[0];
        o[t][3] *= corr[1];
      }
    }
    uint32_t pb[kSub][2];
#pragma unroll
    for (int b = 0; b < kSub; ++b) {
      pb[b][0] = movmatrix_t(pack_bf16(pv[b][0], pv[b][1]));  // keys 2c, 2c+1 of block b; head p
      pb[b][1] = movmatrix_t(pack_bf16(pv[b][2], pv[b][3]));  // keys 2c+8, 2c+9
    }

    // O^T += V^T P^T, one 16-key block at a time.
    cp_async_wait<kVStages - 1>();  // this lane's copies of step li have landed
    __syncwarp();                   // ... and every lane's
    const __nv_bfloat16* tV = sV + (li % kVStages) * kRows * kPitch;
    const int mtx = lane >> 3;
#pragma unroll
    for (int b = 0; b < kSub; ++b) {
      const __nv_bfloat16* lane_row = tV + (16 * b + (lane & 7) + (mtx >> 1) * 8) * kPitch + (mtx & 1) * 8;
#pragma unroll
      for (int t = 0; t < kMT; ++t) {
        uint32_t a[4];
        ldsm_x4_t(smem_u32(lane_row + 16 * t), a[0], a[1], a[2], a[3]);
        mma_bf16(o[t], a, pb[b][0], pb[b][1]);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the ring becomes the merge scratch
  publish_and_store_merged<D, kWarps, 1, false>(p, reinterpret_cast<float*>(smem_raw), &o, &m, &l, split, kvh, seq, tid);
}

// One CTA per (head, sequence), head_dim threads: out = sum_i w_i o_i / sum_i w_i, w_i = 2^(lse_i - max).
__global__ void decode_attention_merge_kernel(DecodeAttentionParams p) {
  const int h = blockIdx.x, seq = blockIdx.y, d = threadIdx.x;
  const int64_t ph0 = (static_cast<int64_t>(seq) * p.hq + h) * p.num_splits;
  const float* lse = p.workspace + static_cast<int64_t>(p.num_seqs) * p.hq * p.num_splits * p.head_dim;
  float M = -INFINITY;
  for (int i = 0; i < p.num_splits; ++i) M = fmaxf(M, lse[ph0 + i]);
  float W = 0.f, O = 0.f;
  if (M != -INFINITY) {
    for (int i = 0; i < p.num_splits; ++i) {
      const float w = exp2f(lse[ph0 + i] - M);  // 0 for empty splits (lse = -inf)
      W += w;
      O = fmaf(w, p.workspace[(ph0 + i) * p.head_dim + d], O);
    }
  }
  p.out[(static_cast<int64_t>(seq) * p.hq + h) * p.head_dim + d] = __float2bfloat16(W > 0.f ? O / W : 0.f);
}

template <int D, int kWarps, int kStages, int kMinBlocks>
cudaError_t launch_v(const DecodeAttentionParams& p, cudaStream_t stream) {
  constexpr int smem = smem_bytes<D, kWarps, kStages>();
  static_assert(smem >= (kWarps * kRows * D + 2 * kWarps * kRows) * 4, "merge scratch fits");
  auto kernel = decode_attention_kernel<D, kWarps, kStages, kMinBlocks>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(p.num_splits, p.hkv, p.num_seqs), kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

template <int D, int kNT, int kWarps, int kDepth, int kVStages, bool kQSmem, int kMinBlocks, bool kL1>
cudaError_t launch_rk_nt(const DecodeAttentionParams& p, cudaStream_t stream) {
  constexpr int smem = rk_smem_bytes<D, kNT, kWarps, kVStages, kQSmem>();
  auto kernel = decode_attention_rk_kernel<D, kNT, kWarps, kDepth, kVStages, kQSmem, kMinBlocks, kL1>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(p.num_splits, p.hkv, p.num_seqs), kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

// Register-fed kernel: one n-tile of heads for G <= 8; for G <= 16 two (twice the accumulators),
// with Q in shared memory, one step of register depth and half the CTAs per SM, so it fits
// without spills (G > 8 is rare; not tuned).
template <int D, int kWarps, int kDepth, int kVStages, bool kQSmem, int kMinBlocks, bool kL1 = false>
cudaError_t launch_rk(const DecodeAttentionParams& p, cudaStream_t stream) {
  if (p.hq / p.hkv <= 8) return launch_rk_nt<D, 1, kWarps, kDepth, kVStages, kQSmem, kMinBlocks, kL1>(p, stream);
  return launch_rk_nt<D, 2, kWarps, 1, kVStages, true, (kMinBlocks + 1) / 2, kL1>(p, stream);
}

// 32-key steps; G > 8 takes the 16-key kernel's two-n-tile path.
template <int D, int kWarps, int kVStages, int kMinBlocks, bool kL1>
cudaError_t launch_rk32(const DecodeAttentionParams& p, cudaStream_t stream) {
  if (p.hq / p.hkv > 8) return launch_rk<D, kWarps, 1, kVStages, true, kMinBlocks, kL1>(p, stream);
  constexpr int ring = kWarps * kVStages * 32 * (D + 8) * 2;
  constexpr int merge = (kWarps * 8 * D + 2 * kWarps * 8) * 4;
  constexpr int smem = ring > merge ? ring : merge;
  auto kernel = decode_attention_rk32_kernel<D, kWarps, kVStages, kMinBlocks, kL1>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(p.num_splits, p.hkv, p.num_seqs), kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

// The one dispatch point of the variants (STYLE.md): 0 = the default, measured best. Removed
// numbers (decode_attention_variant_removed) are not reused: like any unknown number they return
// cudaErrorInvalidValue here (decode_attention refuses them by name first).
template <int D>
cudaError_t launch_d(const DecodeAttentionParams& p, cudaStream_t stream) {
  switch (p.variant) {
    case 1: return launch_v<D, 4, 3, 2>(p, stream);   // 64-key tiles, 2 in flight, 2 CTAs/SM
    case 2: return launch_v<D, 4, 6, 1>(p, stream);   // 64-key tiles, 5 in flight, 1 CTA/SM
    case 3: return launch_v<D, 2, 6, 2>(p, stream);   // 32-key tiles, 5 in flight, 2 CTAs/SM
    case 4: return launch_v<D, 2, 12, 1>(p, stream);  // 32-key tiles, 11 in flight, 1 CTA/SM
    case 5: return launch_v<D, 4, 2, 3>(p, stream);   // 64-key tiles, 1 in flight, 3 CTAs/SM
    case 6: return launch_v<D, 2, 4, 4>(p, stream);   // 32-key tiles, 3 in flight, 4 CTAs/SM
    // Register-fed, warp-independent (decode_attention_rk_kernel): <warps, register depth, V ring
    // stages (0 = V in registers via movmatrix), Q in smem, CTAs/SM>; 16-key steps per warp.
    case 7: return launch_rk<D, 4, 1, 2, false, 4>(p, stream);   // K in regs, V ring 2 stages, 16 warps/SM
    case 8: return launch_rk<D, 4, 1, 0, false, 3>(p, stream);   // K+V in regs, 1 step ahead, 12 warps/SM
    // As above with K/V register loads allocating in L1 (ld_l1): a 128-byte line is read by two
    // load instructions, which then cost one L2 request instead of two.
    // 13 is the default on the whole GPU (H200, 256 seqs x 2k, 32/8 heads x 128: 100.7% of HBM
    // copy; 5, the old default: 96.8%); on an SM share launch_decode_attention picks TMA variant 33.
    case 0:
    case 13: return launch_rk<D, 4, 1, 2, false, 4, true>(p, stream);  // 7 + L1 loads
    case 14: return launch_rk<D, 4, 1, 0, false, 3, true>(p, stream);  // 8 + L1 loads
    case 15: return launch_rk<D, 4, 2, 0, false, 2, true>(p, stream);  // K+V in regs, 2 buffers (1 step ahead, issued before PV), L1 loads, 8 warps/SM
    // K in regs, V ring 3 stages, 12 warps/SM: 157 KB of shared memory an SM instead of the 209 KB
    // of the removed 9 (probe: does the L1 left beside shared memory limit the loads in flight?).
    case 16: return launch_rk<D, 4, 1, 3, false, 3>(p, stream);
    case 17: return launch_rk<D, 4, 2, 2, false, 3, true>(p, stream);  // K 2 buffers, V ring 2 stages, L1 loads, 12 warps/SM
    // 32-key steps (decode_attention_rk32_kernel): <warps, V ring stages, CTAs/SM, L1 loads>.
    case 22: return launch_rk32<D, 4, 2, 2, false>(p, stream);  // 8 warps/SM, 139 KB smem/SM (as 7)
    case 23: return launch_rk32<D, 4, 2, 3, false>(p, stream);  // 12 warps/SM, 209 KB smem/SM
    case 24: return launch_rk32<D, 4, 2, 3, true>(p, stream);   // 23 + L1 loads
    // TMA-fed warp rings (decode_attention_tma.cu, which picks the shape per variant); where a call
    // cannot take them (pool size unknown, G > 8), the default runs instead.
    case 27:
    case 28:
    case 29:
    case 30:
    case 31:
    case 32:
    case 33:
    case 34:
    case 35:
      if (decode_attention_tma_supported(p)) return launch_decode_attention_tma(p, stream);
      return launch_rk<D, 4, 1, 2, false, 4, true>(p, stream);  // as 13
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

namespace decode_detail {

cudaError_t device_sm_count(int* n) {
  static std::array<std::atomic<int>, 64> cache{};
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  const bool cached = dev >= 0 && dev < static_cast<int>(cache.size());
  *n = cached ? cache[static_cast<size_t>(dev)].load(std::memory_order_relaxed) : 0;
  if (*n > 0) return cudaSuccess;
  e = cudaDeviceGetAttribute(n, cudaDevAttrMultiProcessorCount, dev);
  if (e == cudaSuccess && cached) cache[static_cast<size_t>(dev)].store(*n, std::memory_order_relaxed);
  return e;
}

}  // namespace decode_detail

cudaError_t launch_decode_attention(const DecodeAttentionParams& params, cudaStream_t stream) {
  if (params.num_seqs == 0) return cudaSuccess;
  // The default (variant 0) by where the call runs, each the best measured there (H200, 256 seqs
  // x 2k, docs/perf/RESULTS.md): on the whole GPU variant 13 (101% of HBM copy; TMA variant 33:
  // 92%); on a share of the SMs (sm_count below the device's) the TMA ring of variant 33 (24 SMs:
  // 72% of a streaming read on the same share; 13: 53%), where the pool's extent is known.
  DecodeAttentionParams p = params;
  int device_sms = 0;
  if (p.variant == 0 && p.sm_count > 0 && decode_detail::device_sm_count(&device_sms) == cudaSuccess &&
      p.sm_count < device_sms && decode_attention_tma_supported(p)) {
    p.variant = 33;
  }
  cudaError_t e = p.head_dim == 128 ? launch_d<128>(p, stream)
                  : p.head_dim == 64 ? launch_d<64>(p, stream)
                                     : cudaErrorInvalidValue;
  if (e != cudaSuccess || p.num_splits == 1) return e;
  decode_attention_merge_kernel<<<dim3(p.hq, p.num_seqs), p.head_dim, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace nanoflow::cuda
