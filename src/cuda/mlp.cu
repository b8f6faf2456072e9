// mlp_fused: the second half of a Swin block, x += fc2(gelu(fc1(LN2(x)))),
// as one kernel for FP16/BF16 on sm_90a (wgmma), where the op-by-op path
// runs LayerNorm, fc1 + GELU and fc2 + residual as three launches and writes
// and reads the hidden layer (4C per token) through memory. Mirror: the CPU
// backend's SwinBlock (src/cpu/backend.cpp), norm2 .. mlp.fc2.
//
// One thread block takes TM = 128 token rows (the MLP is per token: any rows
// will do), two warpgroups of 64 rows each:
// - the warps LayerNorm their rows (FP32 two-pass statistics, as
//   layernorm_kernel) into shared memory, rounded to T, in core-matrix layout;
// - then, chunk by chunk of HC = 96 hidden columns: h = LN . W1_chunk^T by
//   wgmma (A and B from shared memory), + b1, GELU (tanh form, as the fused
//   block and cuBLASLt's epilogue), rounded to T and kept in registers as the
//   A fragments of y += h . W2_chunk^T (wgmma with A from registers): the
//   hidden layer never leaves the registers;
// - finally x += y + b2 (FP32), read and written in place.
// The weights stream through a ring of shared-memory stages by TMA bulk
// copies: W1's and W2's stages of each chunk in the order the consumers use
// them, both warpgroups reading every stage (128 rows per weight byte from L2);
// the last warp done with a stage issues the one that takes its slot (no
// producer warp: wgmma kernels get registers by warpgroup, and a third one
// would cap every thread at 168).
// Same rounding points as the op-by-op path (LayerNorm output, hidden layer);
// summation order and GELU's hardware tanh differ.
//
// The engine's default form (PROJ) starts one op earlier, at the block's
// attn.proj + residual: the attention output tile comes into the LayerNorm
// operand's place, x + b_proj into the fc2 accumulators, the proj product
// onto them; LayerNorm 2 then reads the rows from those registers, and x is
// written once at the end (with, where the engine asks, the next block's
// LayerNorm 1 of the new rows).
#include <algorithm>
#include <cstdio>
#include <mutex>

#include "mma.cuh"
#include "ops.cuh"
#include "wgmma.cuh"

