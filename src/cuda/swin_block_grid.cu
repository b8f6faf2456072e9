// swin_block_grid: a whole Swin block as one persistent kernel whose thread
// blocks synchronise over the grid between its phases, for small batches of
// FP16/BF16 activations. Op by op, a batch-1 block of the 192-, 384- and
// 768-channel stages is seven launches of a few microseconds of work each;
// the per-window fused kernel (swin_block.cu) has too few windows there
// (16, 4, 1) to fill the GPU. Here the grid (at most one wave) walks:
//   1. LayerNorm 1 + qkv GEMM + bias     64 x 64 tiles (64 x 32 at 768
//                                        channels), LayerNorm in the prologue
//   2. shifted-window attention          one (window, head, slice) unit at a time
//   3. proj GEMM + bias + residual       64 x 32 tiles, into the FP32 rows
//   4. LayerNorm 2 + fc1 + bias + GELU   as 1
//   5. fc2 + bias + residual             as 3
// with cooperative_groups grid barriers between them; where the rows are few,
// 3 and 5 split k and add their parts after one more barrier (in a fixed
// order: deterministic). It rounds where the op-by-op path rounds (LayerNorm
// outputs, qkv, attention output and hidden layer in the activation dtype,
// FP32 residual) and takes GELU's tanh form, as that path's cuBLASLt epilogue
// does; the attention is window_attention_unit (attention.cuh), as in the
// attention kernel. Buffers are the op-by-op path's (qkv, attention output,
// hidden). Mirror: the CPU backend's SwinBlock (src/cpu/backend.cpp) op by op.
//
// Opt-in (SWINRT_GRID_BLOCK, backend.cu): measured slower than the op-by-op
// kernels on the H100, its GEMM phases taking 8-20 us each at batch 1
// (docs/PERFORMANCE_LOG.md). SWINRT_GRID_STAMPS=1 prints each launch's phase
// times (globaltimer, thread block 0 after each grid barrier).
#include <cooperative_groups.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "attention.cuh"
#include "ops.cuh"

namespace swinrt::cuda {

namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int kBM = 64;       // GEMM tile rows
constexpr int kKS = 64;       // k per cp.async stage
constexpr int kLd = kKS + 8;  // row stride (elements) of a stage: conflict-free ldmatrix
constexpr int kMaxHeadDim = 32;
constexpr int kMaxSplit = 8;                   // most k-parts of a split proj / fc2 GEMM
constexpr size_t kSmemBudget = 200 * 1024;     // one thread block per SM

// A 64 x BN tile of A . W^T over k in [k0, k0 + KP) (W [N][ldk] row-major,
// 16-bit T, KP a multiple of kKS), FP32 accumulators; warps WM x WN, each
// 16 * MT rows x 16 columns. A is either resident in shared memory
// ([64][lda], written by `prologue`, which runs while the first weight
// stages load) or streamed from global memory ([M][ldk]) with the weights,
// rows >= M read as zeros. Up to NS stages are in flight: at batch 1 a tile
// is a few stages long, so all of its loads go out at once. epi(row, col,
// v0, v1) gets columns col, col + 1 of every row < M exactly once.
template <typename T, int BN, bool kResidentA, int NS>
struct TileGemm {
  static constexpr int WN = BN / 16, WM = kWarps / WN, MT = 4 / WM;
  static_assert(WM * WN == kWarps && MT * WM == 4 && NS >= 2, "tile shape");
  static constexpr size_t kStageA = kResidentA ? 0 : size_t(kBM) * kLd * sizeof(T);
  static constexpr size_t kStage = kStageA + size_t(BN) * kLd * sizeof(T);
  static constexpr size_t ring_bytes() { return NS * kStage; }

