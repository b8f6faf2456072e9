// window_attention: one thread block per (window, head, slice) computes
// softmax(q k^T * scale + bias + mask) v for the window's N = w*w tokens;
// mirror of src/cpu/attention.cpp. The cyclic shift, window partition and
// window reverse are index math on the loads and stores (no copies), the
// relative position bias comes pre-gathered as [heads, N, N] (padded to
// [heads, 64, 64] for the register-resident kernel), and the shift mask (-100
// across regions, as the original) is computed from coordinates. Traffic:
// q, k, v of the window read once, the output written once.
//
// Four kernels. FP16/BF16 with windows of up to 64 tokens and head dims 16,
// 32 or 64: window_attention_unit (attention.cuh), scores and softmax in
// registers, mma.sync m16n8k16 (FP16 operands, FP32 accumulators; bf16 inputs
// are widened to fp16 exactly, so p keeps fp16's 11-bit mantissa); at large
// batches several heads of a window a thread block, their rows by cp.async
// (window_attention_heads_kernel, bit-identical). Other
// FP16/BF16 shapes: WMMA 16x16x16 with the scores in shared memory. FP32/TF32
// keep the strict path exact in FP32 arithmetic: the same shapes as the
// first by window_attention_rows_kernel (scores and softmax in registers, 7
// or 8 query rows a warp), any other (and SWINRT_ATTN_ROWS=0) by the
// register-tiled window_attention_kernel, to the bit alike.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <mma.h>
#include <type_traits>

#include "attention.cuh"
#include "ops.cuh"

namespace swinrt::cuda {

namespace {

template <typename T>
__global__ void window_attention_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                        float scale, const float* __restrict__ bias, T* __restrict__ out,
                                        bool tf32) {
  wait_for_prior_grids();
  extern __shared__ float4 smem4[];
  // Layout (floats): q [N][d], kT [d][Np] (k transposed, so 4 neighbouring
  // columns are one float4), v [N][d], S [N][Np]; Np = N rounded up to 4.
  const int N = window * window, Np = (N + 3) & ~3, d = C / heads;
  float* q = reinterpret_cast<float*>(smem4);
  float* kT = q + N * d;
  float* v = kT + d * Np;
  float* S = v + N * d;
  int* tok = reinterpret_cast<int*>(S + N * Np);
  int* reg = tok + N;

  const int nw = res / window, w = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int wy = w / nw, wx = w % nw;
  const int64_t base = int64_t(b) * res * res;
  for (int i = threadIdx.x; i < Np; i += blockDim.x) {
    if (i < N) {
      window_token(i, wy, wx, res, window, shift, tok[i], reg[i]);
    } else {
      for (int e = 0; e < d; ++e) kT[e * Np + i] = 0.f;  // padding columns
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < N * d; idx += blockDim.x) {
    const int i = idx / d, e = idx - i * d;
    const T* row = qkv + (base + tok[i]) * 3 * C + h * d + e;
    q[idx] = to_f(row[0]) * scale;
    kT[e * Np + i] = to_f(row[C]);
    v[idx] = to_f(row[2 * C]);
  }
  __syncthreads();
  // Scores, 4 columns per thread: one q load and one float4 k load per 4 FMAs.
  const float* bh = bias + int64_t(h) * N * N;
  const int groups = Np / 4;
  for (int item = threadIdx.x; item < N * groups; item += blockDim.x) {
    const int i = item / groups, j0 = (item - i * groups) * 4;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int e = 0; e < d; ++e) {
      const float qv = q[i * d + e];
      const float4 kv = *reinterpret_cast<const float4*>(kT + e * Np + j0);
      acc.x += qv * kv.x;
      acc.y += qv * kv.y;
      acc.z += qv * kv.z;
      acc.w += qv * kv.w;
    }
    const float a[4] = {acc.x, acc.y, acc.z, acc.w};
    for (int t = 0; t < 4 && j0 + t < N; ++t) {
      const int j = j0 + t;
      float sc = a[t] + bh[i * N + j];
      if (reg[i] != reg[j]) sc += -100.0f;
      S[i * Np + j] = sc;
    }
  }
  __syncthreads();
  // Softmax: one warp per row, FP32.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int i = warp; i < N; i += nwarps) {
    float mx = -INFINITY;
    for (int j = lane; j < N; j += 32) mx = fmaxf(mx, S[i * Np + j]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int j = lane; j < N; j += 32) {
      const float e = expf(S[i * Np + j] - mx);
      S[i * Np + j] = e;
      sum += e;
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < N; j += 32) S[i * Np + j] *= inv;
  }
  __syncthreads();
  // Output, 4 channels per thread: one S load and one float4 v load per 4 FMAs.
  const int dg = d / 4;
  for (int item = threadIdx.x; item < N * dg; item += blockDim.x) {
    const int i = item / dg, e0 = (item - i * dg) * 4;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int j = 0; j < N; ++j) {
      const float p = S[i * Np + j];
      const float4 vv = *reinterpret_cast<const float4*>(v + j * d + e0);
      acc.x += p * vv.x;
      acc.y += p * vv.y;
      acc.z += p * vv.z;
      acc.w += p * vv.w;
    }
    T* o = out + (base + tok[i]) * C + h * d + e0;
    acc = tf32_if(tf32, acc);
    o[0] = from_f<T>(acc.x);
    o[1] = from_f<T>(acc.y);
    o[2] = from_f<T>(acc.z);
    o[3] = from_f<T>(acc.w);
  }
}

