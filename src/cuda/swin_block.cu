// swin_block: a whole Swin Transformer block in one kernel, one thread block
// per (shifted) window, for FP16/BF16 activations. Every op of a Swin block
// but the attention itself is per token, and the attention stays inside the
// window, so a window's 49 (or 64) tokens go through LayerNorm 1, the qkv
// GEMM, the shifted-window attention, the proj GEMM and residual add,
// LayerNorm 2, fc1 + GELU, fc2 and the second residual add without leaving
// shared memory: the FP32 residual rows are read once and written once, in
// place (windows are disjoint). It computes what src/cuda's per-op kernels
// compute (same rounding points: LayerNorm outputs, qkv, attention output and
// the hidden layer rounded to the activation dtype; q, k, v widened to fp16
// for the attention, as the attention kernel does) but with GELU in its
// tanh form, as the unfused FP16/BF16 path's cuBLASLt epilogue.
//
// GEMMs, two forms of one kernel (WG):
// - by warpgroup (wgmma, sm_90a, where wgmma_supported()): both operands in
//   shared memory in core-matrix layout (wgmma.cuh), the weights arranged so
//   at engine creation and streamed stage by stage with TMA bulk copies on
//   mbarriers (TmaStream); 8 warps, or 16 where the windows are no more than
//   the SMs;
// - by warp (mma.sync m16n8k16, any other GPU or build): A (activations,
//   [64][K] row-major, padded) read by ldmatrix, the weights streamed through
//   a cp.async ring in "fragment order", so that the two registers a lane
//   needs for one (8-column, 16-deep) tile are one conflict-free 8-byte load.
// Either way the four weights are rearranged once (swin_block_arrange) into
// the order the kernel consumes them. Mirror: the CPU backend's SwinBlock
// (src/cpu/backend.cpp) op by op.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#include "attention.cuh"
#include "ops.cuh"
#include "wgmma.cuh"

namespace swinrt::cuda {

namespace {

constexpr int kRows = 64;  // a window's tokens padded to 4 m-tiles of 16
// Where a block's weight stream keeps fc1's bias halved (FP32, 4 C values):
// after its qkv, proj, fc1 and fc2 weights, 12 C^2 16-bit values.
__host__ __device__ constexpr size_t half_bias_offset(int C) { return size_t(12) * C * C * 2; }
// Threads per block: 8 warps, 16 for C >= 192 (one block per SM there: its
// shared memory takes the SM, so more warps hide the latencies).
template <int C>
constexpr int kThreadsFor = C >= 192 ? 512 : 256;

// Warp tiling of a [64, N] GEMM over the 8 warps: MT m-tiles (of 16 rows) and
// NT n-tiles (of 8 columns) per warp, so 4 / MT warps along M and
// 8 / (4 / MT) along N; the columns go in chunks of (warps along N) x NT x 8
// <= MAXCHUNK. Two m-tiles per warp halve the weight reads; one where N is not
// a multiple of 32.
template <int N, int MAXCHUNK, int WARPS>
struct Tiling {
  // NT for MT m-tiles per warp: warps along N = WARPS / (4 / MT), 8 columns each.
  static constexpr int pick(int mt) {
    const int unit = WARPS / (4 / mt) * 8;
    for (int nt = 6; nt >= 1; --nt)
      if (unit * nt <= MAXCHUNK && N % (unit * nt) == 0) return nt;
    return 0;
  }
  static constexpr int MT = pick(2) ? 2 : 1;
  static constexpr int NT = pick(MT);
  static constexpr int WM = 4 / MT, WN = WARPS / WM, CHUNK = WN * NT * 8;
  static_assert(NT > 0 && N % CHUNK == 0, "unsupported GEMM shape");
};

// The block's four GEMM weights stream through a ring of STAGES shared-memory
// stages with cp.async, in the order the GEMMs consume them: qkv [3C][C],
// proj [C][C], fc1 [4C][C], fc2 [C][4C], chunk by chunk, KPS 16-deep k-tiles
// of a chunk's columns per stage. swin_block_arrange lays the weights out in
// exactly this order (each stage's bytes contiguous), so issuing a stage is a
// plain copy. A stage is issued STAGES - 1 ahead of its use, also across GEMM
// boundaries: the next GEMM's first weights load while attention, LayerNorm
// and the epilogues run. Every stage costs a block barrier: C 96 takes 2
// stages of 3 k-tiles (24 barriers a window) in the ring bytes of 3 stages of
// 2 (36), which measured 4% faster per block at batch 128 on the H100 (1 k-tile
// x 6 stages: 16% slower; docs/PERFORMANCE_LOG.md).

// WG: stages read by wgmma (a proxy fence before each stage's barrier);
// DEPTH: ring stages where not the default (the stream's layout does not
// depend on it).
template <int C, bool WG = false, int DEPTH = 0>
struct Stream {
  static constexpr int THREADS = kThreadsFor<C>, WARPS = THREADS / 32;
  static constexpr int MAXCHUNK = C <= 96 ? 96 : 192;
  static constexpr int KPS = C == 96 ? 3 : C % 32 == 0 ? 2 : 1;  // k-tiles per stage
  static constexpr int STAGES = DEPTH ? DEPTH : C == 96 ? 2 : 3;
  static constexpr int STAGE = MAXCHUNK * 32 * KPS;  // bytes: MAXCHUNK / 8 n-tiles x KPS x 256 bytes
  // Per GEMM: column chunk, stages, bytes per stage, first byte in the stream.
  static constexpr int CH0 = Tiling<3 * C, MAXCHUNK, WARPS>::CHUNK, CH1 = Tiling<C, MAXCHUNK, WARPS>::CHUNK,
                       CH2 = Tiling<4 * C, MAXCHUNK, WARPS>::CHUNK, CH3 = Tiling<C, MAXCHUNK, WARPS>::CHUNK;
  static constexpr int S0 = 3 * C / CH0 * (C / 16 / KPS), S1 = C / CH1 * (C / 16 / KPS),
                       S2 = 4 * C / CH2 * (C / 16 / KPS), S3 = C / CH3 * (4 * C / 16 / KPS);
  static constexpr int B0 = CH0 * 32 * KPS, B1 = CH1 * 32 * KPS, B2 = CH2 * 32 * KPS, B3 = CH3 * 32 * KPS;
  static constexpr int64_t O1 = int64_t(3) * C * C * 2, O2 = O1 + int64_t(C) * C * 2, O3 = O2 + int64_t(4) * C * C * 2;
  static constexpr int TOTAL = S0 + S1 + S2 + S3;
  static_assert(C % 16 == 0 && (C / 16) % KPS == 0, "C must be a multiple of 16 x KPS");

  const char* w;  // the arranged stream
  char* ring;
  int t = 0;         // next stage to consume (the same in every thread)
  int use_slot = 0;  // its ring slot
  int put_slot = 0;  // the slot the next issued stage goes to

  // Copies BYTES from src to dst, 16 bytes per thread and round.
  template <int BYTES>
  __device__ __forceinline__ static void copy(char* dst, const char* src) {
    const int q0 = threadIdx.x * 16;
#pragma unroll
    for (int r = 0; r < (BYTES + THREADS * 16 - 1) / (THREADS * 16); ++r) {
      const int q = q0 + r * THREADS * 16;
      if (BYTES % (THREADS * 16) == 0 || q < BYTES) cp_async16(dst + q, src + q);
    }
  }
  // Every stage the same size (all four GEMMs chunked alike): stage i starts at i * STAGE.
  static constexpr bool UNIFORM = B0 == STAGE && B1 == STAGE && B2 == STAGE && B3 == STAGE;

  // Calls f(first byte, std::integral_constant<int, bytes>) for stage i of
  // the stream at w; nothing for i >= TOTAL.
  template <class F>
  __device__ __forceinline__ static void with_stage(const char* w, int i, F&& f) {
    using std::integral_constant;
    if constexpr (UNIFORM) {
      if (i < TOTAL) f(w + int64_t(i) * STAGE, integral_constant<int, STAGE>{});
      return;
    }
    if (i < S0) f(w + int64_t(i) * B0, integral_constant<int, B0>{});
    else if (i < S0 + S1) f(w + O1 + int64_t(i - S0) * B1, integral_constant<int, B1>{});
    else if (i < S0 + S1 + S2) f(w + O2 + int64_t(i - S0 - S1) * B2, integral_constant<int, B2>{});
    else if (i < TOTAL) f(w + O3 + int64_t(i - S0 - S1 - S2) * B3, integral_constant<int, B3>{});
  }

  __device__ __forceinline__ void issue(int i) {
    char* dst = ring + put_slot * STAGE;
    put_slot = put_slot == STAGES - 1 ? 0 : put_slot + 1;
    with_stage(w, i, [&](const char* src, auto bytes) { copy<decltype(bytes)::value>(dst, src); });
  }
  __device__ __forceinline__ void start() {
#pragma unroll
    for (int i = 0; i < STAGES - 1; ++i) {
      issue(i);
      cp_async_commit();
    }
  }
  // Waits for the next stage (all threads' copies), issues the one STAGES - 1
  // ahead into the slot the previous stage freed, returns the stage.
  __device__ __forceinline__ const uint2* next() {
    cp_async_wait<STAGES - 2>();
    if constexpr (WG) fence_proxy_async();
    __syncthreads();
    issue(t + STAGES - 1);
    cp_async_commit();
    ++t;
    const char* stage = ring + use_slot * STAGE;
    use_slot = use_slot == STAGES - 1 ? 0 : use_slot + 1;
    return reinterpret_cast<const uint2*>(stage);
  }
};

// Runs f; with SWINRT_BLOCK_STAMPS (a developer build) adds the clock64
// cycles it took to `cycles`.
template <class F>
__device__ __forceinline__ void timed(long long& cycles, F&& f) {
#ifdef SWINRT_BLOCK_STAMPS
  const long long c0 = clock64();
  f();
  cycles += clock64() - c0;
#else
  (void)cycles;
  f();
#endif
}

// The wgmma kernel's weight stream: the same stages in the same ring, each
// one bulk copy (TMA) issued by thread 0 that completes on its slot's `full`
// mbarrier. Threads wait on that (acquire) instead of a block barrier, and
// each warp, once its products have read the stage, arrives on the slot's
// `empty` mbarrier (release); thread 0 then refills the slot with the stage
// STAGES ahead.
// THREADS: the block's threads (the stream's chunking is Stream's, for
// kThreadsFor<C>, whatever the block). PAIR: the block is one of a pair
// that splits the MLP (swin_block_kernel's PAIR): it streams qkv and proj
// whole, then its half of fc1's chunks and of fc2's k stages.
template <int C, int DEPTH, int THREADS = kThreadsFor<C>, bool PAIR = false>
struct TmaStream {
  using S = Stream<C, true, DEPTH>;
  static constexpr int WARPS = THREADS / 32, LAYOUT_WARPS = S::WARPS, MAXCHUNK = S::MAXCHUNK, KPS = S::KPS,
                       STAGES = S::STAGES, STAGE = S::STAGE;
  static constexpr int TOTAL = PAIR ? S::S0 + S::S1 + S::S2 / 2 + S::S3 / 2 : S::TOTAL;
  // fc1's chunks are consecutive stage runs, fc2 one chunk of k stages: each half is a run.
  static_assert(!PAIR || (S::UNIFORM && S::CH3 == C && 4 * C / S::CH2 % 2 == 0 && S::S3 % 2 == 0), "pair stream");