  template <class Prologue, class Epi>
  __device__ __forceinline__ static void run(const T* ag, int64_t M, int64_t m0, const T* W, int ldk, int n0, int k0,
                                             int KP, const T* as, int lda, char* ring, Prologue&& prologue,
                                             Epi&& epi) {
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int wm = warp / WN, wn = warp % WN, g = lane >> 2, c2 = (lane & 3) * 2;
    const int KT = KP / kKS;
    auto issue = [&](int s) {
      if (s < KT) {
        char* st = ring + (s % NS) * kStage;
        const int k = k0 + s * kKS;
        T* bs = reinterpret_cast<T*>(st + kStageA);
        for (int c = tid; c < BN * 8; c += kThreads) {
          const int r = c >> 3, q = (c & 7) * 8;
          cp_async16(bs + r * kLd + q, W + int64_t(n0 + r) * ldk + k + q);
        }
        if constexpr (!kResidentA) {
          T* a = reinterpret_cast<T*>(st);
          for (int c = tid; c < kBM * 8; c += kThreads) {
            const int r = c >> 3, q = (c & 7) * 8;
            const bool valid = m0 + r < M;
            cp_async16_zfill(a + r * kLd + q, ag + (valid ? m0 + r : 0) * ldk + k + q, valid);
          }
        }
      }
      cp_async_commit();
    };
#pragma unroll 1
    for (int s = 0; s < NS - 1; ++s) issue(s);
    prologue();

    float acc[MT][2][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < 2; ++j) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0.f;
#pragma unroll 1
    for (int kt = 0; kt < KT; ++kt) {
      cp_async_wait<NS - 2>();
      __syncthreads();  // stage kt (and a resident A) visible; the slot of stage kt - 1 free
      issue(kt + NS - 1);
      const char* st = ring + (kt % NS) * kStage;
      const T* a = kResidentA ? as + kt * kKS : reinterpret_cast<const T*>(st);
      const int ald = kResidentA ? lda : kLd;
      const T* bs = reinterpret_cast<const T*>(st + kStageA);
      const T* arow = a + (wm * MT * 16 + (lane & 15)) * ald + (lane >> 4) * 8;
      // B fragments of two 8-column tiles: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15).
      const T* brow = bs + (wn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kLd + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int kk = 0; kk < kKS / 16; ++kk) {
        uint32_t b[4];
        ldsm_x4(b, brow + kk * 16);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          uint32_t af[4];
          ldsm_x4(af, arow + mt * 16 * ald + kk * 16);
          mma16816<T>(acc[mt][0], af, b[0], b[1]);
          mma16816<T>(acc[mt][1], af, b[2], b[3]);
        }
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // every warp done with the ring and A before the next tile refills them
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int64_t row = m0 + wm * MT * 16 + mt * 16 + g;
        const int col = n0 + wn * 16 + j * 8 + c2;
        if (row < M) epi(row, col, acc[mt][j][0], acc[mt][j][1]);
        if (row + 8 < M) epi(row + 8, col, acc[mt][j][2], acc[mt][j][3]);
      }
  }
};

// as[64][C + 8] (T) = LayerNorm of FP32 rows m0.. of x (two-pass FP32
// statistics, eps 1e-5, as layernorm_kernel); rows >= M are zeros. Each warp
// takes 8 rows, RB at a time with all their loads in flight (one memory
// round trip per RB rows, not per row). x is written earlier in the same
// launch: plain (coherent) loads.
template <typename T, int C>
__device__ __forceinline__ void ln_rows(const float* x, int64_t M, int64_t m0, const float* __restrict__ gamma,
                                        const float* __restrict__ beta, T* as) {
  constexpr int V = C / 4, PER = (V + 31) / 32, RB = PER <= 2 ? 8 : PER <= 3 ? 4 : 2;
  static_assert(kBM == 8 * kWarps, "8 rows per warp");
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll 1
  for (int r0 = warp * 8; r0 < warp * 8 + 8; r0 += RB) {
    float4 v[RB][PER];
#pragma unroll
    for (int j = 0; j < RB; ++j) {
      const int64_t row = m0 + r0 + j;
      const float4* xr = reinterpret_cast<const float4*>(x + row * C);
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int c4 = lane + 32 * i;
        v[j][i] = row < M && c4 < V ? xr[c4] : make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
#pragma unroll
    for (int j = 0; j < RB; ++j) {
      T* o = as + (r0 + j) * (C + 8);
      if (m0 + r0 + j >= M) {
        for (int c4 = lane; c4 < V; c4 += 32) *reinterpret_cast<uint2*>(o + 4 * c4) = make_uint2(0, 0);
        continue;
      }
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < PER; ++i) sum += (v[j][i].x + v[j][i].y) + (v[j][i].z + v[j][i].w);
      const float mean = warp_sum(sum) / C;
      float sq = 0.f;
#pragma unroll
      for (int i = 0; i < PER; ++i)
        if (lane + 32 * i < V) {
          const float a = v[j][i].x - mean, b = v[j][i].y - mean, c = v[j][i].z - mean, d = v[j][i].w - mean;
          sq += (a * a + b * b) + (c * c + d * d);
        }
      const float rstd = rsqrtf(warp_sum(sq) / C + 1e-5f);
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int c4 = lane + 32 * i;
        if (c4 >= V) continue;
        const float4 gq = __ldg(reinterpret_cast<const float4*>(gamma) + c4);
        const float4 bq = __ldg(reinterpret_cast<const float4*>(beta) + c4);
        __align__(8) T e[4] = {from_f<T>((v[j][i].x - mean) * rstd * gq.x + bq.x),
                               from_f<T>((v[j][i].y - mean) * rstd * gq.y + bq.y),
                               from_f<T>((v[j][i].z - mean) * rstd * gq.z + bq.z),
                               from_f<T>((v[j][i].w - mean) * rstd * gq.w + bq.w)};
        *reinterpret_cast<uint2*>(o + 4 * c4) = *reinterpret_cast<const uint2*>(e);
      }
    }
  }
}