// FP32/TF32 with windows of up to 64 tokens and head dims 16, 32 or 64: one
// thread block per (window, head, slice); the window's q (scaled), k and v
// rows in shared memory with all of a thread's 16-byte loads in flight, then
// each warp takes R query rows (7 warps of 7 for 49-token windows, else 8
// of 8): a lane holds the scores of keys lane and lane + 32 for its warp's
// rows in registers (k rows from shared memory, q broadcast), adds the
// padded bias (-inf past N) and the mask bits, and the softmax runs on
// registers with warp shuffles; p goes to the warp's own rows of shared
// memory and a lane sums the output channels it owns over the keys. Same
// operations in the same order as window_attention_kernel (dot products over
// the head dim, then over the keys, one after another; the padding keys add
// 0 x 0), so the two agree to the bit; where that kernel's block of 4 warps
// walked the window in rounds of scalar loads, this one keeps its data in
// registers (docs/PERFORMANCE_LOG.md). table: the windows' token maps and mask
// bits (window_table), or null to build them here.
template <int HD, int R>
__global__ void __launch_bounds__(32 * (R == 7 ? 7 : 8))
    window_attention_rows_kernel(const float* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                 float scale, const float* __restrict__ bias64, const WindowTable* __restrict__ table,
                                 float* __restrict__ out, bool tf32) {
  wait_for_prior_grids();
  constexpr int WARPS = R == 7 ? 7 : 8, THREADS = 32 * WARPS;
  static_assert(R * WARPS <= 64 && R <= 8, "rows per warp");
  constexpr int kRows = 64, LDK = HD + 4, V4 = HD / 4;    // k rows padded: conflict-free float4 reads
  constexpr int ITEMS = (R * WARPS * V4 + THREADS - 1) / THREADS;  // 16-byte pieces per thread and tensor
  constexpr int EPL = HD >= 32 ? HD / 32 : 1;           // output channels per lane
  constexpr int RG = HD >= 32 ? 1 : 32 / HD;            // lane groups splitting a warp's rows
  constexpr int RPL = (R + RG - 1) / RG;                // output rows per lane
  extern __shared__ float4 smem4[];
  float* q = reinterpret_cast<float*>(smem4);
  float* k = q + kRows * HD;
  float* v = k + kRows * LDK;
  float* P = v + kRows * HD;  // [8 warps][8 rows][64 keys]
  unsigned long long* mb = reinterpret_cast<unsigned long long*>(P + 8 * 8 * kRows);
  int* tk = reinterpret_cast<int*>(mb + kRows);
  const int N = window * window, nw = res / window, w = blockIdx.x, h = blockIdx.y;
  const int64_t base = int64_t(blockIdx.z) * res * res;
  const int* tok;
  const unsigned long long* mbits;
  window_map(table, w, w / nw, w % nw, res, window, shift, THREADS, tk, tk + kRows, mb, tok, mbits);
  // Rows N.. of q, k and v are zero: loaded as zeros up to R * WARPS (>= N),
  // stored as zeros past it for k and v (all 64 keys are scored and
  // multiplied); q's rows past R * WARPS are never read.
  float4 qa[ITEMS], ka[ITEMS], va[ITEMS];
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int idx = threadIdx.x + it * THREADS, i = idx / V4, e = (idx % V4) * 4;
    qa[it] = ka[it] = va[it] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (idx < R * WARPS * V4 && i < N) {
      const float* row = qkv + (base + tok[i]) * 3 * C + h * HD + e;
      qa[it] = *reinterpret_cast<const float4*>(row);
      ka[it] = *reinterpret_cast<const float4*>(row + C);
      va[it] = *reinterpret_cast<const float4*>(row + 2 * C);
    }
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, i0 = warp * R;
  // This warp's bias rows and mask words, loaded while q, k, v arrive.
  const float* bh = bias64 + int64_t(h) * kRows * kRows;
  float b0[R], b1[R];
  unsigned long long m[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    b0[r] = i0 < N ? bh[(i0 + r) * kRows + lane] : 0.f;
    b1[r] = i0 < N ? bh[(i0 + r) * kRows + lane + 32] : 0.f;
  }
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int idx = threadIdx.x + it * THREADS, i = idx / V4, e = (idx % V4) * 4;
    if (idx >= R * WARPS * V4) break;
    const float4 qs = make_float4(qa[it].x * scale, qa[it].y * scale, qa[it].z * scale, qa[it].w * scale);
    *reinterpret_cast<float4*>(q + i * HD + e) = qs;
    *reinterpret_cast<float4*>(k + i * LDK + e) = ka[it];
    *reinterpret_cast<float4*>(v + i * HD + e) = va[it];
  }
  for (int idx = R * WARPS * V4 + threadIdx.x; idx < kRows * V4; idx += THREADS) {
    const int i = idx / V4, e = (idx % V4) * 4;
    *reinterpret_cast<float4*>(k + i * LDK + e) = make_float4(0.f, 0.f, 0.f, 0.f);
    *reinterpret_cast<float4*>(v + i * HD + e) = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  __syncthreads();  // also publishes the token map and mask bits where this block built them
  if (i0 >= N) return;
#pragma unroll
  for (int r = 0; r < R; ++r) m[r] = mbits[i0 + r];
  // Scores of rows i0..i0+R-1 against keys lane and lane + 32.
  float s0[R], s1[R];
#pragma unroll
  for (int r = 0; r < R; ++r) s0[r] = s1[r] = 0.f;
#pragma unroll
  for (int e = 0; e < HD; e += 4) {
    const float4 k0 = *reinterpret_cast<const float4*>(k + lane * LDK + e);
    const float4 k1 = *reinterpret_cast<const float4*>(k + (lane + 32) * LDK + e);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float4 qv = *reinterpret_cast<const float4*>(q + (i0 + r) * HD + e);
      s0[r] = fmaf(qv.w, k0.w, fmaf(qv.z, k0.z, fmaf(qv.y, k0.y, fmaf(qv.x, k0.x, s0[r]))));
      s1[r] = fmaf(qv.w, k1.w, fmaf(qv.z, k1.z, fmaf(qv.y, k1.y, fmaf(qv.x, k1.x, s1[r]))));
    }
  }
  // Bias, mask (-100 across regions), softmax in FP32; p into the warp's rows of P.
  float* Pw = P + warp * 8 * kRows;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float a = s0[r] + b0[r], c = s1[r] + b1[r];
    if ((m[r] >> lane) & 1) a += -100.0f;
    if ((m[r] >> (lane + 32)) & 1) c += -100.0f;
    const float mx = warp_max(fmaxf(a, c));
    const float ea = expf(a - mx), ec = expf(c - mx);
    const float inv = 1.0f / warp_sum(ea + ec);
    Pw[r * kRows + lane] = ea * inv;
    Pw[r * kRows + lane + 32] = ec * inv;
  }
  __syncwarp();
  // Output: lane group g (of RG) takes rows g * RPL.., a lane EPL channels
  // (with R = 7 and two groups the second reads an eighth row of P it never
  // stores: its sums are dropped).
  const int g = lane / (32 / RG), c0 = lane % (32 / RG);
  float o[RPL][EPL];
