// window_attention: one thread block per (window, head, slice) computes
// softmax(q k^T * scale + bias + mask) v for the window's N = w*w tokens;
// mirror of src/cpu/attention.cpp. The cyclic shift, window partition and
// window reverse are index math on the loads and stores (no copies), the
// relative position bias comes pre-gathered as [heads, N, N], and the shift
// mask (-100 across regions, as the original) is computed from coordinates.
// Traffic: q, k, v of the window read once, the output written once; scores
// live in shared memory, in FP32.
//
// Two kernels: for FP16/BF16 activations, q k^T and p v run on tensor cores
// (WMMA 16x16x16, FP16 operands, FP32 accumulators; bf16 inputs are widened
// to fp16 exactly, so p keeps fp16's 11-bit mantissa); for FP32/TF32 (and
// head dims that are not multiples of 16) a register-tiled FP32 kernel keeps
// the strict path exact.
#include <algorithm>
#include <cstdint>
#include <mma.h>
#include <type_traits>

#include "mma.cuh"
#include "ops.cuh"
#include "window.cuh"

namespace swinrt::cuda {

namespace {

template <typename T>
__global__ void window_attention_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                        float scale, const float* __restrict__ bias, T* __restrict__ out) {
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
    o[0] = from_f<T>(acc.x);
    o[1] = from_f<T>(acc.y);
    o[2] = from_f<T>(acc.z);
    o[3] = from_f<T>(acc.w);
  }
}

// The window's token map and its q (scaled), k and v rows, widened to fp16 in
// shared memory with 16-byte loads; rows N..NP-1 are zero. v is stored
// row-major [NP][ldv] or, for the mma kernel's p v, transposed [d][ldv]. The
// grid is (window, head, slice), as both tensor-core kernels launch it.
template <typename T, bool kTransposeV>
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
      if constexpr (kTransposeV) v[(e + t) * ldv + i] = vh[t];
    }
    *reinterpret_cast<uint4*>(q + i * ldq + e) = *reinterpret_cast<const uint4*>(qh);
    *reinterpret_cast<uint4*>(k + i * ldq + e) = *reinterpret_cast<const uint4*>(kh);
    if constexpr (!kTransposeV) *reinterpret_cast<uint4*>(v + i * ldv + e) = *reinterpret_cast<const uint4*>(vh);
  }
  __syncthreads();
}

// Register-resident variant (windows of up to 64 tokens, head_dim <= 64):
// one warp per 16-query strip computes q k^T with mma.sync m16n8k16 into
// registers, adds bias and mask, takes the softmax there (row max and sum
// across the 4 lanes that share a row), and feeds p straight back as the A
// operand of p v: scores never touch shared memory, and after the loads no
// block barrier is needed. Shared memory holds only q, k and v^T in fp16.
__device__ __forceinline__ uint32_t ld_h2(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }

// MAXD: the largest head_dim the instantiation takes (32 or 64). Sized by it
// and bounded to 8 blocks per SM, Swin-T's head_dim-32 kernel uses 64
// registers (64 bytes spilled) instead of 105 (4 blocks per SM, 25% occupancy
// by ncu on the H100): attention 4.00 -> 2.50 ms of the batch-128 fp16
// forward (docs/PERFORMANCE.md; 6 blocks per SM, 80 registers, gave 2.82 ms).
template <typename T, int MAXD>
__global__ void __launch_bounds__(128, MAXD <= 32 ? 8 : 4)
    window_attention_mma_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                float scale, const float* __restrict__ bias, T* __restrict__ out) {
  constexpr int KS = MAXD / 16, DT = MAXD / 8;  // k-steps of q k^T, 8-column tiles of the output
  extern __shared__ float4 smem4[];
  const int N = window * window, NP = (N + 15) & ~15, d = C / heads;
  const int ldq = d + 8, ldv = NP + 8;  // padded rows: conflict-free fragment loads
  __half* q = reinterpret_cast<__half*>(smem4);
  __half* k = q + NP * ldq;
  __half* vT = k + NP * ldq;  // v transposed: [d][ldv]
  int* tok = reinterpret_cast<int*>(vT + d * ldv);
  int* reg = tok + NP;

  const int h = blockIdx.y;
  const int64_t base = int64_t(blockIdx.z) * res * res;
  load_window_fp16<T, true>(qkv, res, C, window, shift, scale, ldq, ldv, q, k, vT, tok, reg);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  const int g = lane >> 2, c2 = (lane & 3) * 2;
  const int key_tiles = NP / 8, ksteps = d / 16, dtiles = d / 8;
  const float* bh = bias + int64_t(h) * N * N;
  for (int strip = warp; strip < NP / 16; strip += nwarps) {
    const int r0 = strip * 16 + g, r1 = r0 + 8;
    uint32_t qa[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
      if (ks < ksteps) {
        const __half* p = q + ks * 16 + c2;
        qa[ks][0] = ld_h2(p + r0 * ldq);
        qa[ks][1] = ld_h2(p + r1 * ldq);
        qa[ks][2] = ld_h2(p + r0 * ldq + 8);
        qa[ks][3] = ld_h2(p + r1 * ldq + 8);
      }
    // Scores: 8 key tiles of 8; this thread holds rows r0, r1 x columns t*8 + c2 + {0, 1}.
    float sc[8][4];
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.f;
      if (t < key_tiles) {
        const __half* kr = k + (t * 8 + g) * ldq + c2;
#pragma unroll
        for (int ks = 0; ks < KS; ++ks)
          if (ks < ksteps) mma16816<__half>(sc[t], qa[ks], ld_h2(kr + ks * 16), ld_h2(kr + ks * 16 + 8));
      }
    }
    const int reg0 = reg[r0], reg1 = reg[r1];
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int t = 0; t < 8; ++t) {
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int j = t * 8 + c2 + u;
        if (t < key_tiles && j < N) {
          if (r0 < N) sc[t][u] += bh[r0 * N + j] + (reg0 != reg[j] ? -100.0f : 0.f);
          if (r1 < N) sc[t][2 + u] += bh[r1 * N + j] + (reg1 != reg[j] ? -100.0f : 0.f);
          mx0 = fmaxf(mx0, sc[t][u]);
          mx1 = fmaxf(mx1, sc[t][2 + u]);
        }
      }
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int t = 0; t < 8; ++t) {
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int j = t * 8 + c2 + u;
        const bool real = t < key_tiles && j < N;
        sc[t][u] = real ? expf(sc[t][u] - mx0) : 0.f;
        sc[t][2 + u] = real ? expf(sc[t][2 + u] - mx1) : 0.f;
        sum0 += sc[t][u];
        sum1 += sc[t][2 + u];
      }
    }
    sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
    sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
    sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
    sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
    const float inv0 = 1.0f / sum0, inv1 = 1.0f / sum1;
    // p (normalised, fp16) as A fragments: key step kk = score tiles 2kk, 2kk+1.
    float o[DT][4];