// GELU, tanh form (as cuBLASLt's GELU epilogue on the op-by-op path).
__device__ __forceinline__ float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * fmaf(0.044715f * v, v * v, v)));
}

struct GridArgs {
  float* x;  // [B, res^2, C] FP32 residual stream, updated in place
  void *qkv, *att, *hid;  // scratch: [rows, 3C], [rows, C], [rows, 4C], dtype T
  float* part;            // split-k partial sums [split][rows][C] (the qkv scratch, free after attention)
  int B, res, heads, window, shift;
  float scale;
  int split_proj, split_fc2;  // k-parts of the proj and fc2 GEMMs (1: added straight into x)
  int stamps;                 // print the phase times (SWINRT_GRID_STAMPS, a diagnostic)
  SwinBlockGridWeights w;
};

// Tile widths and pipeline depths by channel count: LayerNorm phases keep
// their 64 normalised rows resident; every phase's ring holds as many stages
// as the shared memory budget allows (at batch 1 all of a tile's).
template <int C>
struct GridShape {
  static constexpr int BN_LN = C >= 768 ? 32 : 64;  // qkv and fc1 tiles: more of them where rows are few
  static constexpr int BN_OUT = 32;                 // proj and fc2 tiles
  static constexpr size_t kA = size_t(kBM) * (C + 8) * 2;
  static constexpr int ns(size_t budget, size_t stage, int most) {
    return budget / stage < size_t(most) ? int(budget / stage) : most;
  }
  static constexpr int NS_LN = ns(kSmemBudget - kA, size_t(BN_LN) * kLd * 2, C / kKS < 2 ? 2 : C / kKS);
  static constexpr int NS_OUT = ns(kSmemBudget, size_t(kBM + BN_OUT) * kLd * 2, 12);
  template <typename T>
  using LnGemm = TileGemm<T, BN_LN, true, NS_LN>;
  template <typename T>
  using OutGemm = TileGemm<T, BN_OUT, false, NS_OUT>;
  static constexpr size_t kLnPhase = kA + LnGemm<__half>::ring_bytes(), kOutPhase = OutGemm<__half>::ring_bytes();
  static size_t bytes_for(size_t attention) { return std::max({kLnPhase, kOutPhase, attention}); }
};