#pragma unroll
  for (int r = 0; r < RPL; ++r)
#pragma unroll
    for (int t = 0; t < EPL; ++t) o[r][t] = 0.f;
  const int NP = (N + 3) & ~3;
  for (int j = 0; j < NP; j += 4) {
    float vv[4][EPL];
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
      for (int t = 0; t < EPL; ++t) vv[u][t] = v[(j + u) * HD + c0 + t * 32];
#pragma unroll
    for (int r = 0; r < RPL; ++r) {
      const float4 p = *reinterpret_cast<const float4*>(Pw + (g * RPL + r) * kRows + j);
#pragma unroll
      for (int t = 0; t < EPL; ++t)
        o[r][t] = fmaf(p.w, vv[3][t], fmaf(p.z, vv[2][t], fmaf(p.y, vv[1][t], fmaf(p.x, vv[0][t], o[r][t]))));
    }
  }
#pragma unroll
  for (int r = 0; r < RPL; ++r) {
    const int i = i0 + g * RPL + r;
    if (g * RPL + r < R && i < N)
#pragma unroll
      for (int t = 0; t < EPL; ++t)
        out[(base + tok[i]) * C + h * HD + c0 + t * 32] = tf32_if(tf32, o[r][t]);
  }
}

size_t window_attention_rows_smem(int hd) {
  return sizeof(float) * (64 * (3 * hd + 4) + 8 * 8 * 64) + 64 * (sizeof(unsigned long long) + 2 * sizeof(int));
}

