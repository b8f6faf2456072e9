// Tensor-core window attention pieces shared by the attention kernels
// (attention.cu), the per-window fused block (swin_block.cu) and the
// grid-synchronised block (swin_block_grid.cu): the register-resident
// mma.sync attention of a 16-query strip, the shift-mask bits, and a whole
// (window, head, slice) unit. See attention.cu for the semantics (shift and
// partition as index math, -100 shift mask).
#pragma once

#include <cstdint>
#include <type_traits>

#include "mma.cuh"
#include "window.cuh"

namespace swinrt::cuda {

// Where value (r, j) of a head's padded fp16 bias (64 x 64) sits: row r,
// then the lane quad (j % 8) / 2 whose mma.sync accumulators hold key column
// j, then its key tile j / 8, then j % 2, so the 16 values a lane adds to a
// row are 32 contiguous bytes. pad_attention_bias writes this layout,
// attend_strip reads it.
__host__ __device__ constexpr int padded_bias16_offset(int r, int j) {
  return (r * 4 + (j % 8) / 2) * 16 + (j / 8) * 2 + j % 2;
}

// 2^v by the hardware's approximation (MUFU.EX2, flushing denormals), as
// __expf uses it. e^(s - m) = 2^(s log2 e - m log2 e): one FFMA before it,
// where __expf(s - m) takes an FADD and an FMUL.
constexpr float kLog2e = 1.4426950408889634f;
__device__ __forceinline__ float exp2_approx(float v) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(v));
  return y;
}