// x += b + the k-parts of a split GEMM (or nothing when split is 1: the
// tiles added theirs), float4 by float4 over the whole grid.
__device__ __forceinline__ void reduce_parts(float* x, const float* part, int split, int64_t M, int C,
                                             const float* __restrict__ b) {
  const int64_t n4 = M * C / 4, stride = int64_t(gridDim.x) * kThreads;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n4; i += stride) {
    const int c = static_cast<int>(i * 4 % C);
    float4 v = reinterpret_cast<float4*>(x)[i];
    const float4 bq = __ldg(reinterpret_cast<const float4*>(b + c));
    float4 sum = bq;
    for (int s = 0; s < split; ++s) {
      const float4 q = reinterpret_cast<const float4*>(part)[s * n4 + i];
      sum.x += q.x, sum.y += q.y, sum.z += q.z, sum.w += q.w;
    }
    v.x += sum.x, v.y += sum.y, v.z += sum.z, v.w += sum.w;
    reinterpret_cast<float4*>(x)[i] = v;
  }
}

// x += A . W^T + b for the proj (A = att, K = C) and fc2 (A = hid, K = 4C)
// GEMMs: 64 x 32 tiles, split into `split` k-parts when the rows are few;
// the parts go to `part` and reduce_parts adds them after a grid barrier.
template <typename T, int C>
__device__ __forceinline__ void residual_gemm(cg::grid_group& grid, float* x, const T* A, int K, const T* W,
                                              const float* __restrict__ b, float* part, int split, int64_t M,
                                              int mtiles, char* smem) {
  using G = typename GridShape<C>::template OutGemm<T>;
  constexpr int BN = GridShape<C>::BN_OUT, NC = C / BN;
  const int KP = K / split;
  for (int u = blockIdx.x; u < mtiles * NC * split; u += gridDim.x) {
    const int sp = u % split, t = u / split;
    G::run(A, M, int64_t(t / NC) * kBM, W, K, (t % NC) * BN, sp * KP, KP, nullptr, 0, smem, [] {},
           [&](int64_t row, int col, float v0, float v1) {
             if (split == 1) {
               float2* px = reinterpret_cast<float2*>(x + row * C + col);
               float2 x2 = *px;
               x2.x += v0 + b[col];
               x2.y += v1 + b[col + 1];
               *px = x2;
             } else {
               *reinterpret_cast<float2*>(part + (int64_t(sp) * M + row) * C + col) = make_float2(v0, v1);
             }
           });
  }
  if (split > 1) {
    grid.sync();
    reduce_parts(x, part, split, M, C, b);
  }
}

// epi(row, col, v0, v1) of LN(x) . W^T for the qkv (N = 3C) and fc1 (N = 4C)
// GEMMs: 64 x BN_LN tiles, each normalising its 64 rows into shared memory
// while its first weight stages load.
template <typename T, int C, int N, class Epi>
__device__ __forceinline__ void ln_gemm(const float* x, const T* W, const float* __restrict__ gamma,
                                        const float* __restrict__ beta, int64_t M, int mtiles, char* smem,
                                        Epi&& epi) {
  using S = GridShape<C>;
  constexpr int NC = N / S::BN_LN;
  T* as = reinterpret_cast<T*>(smem);
  for (int u = blockIdx.x; u < mtiles * NC; u += gridDim.x) {
    const int64_t m0 = int64_t(u / NC) * kBM;
    S::template LnGemm<T>::run(nullptr, M, m0, W, C, (u % NC) * S::BN_LN, 0, C, as, C + 8, smem + S::kA,
                               [&] { ln_rows<T, C>(x, M, m0, gamma, beta, as); }, epi);
  }
}

__device__ __forceinline__ unsigned long long gtimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