void launch_rows(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
                 const float* bias64, const WindowTable* table, void* out, bool tf32, cudaStream_t s) {
  const int d = C / heads, N = window * window;
  auto pick = [&](auto r) {
    constexpr int R = decltype(r)::value;
    return d == 16 ? window_attention_rows_kernel<16, R>
                   : d == 32 ? window_attention_rows_kernel<32, R> : window_attention_rows_kernel<64, R>;
  };
  const bool seven = N <= 49;
  auto kernel = seven ? pick(std::integral_constant<int, 7>{}) : pick(std::integral_constant<int, 8>{});
  const size_t smem = window_attention_rows_smem(d);
  if (smem > 48 * 1024)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid((res / window) * (res / window), heads, B);
  kernel<<<grid, seven ? 224 : 256, smem, s>>>(static_cast<const float*>(qkv), res, C, heads, window, shift, scale,
                                               bias64, table, static_cast<float*>(out), tf32);
}

// The window's token map and its q (scaled), k and v rows, widened to fp16 in
// shared memory with 16-byte loads; rows N..NP-1 are zero; v row-major
// [NP][ldv]. The grid is (window, head, slice), as the WMMA kernel launches it.
template <typename T>
__device__ __forceinline__ void load_window_fp16(const T* __restrict__ qkv, int res, int C, int window, int shift,
                                                 float scale, int ldq, int ldv, __half* q, __half* k, __half* v,
                                                 int* tok, int* reg) {
  const int N = window * window, NP = (N + 15) & ~15, d = C / gridDim.y;
  const int nw = res / window, w = blockIdx.x, h = blockIdx.y;
  const int wy = w / nw, wx = w % nw;
  const int64_t base = int64_t(blockIdx.z) * res * res;
  for (int i = threadIdx.x; i < NP; i += blockDim.x) {
    if (i < N) {
      window_token(i, wy, wx, res, window, shift, tok[i], reg[i]);
    } else {
      tok[i] = 0;
      reg[i] = -1;
    }
  }
  __syncthreads();
  const int dv = d / 8;
  for (int idx = threadIdx.x; idx < NP * dv; idx += blockDim.x) {
    const int i = idx / dv, e = (idx - i * dv) * 8;
    uint4 qa = make_uint4(0, 0, 0, 0), ka = qa, va = qa;
    if (i < N) {
      const T* row = qkv + (base + tok[i]) * 3 * C + h * d + e;
      qa = *reinterpret_cast<const uint4*>(row);
      ka = *reinterpret_cast<const uint4*>(row + C);
      va = *reinterpret_cast<const uint4*>(row + 2 * C);
    }
    const T* qe = reinterpret_cast<const T*>(&qa);
    const T* ke = reinterpret_cast<const T*>(&ka);
    const T* ve = reinterpret_cast<const T*>(&va);
    __align__(16) __half qh[8], kh[8], vh[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      qh[t] = __float2half_rn(to_f(qe[t]) * scale);
      kh[t] = __float2half_rn(to_f(ke[t]));
      vh[t] = __float2half_rn(to_f(ve[t]));
    }
    *reinterpret_cast<uint4*>(q + i * ldq + e) = *reinterpret_cast<const uint4*>(qh);
    *reinterpret_cast<uint4*>(k + i * ldq + e) = *reinterpret_cast<const uint4*>(kh);
    *reinterpret_cast<uint4*>(v + i * ldv + e) = *reinterpret_cast<const uint4*>(vh);
  }
  __syncthreads();
}

// One thread block per (window, head, slice); windows of up to 64 tokens,
// head dims 16, 32 or 64 (window_attention_unit, attention.cuh). 4 warps, or
// 8 where the units are no more than the SMs (small batches): the loads and
// the mask bits then spread over twice the threads. table: the windows'
// token maps and mask bits (window_table), or null.
template <typename T, int HD, int THREADS>
__global__ void __launch_bounds__(THREADS, THREADS == 128 ? (HD <= 32 ? 6 : 4) : 2)
    window_attention_mma_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                float scale, const __half* __restrict__ bias64, const WindowTable* __restrict__ table,
                                T* __restrict__ out, bool early) {
  if (!early) wait_for_prior_grids();  // else the unit waits, once its constants are in hand
  extern __shared__ float4 smem4[];
  window_attention_unit<T, HD, THREADS>(qkv, res, C, heads, window, shift, scale, bias64, out, blockIdx.x,
                                        blockIdx.y, blockIdx.z, reinterpret_cast<char*>(smem4), table, early);
}