  const char* w;  // the arranged stream
  char* ring;
  uint32_t bars, step;  // slot i's mbarriers: full at bars + i * step, empty 8 bytes after
  int t = 0;            // next stage to acquire (the same in every thread)
  int r = 0;            // next stage to release
  int half = 0;         // PAIR: which half of the MLP's stages
  // SWINRT_BLOCK_STAMPS: cycles thread 0 waited for data, refills and products, and spent issuing products and in
  // epilogues.
  long long c_acq = 0, c_rel = 0, c_mma = 0, c_iss = 0, c_epi = 0;

  // The arranged stream's stage for the i-th this block reads.
  __device__ __forceinline__ int physical(int i) const {
    if constexpr (!PAIR) return i;
    constexpr int A = S::S0 + S::S1, H1 = S::S2 / 2, H2 = S::S3 / 2;
    return i < A ? i : i < A + H1 ? A + half * H1 + (i - A) : A + S::S2 + half * H2 + (i - A - H1);
  }
  // Stage i (< TOTAL) into its slot.
  __device__ __forceinline__ void fill(int i) {
    const int slot = i % STAGES;
    S::with_stage(w, physical(i), [&](const char* src, auto bytes) {
      const uint32_t full = bars + slot * step;
      mbar_expect(full, bytes);
      bulk_copy(smem_u32(ring + slot * STAGE), src, bytes, full);
    });
  }
  // Thread 0: the mbarriers, then the first STAGES stages. The block's
  // threads acquire only after a block barrier that follows this.
  __device__ __forceinline__ void start() {
    if (threadIdx.x != 0) return;
#pragma unroll
    for (int i = 0; i < STAGES; ++i) {
      mbar_init(bars + i * step, 1);
      mbar_init(bars + i * step + 8, WARPS);
    }
    mbar_init_fence();
#pragma unroll
    for (int i = 0; i < STAGES; ++i)
      if (i < TOTAL) fill(i);
  }
  __device__ __forceinline__ const char* acquire() {
    const int slot = t % STAGES;
    timed(c_acq, [&] { mbar_wait(bars + slot * step, (t / STAGES) & 1); });
    ++t;
    return ring + slot * STAGE;
  }
  // The oldest acquired stage, after the warp's reads of it have completed.
  __device__ __forceinline__ void release() {
    const int slot = r % STAGES;
    if ((threadIdx.x & 31) == 0) mbar_arrive(bars + slot * step + 8);
    if (threadIdx.x == 0 && r + STAGES < TOTAL) {
      timed(c_rel, [&] { mbar_wait(bars + slot * step + 8, (r / STAGES) & 1); });
      fill(r + STAGES);
    }
    ++r;
  }
};

// out[64, N] = A[64, K] . W^T: A in shared memory (dtype T, row stride lda
// elements), W's stages from the stream. Calls epi(row, col, v0, v1) with the
// FP32 sums of columns col and col + 1 of a row; every (row, col) pair goes to
// exactly one thread.
template <typename T, int K, int N, class Stream, class Epi>
__device__ __forceinline__ void block_gemm(const T* A, int lda, Stream& ws, Epi&& epi) {
  using G = Tiling<N, Stream::MAXCHUNK, Stream::WARPS>;
  constexpr int MT = G::MT, NT = G::NT, WN = G::WN, CHUNK = G::CHUNK, KT = K / 16;
  static_assert(K % 16 == 0, "K must be a multiple of 16");
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = warp / WN, wn = warp % WN, g = lane >> 2, c2 = (lane & 3) * 2;
  const T* arow = A + (wm * MT * 16 + (lane & 15)) * lda + (lane >> 4) * 8;
#pragma unroll 1
  for (int n0 = 0; n0 < N; n0 += CHUNK) {
    float acc[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0.f;
#pragma unroll 1
    for (int kt = 0; kt < KT; kt += Stream::KPS) {
      // Stage layout: [n-tile of the chunk][k-tile of the stage][lane] uint2.
      const uint2* tile = ws.next() + wn * NT * Stream::KPS * 32 + lane;
#pragma unroll
      for (int kk = 0; kk < Stream::KPS; ++kk) {
        uint2 b[NT];
#pragma unroll
        for (int j = 0; j < NT; ++j) b[j] = tile[(j * Stream::KPS + kk) * 32];
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) ldsm_x4(a[mt], arow + mt * 16 * lda + (kt + kk) * 16);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int j = 0; j < NT; ++j) mma16816<T>(acc[mt][j], a[mt], b[j].x, b[j].y);
      }
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int row = wm * MT * 16 + mt * 16 + g, col = n0 + (wn * NT + j) * 8 + c2;
        epi(row, col, acc[mt][j][0], acc[mt][j][1]);
        epi(row + 8, col, acc[mt][j][2], acc[mt][j][3]);
      }
  }
}

// The same product by warpgroups (wgmma, sm_90a): A [64, K] in shared memory
// in core-matrix layout (cm_index), each stage's weights as
// swin_block_arrange lays them out for wgmma, from a TmaStream. Warpgroup wg
// takes columns [wg * WGN, (wg + 1) * WGN) of each chunk, all 64 rows. A
// stage's k-tiles are one commit group; the next stage's group is issued
// before waiting for it (at most two in flight), then it is released. A
// chunk's epilogue runs while the next chunk's first products are in flight
// (two accumulator sets).
template <typename T, int K, int N, class Stream, class Epi>
__device__ __forceinline__ void block_gemm_wg(const T* A, Stream& ws, Epi&& epi) {
  using G = Tiling<N, Stream::MAXCHUNK, Stream::LAYOUT_WARPS>;
  constexpr int CHUNK = G::CHUNK, WGS = Stream::WARPS / 4, WGN = CHUNK / WGS, KT = K / 16, NCH = N / CHUNK;
  static_assert(K % 16 == 0 && CHUNK % (WGS * 8) == 0, "unsupported GEMM shape");
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wg = warp >> 2;
  const int row = (warp & 3) * 16 + (lane >> 2), c2 = (lane & 3) * 2;
  const uint32_t a0 = smem_u32(A);
  float acc[2][WGN / 2];
  auto epilogue = [&](int ch, const float (&d)[WGN / 2]) {
#pragma unroll
    for (int j = 0; j < WGN / 8; ++j) {
      const int col = ch * CHUNK + wg * WGN + j * 8 + c2;
      epi(row, col, d[4 * j], d[4 * j + 1]);
      epi(row + 8, col, d[4 * j + 2], d[4 * j + 3]);
    }
  };
#pragma unroll
  for (int ch = 0; ch < NCH; ++ch) {
    float(&cur)[WGN / 2] = acc[ch & 1];
#pragma unroll
    for (int i = 0; i < WGN / 2; ++i) cur[i] = 0.f;
#pragma unroll 1
    for (int kt = 0; kt < KT; kt += Stream::KPS) {
      const uint32_t b0 = smem_u32(ws.acquire()) + wg * WGN * 32;
      timed(ws.c_iss, [&] {
        wgmma_fence();
        wgmma_hold(cur);
#pragma unroll
        for (int kk = 0; kk < Stream::KPS; ++kk)
          wgmma_m64k16<T, WGN>(cur, wgmma_desc(a0 + (kt + kk) * 256, 128, K * 16),
                               wgmma_desc(b0 + kk * CHUNK * 32, 128, 256));
        wgmma_commit();
      });
      if (ch > 0 && kt == 0) timed(ws.c_epi, [&] { epilogue(ch - 1, acc[(ch - 1) & 1]); });
      if (kt > 0) {
        timed(ws.c_mma, [] { wgmma_wait<1>(); });
        ws.release();
      }
    }
    timed(ws.c_mma, [] { wgmma_wait<0>(); });
    wgmma_hold(cur);
    ws.release();
  }
  timed(ws.c_epi, [&] { epilogue(NCH - 1, acc[(NCH - 1) & 1]); });
}

// Where element (r, k) of a [64][K] GEMM operand lives in shared memory:
// padded rows for mma.sync (ldmatrix, conflict-free), core matrices for wgmma.
template <int K, bool WG>
struct Operand {
  static constexpr int LD = K + 8;  // mma.sync row stride, elements
  __device__ __forceinline__ static int at(int r, int k) { return WG ? cm_index<K>(r, k) : r * LD + k; }
};

// out rows (T) = LayerNorm of the FP32 rows xs (FP32 two-pass statistics, as
// layernorm_kernel); rows >= n are zero. TPR neighbouring threads per row,
// each with C / TPR contiguous channels (float4 loads, 8-byte stores).
// Op: where element (r, k) of out lives (Operand).
template <typename T, int C, int THREADS, class Op>
__device__ __forceinline__ void block_layernorm(const float* xs, int ldx, int n, const float* gamma,
                                                const float* beta, T* out) {
  constexpr int TPR = THREADS / kRows, PER = C / TPR;
  static_assert(C % (TPR * 4) == 0, "LayerNorm split");
  const int r = threadIdx.x / TPR, k0 = (threadIdx.x % TPR) * PER;
  const bool pad = r >= n;  // padding rows (zero in xs) are written as zeros; all lanes shuffle
  float v[PER], sum = 0.f;
#pragma unroll
  for (int i = 0; i < PER; i += 4) {
    const float4 q = *reinterpret_cast<const float4*>(xs + r * ldx + k0 + i);
    v[i] = q.x, v[i + 1] = q.y, v[i + 2] = q.z, v[i + 3] = q.w;
    sum += (q.x + q.y) + (q.z + q.w);
  }
  const float mean = group_sum<TPR>(sum) / C;
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < PER; ++i) {
    const float d = v[i] - mean;
    sq += d * d;
  }
  const float rstd = rsqrtf(group_sum<TPR>(sq) / C + 1e-5f);
#pragma unroll
  for (int i = 0; i < PER; i += 4) {
    const float4 gq = *reinterpret_cast<const float4*>(gamma + k0 + i);  // global or shared (preload)
    const float4 bq = *reinterpret_cast<const float4*>(beta + k0 + i);
    __align__(8) T e[4] = {from_f<T>((v[i] - mean) * rstd * gq.x + bq.x),
                           from_f<T>((v[i + 1] - mean) * rstd * gq.y + bq.y),
                           from_f<T>((v[i + 2] - mean) * rstd * gq.z + bq.z),
                           from_f<T>((v[i + 3] - mean) * rstd * gq.w + bq.w)};
    *reinterpret_cast<uint2*>(out + Op::at(r, k0 + i)) = pad ? make_uint2(0, 0) : *reinterpret_cast<const uint2*>(e);
  }
}