// Register-resident attention of one 16-query strip of one head (windows of
// up to 64 tokens): q k^T with mma.sync m16n8k16 into registers, + the
// relative position bias from the head's padded 64 x 64 table (fp16, -inf in
// key columns >= N: no bounds checks; laid out by pad_attention_bias so that
// the 16 values a lane adds to a row are 32 contiguous bytes: two 16-byte
// loads a row instead of eight 8-byte FP32 ones), -100 where the row's mask bits say the key
// is in another shift region, softmax in FP32 over the 4 lanes that share a
// row, and p (fp16) straight back as the A operand of p v. q (already
// scaled), k and v: fp16 rows of stride ld in shared memory, 64 of them (rows
// >= N zero): q_at(row, col) is the address of q's (row, col) (8 columns
// from col contiguous), k's and v's rows are ld and ldv apart. store(row,
// col, v0, v1) takes output columns col, col + 1 (within the head) of
// window row `row` (rows >= N included: the caller drops them). Used by the
// per-window fused blocks and the attention kernels.
template <int HD, class QAt, class Store>
__device__ __forceinline__ void attend_strip_at(QAt&& q_at, const __half* k, const __half* v, int ld, int ldv,
                                                int strip, const __half* __restrict__ bias_h,
                                                const unsigned long long* mbits, Store&& store) {
  constexpr int KS = HD / 16, DT = HD / 8;
  const int lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
  const int r0 = strip * 16 + g, r1 = r0 + 8;
  uint32_t qa[KS][4];
#pragma unroll
  for (int ks = 0; ks < KS; ++ks) ldsm_x4(qa[ks], q_at(strip * 16 + (lane & 15), ks * 16 + (lane >> 4) * 8));
  // Scores: key tile t (keys t*8 .. +7); k's B fragments by ldmatrix, four
  // 8x8 matrices per load: two k-steps of one key tile, or (head dim 16) one
  // k-step of two key tiles.
  float sc[8][4];
#pragma unroll
  for (int t = 0; t < 8; ++t) sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.f;
  if constexpr (KS % 2 == 0) {
#pragma unroll
    for (int t = 0; t < 8; ++t)
#pragma unroll
      for (int ks = 0; ks < KS; ks += 2) {
        uint32_t kb[4];
        ldsm_x4(kb, k + (t * 8 + (lane & 7)) * ld + ks * 16 + (lane >> 3) * 8);
        mma16816<__half>(sc[t], qa[ks], kb[0], kb[1]);
        mma16816<__half>(sc[t], qa[ks + 1], kb[2], kb[3]);
      }
  } else {
    static_assert(KS == 1, "head dim 16, 32 or 64");
#pragma unroll
    for (int t = 0; t < 8; t += 2) {
      uint32_t kb[4];
      ldsm_x4(kb, k + (t * 8 + (lane & 7) + ((lane >> 4) << 3)) * ld + ((lane >> 3) & 1) * 8);
      mma16816<__half>(sc[t], qa[0], kb[0], kb[1]);
      mma16816<__half>(sc[t + 1], qa[0], kb[2], kb[3]);
    }
  }
  // Rows r0 and r1 of this lane's quad: [key tile t][2] for t = 0..7.
  const uint4* b0 = reinterpret_cast<const uint4*>(bias_h + padded_bias16_offset(r0, c2));
  const uint4* b1 = b0 + 8 * 4 * 2;
  const uint4 braw[4] = {__ldg(b0), __ldg(b0 + 1), __ldg(b1), __ldg(b1 + 1)};
  const __half2* bh0 = reinterpret_cast<const __half2*>(braw);
  const __half2* bh1 = bh0 + 8;
  const unsigned long long m0 = mbits[r0] >> c2, m1 = mbits[r1] >> c2;
  float mx0 = -INFINITY, mx1 = -INFINITY;
  // + bias (+ the mask where a row of the strip has one: the strips of
  // unshifted blocks and of interior windows have none, and skip its
  // selects and adds; the branch is the warp's, so no lane waits on the other).
  auto add_bias = [&](auto masked) {
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      const float2 q0 = __half22float2(bh0[t]);
      const float2 q1 = __half22float2(bh1[t]);
      if constexpr (decltype(masked)::value) {
        sc[t][0] += q0.x + ((m0 >> (t * 8)) & 1 ? -100.0f : 0.f);
        sc[t][1] += q0.y + ((m0 >> (t * 8 + 1)) & 1 ? -100.0f : 0.f);
        sc[t][2] += q1.x + ((m1 >> (t * 8)) & 1 ? -100.0f : 0.f);
        sc[t][3] += q1.y + ((m1 >> (t * 8 + 1)) & 1 ? -100.0f : 0.f);
      } else {
        sc[t][0] += q0.x, sc[t][1] += q0.y, sc[t][2] += q1.x, sc[t][3] += q1.y;
      }
      mx0 = fmaxf(mx0, fmaxf(sc[t][0], sc[t][1]));
      mx1 = fmaxf(mx1, fmaxf(sc[t][2], sc[t][3]));
    }
  };
  if (__any_sync(0xffffffffu, (m0 | m1) != 0)) add_bias(std::true_type{});
  else add_bias(std::false_type{});
  mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
  mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
  mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
  mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
  float sum0 = 0.f, sum1 = 0.f;
  const float ml0 = mx0 * kLog2e, ml1 = mx1 * kLog2e;
#pragma unroll
  for (int t = 0; t < 8; ++t) {
    sc[t][0] = exp2_approx(fmaf(sc[t][0], kLog2e, -ml0));
    sc[t][1] = exp2_approx(fmaf(sc[t][1], kLog2e, -ml0));
    sc[t][2] = exp2_approx(fmaf(sc[t][2], kLog2e, -ml1));
    sc[t][3] = exp2_approx(fmaf(sc[t][3], kLog2e, -ml1));
    sum0 += sc[t][0] + sc[t][1];
    sum1 += sc[t][2] + sc[t][3];
  }
  sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
  sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
  sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
  sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
  const float inv0 = 1.0f / sum0, inv1 = 1.0f / sum1;
  float o[DT][4];
#pragma unroll
  for (int nt = 0; nt < DT; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint32_t pa[4] = {pack2<__half>(sc[2 * kk][0] * inv0, sc[2 * kk][1] * inv0),
                            pack2<__half>(sc[2 * kk][2] * inv1, sc[2 * kk][3] * inv1),
                            pack2<__half>(sc[2 * kk + 1][0] * inv0, sc[2 * kk + 1][1] * inv0),
                            pack2<__half>(sc[2 * kk + 1][2] * inv1, sc[2 * kk + 1][3] * inv1)};
#pragma unroll
    for (int dp = 0; dp < DT / 2; ++dp) {
      // v rows kk*16.. (keys) x 16 columns: b0, b1 of n-tiles 2dp and 2dp + 1.
      uint32_t vb[4];
      ldsm_x4_trans(vb, v + (kk * 16 + (lane & 15)) * ldv + dp * 16 + (lane >> 4) * 8);
      mma16816<__half>(o[2 * dp], pa, vb[0], vb[1]);
      mma16816<__half>(o[2 * dp + 1], pa, vb[2], vb[3]);
    }
  }