namespace swinrt::cuda {

namespace {

// The tile and the stream. Measured alternatives (docs/PERFORMANCE_LOG.md,
// "Session 9"): 14 ring slots instead of 8, hidden chunks of 64 columns,
// and three warpgroups (192 rows a tile, chunks of 32) were no faster.
template <int C>
struct MlpShape {
  static constexpr int WGS = 2;             // warpgroups, 64 rows each
  static constexpr int TM = 64 * WGS;       // rows per thread block
  static constexpr int HC = 96;             // hidden columns per chunk (one m64n96 product per k-tile)
  static constexpr int CHUNKS = 4 * C / HC;
  static constexpr int STAGE = 12288;       // bytes of a ring slot
  static constexpr int KPS1 = STAGE / (HC * 32), KPS2 = STAGE / (C * 32);  // k-tiles per stage: W1, W2
  static constexpr int S1 = C / 16 / KPS1, S2 = HC / 16 / KPS2;  // stages per chunk of W1, of W2
  static constexpr int TOTAL = CHUNKS * (S1 + S2);
  static constexpr int SP = C / 16 / KPS2;  // stages of W_proj (laid out as fc2's), where the kernel takes proj
  static constexpr int SLOTS = 8;  // ring stages
  static constexpr int NY = C / 96;  // m64n96 output blocks of fc2
  static constexpr int THREADS = 128 * WGS, WARPS = 4 * WGS;
  static constexpr size_t kA = size_t(TM) * C * 2, kRing = size_t(SLOTS) * STAGE;
  static constexpr size_t bytes = kA + kRing + SLOTS * 12;  // + an mbarrier and a counter per slot
  static_assert(HC * 32 * KPS1 == STAGE && C * 32 * KPS2 == STAGE, "W1 and W2 stages of one size");
  static_assert((C / 16) % KPS1 == 0 && (HC / 16) % KPS2 == 0 && C % 96 == 0 && (4 * C) % HC == 0, "unsupported C");
};

struct MlpArgs {
  float* x;  // [M, C] FP32 residual stream, updated in place
  int64_t M;
  const float *ln_g, *ln_b;
  const char *w1, *w2;  // fc1 [4C][C] and fc2 [C][4C], arranged (mlp_fused_arrange)
  const void* b1;       // dtype T
  const float* b2;
  // The PROJ kernel's: the attention output [M, C] (dtype T), W_proj [C][C]
  // arranged (mlp_fused_arrange), its bias.
  const void* att;
  const char* wp;
  const float* bp;
  // Or null: the next block's LayerNorm 1 parameters and its output [M, C] (dtype T).
  const float *ln1_g, *ln1_b;
  void* ln1_out;
};

#ifdef SWINRT_MLP_STAMPS
__device__ long long g_mlp_stamp_buf[8][6];
#define STAMP(i) st[i] = clock64()
#define TIMED(acc, ...)                \
  do {                                 \
    const long long c0_ = clock64();   \
    __VA_ARGS__;                       \
    acc += clock64() - c0_;            \
  } while (0)
#else
#define STAMP(i)
#define TIMED(acc, ...) \
  do {                  \
    __VA_ARGS__;        \
  } while (0)
#endif

// PROJ: the block's attn.proj + residual first (x + b_proj + att . W_proj^T
// into the fc2 accumulators, which then hold the rows), LayerNorm 2 from
// those registers, and the rows written once at the end, where the op-by-op
// proj GEMM and this kernel would each read and write x.
template <typename T, int C, bool PROJ>
__global__ void __launch_bounds__(MlpShape<C>::THREADS, 1) mlp_kernel(MlpArgs p) {
  wait_for_prior_grids();
  using S = MlpShape<C>;
  constexpr int SP = PROJ ? S::SP : 0, TOTAL = SP + S::TOTAL;  // the stream: W_proj's stages, then the chunks
#ifdef SWINRT_MLP_STAMPS
  long long st[4] = {clock64(), 0, 0, 0}, c_acq = 0, c_wait = 0, c_gelu = 0;
#endif
  extern __shared__ __align__(128) char smem[];
  T* A = reinterpret_cast<T*>(smem);
  char* ring = smem + S::kA;
  const uint32_t bars = smem_u32(ring + S::kRing);  // slot i's mbarrier at bars + 8 i: its stage has landed
  unsigned* released = reinterpret_cast<unsigned*>(ring + S::kRing + 8 * S::SLOTS);  // per slot: warps done with it
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t r0 = int64_t(blockIdx.x) * S::TM;

  // Stage i of the stream into slot i % SLOTS, in the order the warps use
  // them: per chunk j, W1's stages, then W2's.
  auto issue = [&](int i) {
    const int slot = i % S::SLOTS, m = i - SP, j = m / (S::S1 + S::S2), r = m % (S::S1 + S::S2);
    const char* src = PROJ && i < SP ? p.wp + int64_t(i) * S::STAGE
                      : r < S::S1    ? p.w1 + (int64_t(j) * S::S1 + r) * S::STAGE
                                     : p.w2 + (int64_t(j) * S::S2 + r - S::S1) * S::STAGE;
    mbar_expect(bars + 8 * slot, S::STAGE);
    bulk_copy(smem_u32(ring + slot * S::STAGE), src, S::STAGE, bars + 8 * slot);
  };
  if (threadIdx.x == 0) {
    for (int i = 0; i < S::SLOTS; ++i) {
      mbar_init(bars + 8 * i, 1);
      released[i] = 0;
    }
    mbar_init_fence();
    for (int i = 0; i < S::SLOTS && i < TOTAL; ++i) issue(i);
  }
  __syncthreads();

  // LayerNorm: warp w takes rows w, w + WARPS, ... of the tile (16 of
  // them), all of its loads in flight at once; lane l holds channels
  // 2 l + 64 i (i < C / 64). Rows past M are zeros. (PROJ: below.)
  if constexpr (!PROJ) {
    constexpr int PER = C / 64, ROWS = S::TM / S::WARPS;
    float2 v[ROWS][PER];
#pragma unroll
    for (int q = 0; q < ROWS; ++q) {
      const int64_t row = r0 + warp + S::WARPS * q;
#pragma unroll
      for (int i = 0; i < PER; ++i)
        v[q][i] = row < p.M ? *reinterpret_cast<const float2*>(p.x + row * C + 2 * lane + 64 * i)
                            : make_float2(0.f, 0.f);
    }
#pragma unroll
    for (int q = 0; q < ROWS; ++q) {
      const int r = warp + S::WARPS * q;
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < PER; ++i) sum += v[q][i].x + v[q][i].y;
      const float mean = warp_sum(sum) / C;
      float sq = 0.f;
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const float a = v[q][i].x - mean, b = v[q][i].y - mean;
        sq += a * a + b * b;
      }
      const float rstd = rsqrtf(warp_sum(sq) / C + 1e-5f);
      const bool pad = r0 + r >= p.M;
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int k = 2 * lane + 64 * i;
        const float2 g = __ldg(reinterpret_cast<const float2*>(p.ln_g + k));
        const float2 b = __ldg(reinterpret_cast<const float2*>(p.ln_b + k));
        *reinterpret_cast<uint32_t*>(A + cm_index<C>(r, k)) =
            pad ? 0u : pack2<T>((v[q][i].x - mean) * rstd * g.x + b.x, (v[q][i].y - mean) * rstd * g.y + b.y);
      }
    }
  }
  if constexpr (!PROJ) {
    fence_proxy_async();
    __syncthreads();
  }
  STAMP(1);

  const int wg = warp >> 2, c2 = (lane & 3) * 2;
  const uint32_t a0 = smem_u32(A + wg * 64 * C);
  const T* b1 = static_cast<const T*>(p.b1);
  // Lane l of warp w holds rows 16 (w % 4) + l / 4 (+ 8) of its warpgroup's 64, columns 96 n + 8 i + c2 (+ 1).
  const int lrow = wg * 64 + (warp & 3) * 16 + (lane >> 2);
  const int64_t row = r0 + lrow;
  // Without PROJ written first by chunk 0's fc2 (no zeroing inside an open
  // wgmma pipeline); with PROJ the rows x + b_proj, then the products.
  float y[S::NY][48];
  uint32_t ha[S::HC / 16][4];  // the chunk's hidden rows as A fragments, one per k-tile