struct BlockArgs {
  float* x;  // [B, res*res, C] FP32 residual stream, updated in place
  int res, window, shift, heads;
  float scale;
  const float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
  const void* wstream;  // the four GEMM weights as swin_block_arrange lays them out
  const void* bqkv;                         // dtype T or null
  const float* bproj;
  const void* bfc1;  // dtype T
  const float* bfc2;
  const __half* rpb;  // the relative position bias padded to 64 x 64 a head (pad_attention_bias, 16-bit layout)
  const WindowTable* table;  // the windows' token maps and mask bits (window_table), or null: built here
  // The one-warpgroup kernel and the pair form, where non-null: the LayerNorm (norm_g, norm_b) of the new
  // rows to norm_out (dtype T) instead of the rows to x.
  const float *norm_g, *norm_b;
  void* norm_out;
  bool early;  // swin_block_kernel asks the L2 for the weight stream and bias before its wait (early_constants)
  // The 16-warp forms: before the wait, the weight ring's first stages, the window's token indices and the
  // block's constants (into shared memory: Layout::kConst).
  bool preload;
};

// Two 16-bit values at b (global or shared memory), widened.
__device__ __forceinline__ float2 load2(const __half* b) { return __half22float2(*reinterpret_cast<const __half2*>(b)); }
__device__ __forceinline__ float2 load2(const __nv_bfloat16* b) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(b));
}

// Shared memory: the token map (where the block builds it), the FP32
// residual rows, the LayerNorm / attention output, the q/k/v or hidden rows
// (one space), the weight ring. The wgmma kernel reads the engine's window
// table and keeps no padding in its GEMM operands: at C 96 that leaves room
// for a third weight stage (113 KB a block, two blocks an SM, not a byte to
// spare); its ring's mbarriers live in the residual rows' padding columns
// (bars: rows 0..STAGES-1, columns C..C+3, never read as data).
template <int C, bool WG, int THREADS = kThreadsFor<C>, bool PAIR = false>
struct Layout {
  static constexpr int LDX = C + 8;       // FP32 residual rows (float2 epilogue access: conflict-free)
  static constexpr int LDQ = 3 * C + 8;   // q, k, v rows, fp16
  using OpA = Operand<C, WG>;             // LayerNorm / attention output, dtype T
  using OpH = Operand<4 * C, WG>;         // hidden layer, dtype T (shares the qkv space)
  static constexpr size_t kIdx = WG ? 0 : 2 * kRows * sizeof(int) + kRows * sizeof(unsigned long long);
  static constexpr size_t kX = size_t(kRows) * LDX * sizeof(float);
  static constexpr size_t kA = size_t(kRows) * (WG ? C : OpA::LD) * 2;
  static constexpr size_t kQ = size_t(kRows) * LDQ * 2, kH = size_t(kRows) * (WG ? 4 * C : OpH::LD) * 2;
  static constexpr size_t kBig = kQ > kH ? kQ : kH;
  using Ring = std::conditional_t<WG, TmaStream<C, C == 96 ? 3 : 0, THREADS, PAIR>, Stream<C>>;
  static constexpr size_t kRing = size_t(Ring::STAGES) * Ring::STAGE;
  static_assert(!WG || Ring::STAGES <= kRows, "mbarriers in the row padding");
  // PAIR: fc2's partial sums of both blocks of the pair for this block's
  // half of the rows, FP32 [2 blocks][32 rows][LDP], after the ring.
  static constexpr int LDP = C + 4;
  static constexpr size_t kPart = PAIR ? size_t(2) * (kRows / 2) * LDP * sizeof(float) : 0;
  // The 16-warp forms (one block an SM): the block's constants copied before its wait (BlockArgs::preload),
  // 4-byte words: LayerNorm 1 and 2's gamma and beta, proj's and fc2's bias, norm_out's gamma and beta (FP32,
  // C each), qkv's bias (3 C of T), fc1's (4 C of T), the window's 64 mask words.
  static constexpr bool kConsts = WG && C == 96 && THREADS == 2 * kThreadsFor<C>;
  static constexpr int kConstWords = 23 * C / 2 + 2 * kRows;
  static constexpr size_t kConst = kConsts ? size_t(kConstWords) * 4 : 0;
  static constexpr size_t bytes = kIdx + kX + kA + kBig + kRing + kPart + kConst;
};