#pragma unroll
  for (int nt = 0; nt < DT; ++nt) {
    store(r0, nt * 8 + c2, o[nt][0], o[nt][1]);
    store(r1, nt * 8 + c2, o[nt][2], o[nt][3]);
  }
}

// q, k and v: rows ld apart.
template <int HD, class Store>
__device__ __forceinline__ void attend_strip(const __half* q, const __half* k, const __half* v, int ld, int strip,
                                             const __half* __restrict__ bias_h, const unsigned long long* mbits,
                                             Store&& store) {
  attend_strip_at<HD>([&](int r, int c) { return q + r * ld + c; }, k, v, ld, ld, strip, bias_h, mbits,
                      static_cast<Store&&>(store));
}

// Shift-mask bits of a window's 64 rows: bit j of mbits[i] is set where key
// j lies in another region than query i (reg[] from window_token, -1 in
// padding rows, whose bits are never used). One ballot per 32 keys.
__device__ __forceinline__ void window_mask_bits(const int* reg, int N, int shift, unsigned long long* mbits) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  for (int i = warp; i < 64; i += nwarps) {
    const int ri = reg[i];
    const bool on = shift > 0 && ri >= 0;
    const unsigned lo = __ballot_sync(0xffffffffu, on && lane < N && reg[lane] != ri);
    const unsigned hi = __ballot_sync(0xffffffffu, on && lane + 32 < N && reg[lane + 32] != ri);
    if (lane == 0) mbits[i] = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
}

// Window w = (wy, wx)'s token map and shift-mask bits (64 rows): entry w
// of the engine's table where there is one, else built into tk, reg and mb
// (shared memory) by the block's `stride` threads; tok and mbits point at
// them. The caller syncs before mbits is read. W: w's type as the caller has
// it (blockIdx.x or an int).
template <typename W>
__device__ __forceinline__ void window_map(const WindowTable* table, W w, int wy, int wx, int res, int window,
                                           int shift, int stride, int* tk, int* reg, unsigned long long* mb,
                                           const int*& tok, const unsigned long long*& mbits) {
  if (table) {
    tok = table[w].tok;
    mbits = table[w].mbits;
    return;
  }
  window_tokens(wy, wx, res, window, shift, 64, stride, tk, reg);
  __syncthreads();
  window_mask_bits(reg, window * window, shift, mb);
  tok = tk;
  mbits = mb;
}

// Shared memory of one window_attention_unit: q, k, v [64][HD + 8] fp16,
// the mask bits, token map and regions.
inline size_t window_attention_smem(int hd) {
  return sizeof(__half) * 3 * 64 * (hd + 8) + 64 * (sizeof(unsigned long long) + 2 * sizeof(int));
}