#pragma unroll
  for (int t = 0; t < S::HC / 16; ++t) ha[t][0] = ha[t][1] = ha[t][2] = ha[t][3] = 0u;
  int t_acq = 0, t_rel = 0;  // stages acquired, released (the same in every consumer thread)
  auto acquire = [&] {
    const int slot = t_acq % S::SLOTS;
    TIMED(c_acq, mbar_wait(bars + 8 * slot, (t_acq / S::SLOTS) & 1));
    ++t_acq;
    return smem_u32(ring + slot * S::STAGE);
  };
  // After wgmma_wait<PENDING>: every stage but the last PENDING acquired has
  // been read by this warp. The last of the 8 warps to be done with a stage
  // refills its slot with the stage SLOTS ahead (the counts of a slot's
  // successive stages cannot interleave: stage i + SLOTS is issued only
  // after all 8 are done with stage i).
  auto release_to = [&](int pending) {
    for (; t_rel < t_acq - pending; ++t_rel)
      if (lane == 0) {
        __threadfence_block();
        if (atomicAdd(released + t_rel % S::SLOTS, 1u) % S::WARPS == S::WARPS - 1 && t_rel + S::SLOTS < TOTAL)
          issue(t_rel + S::SLOTS);
      }
  };

  // N stages acquired, then product(s, stage s's address) for each, as one
  // commit group.
  auto over_stages = [&](auto n, auto&& product) {
    constexpr int N = decltype(n)::value;
    uint32_t b[N];
#pragma unroll
    for (int s = 0; s < N; ++s) b[s] = acquire();
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < N; ++s) product(s, b[s]);
    wgmma_commit();
  };
  // h = LN . W1_j^T into acc (its first product overwrites it): S1 stages
  // of KPS1 k-tiles.
  auto fc1 = [&](float(&acc)[S::HC / 2]) {
    over_stages(std::integral_constant<int, S::S1>{}, [&](int s, uint32_t b) {
#pragma unroll
      for (int kk = 0; kk < S::KPS1; ++kk)
        wgmma_m64n96k16_ss<T>(acc, wgmma_desc(a0 + (s * S::KPS1 + kk) * 256, 128, C * 16),
                              wgmma_desc(b + kk * S::HC * 32, 128, 256), s + kk > 0);
    });
  };
  // y += h . W2_j^T: S2 stages of KPS2 k-tiles.
  auto fc2 = [&](int j) {
    over_stages(std::integral_constant<int, S::S2>{}, [&](int s, uint32_t b) {
#pragma unroll
      for (int kk = 0; kk < S::KPS2; ++kk)
#pragma unroll
        for (int n = 0; n < S::NY; ++n)
          wgmma_m64n96k16_rs<T>(y[n], ha[s * S::KPS2 + kk], wgmma_desc(b + (kk * C + n * 96) * 32, 128, 256),
                                PROJ || j + s + kk > 0);
    });
  };
  auto hold_ha = [&] {
#pragma unroll
    for (int t = 0; t < S::HC / 16; ++t) wgmma_hold(ha[t]);
  };
  // LayerNorm (g, b) of the rows in y (FP32 two-pass statistics over the
  // quad of lanes sharing a row): put(h, column, the packed pair of T) for
  // rows lrow + 8 h, columns column and + 1; zeros in rows past M.
  auto norm_rows = [&](const float* __restrict__ g, const float* __restrict__ b, auto&& put) {
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float mean, rstd;
      m64_row_stats(y, hr, mean, rstd);
      const bool pad = row + 8 * hr >= p.M;
#pragma unroll
      for (int n = 0; n < S::NY; ++n)
#pragma unroll
        for (int i = 0; i < 12; ++i) {
          const int k = n * 96 + 8 * i + c2;
          const float2 gg = __ldg(reinterpret_cast<const float2*>(g + k));
          const float2 bb = __ldg(reinterpret_cast<const float2*>(b + k));
          put(hr, k,
              pad ? 0u
                  : pack2<T>((y[n][4 * i + 2 * hr] - mean) * rstd * gg.x + bb.x,
                             (y[n][4 * i + 2 * hr + 1] - mean) * rstd * gg.y + bb.y));
        }
    }
  };
  if constexpr (PROJ) {
    // The attention rows -> A (core-matrix layout; rows past M zero), while
    // the residual rows + b_proj load into y.
    constexpr int P8 = C / 8;
    const T* att = static_cast<const T*>(p.att);
    for (int idx = threadIdx.x; idx < S::TM * P8; idx += S::THREADS) {
      const int r = idx / P8, k = (idx - r * P8) * 8;
      const bool ok = r0 + r < p.M;
      cp_async16_zfill(A + cm_index<C>(r, k), att + (ok ? (r0 + r) * C + k : 0), ok);
    }
    cp_async_commit();
#pragma unroll
    for (int n = 0; n < S::NY; ++n)
#pragma unroll
      for (int i = 0; i < 12; ++i) {
        const int col = n * 96 + 8 * i + c2;
        const float2 bb = __ldg(reinterpret_cast<const float2*>(p.bp + col));
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int64_t rr = row + 8 * hr;
          const float2 v = rr < p.M ? *reinterpret_cast<const float2*>(p.x + rr * C + col) : make_float2(0.f, 0.f);
          y[n][4 * i + 2 * hr] = v.x + bb.x;
          y[n][4 * i + 2 * hr + 1] = v.y + bb.y;
        }
      }
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
    // y += att . W_proj^T: SP stages of KPS2 k-tiles, as fc2's but with A from shared memory.
    over_stages(std::integral_constant<int, S::SP>{}, [&](int s, uint32_t b) {
#pragma unroll
      for (int kk = 0; kk < S::KPS2; ++kk)
#pragma unroll
        for (int n = 0; n < S::NY; ++n)
          wgmma_m64n96k16_ss<T>(y[n], wgmma_desc(a0 + (s * S::KPS2 + kk) * 256, 128, C * 16),
                                wgmma_desc(b + (kk * C + n * 96) * 32, 128, 256), true);
    });
    TIMED(c_wait, wgmma_wait<0>());