#ifdef SWINRT_BLOCK_STAMPS
// The stamps of four launches (thread 0 of block 5, the middle image, from the 41st such block on), written by
// swin_block_kernel, printed by stamps_print_kernel, a launch of its own: a printf (a function call) in a kernel
// makes ptxas serialise its wgmma (C7510), which lengthened every product in the stamps builds before session 29's end.
struct StampSlot {
  int ready, C, WG, B;    // ready: 1 written, 2 printed
  long long phase[10];    // load, ln1, qkv, attn, proj, ln2, fc1, fc2, store, total
  long long waits[5];     // data, refill, products, issue, epilogues: the whole kernel
  long long qkv[6];       // ... up to qkv's end, and the barrier after it
};
__device__ int g_stamp_count;
__device__ StampSlot g_stamp_slots[4];
#define STAMP() st[ns++] = clock64()
#else
#define STAMP()
#endif
// WG: the GEMMs by warpgroup (block_gemm_wg, sm_90a), else by warp
// (block_gemm). THREADS: kThreadsFor<C>, or for the wgmma kernel where the
// windows are no more than the SMs, twice that (a window's chain of steps
// spread over more warps: an SM has nothing else to run).
// PAIR (the 16-warp wgmma form, where twice the windows are no more than
// the SMs): two blocks a window, a cluster of two, each running the window
// through LayerNorm 2 as the single block does, then half the MLP: block h
// takes hidden columns [2 C h, 2 C h + 2 C) through fc1 and GELU, and fc2
// over those, a partial sum for all 64 rows. Each block stores the
// partial's rows the other finishes into that block's shared memory; after
// a cluster barrier block h finishes rows [32 h, 32 h + 32) of the window
// as x + ((partial 0 + partial 1) + b), the same sum in either block, run
// after run, and writes them to x, or where the caller asks (norm_out) their
// LayerNorm.
// The 16-warp forms (Layout::kConsts) with p.preload issue their first
// weight stages, read their rows' token indices and copy their biases,
// LayerNorm parameters and mask words into shared memory before the wait
// (griddepcontrol.wait), all of it written once at engine creation: after
// it, no global read but the window's rows stands between the wait and LN1
// (session 29: fp16 batch 1 -2.6%).
template <typename T, int C, int HD, bool WG, int THREADS = kThreadsFor<C>, bool PAIR = false>
__global__ void __launch_bounds__(THREADS,
                                  THREADS <= 256 && Layout<C, WG, THREADS, PAIR>::bytes <= 113 * 1024 ? 2 : 1)
    swin_block_kernel(BlockArgs p) {
  static_assert(THREADS == kThreadsFor<C> || WG, "the wide form is the wgmma kernel's");
  static_assert(!PAIR || (WG && C == 96), "the pair form is the 96-channel wgmma kernel's");
  using L = Layout<C, WG, THREADS, PAIR>;
  using OpA = typename L::OpA;
  constexpr int WARPS = THREADS / 32;
  extern __shared__ float4 smem4[];
  unsigned long long* mb = reinterpret_cast<unsigned long long*>(smem4);  // per row: keys in another region
  int* tk = reinterpret_cast<int*>(mb + kRows);
  int* reg = tk + kRows;
  float* xs = reinterpret_cast<float*>(reinterpret_cast<char*>(smem4) + L::kIdx);
  T* as = reinterpret_cast<T*>(reinterpret_cast<char*>(xs) + L::kX);
  char* big = reinterpret_cast<char*>(as) + L::kA;
  __half* qkv = reinterpret_cast<__half*>(big);
  T* hid = reinterpret_cast<T*>(big);
  typename L::Ring ws = [&] {
    if constexpr (WG)
      return typename L::Ring{static_cast<const char*>(p.wstream), big + L::kBig, smem_u32(xs + C),
                              uint32_t(L::LDX * sizeof(float))};
    else
      return typename L::Ring{static_cast<const char*>(p.wstream), big + L::kBig};
  }();
  if constexpr (PAIR) ws.half = static_cast<int>(cluster_rank());
  const int win = PAIR ? blockIdx.x >> 1 : blockIdx.x;  // the window (a cluster of two along x: ranks 0, 1)
  const int res = p.res, window = p.window, shift = p.shift, N = window * window;
  const int nw = res / window, wy = win / nw, wx = win % nw;
  const int64_t base = int64_t(blockIdx.y) * res * res;
  const int warp = threadIdx.x >> 5;
  constexpr int C4 = C / 4, LOADS = kRows * C4 / THREADS;
  static_assert(kRows * C4 % THREADS == 0, "row loads");

  // Token map of the shifted window and the shift-mask bits: the engine's
  // table, or built here (not by the wgmma kernel), after the wait.
  const int* tok = nullptr;
  const unsigned long long* mbits = nullptr;
  if constexpr (WG) {
    tok = p.table[win].tok;
    mbits = p.table[win].mbits;
  }
  // The block's constants: global memory, or (preload) their copies in shared memory.
  const float *ln1_g = p.ln1_g, *ln1_b = p.ln1_b, *ln2_g = p.ln2_g, *ln2_b = p.ln2_b, *bproj = p.bproj,
              *bfc2 = p.bfc2, *norm_g = p.norm_g, *norm_b = p.norm_b;
  const T *bqkv = static_cast<const T*>(p.bqkv), *bfc1 = static_cast<const T*>(p.bfc1);
  // Where the row loads' tokens are (preload: known before the wait).
  int rt[LOADS];
  const bool pre = L::kConsts && p.preload;
  if constexpr (L::kConsts) {
    if (pre) {
      // Nothing here is written by a kernel of the forward: weights, table, parameters.
      ws.start();
#pragma unroll
      for (int j = 0; j < LOADS; ++j) {
        const int i = (threadIdx.x + j * THREADS) / C4;
        rt[j] = i < N ? tok[i] : 0;
      }
      uint32_t* cw = reinterpret_cast<uint32_t*>(big + L::kBig + L::kRing + L::kPart);
      for (int i = threadIdx.x; i < L::kConstWords; i += THREADS) {
        const void* src = nullptr;
        int at = 0;
        if (i < 8 * C) {
          const int k = i / C;
          src = k == 0 ? ln1_g : k == 1 ? ln1_b : k == 2 ? ln2_g : k == 3 ? ln2_b : k == 4 ? bproj : k == 5 ? bfc2
                : k == 6 ? norm_g : norm_b;
          at = i - k * C;
        } else if (i < 19 * C / 2) {
          src = p.bqkv, at = i - 8 * C;
        } else if (i < 23 * C / 2) {
          src = p.bfc1, at = i - 19 * C / 2;
        } else {
          src = mbits, at = i - 23 * C / 2;
        }
        if (src) cw[i] = __ldg(static_cast<const uint32_t*>(src) + at);
      }
      const float* cf = reinterpret_cast<const float*>(cw);
      ln1_g = cf, ln1_b = cf + C, ln2_g = cf + 2 * C, ln2_b = cf + 3 * C, bproj = cf + 4 * C, bfc2 = cf + 5 * C;
      if (norm_g) norm_g = cf + 6 * C, norm_b = cf + 7 * C;
      if (bqkv) bqkv = reinterpret_cast<const T*>(cf + 8 * C);
      bfc1 = reinterpret_cast<const T*>(cf + 19 * C / 2);
      mbits = reinterpret_cast<const unsigned long long*>(cf + 23 * C / 2);
    }
  }
  if (p.early) {  // every block reads the whole stream and bias: their lines spread over the grid's threads
    const int blk = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const int tid = blk * THREADS + threadIdx.x, n = gridDim.x * gridDim.y * gridDim.z * THREADS;
    prefetch_l2(p.wstream, int64_t(12) * C * C * 2, tid, n);  // qkv, proj, fc1, fc2: 12 C^2 16-bit values
    prefetch_l2(p.rpb, int64_t(p.heads) * 64 * 64 * 2, tid, n);
  }
  wait_for_prior_grids();
  if constexpr (PAIR) cluster_arrive();  // waited on before the first store into the other block's memory
#ifdef SWINRT_BLOCK_STAMPS
  long long st[12];
  int ns = 0;
#endif
  STAMP();
  if (!pre) ws.start();
  // One product, by warp or by warpgroup; A's writers publish it for wgmma.
  auto gemm = [&](auto k, auto n, const T* A, auto&& epi) {
    constexpr int K = decltype(k)::value, N = decltype(n)::value;
    if constexpr (WG) block_gemm_wg<T, K, N>(A, ws, epi);
    else block_gemm<T, K, N>(A, Operand<K, false>::LD, ws, epi);
  };
  auto publish = [] {
    if constexpr (WG) fence_proxy_async();
    __syncthreads();
  };
  using KC = std::integral_constant<int, C>;
  using K3C = std::integral_constant<int, 3 * C>;

  if constexpr (!WG) window_map(p.table, win, wy, wx, res, window, shift, THREADS, tk, reg, mb, tok, mbits);
  // The window's rows: every load of a thread in flight at once.
  {
    float4 v[LOADS];
#pragma unroll
    for (int j = 0; j < LOADS; ++j) {
      const int idx = threadIdx.x + j * THREADS, i = idx / C4, c = (idx - i * C4) * 4;
      const int t = pre ? rt[j] : i < N ? tok[i] : 0;
      v[j] = i < N ? *reinterpret_cast<const float4*>(p.x + (base + t) * C + c) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int j = 0; j < LOADS; ++j) {
      const int idx = threadIdx.x + j * THREADS, i = idx / C4, c = (idx - i * C4) * 4;
      *reinterpret_cast<float4*>(xs + i * L::LDX + c) = v[j];
    }
  }
  __syncthreads();
  STAMP();

  // 1. LayerNorm 1 -> as.
  block_layernorm<T, C, THREADS, OpA>(xs, L::LDX, N, ln1_g, ln1_b, as);
  publish();
  STAMP();

  // 2. qkv = as . Wqkv^T + b, rounded to T, then q * scale, k, v as fp16.
  {
    const T* bq = bqkv;
    const float scale = p.scale;
    gemm(KC{}, K3C{}, as, [&](int row, int col, float v0, float v1) {
      if (bq) {
        const float2 bb = load2(bq + col);
        v0 += bb.x;
        v1 += bb.y;
      }
      __half2* const dst = reinterpret_cast<__half2*>(qkv + row * L::LDQ + col);
      if (std::is_same_v<T, __half> && col >= C) {  // fp16 k and v: rounded once, as rounding twice would
        *dst = __floats2half2_rn(v0, v1);
        return;
      }
      const float f = col < C ? scale : 1.0f;  // q is scaled
      *dst = __floats2half2_rn(to_f(from_f<T>(v0)) * f, to_f(from_f<T>(v1)) * f);
    });
  }
#ifdef SWINRT_BLOCK_STAMPS
  long long qw[6] = {};  // thread 0's waits (as StampSlot::waits) up to qkv's end, and its cycles to the barrier
  if constexpr (WG) qw[0] = ws.c_acq, qw[1] = ws.c_rel, qw[2] = ws.c_mma, qw[3] = ws.c_iss, qw[4] = ws.c_epi;
  qw[5] = clock64();
#endif
  __syncthreads();
  STAMP();
#ifdef SWINRT_BLOCK_STAMPS
  qw[5] = st[ns - 1] - qw[5];
#endif

  // 3. Attention: one warp per (16-query strip, head), attend_strip
  // (attention.cu's kernel runs the same code). Output -> as, dtype T.
  for (int unit = warp; unit < 4 * p.heads; unit += WARPS) {
    const int strip = unit & 3, h = unit >> 2;
    const __half* qh = qkv + h * HD;
    attend_strip<HD>(qh, qh + C, qh + 2 * C, L::LDQ, strip, p.rpb + h * kRows * kRows, mbits,
                     [&](int r, int c, float v0, float v1) { store2(as + OpA::at(r, h * HD + c), v0, v1); });
  }
  publish();
  STAMP();

  // The epilogue of a product onto the residual rows: x += product + b (b FP32).
  auto onto_x = [&](const float* b) {
    return [&, b](int row, int col, float v0, float v1) {
      float2* px = reinterpret_cast<float2*>(xs + row * L::LDX + col);
      float2 x2 = *px;
      const float2 bb = *reinterpret_cast<const float2*>(b + col);
      x2.x += v0 + bb.x;
      x2.y += v1 + bb.y;
      *px = x2;
    };
  };
  // 4. x += as . Wproj^T + b.
  gemm(KC{}, KC{}, as, onto_x(bproj));
  __syncthreads();
  STAMP();

  // 5. LayerNorm 2 -> as; 6. hid = gelu(as . Wfc1^T + b) (T); 7. x += hid . Wfc2^T + b.
  block_layernorm<T, C, THREADS, OpA>(xs, L::LDX, N, ln2_g, ln2_b, as);
  publish();
  STAMP();
  // The hidden layer: all 4 C columns, or (PAIR) this block's half of them, [64][2 C] in its own operand layout.
  constexpr int HID = PAIR ? 2 * C : 4 * C;
  using KH = std::integral_constant<int, HID>;
  {
    int first = 0;  // the block's first hidden column
    if constexpr (PAIR) first = ws.half * HID;
    const T* b1 = bfc1 + first;
    gemm(KC{}, KH{}, as, [&](int row, int col, float v0, float v1) {
      const float2 bb = load2(b1 + col);
      store2(hid + Operand<HID, WG>::at(row, col), gelu_tanh(v0 + bb.x), gelu_tanh(v1 + bb.y));
    });
  }
  publish();
  STAMP();
  if constexpr (PAIR) {
    // fc2's partial over this block's half of the hidden layer.
    // part[h][r][c]: block h's partial of row 32 h' + r, column c, in block h'.
    constexpr int LDP = L::LDP, HALF = kRows / 2;
    float* part = reinterpret_cast<float*>(big + L::kBig + L::kRing);
    const int me = ws.half;
    const uint32_t other = cluster_map(smem_u32(part), uint32_t(me ^ 1));
    cluster_wait();  // the other block has started: its shared memory may be written
    gemm(KH{}, KC{}, hid, [&](int row, int col, float v0, float v1) {
      const int owner = row >= HALF ? 1 : 0, at = (me * HALF + row - owner * HALF) * LDP + col;
      if (owner == me) *reinterpret_cast<float2*>(part + at) = make_float2(v0, v1);
      else cluster_store2(other + uint32_t(at) * 4u, v0, v1);
    });
    cluster_sync();  // both partials of this block's rows are here
    STAMP();
    // 16 threads a row, columns 2 q + 32 j (+ 1) for j < C / 32.
    static_assert(THREADS == 16 * HALF && C % 32 == 0, "16 threads a row");
    constexpr int CJ = C / 32;
    const int rl = threadIdx.x >> 4, q = threadIdx.x & 15, r = me * HALF + rl;
    const bool live = r < N;
    float v[CJ][2];
#pragma unroll
    for (int j = 0; j < CJ; ++j) {
      const int c = 2 * q + 32 * j;
      const float2 a = *reinterpret_cast<const float2*>(part + rl * LDP + c);
      const float2 b = *reinterpret_cast<const float2*>(part + (HALF + rl) * LDP + c);
      const float2 bb = *reinterpret_cast<const float2*>(bfc2 + c);
      const float2 xv = *reinterpret_cast<const float2*>(xs + r * L::LDX + c);
      v[j][0] = xv.x + ((a.x + b.x) + bb.x);
      v[j][1] = xv.y + ((a.y + b.y) + bb.y);
    }
    const int64_t at = (base + (live ? tok[r] : 0)) * C;
    if (p.norm_out == nullptr) {
#pragma unroll
      for (int j = 0; j < CJ; ++j)
        if (live) *reinterpret_cast<float2*>(p.x + at + 2 * q + 32 * j) = make_float2(v[j][0], v[j][1]);
    } else {  // the LayerNorm after the block (FP32 two-pass statistics over the row's 16 threads)
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < CJ; ++j) sum += v[j][0] + v[j][1];
      const float mean = group_sum<16>(sum) / C;
      float sq = 0.f;
#pragma unroll
      for (int j = 0; j < CJ; ++j) {
        const float d0 = v[j][0] - mean, d1 = v[j][1] - mean;
        sq += d0 * d0 + d1 * d1;
      }
      const float rstd = rsqrtf(group_sum<16>(sq) / C + 1e-5f);
      T* out = static_cast<T*>(p.norm_out) + at;
#pragma unroll
      for (int j = 0; j < CJ; ++j) {
        const int c = 2 * q + 32 * j;
        const float2 gg = *reinterpret_cast<const float2*>(norm_g + c);
        const float2 bb = *reinterpret_cast<const float2*>(norm_b + c);
        if (live)
          *reinterpret_cast<uint32_t*>(out + c) =
              pack2<T>((v[j][0] - mean) * rstd * gg.x + bb.x, (v[j][1] - mean) * rstd * gg.y + bb.y);
      }
    }
  } else {
    gemm(KH{}, KC{}, hid, onto_x(bfc2));
    __syncthreads();
    STAMP();

    for (int idx = threadIdx.x; idx < N * C4; idx += THREADS) {
      const int i = idx / C4, c = (idx - i * C4) * 4;
      *reinterpret_cast<float4*>(p.x + (base + tok[i]) * C + c) =
          *reinterpret_cast<const float4*>(xs + i * L::LDX + c);
    }
  }