template <typename T, int C>
__global__ void __launch_bounds__(kThreads, 1) swin_block_grid_kernel(GridArgs p) {
  wait_for_prior_grids();
  unsigned long long ts[6];  // globaltimer after each phase, for SWINRT_GRID_STAMPS
  ts[0] = gtimer();
  using S = GridShape<C>;
  extern __shared__ float4 smem4[];
  char* smem = reinterpret_cast<char*>(smem4);
  cg::grid_group grid = cg::this_grid();
  const SwinBlockGridWeights& w = p.w;
  const int64_t M = int64_t(p.B) * p.res * p.res;
  const int mtiles = static_cast<int>((M + kBM - 1) / kBM);
  T* qkv = static_cast<T*>(p.qkv);
  T* att = static_cast<T*>(p.att);
  T* hid = static_cast<T*>(p.hid);
  float* x = p.x;

  // 1. qkv = LN1(x) . Wqkv^T + b, rounded to T.
  {
    const T* bq = static_cast<const T*>(w.bqkv);
    ln_gemm<T, C, 3 * C>(x, static_cast<const T*>(w.wqkv), w.ln1_g, w.ln1_b, M, mtiles, smem,
                         [&](int64_t row, int col, float v0, float v1) {
                           if (bq) {
                             v0 += to_f(bq[col]);
                             v1 += to_f(bq[col + 1]);
                           }
                           store2(qkv + row * 3 * C + col, v0, v1);
                         });
  }
  grid.sync();
  ts[1] = gtimer();

  // 2. Attention, one (window, head, slice) unit at a time -> att.
  {
    const int nw = (p.res / p.window) * (p.res / p.window), units = p.B * nw * p.heads;
    for (int u = blockIdx.x; u < units; u += gridDim.x) {
      const int hd = C / p.heads;
      if (hd == 16)
        window_attention_unit<T, 16, kThreads>(qkv, p.res, C, p.heads, p.window, p.shift, p.scale, w.rpb64, att,
                                               u % nw, u / nw % p.heads, u / (nw * p.heads), smem);
      else
        window_attention_unit<T, 32, kThreads>(qkv, p.res, C, p.heads, p.window, p.shift, p.scale, w.rpb64, att,
                                               u % nw, u / nw % p.heads, u / (nw * p.heads), smem);
      __syncthreads();
    }
  }
  grid.sync();
  ts[2] = gtimer();

  // 3. x += att . Wproj^T + b.
  residual_gemm<T, C>(grid, x, att, C, static_cast<const T*>(w.wproj), w.bproj, p.part, p.split_proj, M, mtiles,
                      smem);
  grid.sync();
  ts[3] = gtimer();

  // 4. hid = gelu(LN2(x) . Wfc1^T + b), rounded to T.
  {
    const T* b1 = static_cast<const T*>(w.bfc1);
    ln_gemm<T, C, 4 * C>(x, static_cast<const T*>(w.wfc1), w.ln2_g, w.ln2_b, M, mtiles, smem,
                         [&](int64_t row, int col, float v0, float v1) {
                           store2(hid + row * 4 * C + col, gelu_tanh(v0 + to_f(b1[col])),
                                  gelu_tanh(v1 + to_f(b1[col + 1])));
                         });
  }
  grid.sync();
  ts[4] = gtimer();

  // 5. x += hid . Wfc2^T + b.
  residual_gemm<T, C>(grid, x, hid, 4 * C, static_cast<const T*>(w.wfc2), w.bfc2, p.part, p.split_fc2, M, mtiles,
                      smem);
  if (p.stamps) {
    grid.sync();
    ts[5] = gtimer();
    if (blockIdx.x == 0 && threadIdx.x == 0)
      printf("grid C=%d M=%lld grid=%d: ln1+qkv %.2f attn %.2f proj %.2f ln2+fc1 %.2f fc2 %.2f us\n", C, (long long)M,
             gridDim.x, (ts[1] - ts[0]) * 1e-3, (ts[2] - ts[1]) * 1e-3, (ts[3] - ts[2]) * 1e-3, (ts[4] - ts[3]) * 1e-3,
             (ts[5] - ts[4]) * 1e-3);
  }
}