#pragma unroll
    for (int n = 0; n < S::NY; ++n) wgmma_hold(y[n]);
    release_to(0);
    __syncthreads();  // every warpgroup's products have read A
    // LayerNorm 2 of the rows in y -> A, then y += b2 so that the products of fc2 land on x + b2.
    norm_rows(p.ln_g, p.ln_b, [&](int hr, int k, uint32_t v) {
      *reinterpret_cast<uint32_t*>(A + cm_index<C>(lrow + 8 * hr, k)) = v;
    });
#pragma unroll
    for (int n = 0; n < S::NY; ++n)
#pragma unroll
      for (int i = 0; i < 12; ++i) {
        const float2 bb = __ldg(reinterpret_cast<const float2*>(p.b2 + n * 96 + 8 * i + c2));
        y[n][4 * i] += bb.x, y[n][4 * i + 1] += bb.y, y[n][4 * i + 2] += bb.x, y[n][4 * i + 3] += bb.y;
      }
    fence_proxy_async();
    __syncthreads();
  }
  // Chunk by chunk: fc1 (j) queues behind fc2 (j - 1) on the tensor cores;
  // GELU waits for both. The two warpgroups overlap one another's GELU.
  float h[S::HC / 2];
#pragma unroll 1
  for (int j = 0; j < S::CHUNKS; ++j) {
    fc1(h);
    TIMED(c_wait, wgmma_wait<0>());
    release_to(0);
    wgmma_hold(h);
    hold_ha();  // fc2 (j - 1) read ha until here
    TIMED(c_gelu, (gelu_frags<T, S::HC / 16>(h, b1 + j * S::HC, c2, ha)));
    fc2(j);
  }
  TIMED(c_wait, wgmma_wait<0>());
  STAMP(2);