#ifdef SWINRT_BLOCK_STAMPS
  __syncthreads();
  STAMP();
  if (threadIdx.x == 0 && blockIdx.x == 5 && blockIdx.y == gridDim.y / 2) {
    const unsigned slot = unsigned(atomicAdd(&g_stamp_count, 1)) - 40u;
    if (slot < 4u) {
      StampSlot& o = g_stamp_slots[slot];
      o.C = C, o.WG = int(WG), o.B = int(gridDim.y);
      for (int i = 0; i < 9; ++i) o.phase[i] = st[i + 1] - st[i];
      o.phase[9] = st[9] - st[0];
      if constexpr (WG) o.waits[0] = ws.c_acq, o.waits[1] = ws.c_rel, o.waits[2] = ws.c_mma, o.waits[3] = ws.c_iss;
      if constexpr (WG) o.waits[4] = ws.c_epi;
      for (int i = 0; i < 6; ++i) o.qkv[i] = qw[i];
      __threadfence();
      o.ready = 1;
    }
  }
#endif
}

#ifdef SWINRT_BLOCK_STAMPS
// Prints the stamp slots written since its last launch (one thread).
__global__ void stamps_print_kernel() {
  wait_for_prior_grids();
  for (int k = 0; k < 4; ++k) {
    StampSlot& o = g_stamp_slots[k];
    if (o.ready != 1) continue;
    const long long* f = o.phase;
    printf("stamps C %d WG %d B %d: load %lld ln1 %lld qkv %lld attn %lld proj %lld ln2 %lld fc1 %lld fc2 %lld "
           "store %lld total %lld\n", o.C, o.WG, o.B, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]);
    if (o.WG) {
      const long long *w = o.waits, *q = o.qkv;
      printf("waits C %d B %d: data %lld refill %lld products %lld issue %lld epilogues %lld; to qkv's end: data %lld "
             "refill %lld products %lld issue %lld epilogues %lld, barrier %lld\n", o.C, o.B, w[0], w[1], w[2], w[3],
             w[4], q[0], q[1], q[2], q[3], q[4], q[5]);
    }
    o.ready = 2;
  }
}
#endif

// The 96-channel block (3 heads, sm_90a) with one warpgroup a window and
// three windows an SM, for batches whose windows are more than the SMs. The
// window's FP32 residual rows live in registers in the m64n96 accumulator
// layout (lane l of warp w: rows 16 w + l / 4 and + 8, columns 8 j + 2 (l %
// 4) (+ 1), xr[4 j + 2 h (+ 1)]); proj and fc2 accumulate onto x + bias; the
// hidden layer goes chunk by chunk through registers as fc2's A fragments.
// Shared memory: the LayerNorm / attention operand, q/k/v, a 2-stage ring of
// the arranged stream read in the order qkv, proj, then fc1 (j), fc2 (j) for
// each 96-column hidden chunk j; each product issues its two stages as two
// commit groups and releases the first as soon as it is read.
namespace narrow {
using S = Stream<96, true, 2>;  // the arranged stream's layout (24 stages of 9,216 bytes), a 2-stage ring
constexpr int C = 96, THREADS = 128, STAGES = S::STAGES, LDQ = 3 * C + 8;
static_assert(S::UNIFORM && S::TOTAL == 24 && S::STAGE == 9216, "stream layout");
constexpr size_t kA = size_t(64) * C * 2, kQ = size_t(64) * LDQ * 2, kRing = size_t(STAGES) * S::STAGE;
constexpr size_t kBytes = kA + kQ + kRing + 16 * STAGES;
// The compact form (four windows an SM, the MLP chunk after chunk): q in
// the operand's core-matrix layout, k and v as [64][C + 8] (padded rows:
// conflict-free ldmatrix and stores); the attention's output over q (a
// warp's strip of a head: rows only that warp reads, in the same layout, so
// it is proj's A operand), the LayerNorm operand in v's place (LayerNorm 1
// is read by the qkv products before v is written, LayerNorm 2 written
// after the attention has read v), the ring's two slots' mbarriers in the
// padding of k's and v's last rows: 4 x (57,344 + 1,024 reserved) bytes =
// the SM's 228 KB.
constexpr int LDKV = C + 8;
constexpr size_t kKV = size_t(64) * LDKV * 2;
constexpr size_t kBar0 = kA + kKV - 16, kBytesCompact = kA + 2 * kKV + kRing;
static_assert(kKV >= kA && STAGES == 2 && kBytesCompact == 57344, "the compact layout");
// Logical stage i -> stage of the arranged stream.
__device__ __forceinline__ int physical(int i) {
  if (i < 8) return i;
  const int m = i - 8, j = m >> 2, r = m & 3;
  return r < 2 ? 8 + 2 * j + r : 16 + 2 * j + (r - 2);
}
// Thread 0: the arranged stream's stage `stage` -> shared memory at dst, completing on the mbarrier at bar.
__device__ __forceinline__ void fill_stage(const char* w, int stage, uint32_t dst, uint32_t bar) {
  S::with_stage(w, stage, [&](const char* src, auto bytes) {
    mbar_expect(bar, bytes);
    bulk_copy(dst, src, bytes, bar);
  });
}
struct Ring {
  const char* w;
  char* ring;
  uint32_t bars;  // slot i: full at bars + bstride i, empty at + 8
  int total;      // logical stages it streams: all, or the qkv and proj ones where MlpRing takes the rest
  uint32_t bstride = 16;
  int t = 0, r = 0;
  __device__ void fill(int i) {
    const int slot = i % STAGES;
    fill_stage(w, physical(i), smem_u32(ring + slot * S::STAGE), bars + bstride * slot);
  }
  __device__ void start() {
    if (threadIdx.x != 0) return;
    for (int i = 0; i < STAGES; ++i) {
      mbar_init(bars + bstride * i, 1);
      mbar_init(bars + bstride * i + 8, THREADS / 32);
    }
    mbar_init_fence();
    for (int i = 0; i < STAGES; ++i) fill(i);
  }
  __device__ uint32_t acquire() {
    const int slot = t % STAGES;
    mbar_wait(bars + bstride * slot, (t / STAGES) & 1);
    ++t;
    return smem_u32(ring + slot * S::STAGE);
  }
  // After this warp's products reading the oldest acquired stage completed.
  __device__ void release() {
    const int slot = r % STAGES;
    if ((threadIdx.x & 31) == 0) mbar_arrive(bars + bstride * slot + 8);
    if (threadIdx.x == 0 && r + STAGES < total) {
      mbar_wait(bars + bstride * slot + 8, (r / STAGES) & 1);
      fill(r + STAGES);
    }
    ++r;
  }
};
// The MLP's stages in six slots of their own, so that fc1 of hidden chunk j
// + 1 and fc2 of chunk j are in flight together: fc1 (j) in slots 0 and 1,
// fc2 (j) in 2 and 3 (j even) or 4 and 5 (j odd). Slots 0-3 are q/k/v's
// shared memory (free once the attention has read it), 4 and 5 Ring's
// (free once proj has read its last stages). Each slot is filled with the
// next stage it serves as soon as its product has read it.
constexpr int kMlpSlots = 6;
constexpr size_t kBytesPipe = kBytes + 16 * kMlpSlots;
static_assert(4 * S::STAGE <= kQ, "four MLP slots in q/k/v's place");
struct MlpRing {
  const char* w;
  char* lo;       // slots 0-3
  char* hi;       // slots 4-5
  uint32_t bars;  // slot i: full at bars + 16 i, empty at + 8
  __device__ uint32_t addr(int slot) const {
    return smem_u32(slot < 4 ? lo + slot * S::STAGE : hi + (slot - 4) * S::STAGE);
  }
  // Thread 0: slot <- the arranged stream's stage `stage`.
  __device__ void fill(int slot, int stage) const { fill_stage(w, stage, addr(slot), bars + 16 * slot); }
  __device__ void init() const {
    for (int i = 0; i < kMlpSlots; ++i) {
      mbar_init(bars + 16 * i, 1);
      mbar_init(bars + 16 * i + 8, THREADS / 32);
    }
  }
  // The arranged stream's stages: fc1 (j) at 8 + 2 j, fc2 (j) at 16 + 2 j (two each).
  static constexpr int fc1_stage(int j) { return 8 + 2 * j; }
  static constexpr int fc2_stage(int j) { return 16 + 2 * j; }
  static constexpr int fc2_slot(int j) { return j & 1 ? 4 : 2; }
  // The products of chunk j: their slots' use counts (phase parities).
  static constexpr int fc1_use(int j) { return j; }
  static constexpr int fc2_use(int j) { return j >> 1; }
  __device__ uint32_t acquire(int slot, int use) const {
    mbar_wait(bars + 16 * slot, use & 1);
    return addr(slot);
  }
  // After this warp's products reading the slot completed; refills it with `next` (-1: none).
  __device__ void release(int slot, int use, int next) const {
    if ((threadIdx.x & 31) == 0) mbar_arrive(bars + 16 * slot + 8);
    if (threadIdx.x == 0 && next >= 0) {
      mbar_wait(bars + 16 * slot + 8, use & 1);
      fill(slot, next);
    }
  }
};
}  // namespace narrow