template <typename T, int THREADS>
void launch_mma_threads(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
                        const __half* bias64, const WindowTable* table, void* out, cudaStream_t s) {
  const int d = C / heads;
  auto kernel = d == 16   ? window_attention_mma_kernel<T, 16, THREADS>
                : d == 32 ? window_attention_mma_kernel<T, 32, THREADS>
                          : window_attention_mma_kernel<T, 64, THREADS>;
  const dim3 grid((res / window) * (res / window), heads, B);
  kernel<<<grid, THREADS, window_attention_smem(d), s>>>(static_cast<const T*>(qkv), res, C, heads, window, shift,
                                                         scale, bias64, table, static_cast<T*>(out),
                                                         early_constants());
}

// G heads of one window a thread block (G x HD <= 128 columns; 4 warps, one
// per 16-query strip), for large batches: each thread copies its share of
// every head's q, k and v rows into shared memory with cp.async, one commit
// group a head, so the strips of head 0 run while the later heads' rows are
// still landing, and a token's G heads are one contiguous read of G x HD x 2
// bytes per part instead of G reads of HD x 2 from G thread blocks. Each
// thread then widens its own pieces in place (q * scale to fp16; bf16 k and v
// to fp16: what window_attention_unit does in registers), the heads' outputs
// go into their q columns (a strip's q rows are its warp's alone and read
// into registers first) and leave as 16-byte stores of G x HD columns a
// token (a warp barrier before each output store: another lane of the warp
// may have been the one whose ldmatrix read those q rows). Bit-identical to
// window_attention_mma_kernel. Needs the window table. reverse: image
// blockIdx.y is B - 1 - blockIdx.y (launch_heads says why).
template <int HD, int G>
constexpr size_t kHeadsSmem = sizeof(__half) * 3 * 64 * (G * HD + 8);

template <typename T, int HD, int G>
__global__ void __launch_bounds__(128, (227 * 1024) / (kHeadsSmem<HD, G> + 1024) < 6
                                           ? (227 * 1024) / (kHeadsSmem<HD, G> + 1024)
                                           : 6)
    window_attention_heads_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, float scale,
                                  const __half* __restrict__ bias64, const WindowTable* __restrict__ table,
                                  T* __restrict__ out, int reverse) {
  wait_for_prior_grids();
  constexpr int kRows = 64, COLS = G * HD, LD = COLS + 8, V8 = HD / 8;  // 16-byte pieces of a row and head
  constexpr int PIECES = kRows * 3 * V8, PER = (PIECES + 127) / 128;    // a head's q, k, v pieces
  static_assert(COLS <= 128 && HD % 16 == 0 && G <= 4, "unsupported head group");
  extern __shared__ float4 smem4[];
  __half* q = reinterpret_cast<__half*>(smem4);
  const int ngroups = heads / G, w = blockIdx.x / ngroups, h0 = (blockIdx.x - w * ngroups) * G;
  const int N = window * window;
  const int64_t base = int64_t(reverse ? gridDim.y - 1 - blockIdx.y : blockIdx.y) * res * res;
  const WindowTable& wt = table[w];
  // This thread's pieces (the same in every head): piece p is row p / (3 V8),
  // part (q, k, v) and 16-byte column of the head from the rest; tk: the
  // row's token in the batch, -1 past the window (zero-filled).
  auto piece = [&](int j, int& row, int& part, int& e) {
    const int p = threadIdx.x + j * 128, rest = p % (3 * V8);
    row = p / (3 * V8), part = rest / V8, e = (rest - part * V8) * 8;
  };
  int tk[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    int row, part, e;
    piece(j, row, part, e);
    tk[j] = threadIdx.x + j * 128 < PIECES && row < N ? int(base) + wt.tok[row] : -1;
  }
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      if (PIECES % 128 != 0 && threadIdx.x + j * 128 >= PIECES) continue;
      int row, part, e;
      piece(j, row, part, e);
      const int64_t at = tk[j] < 0 ? 0 : int64_t(tk[j]) * 3 * C + part * C + (h0 + g) * HD + e;
      cp_async16_zfill(q + part * kRows * LD + row * LD + g * HD + e, qkv + at, tk[j] >= 0);
    }
    cp_async_commit();
  }
  const int warp = threadIdx.x >> 5;
  T* const o = reinterpret_cast<T*>(q);  // outputs in q's place, row stride LD