using Kernel = void (*)(GridArgs);

// Calls f(std::integral_constant<int, C>) for a channel count the kernel is
// built for; false for any other.
template <class F>
bool with_channels(int C, F&& f) {
  return with_value<192, 384, 768>(C, f);
}

struct Launch {
  Kernel kernel = nullptr;
  size_t smem = 0;
};

Launch launch_for(DT t, int C, int heads, int window) {
  Launch l;
  if (t == DT::F32 || heads <= 0 || C % heads || C / heads > kMaxHeadDim || (C / heads) % 16 ||
      window * window > 64)
    return l;
  const size_t attention = window_attention_smem(C / heads);
  with_channels(C, [&](auto c) {
    constexpr int CC = decltype(c)::value;
    l.kernel = t == DT::F16 ? swin_block_grid_kernel<__half, CC> : swin_block_grid_kernel<__nv_bfloat16, CC>;
    l.smem = GridShape<CC>::bytes_for(attention);
  });
  return l;
}

}  // namespace

bool swin_block_grid_supported(DT t, int C, int heads, int window, int hidden) {
  const Launch l = launch_for(t, C, heads, window);
  if (hidden != 4 * C || !l.kernel) return false;
  int optin = 0, coop = 0;
  if (!device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, optin) ||
      !device_attribute(cudaDevAttrCooperativeLaunch, coop))
    return false;
  return coop && l.smem <= size_t(optin);
}

namespace {

// The k-parts of a residual GEMM (K deep, N = C wide): as many as keep the
// tiles within `slots` thread blocks, each part a whole number of stages,
// and the parts within the `part_bytes` of scratch.
int split_for(int64_t mtiles, int C, int K, int64_t M, int slots, size_t part_bytes) {
  const int64_t tiles = mtiles * (C / 32);
  int best = 1;
  for (int s = 2; s <= kMaxSplit; ++s)
    if (tiles * s <= slots && K % (s * kKS) == 0 && size_t(s) * M * C * 4 <= part_bytes) best = s;
  return best;
}

}  // namespace

void swin_block_grid(float* x, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                     const SwinBlockGridWeights& w, void* qkv, size_t qkv_bytes, void* att, void* hid,
                     cudaStream_t s) {
  const Launch l = launch_for(t, C, heads, window);
  if (!l.kernel) throw Error(fmt::format("swin_block_grid: no kernel for C {} heads {} window {}", C, heads, window));
  static std::mutex mu;
  {
    std::lock_guard<std::mutex> lock(mu);
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(l.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(l.smem)));
  }
  int per_sm = 0;
  SWINRT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, l.kernel, kThreads, l.smem));
  if (per_sm < 1) throw Error(fmt::format("swin_block_grid: C {} does not fit one thread block per SM", C));
  const int slots = sm_count() * per_sm;
  const int64_t M = int64_t(B) * res * res, mtiles = (M + kBM - 1) / kBM;
  const int split_proj = split_for(mtiles, C, C, M, slots, qkv_bytes);
  const int split_fc2 = split_for(mtiles, C, 4 * C, M, slots, qkv_bytes);
  // As many thread blocks as the busiest phase has units, at most one wave.
  const int bn_ln = C >= 768 ? 32 : 64;
  const int64_t units = std::max({mtiles * (4 * C / bn_ln), int64_t(B) * (res / window) * (res / window) * heads,
                                  mtiles * (C / 32) * std::max(split_proj, split_fc2)});
  const int grid = static_cast<int>(std::min<int64_t>(units, slots));

  GridArgs a{x, qkv, att, hid, static_cast<float*>(qkv), B, res, heads, window, shift, scale, split_proj, split_fc2, 0, w};
  a.stamps = std::getenv("SWINRT_GRID_STAMPS") != nullptr;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = l.smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  SWINRT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, l.kernel, a));
}

}  // namespace swinrt::cuda