// PIPE: the MLP by MlpRing, fc1 of the next hidden chunk and its GELU
// while fc2 of this one runs; else chunk after chunk through Ring.
// COMPACT (not with PIPE): the compact layout, four windows an SM.
template <typename T, int HD, bool PIPE, bool COMPACT>
__global__ void __launch_bounds__(narrow::THREADS, COMPACT ? 4 : 3) swin_block_narrow_kernel(BlockArgs p) {
  wait_for_prior_grids();
  using namespace narrow;
  static_assert(!(PIPE && COMPACT), "the compact form runs its MLP chunk after chunk");
  extern __shared__ float4 smem4[];
  char* const sm = reinterpret_cast<char*>(smem4);
  // q (COMPACT: in core-matrix layout), k and v; k's and v's rows LKV apart.
  constexpr int LKV = COMPACT ? LDKV : LDQ;
  __half* const qs = reinterpret_cast<__half*>(COMPACT ? sm : sm + kA);
  __half* const ks = COMPACT ? qs + 64 * C : qs + C;
  __half* const vs = COMPACT ? ks + 64 * LDKV : qs + 2 * C;
  T* const as = reinterpret_cast<T*>(COMPACT ? reinterpret_cast<char*>(vs) : sm);
  char* const ring = COMPACT ? sm + kA + 2 * kKV : sm + kA + kQ;
  Ring ws{static_cast<const char*>(p.wstream), ring, smem_u32(COMPACT ? sm + kBar0 : ring + kRing),
          PIPE ? 8 : S::TOTAL, COMPACT ? uint32_t(kKV) : 16u};
  const MlpRing mr{static_cast<const char*>(p.wstream), reinterpret_cast<char*>(qs), ring,
                   smem_u32(ring + kRing + 16 * STAGES)};
  if (PIPE && threadIdx.x == 0) mr.init();  // before ws.start()'s fence
#ifdef SWINRT_BLOCK_STAMPS
  long long st[10];
  int ns = 0;
#endif
  STAMP();
  ws.start();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, c2 = (lane & 3) * 2;
  const int rows[2] = {warp * 16 + (lane >> 2), warp * 16 + (lane >> 2) + 8};
  const int N = p.window * p.window;
  const int64_t base = int64_t(blockIdx.y) * p.res * p.res;
  const int* tok = p.table[blockIdx.x].tok;
  const unsigned long long* mbits = p.table[blockIdx.x].mbits;
  const uint32_t a0 = smem_u32(as);

  float xr[48];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const bool live = rows[h] < N;
    const float* src = p.x + (base + (live ? tok[rows[h]] : 0)) * C + c2;
#pragma unroll
    for (int j = 0; j < 12; ++j) {
      const float2 v = live ? *reinterpret_cast<const float2*>(src + 8 * j) : make_float2(0.f, 0.f);
      xr[4 * j + 2 * h] = v.x;
      xr[4 * j + 2 * h + 1] = v.y;
    }
  }
  // The LayerNorm of xr's row rows[h] (FP32 two-pass statistics over a quad
  // of lanes: every lane takes part), put(j, columns 8 j + c2 and + 1 as a
  // packed pair of T) for its 12 pairs.
  auto norm_row = [&](int h, const float* __restrict__ g, const float* __restrict__ b, auto&& put) {
    float mean, rstd;
    m64n96_row_stats(xr, h, mean, rstd);
#pragma unroll
    for (int j = 0; j < 12; ++j) {
      const float2 gg = __ldg(reinterpret_cast<const float2*>(g + 8 * j + c2));
      const float2 bb = __ldg(reinterpret_cast<const float2*>(b + 8 * j + c2));
      put(j, pack2<T>((xr[4 * j + 2 * h] - mean) * rstd * gg.x + bb.x,
                      (xr[4 * j + 2 * h + 1] - mean) * rstd * gg.y + bb.y));
    }
  };
  // LayerNorm of the rows in xr -> as (zeros for rows >= N).
  auto layernorm = [&](const float* __restrict__ g, const float* __restrict__ b) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const bool live = rows[h] < N;
      norm_row(h, g, b, [&](int j, uint32_t v) {
        *reinterpret_cast<uint32_t*>(as + cm_index<C>(rows[h], 8 * j + c2)) = live ? v : 0u;
      });
    }
    fence_proxy_async();
    __syncthreads();
  };
  // The products of the ring's next two stages into d, issue(s, stage s's
  // address) putting stage s's: a commit group a stage, the first released
  // (and refilled) while the second's run. The second stage is the caller's
  // to release once it has held what else the products read.
  auto two_stages = [&](float(&d)[48], auto&& issue) {
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const uint32_t b = ws.acquire();
      wgmma_fence();
      if (s > 0) wgmma_hold(d);
      issue(s, b);
      wgmma_commit();
    }
    wgmma_wait<1>();
    ws.release();
    wgmma_wait<0>();
    wgmma_hold(d);
  };
  // d (+)= A . (2 stages of 3 k-tiles)^T, A at a (as's layout).
  auto product = [&](float(&d)[48], bool accumulate, uint32_t a) {
    two_stages(d, [&](int s, uint32_t b) {
#pragma unroll
      for (int kk = 0; kk < 3; ++kk)
        wgmma_m64n96k16_ss<T>(d, wgmma_desc(a + (s * 3 + kk) * 256, 128, C * 16),
                              wgmma_desc(b + kk * C * 32, 128, 256), accumulate || s + kk > 0);
    });
    ws.release();
  };

  // 1. LayerNorm 1; 2. qkv by chunks of 96 columns: + bias, rounded to T, q scaled, as fp16.
  layernorm(p.ln1_g, p.ln1_b);
  STAMP();
  {
    const T* bq = static_cast<const T*>(p.bqkv);
#pragma unroll 1
    for (int ch = 0; ch < 3; ++ch) {
      float d[48];
      product(d, false, a0);
      if (COMPACT && ch == 2) __syncthreads();  // every warp's products have read as, v's place
      const float f = ch == 0 ? p.scale : 1.0f;
      __half* const dst = ch == 0 ? qs : ch == 1 ? ks : vs;
      // once: k and v of fp16 (rounded once, as rounding to fp16 twice would); else rounded to T, then fp16.
      auto epilogue = [&](auto once) {
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < 12; ++j) {
            const int col = ch * C + 8 * j + c2;
            float v0 = d[4 * j + 2 * h], v1 = d[4 * j + 2 * h + 1];
            if (bq) {
              const float2 bb = bias2(bq + col);
              v0 += bb.x;
              v1 += bb.y;
            }
            const int at = COMPACT && ch == 0 ? cm_index<C>(rows[h], 8 * j + c2) : rows[h] * LKV + 8 * j + c2;
            *reinterpret_cast<__half2*>(dst + at) =
                decltype(once)::value ? __floats2half2_rn(v0, v1)
                                      : __floats2half2_rn(to_f(from_f<T>(v0)) * f, to_f(from_f<T>(v1)) * f);
          }
      };
      if (std::is_same_v<T, __half> && ch > 0) epilogue(std::true_type{});
      else epilogue(std::false_type{});
    }
  }
  __syncthreads();
  STAMP();
  // 3. Attention, 12 (strip, head) units on 4 warps (warp w: strip w) -> as, or (COMPACT) over q's rows of the
  // strip and head, which only this warp reads, and has read.
  T* const ao = COMPACT ? reinterpret_cast<T*>(qs) : as;
  for (int unit = warp; unit < 4 * p.heads; unit += THREADS / 32) {
    const int strip = unit & 3, h = unit >> 2;
    auto q_at = [&](int r, int c) -> const __half* {
      return COMPACT ? qs + cm_index<C>(r, h * HD + c) : qs + r * LDQ + h * HD + c;
    };
    attend_strip_at<HD>(q_at, ks + h * HD, vs + h * HD, LKV, LKV, strip, p.rpb + h * 64 * 64, mbits,
                        [&](int r, int c, float v0, float v1) {
                          if constexpr (COMPACT) __syncwarp();
                          store2(ao + cm_index<C>(r, h * HD + c), v0, v1);
                        });
  }
  fence_proxy_async();
  __syncthreads();
  STAMP();
  if (PIPE && threadIdx.x == 0) {  // q/k/v are read: the MLP's first fc1 and fc2 stages go there
    mr.fill(0, MlpRing::fc1_stage(0));
    mr.fill(1, MlpRing::fc1_stage(0) + 1);
    mr.fill(2, MlpRing::fc2_stage(0));
    mr.fill(3, MlpRing::fc2_stage(0) + 1);
  }
  // 4. x += ao . Wproj^T + b: the product accumulates onto x + b.
#pragma unroll
  for (int j = 0; j < 12; ++j) {
    const float2 bb = __ldg(reinterpret_cast<const float2*>(p.bproj + 8 * j + c2));
#pragma unroll
    for (int h = 0; h < 2; ++h) xr[4 * j + 2 * h] += bb.x, xr[4 * j + 2 * h + 1] += bb.y;
  }
  product(xr, true, smem_u32(ao));
  __syncthreads();  // every warp's products read as (and Ring's last stages); (COMPACT) the attention has read v
  STAMP();
  if (PIPE && threadIdx.x == 0) {
    mr.fill(4, MlpRing::fc2_stage(1));
    mr.fill(5, MlpRing::fc2_stage(1) + 1);
  }
  // 5. LayerNorm 2 -> as; 6./7. per hidden chunk j: h = gelu(as . W1_j^T + b1) as A fragments, x += h . W2_j^T.
  layernorm(p.ln2_g, p.ln2_b);
  STAMP();
#pragma unroll
  for (int j = 0; j < 12; ++j) {
    const float2 bb = __ldg(reinterpret_cast<const float2*>(p.bfc2 + 8 * j + c2));
#pragma unroll
    for (int h = 0; h < 2; ++h) xr[4 * j + 2 * h] += bb.x, xr[4 * j + 2 * h + 1] += bb.y;
  }
  // fc1's bias halved (the stream's tail, swin_block_half_bias).
  const float* hb1 = reinterpret_cast<const float*>(static_cast<const char*>(p.wstream) + half_bias_offset(C));
  // hid chunk jc's A fragments: gelu(acc + b1), rounded to T.
  auto gelu_chunk = [&](int jc, const float(&acc)[48], uint32_t(&ha)[6][4]) {
    gelu_frags<T, 6>(acc, HalvedBias{hb1 + jc * C}, c2, ha);
  };
  if constexpr (PIPE) {
    float hacc[48];
    uint32_t ha[6][4];
    // fc1 (j) into hacc, fc2 (j) onto xr from ha: two commit groups each (a stage each).
    auto issue_fc1 = [&](int j) {
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        const uint32_t b = mr.acquire(s, MlpRing::fc1_use(j));
        wgmma_fence();
        if (s > 0) wgmma_hold(hacc);
#pragma unroll
        for (int kk = 0; kk < 3; ++kk)
          wgmma_m64n96k16_ss<T>(hacc, wgmma_desc(a0 + (s * 3 + kk) * 256, 128, C * 16),
                                wgmma_desc(b + kk * C * 32, 128, 256), s + kk > 0);
        wgmma_commit();
      }
    };
    auto issue_fc2 = [&](int j) {
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        const uint32_t b = mr.acquire(MlpRing::fc2_slot(j) + s, MlpRing::fc2_use(j));
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 3; ++kk)
          wgmma_m64n96k16_rs<T>(xr, ha[s * 3 + kk], wgmma_desc(b + kk * C * 32, 128, 256), true);
        wgmma_commit();
      }
    };
    auto release_fc1 = [&](int j, int s) {
      mr.release(s, MlpRing::fc1_use(j), j + 1 < 4 ? MlpRing::fc1_stage(j + 1) + s : -1);
    };
    auto release_fc2 = [&](int j, int s) {
      mr.release(MlpRing::fc2_slot(j) + s, MlpRing::fc2_use(j), j + 2 < 4 ? MlpRing::fc2_stage(j + 2) + s : -1);
    };
    issue_fc1(0);
    wgmma_wait<1>();
    release_fc1(0, 0);
    wgmma_wait<0>();
    wgmma_hold(hacc);
    release_fc1(0, 1);
    gelu_chunk(0, hacc, ha);