#pragma unroll 1
  for (int g = 0; g < G; ++g) {
    switch (G - 1 - g) {  // wait_group takes an immediate
      case 0: cp_async_wait<0>(); break;
      case 1: cp_async_wait<1>(); break;
      case 2: cp_async_wait<2>(); break;
      default: cp_async_wait<3>(); break;
    }
    // Widen this thread's pieces of head g in place.
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      int row, part, e;
      piece(j, row, part, e);
      if ((PIECES % 128 != 0 && threadIdx.x + j * 128 >= PIECES) || (std::is_same_v<T, __half> && part != 0)) continue;
      uint4* at = reinterpret_cast<uint4*>(q + part * kRows * LD + row * LD + g * HD + e);
      const uint4 raw = *at;
      const T* e8 = reinterpret_cast<const T*>(&raw);
      const float f = part == 0 ? scale : 1.0f;
      __align__(16) __half h8[8];
#pragma unroll
      for (int t = 0; t < 8; ++t) h8[t] = __float2half_rn(to_f(e8[t]) * f);
      *at = *reinterpret_cast<const uint4*>(h8);
    }
    __syncthreads();
    const __half* qh = q + g * HD;
    attend_strip<HD>(qh, qh + kRows * LD, qh + 2 * kRows * LD, LD, warp, bias64 + int64_t(h0 + g) * kRows * kRows,
                     wt.mbits, [&](int r, int c, float v0, float v1) {
                       __syncwarp();  // the warp's ldmatrix reads of these q rows, by any lane, are done
                       store2(o + r * LD + g * HD + c, v0, v1);
                     });
  }
  __syncthreads();
  constexpr int OUT8 = COLS / 8;
  for (int idx = threadIdx.x; idx < N * OUT8; idx += 128) {
    const int i = idx / OUT8, e = (idx - i * OUT8) * 8;
    *reinterpret_cast<uint4*>(out + (base + wt.tok[i]) * C + h0 * HD + e) =
        *reinterpret_cast<const uint4*>(o + i * LD + e);
  }
}

// Heads a thread block of window_attention_heads_kernel for head dim d and
// `heads` heads, or 0 where it does not apply.
int heads_per_block(int d, int heads) {
  if (d == 64) return heads % 2 == 0 ? 2 : 0;
  if (d != 32 && d != 16) return 0;
  for (int g : {3, 4, 2})
    if (heads % g == 0) return g;
  return 0;
}

template <typename T, int HD, int G>
void launch_heads(const void* qkv, int B, int res, int C, int heads, int window, float scale, const __half* bias64,
                  const WindowTable* table, void* out, cudaStream_t s) {
  auto kernel = window_attention_heads_kernel<T, HD, G>;
  constexpr size_t smem = kHeadsSmem<HD, G>;
  if (smem > 48 * 1024)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid((res / window) * (res / window) * (heads / G), B);
  // The images in reverse order: the qkv GEMM before wrote the last ones last, so the first thread blocks find
  // them in L2 (on the H100 at fp16 batch 128 the attention 3% faster; docs/PERFORMANCE_LOG.md, "Session 17").
  // SWINRT_ATTN_REVERSE=0: in order (A/B runs).
  static const bool reverse = !switched_off("SWINRT_ATTN_REVERSE");
  kernel<<<grid, 128, smem, s>>>(static_cast<const T*>(qkv), res, C, heads, window, scale, bias64, table,
                                 static_cast<T*>(out), reverse);
}

// Whether the head-group kernel takes `units` per-head units: heads_mode 0
// never, 2 wherever it applies, 1 where they are at least 8 times the SMs
// (its thread blocks are a half to a quarter as many: at small batches the
// per-head kernel spreads a window over more SMs).
bool attn_heads_wanted(int heads_mode, int64_t units) {
  return heads_mode == 2 || (heads_mode == 1 && units >= 8 * int64_t(sm_count()));
}

template <typename T>
void launch_mma(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
                const __half* bias64, const WindowTable* table, void* out, cudaStream_t s, int heads_mode) {
  const int64_t units = int64_t(res / window) * (res / window) * heads * B;
  const int d = C / heads, g = heads_per_block(d, heads);
  if (g && table && attn_heads_wanted(heads_mode, units)) {
    auto go = [&](auto hd) {
      constexpr int HD = decltype(hd)::value;
      if (g == 3) launch_heads<T, HD, 3>(qkv, B, res, C, heads, window, scale, bias64, table, out, s);
      else if (g == 4) launch_heads<T, HD, 4>(qkv, B, res, C, heads, window, scale, bias64, table, out, s);
      else launch_heads<T, HD, 2>(qkv, B, res, C, heads, window, scale, bias64, table, out, s);
    };
    if (d == 64) launch_heads<T, 64, 2>(qkv, B, res, C, heads, window, scale, bias64, table, out, s);
    else if (d == 32) go(std::integral_constant<int, 32>{});
    else go(std::integral_constant<int, 16>{});
    return;
  }
  const char* env = std::getenv("SWINRT_ATTN_THREADS");  // "128": always 4 warps (A/B runs)
  if (units <= sm_count() && !(env && std::string(env) == "128"))
    launch_mma_threads<T, 256>(qkv, B, res, C, heads, window, shift, scale, bias64, table, out, s);
  else
    launch_mma_threads<T, 128>(qkv, B, res, C, heads, window, shift, scale, bias64, table, out, s);
}