// One (window w, head h, slice b) unit of the shifted-window attention with
// every thread of the block (THREADS of them; strips go to the first four
// warps): the window's q (scaled), k, v rows widened to fp16 in shared memory
// (all of a thread's 16-byte loads in flight at once), the mask bits, then
// attend_strip per 16-query strip, the output rows (dtype T) stored to the
// window's tokens. bias64: the relative position bias padded to 64 x 64 a
// head in attend_strip's fp16 layout (pad_attention_bias). qkv is read with coherent loads (no __restrict__): the
// grid-synchronised block writes it in the same launch. table: the
// windows' token maps and mask bits (window_table), or null to build them
// here. A caller that reuses `smem` for another unit needs a block barrier
// first. wait: the kernel's wait_for_prior_grids() is the unit's, after the
// window map (constants) is in shared memory and the head's bias asked of
// the L2, before the first read of qkv (`early`, common.cuh).
template <typename T, int HD, int THREADS>
__device__ __forceinline__ void window_attention_unit(const T* qkv, int res, int C, int heads, int window, int shift,
                                                      float scale, const __half* __restrict__ bias64, T* out, int w,
                                                      int h, int b, char* smem,
                                                      const WindowTable* __restrict__ table = nullptr,
                                                      bool wait = false) {
  constexpr int kRows = 64, LD = HD + 8, V8 = HD / 8;  // 16-byte pieces per row and head
  constexpr int ITEMS = (kRows * V8 + THREADS - 1) / THREADS;
  __half* q = reinterpret_cast<__half*>(smem);
  __half* k = q + kRows * LD;
  __half* v = k + kRows * LD;
  const int N = window * window, nw = res / window, wy = w / nw, wx = w % nw;
  const int64_t base = int64_t(b) * res * res;
  unsigned long long* mb = reinterpret_cast<unsigned long long*>(v + kRows * LD);
  int* tk = reinterpret_cast<int*>(mb + kRows);
  const int* tok;
  const unsigned long long* mbits;
  window_map(table, w, wy, wx, res, window, shift, THREADS, tk, tk + kRows, mb, tok, mbits);
  // Each piece's token (-1 past the window) before the wait, so that the
  // qkv loads issue at once after it.
  int ti[ITEMS];
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int idx = threadIdx.x + it * THREADS, i = idx / V8;
    ti[it] = idx < kRows * V8 && i < N ? tok[i] : -1;
  }
  if (wait) {
    prefetch_l2(bias64 + int64_t(h) * kRows * kRows, kRows * kRows * sizeof(__half), threadIdx.x, THREADS);
    if (table) prefetch_l2(mbits, kRows * sizeof(unsigned long long), threadIdx.x, THREADS);
    wait_for_prior_grids();
    qkv = after_wait(qkv);
  }
  uint4 qa[ITEMS], ka[ITEMS], va[ITEMS];
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int idx = threadIdx.x + it * THREADS, e = (idx % V8) * 8;
    qa[it] = ka[it] = va[it] = make_uint4(0, 0, 0, 0);
    if (ti[it] >= 0) {
      const T* row = qkv + (base + ti[it]) * 3 * C + h * HD + e;
      qa[it] = *reinterpret_cast<const uint4*>(row);
      ka[it] = *reinterpret_cast<const uint4*>(row + C);
      va[it] = *reinterpret_cast<const uint4*>(row + 2 * C);
    }
  }
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int idx = threadIdx.x + it * THREADS, i = idx / V8, e = (idx % V8) * 8;
    if (idx >= kRows * V8) break;
    const T* qe = reinterpret_cast<const T*>(&qa[it]);
    __align__(16) __half qh[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) qh[t] = __float2half_rn(to_f(qe[t]) * scale);
    *reinterpret_cast<uint4*>(q + i * LD + e) = *reinterpret_cast<const uint4*>(qh);
    if constexpr (std::is_same_v<T, __half>) {
      *reinterpret_cast<uint4*>(k + i * LD + e) = ka[it];
      *reinterpret_cast<uint4*>(v + i * LD + e) = va[it];
    } else {
      const T* ke = reinterpret_cast<const T*>(&ka[it]);
      const T* ve = reinterpret_cast<const T*>(&va[it]);
      __align__(16) __half kh[8], vh[8];
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        kh[t] = __float2half_rn(to_f(ke[t]));
        vh[t] = __float2half_rn(to_f(ve[t]));
      }
      *reinterpret_cast<uint4*>(k + i * LD + e) = *reinterpret_cast<const uint4*>(kh);
      *reinterpret_cast<uint4*>(v + i * LD + e) = *reinterpret_cast<const uint4*>(vh);
    }
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5;
  if (warp < 4) {
    T* o = out + h * HD;
    attend_strip<HD>(q, k, v, LD, warp, bias64 + int64_t(h) * kRows * kRows, mbits,
                     [&](int r, int c, float v0, float v1) {
                       if (r < N) store2(o + (base + tok[r]) * C + c, v0, v1);
                     });
  }
}

}  // namespace swinrt::cuda