#pragma unroll
  for (int n = 0; n < S::NY; ++n) wgmma_hold(y[n]);
  hold_ha();
  release_to(0);

  // x += y + b2 (PROJ: x = y, which holds b2 already).
#pragma unroll
  for (int n = 0; n < S::NY; ++n)
#pragma unroll
    for (int i = 0; i < 12; ++i) {
      const int col = n * 96 + 8 * i + c2;
      const float2 bb = PROJ ? make_float2(0.f, 0.f) : __ldg(reinterpret_cast<const float2*>(p.b2 + col));
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int64_t rr = row + 8 * hr;
        if (rr >= p.M) continue;
        float2* px = reinterpret_cast<float2*>(p.x + rr * C + col);
        if constexpr (PROJ) {
          *px = make_float2(y[n][4 * i + 2 * hr], y[n][4 * i + 2 * hr + 1]);
        } else {
          float2 v = *px;
          v.x += y[n][4 * i + 2 * hr] + bb.x;
          v.y += y[n][4 * i + 2 * hr + 1] + bb.y;
          *px = v;
        }
      }
    }
  // PROJ, where the engine asks: the next block's LayerNorm 1 of the new rows -> ln1_out [M, C] (dtype T), so
  // that its own launch does not read x again.
  if constexpr (PROJ) {
    if (p.ln1_out) {
      T* lo = static_cast<T*>(p.ln1_out);
      norm_rows(p.ln1_g, p.ln1_b, [&](int hr, int k, uint32_t v) {
        if (row + 8 * hr < p.M) *reinterpret_cast<uint32_t*>(lo + (row + 8 * hr) * C + k) = v;
      });
    }
  }
#ifdef SWINRT_MLP_STAMPS
  STAMP(3);
  if ((threadIdx.x & 127) == 0 && (blockIdx.x == 100 || blockIdx.x == 400)) {
    long long* o = g_mlp_stamp_buf[(blockIdx.x == 400) * 4 + threadIdx.x / 128];
    o[0] = st[1] - st[0], o[1] = st[2] - st[1], o[2] = st[3] - st[2], o[3] = c_acq, o[4] = c_wait, o[5] = c_gelu;
  }
#endif
}

using Kernel = void (*)(MlpArgs);

Kernel kernel_for(DT t, int C, bool proj = false) {
  Kernel k = nullptr;
  if (t == DT::F32) return k;
  with_value<192>(C, [&](auto c) {
    constexpr int CC = decltype(c)::value;
    if (proj) k = t == DT::F16 ? mlp_kernel<__half, CC, true> : mlp_kernel<__nv_bfloat16, CC, true>;
    else k = t == DT::F16 ? mlp_kernel<__half, CC, false> : mlp_kernel<__nv_bfloat16, CC, false>;
  });
  return k;
}