// Tensor-core variant. Shared memory: q, k, v, p as fp16 [NP][ld16], the
// scores / output as fp32 [NP][ld32]; NP = N rounded up to 16, rows past N zero.
template <typename T>
__global__ void window_attention_tc_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                           float scale, const float* __restrict__ bias, T* __restrict__ out) {
  wait_for_prior_grids();
  using namespace nvcuda;
  extern __shared__ float4 smem4[];
  const int N = window * window, NP = (N + 15) & ~15, d = C / heads;
  const int ldq = d + 8, ldp = NP + 8, lds = max(NP, d) + 4;  // S also holds the [NP][d] output
  __half* q = reinterpret_cast<__half*>(smem4);
  __half* k = q + NP * ldq;
  __half* v = k + NP * ldq;
  __half* P = v + NP * ldq;
  float* S = reinterpret_cast<float*>(P + NP * ldp);
  int* tok = reinterpret_cast<int*>(S + NP * lds);
  int* reg = tok + NP;

  const int h = blockIdx.y;
  const int64_t base = int64_t(blockIdx.z) * res * res;
  load_window_fp16<T>(qkv, res, C, window, shift, scale, ldq, ldq, q, k, v, tok, reg);
  const int dv = d / 8;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  const int tiles = NP / 16;
  // S = q k^T: each warp takes 16x16 output tiles in turn.
  for (int t = warp; t < tiles * tiles; t += nwarps) {
    const int ti = t / tiles, tj = t % tiles;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.f);
    for (int e = 0; e < d; e += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
      wmma::load_matrix_sync(fa, q + ti * 16 * ldq + e, ldq);
      wmma::load_matrix_sync(fb, k + tj * 16 * ldq + e, ldq);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(S + ti * 16 * lds + tj * 16, acc, lds, wmma::mem_row_major);
  }
  __syncthreads();
  // Softmax over the N real columns, FP32; p in fp16, zero in the padding.
  const float* bh = bias + int64_t(h) * N * N;
  for (int i = warp; i < NP; i += nwarps) {
    if (i >= N) {
      for (int j = lane; j < NP; j += 32) P[i * ldp + j] = __float2half_rn(0.f);
      continue;
    }
    float mx = -INFINITY;
    for (int j = lane; j < N; j += 32) {
      float sc = S[i * lds + j] + bh[i * N + j];
      if (reg[i] != reg[j]) sc += -100.0f;
      S[i * lds + j] = sc;
      mx = fmaxf(mx, sc);
    }
    mx = warp_max(mx);
    float sum = 0.f;
    for (int j = lane; j < N; j += 32) {
      const float e = expf(S[i * lds + j] - mx);
      S[i * lds + j] = e;
      sum += e;
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < NP; j += 32) P[i * ldp + j] = __float2half_rn(j < N ? S[i * lds + j] * inv : 0.f);
  }
  __syncthreads();
  // O = p v, into S (reused as [NP][d] fp32 with stride lds >= d).
  const int dt = d / 16;
  for (int t = warp; t < tiles * dt; t += nwarps) {
    const int ti = t / dt, te = t % dt;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.f);
    for (int j = 0; j < NP; j += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
      wmma::load_matrix_sync(fa, P + ti * 16 * ldp + j, ldp);
      wmma::load_matrix_sync(fb, v + j * ldq + te * 16, ldq);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(S + ti * 16 * lds + te * 16, acc, lds, wmma::mem_row_major);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < N * dv; idx += blockDim.x) {
    const int i = idx / dv, e = (idx - i * dv) * 8;
    __align__(16) T o[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) o[t] = from_f<T>(S[i * lds + e + t]);
    *reinterpret_cast<uint4*>(out + (base + tok[i]) * C + h * d + e) = *reinterpret_cast<const uint4*>(o);
  }
}

template <typename T>
void launch_tc(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
               const float* bias, void* out, cudaStream_t s) {
  const int N = window * window, NP = (N + 15) & ~15, d = C / heads;
  const size_t smem = sizeof(__half) * (3 * NP * (d + 8) + NP * (NP + 8)) + sizeof(float) * NP * (std::max(NP, d) + 4) +
                      sizeof(int) * 2 * NP;
  auto kernel = window_attention_tc_kernel<T>;
  if (smem > 48 * 1024)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid((res / window) * (res / window), heads, B);
  kernel<<<grid, 128, smem, s>>>(static_cast<const T*>(qkv), res, C, heads, window, shift, scale, bias,
                                 static_cast<T*>(out));
}