#pragma unroll
    for (int jc = 0; jc < 3; ++jc) {
      issue_fc1(jc + 1);
      issue_fc2(jc);
      wgmma_wait<3>();
      release_fc1(jc + 1, 0);
      wgmma_wait<2>();
      wgmma_hold(hacc);
      release_fc1(jc + 1, 1);
      uint32_t hn[6][4];
      gelu_chunk(jc + 1, hacc, hn);  // while fc2 (jc) runs
      wgmma_wait<1>();
      release_fc2(jc, 0);
      wgmma_wait<0>();
      wgmma_hold(xr);
#pragma unroll
      for (int t = 0; t < 6; ++t) wgmma_hold(ha[t]);
      release_fc2(jc, 1);
#pragma unroll
      for (int t = 0; t < 6; ++t)
#pragma unroll
        for (int q = 0; q < 4; ++q) ha[t][q] = hn[t][q];
    }
    issue_fc2(3);
    wgmma_wait<1>();
    release_fc2(3, 0);
    wgmma_wait<0>();
    wgmma_hold(xr);
#pragma unroll
    for (int t = 0; t < 6; ++t) wgmma_hold(ha[t]);
    release_fc2(3, 1);
  } else {
#pragma unroll 1
    for (int jc = 0; jc < 4; ++jc) {
      float hacc[48];
      product(hacc, false, a0);
      uint32_t ha[6][4];
      gelu_chunk(jc, hacc, ha);
      two_stages(xr, [&](int s, uint32_t b) {
#pragma unroll
        for (int kk = 0; kk < 3; ++kk)
          wgmma_m64n96k16_rs<T>(xr, ha[s * 3 + kk], wgmma_desc(b + kk * C * 32, 128, 256), true);
      });
#pragma unroll
      for (int t = 0; t < 6; ++t) wgmma_hold(ha[t]);
      ws.release();
    }
  }
  STAMP();
#ifdef SWINRT_BLOCK_STAMPS
  // Thread 0's phase times (cycles, with the SM's other two windows running) of 4 windows of one image. The
  // printf makes ptxas serialise this kernel's wgmma in this build (C7510): its products' phases read long.
  if (threadIdx.x == 0 && blockIdx.y == gridDim.y / 2 && blockIdx.x < 4 * gridDim.x / 8 && blockIdx.x % 8 == 5)
    printf("narrow stamps B %d window %d: load+ln1 %lld qkv %lld attn %lld proj %lld ln2 %lld mlp %lld total %lld\n",
           gridDim.y, blockIdx.x, st[1] - st[0], st[2] - st[1], st[3] - st[2], st[4] - st[3], st[5] - st[4],
           st[6] - st[5], st[6] - st[0]);
#endif
  // 8. The rows back, in place; or their LayerNorm where the caller asks (the rows themselves are not needed).
  if (p.norm_out) {
    T* out = static_cast<T*>(p.norm_out);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const bool live = rows[h] < N;
      T* dst = out + (base + (live ? tok[rows[h]] : 0)) * C + c2;
      norm_row(h, p.norm_g, p.norm_b, [&](int j, uint32_t v) {
        if (live) *reinterpret_cast<uint32_t*>(dst + 8 * j) = v;
      });
    }
    return;
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (rows[h] >= N) continue;
    float* dst = p.x + (base + tok[rows[h]]) * C + c2;
#pragma unroll
    for (int j = 0; j < 12; ++j)
      *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(xr[4 * j + 2 * h], xr[4 * j + 2 * h + 1]);
  }
}

// W [N][K] (16-bit) -> the stream layout of one GEMM (see Stream): chunks
// of `chunk` columns, in each chunk stages of kps k-tiles, in each stage
// [n-tile][k-tile][lane] uint2 {W[n][k0 + c2], W[n][k0 + c2 + 1]},
// {W[n][k0 + 8 + c2], W[n][k0 + 9 + c2]} with n = nt*8 + lane/4, k0 = kt*16,
// c2 = 2*(lane%4): the b0, b1 registers of mma.m16n8k16's B operand (B = W^T).
__global__ void arrange_kernel(const uint16_t* __restrict__ w, int N, int K, int chunk, int kps,
                               uint2* __restrict__ out) {
  wait_for_prior_grids();
  const int KT = K / 16, nts = chunk / 8, steps = KT / kps;
  const int64_t total = int64_t(N / 8) * KT * 32;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int lane = static_cast<int>(i & 31);
    int64_t r = i >> 5;
    const int kk = static_cast<int>(r % kps);
    r /= kps;
    const int n = static_cast<int>(r % nts);
    r /= nts;
    const int step = static_cast<int>(r % steps), c = static_cast<int>(r / steps);
    const int nt = c * nts + n, kt = step * kps + kk;
    const uint16_t* p = w + int64_t(nt * 8 + (lane >> 2)) * K + kt * 16 + (lane & 3) * 2;
    out[i] = make_uint2(uint32_t(p[0]) | uint32_t(p[1]) << 16, uint32_t(p[8]) | uint32_t(p[9]) << 16);
  }
}

// The same stages for wgmma (block_gemm_wg): in each stage, per k-tile,
// [8-column group][k half][column][8 k] core matrices of 16-byte rows.
__global__ void arrange_wg_kernel(const uint16_t* __restrict__ w, int N, int K, int chunk, int kps,
                                  uint4* __restrict__ out) {
  wait_for_prior_grids();
  const int KT = K / 16, groups = chunk / 8, steps = KT / kps;
  const int64_t total = int64_t(N) * K / 8;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int e = static_cast<int>(i & 7);
    int64_t r = i >> 3;
    const int half = static_cast<int>(r & 1);
    r >>= 1;
    const int grp = static_cast<int>(r % groups);
    r /= groups;
    const int kk = static_cast<int>(r % kps);
    r /= kps;
    const int step = static_cast<int>(r % steps), c = static_cast<int>(r / steps);
    const uint16_t* p = w + int64_t(c * chunk + grp * 8 + e) * K + (step * kps + kk) * 16 + half * 8;
    out[i] = make_uint4(uint32_t(p[0]) | uint32_t(p[1]) << 16, uint32_t(p[2]) | uint32_t(p[3]) << 16,
                        uint32_t(p[4]) | uint32_t(p[5]) << 16, uint32_t(p[6]) | uint32_t(p[7]) << 16);
  }
}

void arrange(const void* w, int N, int K, int chunk, int kps, bool wg, char* out, cudaStream_t s) {
  const int64_t total = int64_t(N / 8) * (K / 16) * 32;
  if (wg)
    arrange_wg_kernel<<<ceil_div(total, 256), 256, 0, s>>>(static_cast<const uint16_t*>(w), N, K, chunk, kps,
                                                             reinterpret_cast<uint4*>(out));
  else
    arrange_kernel<<<ceil_div(total, 256), 256, 0, s>>>(static_cast<const uint16_t*>(w), N, K, chunk, kps,
                                                          reinterpret_cast<uint2*>(out));
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

template <int C>
void arrange_block(const void* qkv, const void* proj, const void* fc1, const void* fc2, bool wg, void* out,
                   cudaStream_t s) {
  using S = Stream<C>;
  char* o = static_cast<char*>(out);
  arrange(qkv, 3 * C, C, S::CH0, S::KPS, wg, o, s);
  arrange(proj, C, C, S::CH1, S::KPS, wg, o + S::O1, s);
  arrange(fc1, 4 * C, C, S::CH2, S::KPS, wg, o + S::O2, s);
  arrange(fc2, C, 4 * C, S::CH3, S::KPS, wg, o + S::O3, s);
}

using Kernel = void (*)(BlockArgs);

// Calls f(std::integral_constant<int, C>) for a channel count the kernel is
// built for; false for any other.
template <class F>
bool with_channels(int C, F&& f) {
  return with_value<48, 96, 192>(C, f);
}

// Dynamic shared memory of the kernel by warpgroup (wide: its 16-warp form, pair: its pair form) or by warp.
template <int C>
size_t smem_bytes(bool wg, bool wide = false, bool pair = false) {
  if constexpr (C == 96)
    if (wg && wide)
      return pair ? Layout<C, true, 2 * kThreadsFor<C>, true>::bytes : Layout<C, true, 2 * kThreadsFor<C>>::bytes;
  return wg ? Layout<C, true>::bytes : Layout<C, false>::bytes;
}

// The kernel for dtype t, C channels and C / heads channels per head (16 or
// 32; 48 channels only with 16), by warpgroup or by warp, or null. wide:
// the 16-warp form of the 96-channel wgmma kernel; pair: its pair form.
Kernel kernel_for(DT t, int C, int heads, bool wg, bool wide = false, bool pair = false) {
  if (t == DT::F32 || heads <= 0 || C % heads) return nullptr;
  const int hd = C / heads;
  Kernel k = nullptr;
  with_channels(C, [&](auto c) {
    constexpr int CC = decltype(c)::value;
    auto typed = [&](auto tag) {
      using T = decltype(tag);
      auto pick = [&](auto hdc) -> Kernel {
        constexpr int HD = decltype(hdc)::value;
        if constexpr (CC == 96)
          if (wg && wide)
            return pair ? swin_block_kernel<T, CC, HD, true, 2 * kThreadsFor<CC>, true>
                        : swin_block_kernel<T, CC, HD, true, 2 * kThreadsFor<CC>>;
        return wg ? swin_block_kernel<T, CC, HD, true> : swin_block_kernel<T, CC, HD, false>;
      };
      if (hd == 16) k = pick(std::integral_constant<int, 16>{});
      if constexpr (CC != 48)
        if (hd == 32) k = pick(std::integral_constant<int, 32>{});
    };
    t == DT::F16 ? typed(__half{}) : typed(__nv_bfloat16{});
  });
  return k;
}

// Writes 1 where this build's sm_90a code is what runs on the device.
__global__ void wgmma_probe_kernel(int* out) {
  wait_for_prior_grids();
#ifdef SWINRT_WGMMA_CODE
  *out = 1;
#else
  *out = 0;
#endif
}

}  // namespace