#pragma unroll
    for (int nt = 0; nt < DT; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      if (2 * kk >= key_tiles) break;
      const uint32_t pa[4] = {pack2<__half>(sc[2 * kk][0] * inv0, sc[2 * kk][1] * inv0),
                              pack2<__half>(sc[2 * kk][2] * inv1, sc[2 * kk][3] * inv1),
                              pack2<__half>(sc[2 * kk + 1][0] * inv0, sc[2 * kk + 1][1] * inv0),
                              pack2<__half>(sc[2 * kk + 1][2] * inv1, sc[2 * kk + 1][3] * inv1)};
#pragma unroll
      for (int nt = 0; nt < DT; ++nt)
        if (nt < dtiles) {
          const __half* vr = vT + (nt * 8 + g) * ldv + kk * 16 + c2;
          mma16816<__half>(o[nt], pa, ld_h2(vr), ld_h2(vr + 8));
        }
    }
#pragma unroll
    for (int nt = 0; nt < DT; ++nt)
      if (nt < dtiles) {
        const int e = h * d + nt * 8 + c2;
        if (r0 < N) store2(out + (base + tok[r0]) * C + e, o[nt][0], o[nt][1]);
        if (r1 < N) store2(out + (base + tok[r1]) * C + e, o[nt][2], o[nt][3]);
      }
  }
}

template <typename T>
void launch_mma(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
                const float* bias, void* out, cudaStream_t s) {
  const int N = window * window, NP = (N + 15) & ~15, d = C / heads;
  const size_t smem = sizeof(__half) * (2 * NP * (d + 8) + d * (NP + 8)) + sizeof(int) * 2 * NP;
  const dim3 grid((res / window) * (res / window), heads, B);
  auto kernel = d <= 32 ? window_attention_mma_kernel<T, 32> : window_attention_mma_kernel<T, 64>;
  kernel<<<grid, 128, smem, s>>>(static_cast<const T*>(qkv), res, C, heads, window, shift, scale, bias,
                                 static_cast<T*>(out));
}

// Tensor-core variant. Shared memory: q, k, v, p as fp16 [NP][ld16], the
// scores / output as fp32 [NP][ld32]; NP = N rounded up to 16, rows past N zero.
template <typename T>
__global__ void window_attention_tc_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                           float scale, const float* __restrict__ bias, T* __restrict__ out) {
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
  load_window_fp16<T, false>(qkv, res, C, window, shift, scale, ldq, ldq, q, k, v, tok, reg);
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
            void* out, cudaStream_t s) {
  const int N = window * window, Np = (N + 3) & ~3, d = C / heads;
  if (d % 4 != 0) throw Error(fmt::format("window_attention: head_dim {} is not a multiple of 4", d));
  const size_t smem = sizeof(float) * (2 * N * d + d * Np + N * Np) + sizeof(int) * 2 * N;
  auto kernel = window_attention_kernel<T>;
  if (smem > 48 * 1024)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid((res / window) * (res / window), heads, B);
  kernel<<<grid, 128, smem, s>>>(static_cast<const T*>(qkv), res, C, heads, window, shift, scale, bias,
                                 static_cast<T*>(out));
}

}  // namespace

void window_attention(const void* qkv, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                      const float* bias, void* out, cudaStream_t s) {
  const int d = C / heads;
  const bool tc = d % 16 == 0 && window * window <= 144;
  const bool mma = d % 16 == 0 && d <= 64 && window * window <= 64;
  switch (t) {
    case DT::F32: launch<float>(qkv, B, res, C, heads, window, shift, scale, bias, out, s); break;
    case DT::F16:
      if (mma) launch_mma<__half>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      else if (tc) launch_tc<__half>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      else launch<__half>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      break;
    case DT::BF16:
      if (mma) launch_mma<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      else if (tc) launch_tc<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      else launch<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, bias, out, s);
      break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