template <typename T>
void launch(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale, const float* bias,
            void* out, cudaStream_t s, bool tf32 = false) {
  const int N = window * window, Np = (N + 3) & ~3, d = C / heads;
  if (d % 4 != 0) throw Error(fmt::format("window_attention: head_dim {} is not a multiple of 4", d));
  const size_t smem = sizeof(float) * (2 * N * d + d * Np + N * Np) + sizeof(int) * 2 * N;
  auto kernel = window_attention_kernel<T>;
  if (smem > 48 * 1024)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid((res / window) * (res / window), heads, B);
  kernel<<<grid, 128, smem, s>>>(static_cast<const T*>(qkv), res, C, heads, window, shift, scale, bias,
                                 static_cast<T*>(out), tf32);
}

}  // namespace

bool window_attention_padded(DT t, int C, int heads, int window) {
  const int d = C / heads;
  return (d == 16 || d == 32 || d == 64) && window * window <= 64;
}

namespace {

// [heads, N, N] -> 64 x 64 a head: -inf in key columns >= N (their
// probability is 0), 0 elsewhere in query rows >= N (finite, never stored).
// FP32 ([heads][64][64], the FP32 kernels), or fp16 in attend_strip's order
// (padded_bias16_offset).
template <typename T>
__global__ void pad_bias_kernel(const float* __restrict__ rpb, int heads, int N, T* __restrict__ out) {
  wait_for_prior_grids();
  const int total = heads * 64 * 64;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int h = i / (64 * 64), r = i / 64 % 64, j = i % 64;
    const float v = j >= N ? -INFINITY : r >= N ? 0.f : rpb[(h * N + r) * N + j];
    if constexpr (std::is_same_v<T, float>)
      out[i] = v;
    else
      out[padded_bias16_offset(h * 64 + r, j)] = __float2half_rn(v);  // the heads one after another
  }
}

// One thread block of 64 threads per window.
__global__ void window_table_kernel(int res, int window, int shift, WindowTable* __restrict__ out) {
  wait_for_prior_grids();
  __shared__ int tok[64], reg[64];
  __shared__ unsigned long long mbits[64];
  const int nw = res / window, w = blockIdx.x;
  window_tokens(w / nw, w % nw, res, window, shift, 64, blockDim.x, tok, reg);
  __syncthreads();
  window_mask_bits(reg, window * window, shift, mbits);
  __syncthreads();
  for (int i = threadIdx.x; i < 64; i += blockDim.x) {
    out[w].tok[i] = tok[i];
    out[w].mbits[i] = mbits[i];
  }
}

}  // namespace

size_t window_table_bytes(int res, int window) { return sizeof(WindowTable) * (res / window) * (res / window); }

void window_table(int res, int window, int shift, void* out, cudaStream_t s) {
  if (window * window > 64 || res % window) throw Error("window_table: windows of up to 64 tokens that tile the grid");
  window_table_kernel<<<(res / window) * (res / window), 64, 0, s>>>(res, window, shift,
                                                                     static_cast<WindowTable*>(out));
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void pad_attention_bias(const float* rpb, int heads, int window, DT t, void* out, cudaStream_t s) {
  const unsigned grid = ceil_div(heads * 64 * 64, 256);
  if (t == DT::F32)
    pad_bias_kernel<<<grid, 256, 0, s>>>(rpb, heads, window * window, static_cast<float*>(out));
  else
    pad_bias_kernel<<<grid, 256, 0, s>>>(rpb, heads, window * window, static_cast<__half*>(out));
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void window_attention(const void* qkv, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                      const float* bias, const void* bias64, const void* table, void* out, cudaStream_t s,
                      int heads_mode, bool tf32) {
  if (tf32 && t != DT::F32) throw Error("window_attention: TF32 rounding of an output that is not FP32");
  const auto* wt = static_cast<const WindowTable*>(table);
  const int d = C / heads;
  const bool tc = d % 16 == 0 && window * window <= 144;
  const bool mma = window_attention_padded(t, C, heads, window);
  if (mma && !bias64 && t != DT::F32) throw Error("window_attention: the padded bias table is missing");
  switch (t) {
    case DT::F32:
      if (mma && bias64)
        launch_rows(qkv, B, res, C, heads, window, shift, scale, static_cast<const float*>(bias64), wt, out, tf32, s);
      else launch<float>(qkv, B, res, C, heads, window, shift, scale, bias, out, s, tf32);
      break;
    case DT::F16:
      if (mma) launch_mma<__half>(qkv, B, res, C, heads, window, shift, scale, static_cast<const __half*>(bias64), wt,
                                  out, s, heads_mode);
      else if (tc) launch_tc<__half>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      else launch<__half>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      break;
    case DT::BF16:
      if (mma)
        launch_mma<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, static_cast<const __half*>(bias64), wt,
                                  out, s, heads_mode);
      else if (tc) launch_tc<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      else launch<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