void arrange_wgmma_stages(const void* w, int N, int K, int chunk, int kps, void* out, cudaStream_t s) {
  arrange(w, N, K, chunk, kps, true, static_cast<char*>(out), s);
}

bool wgmma_supported() {
  if (switched_off("SWINRT_WGMMA")) return false;
  int major = 0, minor = 0, dev = 0;
  if (!device_attribute(cudaDevAttrComputeCapabilityMajor, major) ||
      !device_attribute(cudaDevAttrComputeCapabilityMinor, minor) || major != 9 || minor != 0)
    return false;
  SWINRT_CUDA_CHECK(cudaGetDevice(&dev));
  static std::mutex mu;
  static std::map<int, bool> probed;
  std::lock_guard<std::mutex> lock(mu);
  auto it = probed.find(dev);
  if (it != probed.end()) return it->second;
  int* raw = nullptr;
  SWINRT_CUDA_CHECK(cudaMalloc(&raw, sizeof(int)));
  const std::unique_ptr<int, cudaError_t (*)(void*)> flag(raw, cudaFree);
  SWINRT_CUDA_CHECK(cudaMemset(raw, 0, sizeof(int)));
  wgmma_probe_kernel<<<1, 1>>>(raw);
  SWINRT_CUDA_CHECK(cudaGetLastError());
  int v = 0;
  SWINRT_CUDA_CHECK(cudaMemcpy(&v, raw, sizeof(int), cudaMemcpyDeviceToHost));
  return probed[dev] = v == 1;
}

bool swin_block_supported(DT t, int C, int heads, int window, int hidden) {
  if (hidden != 4 * C || window * window > kRows || !kernel_for(t, C, heads, false)) return false;
  int optin = 0;
  if (!device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, optin)) return false;
  size_t smem = 0;
  with_channels(C, [&](auto c) {
    smem = std::max({smem_bytes<decltype(c)::value>(false), smem_bytes<decltype(c)::value>(true),
                     smem_bytes<decltype(c)::value>(true, true, true)});
  });
  return smem <= size_t(optin);
}

// The qkv, proj, fc1 and fc2 weights of a block: 12 C^2 16-bit values; then
// fc1's bias halved in FP32 (4 C values, swin_block_half_bias), for the
// one-warpgroup kernel's GELU (gelu_tanh_half).
size_t swin_block_stream_bytes(int C) { return half_bias_offset(C) + size_t(4) * C * 4; }

namespace {
template <typename T>
__global__ void half_bias_kernel(const T* __restrict__ b, int n, float* __restrict__ out) {
  wait_for_prior_grids();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 0.5f * to_f(b[i]);
}
}  // namespace

void half_bias(const void* b, DT t, int n, float* out, cudaStream_t s) {
  const unsigned grid = ceil_div(n, 256);
  if (t == DT::F16) half_bias_kernel<<<grid, 256, 0, s>>>(static_cast<const __half*>(b), n, out);
  else if (t == DT::BF16) half_bias_kernel<<<grid, 256, 0, s>>>(static_cast<const __nv_bfloat16*>(b), n, out);
  else half_bias_kernel<<<grid, 256, 0, s>>>(static_cast<const float*>(b), n, out);
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

float* swin_block_half_bias(int C, void* stream) {
  return reinterpret_cast<float*>(static_cast<char*>(stream) + half_bias_offset(C));
}

bool swin_block_arrange(int C, const void* qkv, const void* proj, const void* fc1, const void* fc2, bool table,
                        void* out, cudaStream_t s) {
  const bool wg = table && wgmma_supported();
  if (!with_channels(C, [&](auto c) { arrange_block<decltype(c)::value>(qkv, proj, fc1, fc2, wg, out, s); }))
    throw Error(fmt::format("swin_block_arrange: no fused kernel for C {}", C));
  return wg;
}

namespace {
// The one-warpgroup kernel of the form asked for, its shared memory set up (nbytes: its launch's).
Kernel narrow_kernel(DT t, bool pipe, bool compact, size_t& nbytes) {
  auto pick = [&](auto tag) -> Kernel {
    using T = decltype(tag);
    return compact ? swin_block_narrow_kernel<T, 32, false, true>
                   : pipe ? swin_block_narrow_kernel<T, 32, true, false> : swin_block_narrow_kernel<T, 32, false, false>;
  };
  const Kernel nk = t == DT::F16 ? pick(__half{}) : pick(__nv_bfloat16{});
  nbytes = compact ? narrow::kBytesCompact : pipe ? narrow::kBytesPipe : narrow::kBytes;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  SWINRT_CUDA_CHECK(cudaFuncSetAttribute(nk, cudaFuncAttributeMaxDynamicSharedMemorySize, int(nbytes)));
  // Four compact blocks need all of the SM's 228 KB as shared memory.
  if (compact)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(nk, cudaFuncAttributePreferredSharedMemoryCarveout,
                                           int(cudaSharedmemCarveoutMaxShared)));
  return nk;
}
}  // namespace

const char* swin_block(float* x, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                       const SwinBlockWeights& w, cudaStream_t s, const float* norm_g, const float* norm_b,
                       void* norm_out) {
  // Where the windows are no more than the SMs (batch 1 and 2 at 224x224),
  // each SM runs one window: the 16-warp form (its LayerNorms sum their
  // statistics over 8 threads a row instead of 4).
  const int64_t windows = int64_t(res / window) * (res / window) * B;
  const bool wide = w.wgmma && w.wide && C == 96 && windows <= sm_count();
  // Where the device holds a pair of blocks for every window at once (batch 1), a pair of blocks a window.
  const bool pair = wide && (w.pair == 2 || (w.pair == 1 && 2 * windows <= sm_count()));
  const Kernel kernel = kernel_for(t, C, heads, w.wgmma, wide, pair);
  if (w.wgmma && !w.table) throw Error("swin_block: the wgmma kernel needs the window table");
  if (!kernel) throw Error(fmt::format("swin_block: no fused kernel for C {} heads {}", C, heads));
  size_t smem = 0;
  int threads = 0;
  with_channels(C, [&](auto c) {
    smem = smem_bytes<decltype(c)::value>(w.wgmma, wide, pair);
    threads = kThreadsFor<decltype(c)::value> * (wide ? 2 : 1);
  });
  static std::mutex mu;
  {
    std::lock_guard<std::mutex> lock(mu);
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  }
  if (!w.rpb64) throw Error("swin_block: the padded relative position bias is missing");
  BlockArgs a{x,        res,    window,  shift,  heads,  scale, w.ln1_g, w.ln1_b, w.ln2_g, w.ln2_b,
              w.stream, w.bqkv, w.bproj, w.bfc1, w.bfc2, w.rpb64,
              static_cast<const WindowTable*>(w.table), nullptr, nullptr, nullptr,
              w.early, w.preload};
  const dim3 grid((res / window) * (res / window), B);
  // Where the windows are more than the SMs: the one-warpgroup form, three windows an SM (96 channels, 3 heads).
  if (w.wgmma && w.narrow && !wide && C == 96 && heads == 3 && t != DT::F32) {
    // The pipelined MLP: on the H100 the window's MLP 17% shorter, the forward 0.2-2% faster from fp16/bf16
    // batch 32 (2,048 windows a block), 1% slower at batch 8 (512; docs/PERFORMANCE_LOG.md, "Session 16").
    const int64_t sms = sm_count();
    const bool pipe_range = w.narrow_pipe == 2 || (w.narrow_pipe == 1 && windows >= 8 * sms);
    // The compact layout, four windows an SM: each window about 1.4x longer than with three an SM at batch 128,
    // the kernel 11% slower there, but batch 8 (one wave instead of two) 5% faster and 16 (two instead of three)
    // 1% (docs/PERFORMANCE_LOG.md, "Session 19"). Taken where its waves are at most 2/3 of the other form's, below
    // the pipelined MLP's range.
    auto waves = [&](int per_sm) { return (windows + per_sm * sms - 1) / (per_sm * sms); };
    const bool compact =
        w.narrow_compact == 2 || (w.narrow_compact == 1 && !pipe_range && 3 * waves(4) <= 2 * waves(3));
    const bool pipe = pipe_range && !compact;
    size_t nbytes = 0;
    const Kernel nk = narrow_kernel(t, pipe, compact, nbytes);
    a.norm_g = norm_g, a.norm_b = norm_b, a.norm_out = norm_out;
    nk<<<grid, narrow::THREADS, nbytes, s>>>(a);
    SWINRT_CUDA_CHECK(cudaGetLastError());
    return compact ? (norm_out ? "fused.narrow4+norm" : "fused.narrow4") : norm_out ? "fused.narrow+norm" : "fused.narrow";
  }
#ifdef SWINRT_BLOCK_STAMPS
  {
    static bool once = false;
    int per_sm = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem);
    if (!once) std::printf("swin_block C %d wgmma %d: %zu bytes shared, %d blocks per SM\n", C, int(w.wgmma), smem, per_sm);
    once = true;
  }
#endif
  if (pair) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(2 * grid.x, grid.y);
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute cluster{};
    cluster.id = cudaLaunchAttributeClusterDimension;
    cluster.val.clusterDim.x = 2;
    cluster.val.clusterDim.y = 1;
    cluster.val.clusterDim.z = 1;
    cfg.attrs = &cluster;
    cfg.numAttrs = 1;
    // Pairs are placed within a GPC: by policy only where all of them fit at once (a second wave would
    // double the kernel's time), else one block a window.
    int fit = 0;
    const bool fits = w.pair == 2 || (cudaOccupancyMaxActiveClusters(&fit, kernel, &cfg) == cudaSuccess &&
                                      fit >= windows);
    cudaGetLastError();  // (clears a failed query)
    if (fits) {
      BlockArgs ap = a;
      ap.norm_g = norm_g, ap.norm_b = norm_b, ap.norm_out = norm_out;
      SWINRT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, ap));
#ifdef SWINRT_BLOCK_STAMPS
      stamps_print_kernel<<<1, 1, 0, s>>>();
#endif
      return norm_out ? "fused.pair+norm" : "fused.pair";
    }
  }
  Kernel single = kernel;
  if (pair) {  // the pairs did not fit: one block a window
    single = kernel_for(t, C, heads, w.wgmma, wide, false);
    with_channels(C, [&](auto c) { smem = smem_bytes<decltype(c)::value>(w.wgmma, wide, false); });
    std::lock_guard<std::mutex> lock(mu);
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(single, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  }
  single<<<grid, threads, smem, s>>>(a);
  SWINRT_CUDA_CHECK(cudaGetLastError());
#ifdef SWINRT_BLOCK_STAMPS
  stamps_print_kernel<<<1, 1, 0, s>>>();
#endif
  return w.wgmma ? "fused.wgmma" : "fused";
}

}  // namespace swinrt::cuda