// Calls f(MlpShape<C>{}) for a C the kernel is built for; false for any other.
template <class F>
bool with_shape(int C, F&& f) {
  return with_value<192>(C, [&](auto c) { f(MlpShape<decltype(c)::value>{}); });
}

}  // namespace

bool mlp_fused_supported(DT t, int C, int hidden) {
  if (hidden != 4 * C || !kernel_for(t, C) || !wgmma_supported()) return false;
  int optin = 0;
  size_t smem = 0;
  with_shape(C, [&](auto s) { smem = decltype(s)::bytes; });
  return device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, optin) && smem <= size_t(optin);
}

size_t mlp_fused_weight_bytes(int C) { return size_t(9) * C * C * 2; }

// At least two tiles for three SMs. With the block's proj taken too (session
// 14, device run 3, fp16 forward against proj + LN2 + MLP op by op): batch 16
// (98 tiles on 132 SMs) 1.124/1.128 -> 1.083/1.086 ms, 24 (147) even, 32
// (196) 2.012/2.009 -> 1.942/1.944; batch 8 (49 tiles) 0.710 -> 0.741.
int64_t mlp_fused_min_rows() { return int64_t(2) * sm_count() * MlpShape<192>::TM / 3; }

void mlp_fused_arrange(int C, const void* fc1, const void* fc2, const void* proj, void* out, cudaStream_t s) {
  bool done = false;
  with_shape(C, [&](auto sh) {
    using S = decltype(sh);
    char* o = static_cast<char*>(out);
    arrange_wgmma_stages(fc1, 4 * C, C, S::HC, S::KPS1, o, s);             // chunk j: S1 stages of HC columns
    arrange_wgmma_stages(fc2, C, 4 * C, C, S::KPS2, o + size_t(4) * C * C * 2, s);  // k-ordered stages of all C
    arrange_wgmma_stages(proj, C, C, C, S::KPS2, o + size_t(8) * C * C * 2, s);     // as fc2's
    done = true;
  });
  if (!done) throw Error(fmt::format("mlp_fused_arrange: no fused MLP kernel for C {}", C));
}

void mlp_fused(float* x, DT t, int64_t M, int C, const float* ln_g, const float* ln_b, const void* w, const void* b1,
               const float* b2, cudaStream_t s, const void* att, const float* bp, const float* next_g,
               const float* next_b, void* next_out) {
  const Kernel kernel = kernel_for(t, C, att != nullptr);
  if (!kernel) throw Error(fmt::format("mlp_fused: no kernel for C {}", C));
  size_t smem = 0;
  int tm = 0, threads = 0;
  with_shape(C, [&](auto sh) {
    using S = decltype(sh);
    smem = S::bytes, tm = S::TM, threads = S::THREADS;
  });
  static std::mutex mu;
  {
    std::lock_guard<std::mutex> lock(mu);
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  }
  const char* wb = static_cast<const char*>(w);
  if (next_out && !att) throw Error("mlp_fused: the next block's LayerNorm 1 needs the proj form");
  const MlpArgs a{x,  M,  ln_g,  ln_b, wb, wb + size_t(4) * C * C * 2, b1, b2, att, wb + size_t(8) * C * C * 2,
                  bp, next_g, next_b, next_out};
  kernel<<<ceil_div(M, tm), threads, smem, s>>>(a);
  SWINRT_CUDA_CHECK(cudaGetLastError());
#ifdef SWINRT_MLP_STAMPS
  cudaStreamCaptureStatus cs;
  SWINRT_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
  if (cs == cudaStreamCaptureStatusNone && M >= 400 * tm) {
    long long b[8][6] = {};
    SWINRT_CUDA_CHECK(cudaStreamSynchronize(s));
    SWINRT_CUDA_CHECK(cudaMemcpyFromSymbol(b, g_mlp_stamp_buf, sizeof(b)));
    for (int i = 0; i < 8; ++i)
      if (b[i][0])
        std::printf("mlp stamps M %lld block %d wg %d: ln %lld loop %lld epilogue %lld | in loop: stage waits %lld, "
                    "wgmma waits %lld, gelu %lld\n", (long long)M, i < 4 ? 100 : 400, i % 4, b[i][0], b[i][1], b[i][2],
                    b[i][3], b[i][4], b[i][5]);
  }
#endif
}

}  // namespace swinrt::cuda
