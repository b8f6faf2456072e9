// Patch ops on the GPU; mirror of src/cpu/patch.cpp and the head of
// src/cpu/backend.cpp's FinalExpand.
//  - patch_embed: one warp per token (two for 4 x 4 patches of 96
//    channels): the patch x patch conv, LayerNorm and absolute position
//    embedding in registers; writes x (FP32) and xt.
//  - final_norm_head: FinalPatchExpand_X4's pixel shuffle + LayerNorm + the
//    1x1 conv head in one pass over the expand GEMM's output: one thread per
//    output pixel, the normalised E-vector never leaves registers, and only
//    the logits [B, classes, H, W] are written, coalesced.
//  - final_expand_head (fp16/bf16, the default where the tensor-core head
//    exists): the whole FinalPatchExpand_X4 + head in one kernel: the expand
//    GEMM on tensor cores, its accumulators rounded to the activation dtype
//    as the unfused path stores them and fed as A fragments to the head's
//    tensor-core product; the [B, 4H, 4W, E] tensor never reaches memory.
//    SWINRT_FUSED_HEAD=0 keeps the expand GEMM + final_norm_head pair.
//    By warpgroup (wgmma) for embed_dim 96 on sm_90a.
//  - final_expand_head_f32 (FP32 engines): the same fusion in FP32
//    arithmetic, SIMT FMAs on expand weights held in shared memory.
//  - patch_expand_fused (fp16/bf16, sm_90a, 192 channels): PatchExpand's
//    cast, expand GEMM, pixel shuffle and LayerNorm in one persistent kernel
//    (the engine takes it where the batch gives every SM a 64-token tile).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "mma.cuh"
#include "ops.cuh"
#include "wgmma.cuh"

namespace swinrt::cuda {

namespace {

constexpr int kMaxE = 32 * 8;  // embed_dim up to 256 (8 channels per lane)
constexpr int kMaxHeadE = 128;     // the head kernel keeps a pixel's E-vector in one thread
constexpr int kTokensPerWarp = 8;  // patch embedding: most tokens per warp

// Lane i of a warp holds channels i, i + 32, ... (NPL of them) of one token
// at a time. PP = patch * patch where the launch knows it (4 x 4 patches of
// up to 96 channels): the lane's weights then stay in registers for all its
// tokens; PP = 0: any patch, weights read from shared memory. Per channel
// the sum is bias + w_0 p_0 + w_1 p_1 + ... in pixel order either way.
template <typename T, int NPL, int PP>
__global__ void __launch_bounds__(256, PP ? 3 : 1)
    patch_embed_kernel(const float* __restrict__ img, int64_t tokens_total, int img_size, int patch,
                       const float* __restrict__ w, const float* __restrict__ bias, int E, const float* __restrict__ g,
                       const float* __restrict__ bt, const float* __restrict__ ape, int tpw, float* __restrict__ x,
                       T* __restrict__ xt, int64_t ldt, bool tf32) {
  wait_for_prior_grids();
  extern __shared__ float ws[];  // w transposed, [pp][E]: lanes read consecutive channels, no bank conflicts
  const int pp = PP ? PP : patch * patch;
  for (int i = threadIdx.y * 32 + threadIdx.x; i < E * pp; i += 32 * blockDim.y) ws[(i % pp) * E + i / pp] = w[i];
  __syncthreads();
  const int lane = threadIdx.x, grid = img_size / patch;
  float wr[PP ? NPL * PP : 1], b0[NPL];
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int e = lane + 32 * i;
    b0[i] = e < E ? bias[e] : 0.f;
    if constexpr (PP > 0) {
#pragma unroll
      for (int k = 0; k < PP; ++k) wr[i * PP + k] = e < E ? ws[k * E + e] : 0.f;
    }
  }
  // Each warp embeds tpw tokens, so the weight staging is amortised.
  for (int t = 0; t < tpw; ++t) {
    const int64_t tok = (blockIdx.x * int64_t(blockDim.y) + threadIdx.y) * tpw + t;
    if (tok >= tokens_total) return;
    const int64_t gg = int64_t(grid) * grid;  // (a 32-bit division where the batch allows: a fraction of the cost)
    const int64_t b = tokens_total <= INT32_MAX ? int64_t(uint32_t(tok) / uint32_t(gg)) : tok / gg;
    const int p = static_cast<int>(tok - b * gg), py = p / grid, px = p % grid;
    const float* src = img + (b * img_size + py * patch) * img_size + px * patch;
    // Lane k holds pixel k of the patch (pp <= 32, checked by the launcher).
    const float pix = lane < pp ? src[(lane / patch) * img_size + lane % patch] : 0.f;
    float v[NPL];
#pragma unroll
    for (int i = 0; i < NPL; ++i) v[i] = b0[i];
    if constexpr (PP > 0) {
#pragma unroll
      for (int k = 0; k < PP; ++k) {
        const float pk = __shfl_sync(0xffffffffu, pix, k);
#pragma unroll
        for (int i = 0; i < NPL; ++i) v[i] += wr[i * PP + k] * pk;
      }
    } else {
      for (int k = 0; k < pp; ++k) {
        const float pk = __shfl_sync(0xffffffffu, pix, k);
#pragma unroll
        for (int i = 0; i < NPL; ++i)
          if (lane + 32 * i < E) v[i] += ws[k * E + lane + 32 * i] * pk;
      }
    }
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < NPL; ++i) sum += v[i];
    if (g) {
      const float mean = warp_sum(sum) / E;
      float sq = 0.f;
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        const float dlt = lane + 32 * i < E ? v[i] - mean : 0.f;
        sq += dlt * dlt;
      }
      const float rstd = rsqrtf(warp_sum(sq) / E + 1e-5f);
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        const int e = lane + 32 * i;
        if (e < E) v[i] = (v[i] - mean) * rstd * g[e] + bt[e];
      }
    }
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      const int e = lane + 32 * i;
      if (e < E) {
        const float y = ape ? v[i] + ape[int64_t(p) * E + e] : v[i];
        x[tok * E + e] = y;
        xt[tok * ldt + e] = from_f<T>(tf32_if(tf32, y));
      }
    }
  }
}

// The same embedding for 4 x 4 patches of exactly E = 96 channels (Swin-T's),
// two horizontally neighbouring tokens a warp step (the grid's width is even):
// one pixel load for both (lane l holds pixel l % 16 of token l / 16), the
// position arithmetic once per pair, no per-channel bounds, gamma, beta and
// the bias in registers. Same operations in the same order per token as
// patch_embed_kernel<T, 3, 16> (bit-identical outputs): that kernel spent
// most of its issue slots on index arithmetic and predicates. A warp's
// pixel loads (up to kPairsPerWarp pairs) are all issued first, before the
// weights are staged: one memory round trip a warp, not one a pair.
constexpr int kPairsPerWarp = kTokensPerWarp / 2;
template <typename T>
__global__ void __launch_bounds__(256, 3)
    patch_embed_pairs_kernel(const float* __restrict__ img, int64_t pairs_total, int img_size,
                             const float* __restrict__ w, const float* __restrict__ bias, const float* __restrict__ g,
                             const float* __restrict__ bt, const float* __restrict__ ape, int ppw,
                             float* __restrict__ x, T* __restrict__ xt, int64_t ldt, bool tf32) {
  wait_for_prior_grids();
  constexpr int E = 96, NPL = 3, PP = 16;
  __shared__ float ws[PP * E];  // w transposed, [pp][E]
  const int lane = threadIdx.x, grid = img_size / 4;
  const uint32_t half_grid = uint32_t(grid / 2), pairs_img = uint32_t(grid) * half_grid;
  const int64_t first = (blockIdx.x * int64_t(blockDim.y) + threadIdx.y) * ppw;
  // Pair first + t: its image b and position q in it.
  auto where = [&](int64_t pair, int64_t& b, uint32_t& q) {
    b = pairs_total <= INT32_MAX ? int64_t(uint32_t(pair) / pairs_img) : pair / pairs_img;
    q = uint32_t(pair - b * pairs_img);
  };
  float pixs[kPairsPerWarp];  // this lane's pixel of pair first + t (lane l: pixel l % 16 of token px + l / 16)
#pragma unroll
  for (int t = 0; t < kPairsPerWarp; ++t) {
    const int64_t pair = first + t;
    if (t >= ppw || pair >= pairs_total) break;
    int64_t b;
    uint32_t q;
    where(pair, b, q);
    const uint32_t py = q / half_grid, px = (q - py * half_grid) * 2;
    const int k = lane & 15;
    pixs[t] = img[(b * img_size + py * 4 + (k >> 2)) * img_size + (px + (lane >> 4)) * 4 + (k & 3)];
  }
  for (int i = threadIdx.y * 32 + threadIdx.x; i < E * PP; i += 32 * blockDim.y) ws[(i % PP) * E + i / PP] = w[i];
  __syncthreads();
  float wr[NPL * PP], b0[NPL], gm[NPL], bm[NPL];
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int e = lane + 32 * i;
    b0[i] = bias[e];
    gm[i] = g ? g[e] : 1.f;
    bm[i] = g ? bt[e] : 0.f;
#pragma unroll
    for (int k = 0; k < PP; ++k) wr[i * PP + k] = ws[k * E + e];
  }
#pragma unroll
  for (int t = 0; t < kPairsPerWarp; ++t) {
    const int64_t pair = first + t;
    if (t >= ppw || pair >= pairs_total) return;
    int64_t b;
    uint32_t q;
    where(pair, b, q);
    const float pix = pixs[t];
    float v[2][NPL];
#pragma unroll
    for (int i = 0; i < NPL; ++i) v[0][i] = v[1][i] = b0[i];
#pragma unroll
    for (int kk = 0; kk < PP; ++kk) {
      const float p0 = __shfl_sync(0xffffffffu, pix, kk), p1 = __shfl_sync(0xffffffffu, pix, 16 + kk);
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        v[0][i] += wr[i * PP + kk] * p0;
        v[1][i] += wr[i * PP + kk] * p1;
      }
    }
    const int64_t tok0 = 2 * pair;
    const uint32_t pos0 = q * 2;  // position of the first token in its image (for ape)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float* vh = v[h];
      if (g) {
        float sum = 0.f;
#pragma unroll
        for (int i = 0; i < NPL; ++i) sum += vh[i];
        const float mean = warp_sum(sum) / E;
        float sq = 0.f;
#pragma unroll
        for (int i = 0; i < NPL; ++i) {
          const float dlt = vh[i] - mean;
          sq += dlt * dlt;
        }
        const float rstd = rsqrtf(warp_sum(sq) / E + 1e-5f);
#pragma unroll
        for (int i = 0; i < NPL; ++i) vh[i] = (vh[i] - mean) * rstd * gm[i] + bm[i];
      }
      const int64_t tok = tok0 + h;
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        const int e = lane + 32 * i;
        const float y = ape ? vh[i] + ape[int64_t(pos0 + h) * E + e] : vh[i];
        x[tok * E + e] = y;
        xt[tok * ldt + e] = from_f<T>(tf32_if(tf32, y));
      }
    }
  }
}

// One thread per output pixel; the 32 lanes of a warp hold 32 neighbouring
// pixels of one output row (8 tokens x 4 sub-pixels), so the logits stores are
// coalesced. Each thread keeps its E-vector in registers (EMAX >= E), the
// head weights sit in shared memory and are read as broadcasts.
template <typename T, int EMAX>
__global__ void final_norm_head_kernel(const T* __restrict__ ex, int64_t row0, int64_t rows, int res, int E,
                                       const float* __restrict__ g, const float* __restrict__ bt,
                                       const float* __restrict__ head, int classes, float* __restrict__ logits) {
  wait_for_prior_grids();
  extern __shared__ float4 smem4[];
  float* wsm = reinterpret_cast<float*>(smem4);  // head [classes][E], then g [E], b [E], then the staging rows
  float* gs = wsm + classes * E;
  float* bs = gs + E;
  for (int i = threadIdx.x; i < classes * E; i += blockDim.x) wsm[i] = head[i];
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    gs[i] = g[i];
    bs[i] = bt[i];
  }
  __syncthreads();
  // Pixel index within this chunk, ordered (token row h, p1, token w, p2) so
  // consecutive threads walk along an output row.
  const int64_t item = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t tok0 = row0;  // chunk starts at a token; it holds `rows` tokens
  const bool valid = item < rows * 16;
  const int64_t tokens = int64_t(res) * res, H = 4 * res;
  // The chunk's tokens [tok0, tok0 + rows) are whole token rows, so its pixels
  // are one contiguous run of the output in (b, y, x) order.
  const int64_t first_pixel = (tok0 / tokens) * tokens * 16 + (tok0 % tokens) / res * res * 16;
  const int64_t gp = first_pixel + item;
  const int64_t b = gp / (H * H);
  const int64_t yx = gp - b * H * H, y = yx / H, x = yx - y * H;
  const int64_t tok = b * tokens + (y / 4) * res + x / 4;
  const int sub = int(y % 4) * 4 + int(x % 4);
  // Stage the warp's 32 E-vectors through shared memory with coalesced
  // 16-byte loads (neighbouring pixels' vectors are neighbours in memory),
  // then each lane reads its own row: padded rows, no bank conflicts.
  constexpr int kVec = 16 / sizeof(T);  // E % kVec == 0, checked by the launcher
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, ldr = E + kVec, chunks = E / kVec;
  T* stage = reinterpret_cast<T*>(bs + E + ((2 * E + classes * E) % 4 ? 4 - (2 * E + classes * E) % 4 : 0)) +
             int64_t(warp) * 32 * ldr;
  const long long my_off = valid ? ((tok - tok0) * 16 + sub) * E : -1;
  for (int c = lane; c < 32 * chunks; c += 32) {
    const int vl = c / chunks, part = c - vl * chunks;
    const long long off = __shfl_sync(0xffffffffu, my_off, vl);
    if (off >= 0)
      *reinterpret_cast<uint4*>(stage + vl * ldr + part * kVec) =
          *reinterpret_cast<const uint4*>(ex + off + part * kVec);
  }
  __syncwarp();
  if (!valid) return;
  const T* src = stage + lane * ldr;
  float v[EMAX];
  float sum = 0.f;
#pragma unroll
  for (int e0 = 0; e0 < EMAX; e0 += kVec) {
    uint4 raw = make_uint4(0, 0, 0, 0);
    if (e0 < E) raw = *reinterpret_cast<const uint4*>(src + e0);
    const T* r = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int t = 0; t < kVec; ++t) {
      v[e0 + t] = e0 + t < E ? to_f(r[t]) : 0.f;
      sum += v[e0 + t];
    }
  }
  const float mean = sum / E;
  float sq = 0.f;
#pragma unroll
  for (int e = 0; e < EMAX; ++e) {
    const float dlt = e < E ? v[e] - mean : 0.f;
    sq += dlt * dlt;
  }
  const float rstd = rsqrtf(sq / E + 1e-5f);
#pragma unroll
  for (int e = 0; e < EMAX; ++e) v[e] = e < E ? (v[e] - mean) * rstd * gs[e] + bs[e] : 0.f;
  for (int c = 0; c < classes; ++c) {
    float acc = 0.f;
#pragma unroll
    for (int e = 0; e < EMAX; ++e)
      if (e < E) acc += v[e] * wsm[c * E + e];
    logits[(b * classes + c) * H * H + yx] = acc;
  }
}


// Tensor-core variant for FP16/BF16 expand outputs. LayerNorm + head is
//   y_c = r (x . W'_c - mu s_c) + t_c,  W'_ck = g_k W_ck, s_c = sum_k W'_ck,
//   t_c = sum_k b_k W_ck  (mu, r: the pixel's mean and 1 / std),
// so the head runs as an mma.sync GEMM on the raw expand output x (exact in
// its 16-bit dtype) against W' split into a 16-bit high and low part (W' to
// about 2^-22 relative; FP32 accumulation), and mu, r come from the same A
// fragments (FP32, by the tensor cores: tile_row_norm). A warp takes 16
// neighbouring output pixels of one row per step (4 tokens x 4 sub-pixels
// p2), so each class's 16 logits are one 64-byte store. KT = E / 16, NT =
// class tiles of 8.
// Lane-ordered head fragments (final_head_prepare): for each (nt, kt, h) the
// 32 lanes' B registers of W' high, then low; then for each (nt, u) the 32
// lanes' s_c and t_c. A warp loads them once, 128 bytes per load.
__host__ __device__ constexpr int head_frag_words(int KT, int NT) { return NT * KT * 2 * 2 * 32 + NT * 2 * 2 * 32; }

template <typename T, int KT, int NT>
__global__ void final_head_prepare_kernel(const float* __restrict__ head, const float* __restrict__ g,
                                          const float* __restrict__ bt, int classes, uint32_t* __restrict__ out) {
  wait_for_prior_grids();
  constexpr int E = KT * 16;
  const int lane = threadIdx.x & 31, g8 = lane >> 2, c2 = (lane & 3) * 2;
  for (int nt = 0; nt < NT; ++nt) {
    const int n = nt * 8 + g8;
    for (int kt = 0; kt < KT; ++kt)
      for (int h = 0; h < 2; ++h) {
        const int k = kt * 16 + h * 8 + c2;
        const float w0 = n < classes ? head[n * E + k] * g[k] : 0.f;
        const float w1 = n < classes ? head[n * E + k + 1] * g[k + 1] : 0.f;
        const T h0 = from_f<T>(w0), h1 = from_f<T>(w1);
        const int i = ((nt * KT + kt) * 2 + h) * 2;
        out[i * 32 + lane] = pack2<T>(to_f(h0), to_f(h1));
        out[(i + 1) * 32 + lane] = pack2<T>(w0 - to_f(h0), w1 - to_f(h1));
      }
    for (int u = 0; u < 2; ++u) {
      const int c = nt * 8 + c2 + u;
      float sv = 0.f, tv = 0.f;
      if (c < classes)
        for (int k = 0; k < E; ++k) {
          sv += head[c * E + k] * g[k];
          tv += head[c * E + k] * bt[k];
        }
      const int i = NT * KT * 4 + (nt * 2 + u) * 2;
      out[i * 32 + lane] = __float_as_uint(sv);
      out[(i + 1) * 32 + lane] = __float_as_uint(tv);
    }
  }
}

// LayerNorm statistics of the 16 rows of a 16 x (16 KT) tile held as
// m16n8k16 A fragments (this lane: pairs of row g8 in registers 0 and 2, of
// row g8 + 8 in 1 and 3; a quad of lanes a row), by the tensor cores: the
// row sums are the tile times a column of ones, the sums of squares the
// diagonal of the tile times its own transpose (the B fragments of e e^T
// are the A fragments themselves: rows 0-7 are registers 0 and 2, rows
// 8-15 registers 1 and 3). The products of two 16-bit values are exact in
// FP32 and accumulate in FP32; var = E[e^2] - mean^2 (one pass), where the
// tile's values went through the 16-bit rounding already. Mean and 1 /
// sqrt(var + 1e-5) of both rows. Where the two-pass form converted, summed
// and squared the 48 values of a lane in 192 FP32 instructions, this takes 18
// mma and two shuffles.
template <typename T, int KT>
__device__ __forceinline__ void tile_row_norm(const uint32_t (&a)[KT][4], float& mu0, float& rs0, float& mu1,
                                              float& rs1) {
  constexpr float kInv = 1.0f / (KT * 16);
  const uint32_t ones = pack2<T>(1.0f, 1.0f);
  float s[4] = {0.f, 0.f, 0.f, 0.f}, d0[4] = {0.f, 0.f, 0.f, 0.f}, d1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int kt = 0; kt < KT; ++kt) {
    mma16816<T>(s, a[kt], ones, ones);              // every column: row g8's sum (s[0]), row g8 + 8's (s[2])
    mma16816<T>(d0, a[kt], a[kt][0], a[kt][2]);     // e e^T, columns 0-7
    mma16816<T>(d1, a[kt], a[kt][1], a[kt][3]);     // e e^T, columns 8-15
  }
  // Row g8's square sum is d0's element (g8, g8), row g8 + 8's d1's (g8 + 8, g8): lane 4 g8 + g8 / 2 holds both.
  const int g8 = (threadIdx.x & 31) >> 2, src = 4 * g8 + (g8 >> 1);
  const float q0 = __shfl_sync(0xffffffffu, g8 & 1 ? d0[1] : d0[0], src);
  const float q1 = __shfl_sync(0xffffffffu, g8 & 1 ? d1[3] : d1[2], src);
  mu0 = s[0] * kInv;
  mu1 = s[2] * kInv;
  rs0 = rsqrtf(fmaxf(q0 * kInv - mu0 * mu0, 0.f) + 1e-5f);
  rs1 = rsqrtf(fmaxf(q1 * kInv - mu1 * mu1, 0.f) + 1e-5f);
}

// The head with the LayerNorm folded in on such a tile: y[nt][u] (row g8)
// and y[nt][2 + u] (row g8 + 8) are the logits of class nt*8 + c2 + u.
// frag(w) gives this lane's word w of the lane-ordered head fragments.
template <typename T, int KT, int NT, class Frag>
__device__ __forceinline__ void tile_head(const uint32_t (&a)[KT][4], Frag&& frag, float mu0, float rs0, float mu1,
                                          float rs1, float (&y)[NT][4]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int kt = 0; kt < KT; ++kt) {
      const int w = (nt * KT + kt) * 4;  // word ((nt KT + kt) 2 + h) 2 + low
      mma16816<T>(acc, a[kt], frag(w), frag(w + 2));
      mma16816<T>(acc, a[kt], frag(w + 1), frag(w + 3));
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int w = NT * KT * 4 + (nt * 2 + u) * 2;
      const float sc = __uint_as_float(frag(w)), tc = __uint_as_float(frag(w + 1));
      y[nt][u] = rs0 * (acc[u] - mu0 * sc) + tc;
      y[nt][2 + u] = rs1 * (acc[2 + u] - mu1 * sc) + tc;
    }
  }
}

// Calls put(c, v0, v1) for every class c this lane holds logits of in y
// (tile_head's output): v0 for row g8, v1 for row g8 + 8.
template <int NT, class Put>
__device__ __forceinline__ void each_class(const float (&y)[NT][4], int c2, int classes, Put&& put) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int c = nt * 8 + c2 + u;
      if (c < classes) put(c, y[nt][u], y[nt][2 + u]);
    }
}

template <typename T, int KT, int NT>
__global__ void __launch_bounds__(128) final_norm_head_mma_kernel(const T* __restrict__ ex, int64_t row0, int64_t rows,
                                                                  int res, int classes,
                                                                  const uint32_t* __restrict__ frags,
                                                                  float* __restrict__ logits) {
  wait_for_prior_grids();
  constexpr int E = KT * 16, FW = head_frag_words(KT, NT) / 32;
  const int lane = threadIdx.x & 31, g8 = lane >> 2, c2 = (lane & 3) * 2;
  uint32_t fr[FW];  // this lane's head fragments, in registers for the whole kernel
#pragma unroll
  for (int w = 0; w < FW; ++w) fr[w] = __ldg(frags + w * 32 + lane);
  const int64_t H = 4 * res, groups = res / 4;
  const int64_t tr0 = row0 / res;  // first token row (over the batch) of the chunk
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t item = blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); item < rows; item += warps) {
    // item = (token row, p1, group of 16 pixels along x)
    const int64_t tr = tr0 + item / res;
    const int rem = static_cast<int>(item % res), p1 = rem / groups, xg = rem % groups;
    const int64_t b = tr / res, y = (tr % res) * 4 + p1, x0 = int64_t(xg) * 16;
    // This lane's rows: pixel x0 + g8 (token 4 xg + g8 / 4, p2 = g8 % 4) and x0 + g8 + 8.
    const int64_t tok_lo = tr * res + 4 * xg + (g8 >> 2) - row0;
    const T* r0 = ex + (tok_lo * 16 + p1 * 4 + (g8 & 3)) * E + c2;
    const T* r1 = r0 + 2 * 16 * E;  // two tokens further
    uint32_t a[KT][4];
#pragma unroll
    for (int kt = 0; kt < KT; ++kt) {
      a[kt][0] = __ldg(reinterpret_cast<const unsigned*>(r0 + kt * 16));
      a[kt][1] = __ldg(reinterpret_cast<const unsigned*>(r1 + kt * 16));
      a[kt][2] = __ldg(reinterpret_cast<const unsigned*>(r0 + kt * 16 + 8));
      a[kt][3] = __ldg(reinterpret_cast<const unsigned*>(r1 + kt * 16 + 8));
    }
    float mu0, rs0, mu1, rs1, yv[NT][4];
    tile_row_norm<T, KT>(a, mu0, rs0, mu1, rs1);
    tile_head<T, KT, NT>(a, [&](int w) { return fr[w]; }, mu0, rs0, mu1, rs1, yv);
    float* out = logits + (b * classes * H + y) * H + x0 + g8;
    each_class(yv, c2, classes, [&](int c, float v0, float v1) {
      out[c * H * H] = v0;
      out[c * H * H + 8] = v1;
    });
  }
}

// FinalPatchExpand_X4 + LayerNorm + head in one kernel (fp16/bf16). A warp
// takes a tile of 16 consecutive tokens (two runs of 8 along x, each inside
// one token row as res % 8 == 0), a thread block one p1 (the output row of
// each token's 4 x 4 sub-pixels): the expand weight rows of sub-pixels
// (p1, 0..3) stay in shared memory for the block's life (grid = 4 x SMs / 4,
// the blocks walk the tiles). Per sub-pixel the expand product sits in FP32
// accumulators whose m16n8 layout is the A-fragment layout of the next
// product: rounded to T (where the unfused path stores it) they go straight
// into the head's tensor-core product with the LayerNorm folded in
// (tile_row_norm and tile_head: final_norm_head_mma_kernel's arithmetic).
// The 4 sub-pixels of a row make 32 contiguous pixels per class and run,
// staged per warp and stored as 128-byte lines. The [B, 4H, 4W, E] tensor
// never reaches memory.
constexpr int kXhWarps = 16;

__host__ __device__ constexpr int xh_ld(int E) { return E + 8; }  // padded shared rows: conflict-free ldmatrix
constexpr int kXhSld = 33;  // floats a staged line of 32 logits takes (padded)

// Starts the cp.async of tile's 16 token rows of x (contiguous) into xw, a
// warp's [16][xh_ld(E)] tile, as one commit group.
template <typename T, int E>
__device__ __forceinline__ void fetch_tile16(T* xw, const T* __restrict__ x, int64_t tile, int lane) {
  constexpr int LD = xh_ld(E), VR = E / 8;
  const T* src = x + tile * 16 * E;
  for (int i = lane; i < 16 * VR; i += 32) {
    const int r = i / VR, v = i - r * VR;
    cp_async16(xw + r * LD + v * 8, src + r * E + v * 8);
  }
  cp_async_commit();
}

// The FP32 accumulators of a 16 x (16 KT) product (m16n8 layout, n-tile n
// in acc[n]) rounded to T: that tile's A fragments for the next product.
template <typename T, int KT>
__device__ __forceinline__ void round_to_frags(const float (&acc)[2 * KT][4], uint32_t (&e)[KT][4]) {
#pragma unroll
  for (int kt = 0; kt < KT; ++kt) {
    e[kt][0] = pack2<T>(acc[2 * kt][0], acc[2 * kt][1]);
    e[kt][1] = pack2<T>(acc[2 * kt][2], acc[2 * kt][3]);
    e[kt][2] = pack2<T>(acc[2 * kt + 1][0], acc[2 * kt + 1][1]);
    e[kt][3] = pack2<T>(acc[2 * kt + 1][2], acc[2 * kt + 1][3]);
  }
}

// The head fragments (word w of lane l at frags[32 w + l]) in shared memory
// as [w / 4][lane][4]: a lane's four words of a group are one 16-byte load,
// words w and w + 2 (tile_head's first mma of the group: the hi parts of
// both k-halves) first, then w + 1 and w + 3 (the lo parts), so each mma's
// B is a register pair as loaded.
__device__ __forceinline__ int head_frag_slot(int w) { return (w & 1) * 2 + ((w >> 1) & 1); }
__device__ __forceinline__ void stage_head_frags(uint32_t* hf, const uint32_t* __restrict__ frags, int words) {
  for (int i = threadIdx.x; i < words; i += blockDim.x) {
    const int w = i >> 5, l = i & 31;
    hf[(w >> 2) * 128 + l * 4 + head_frag_slot(w)] = __ldg(frags + i);
  }
}
__device__ __forceinline__ uint32_t head_frag(const uint32_t* hf, int w, int lane) {
  const uint4 g = reinterpret_cast<const uint4*>(hf)[(w >> 2) * 32 + lane];
  const int k = head_frag_slot(w);
  return k == 0 ? g.x : k == 1 ? g.y : k == 2 ? g.z : g.w;
}

// LayerNorm + head (tile_row_norm, tile_head; hf: the head fragments as stage_head_frags lays them out) on
// sub-pixel p2's expand product acc of a warp's tile, rounded to T. Logits
// go to the warp's staging sw, [2 runs][classes][kXhSld]: row g8 is token g8
// of the first run, row g8 + 8 token g8 of the second, pixel 4 g8 + p2 each.
template <typename T, int KT, int NT>
__device__ __forceinline__ void head_subpixel(const float (&acc)[2 * KT][4], const uint32_t* hf, int lane,
                                              int classes, int p2, float* sw) {
  const int g8 = lane >> 2, c2 = (lane & 3) * 2;
  uint32_t e[KT][4];
  round_to_frags<T, KT>(acc, e);
  float mu0, rs0, mu1, rs1, yv[NT][4];
  tile_row_norm<T, KT>(e, mu0, rs0, mu1, rs1);
  tile_head<T, KT, NT>(e, [&](int w) { return head_frag(hf, w, lane); }, mu0, rs0, mu1, rs1, yv);
  each_class(yv, c2, classes, [&](int c, float v0, float v1) {
    sw[c * kXhSld + 4 * g8 + p2] = v0;
    sw[(classes + c) * kXhSld + 4 * g8 + p2] = v1;
  });
}

// Stores the staged logits of tile (output row p1 of its tokens): a 128-byte
// line per run and class, between __syncwarp()s guarding the staging. The
// token index fits 32 bits (final_expand_head checks), and a tile stays in
// one image (res % 8 == 0 makes res^2 a multiple of 16); its second run of
// 8 tokens is in the first's token row or starts the next.
__device__ __forceinline__ void store_tile_logits(float* __restrict__ logits, const float* sw, int64_t tile, int res,
                                                  int p1, int classes, int lane) {
  const unsigned t = static_cast<unsigned>(tile) * 16u, per_img = unsigned(res) * unsigned(res);
  const unsigned b = t / per_img, r = t - b * per_img, ty = r / unsigned(res), tx0 = r - ty * unsigned(res);
  const int64_t H = 4 * int64_t(res), HH = H * H;
  __syncwarp();
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const unsigned x8 = tx0 + 8 * h, wrap = x8 >= unsigned(res) ? 1u : 0u;
    const unsigned y = 4 * (ty + wrap) + p1, x = 4 * (x8 - wrap * unsigned(res));
    float* o = logits + (int64_t(b) * classes * H + y) * H + x + lane;
    const float* src = sw + h * classes * kXhSld + lane;
    for (int c = 0; c < classes; ++c, o += HH) *o = src[c * kXhSld];
  }
  __syncwarp();
}

template <typename T, int KT, int NT>
__global__ void __launch_bounds__(32 * kXhWarps, 1)
    final_expand_head_kernel(const T* __restrict__ x, int64_t tiles, int res, int tpi, const T* __restrict__ wexp,
                             const uint32_t* __restrict__ frags, int classes, float* __restrict__ logits,
                             bool early) {
  if (!early) wait_for_prior_grids();  // else after the weights and head fragments, the engine's constants
  constexpr int E = KT * 16, LD = xh_ld(E), VR = E / 8, FW = head_frag_words(KT, NT), SLD = kXhSld;
  extern __shared__ __align__(128) unsigned char xsm[];
  T* ws = reinterpret_cast<T*>(xsm);                                             // [4 sub-pixels][E rows n][LD]
  T* xs = ws + 4 * E * LD;                                                       // [warps][16 tokens][LD]
  float* stg = reinterpret_cast<float*>(xs + kXhWarps * 16 * LD);                // [warps][2 runs][classes][SLD]
  uint32_t* hf = reinterpret_cast<uint32_t*>(stg + kXhWarps * 2 * classes * SLD);  // head fragments
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int p1 = blockIdx.x & 3;
  const T* wsrc = wexp + int64_t(p1) * 4 * E * E;  // rows (p1 * 4 + p2) * E + n
  for (int i = tid; i < 4 * E * VR; i += blockDim.x) {
    const int r = i / VR, v = i - r * VR;
    cp_async16(ws + r * LD + v * 8, wsrc + int64_t(r) * E + v * 8);
  }
  cp_async_commit();
  stage_head_frags(hf, frags, FW);
  if (early) wait_for_prior_grids();
  x = after_wait(x);
  T* xw = xs + warp * 16 * LD;
  float* sw = stg + warp * 2 * classes * SLD;
  const int64_t groups = (tiles + tpi - 1) / tpi, step = gridDim.x >> 2;
  int64_t grp = blockIdx.x >> 2;
  const bool active = warp < tpi && grp * tpi + warp < tiles;
  if (active) fetch_tile16<T, E>(xw, x, grp * tpi + warp, lane);
  cp_async_wait<0>();
  __syncthreads();  // W and the head fragments are in
  if (!active) return;
  for (; grp < groups; grp += step) {
    const int64_t tile = grp * tpi + warp;
    if (tile >= tiles) break;
    cp_async_wait<0>();
    __syncwarp();
    uint32_t a[KT][4];
#pragma unroll
    for (int kt = 0; kt < KT; ++kt) ldsm_x4(a[kt], xw + (lane & 15) * LD + kt * 16 + (lane >> 4) * 8);
    __syncwarp();
    if (grp + step < groups && (grp + step) * tpi + warp < tiles)
      fetch_tile16<T, E>(xw, x, (grp + step) * tpi + warp, lane);
#pragma unroll 1
    for (int p2 = 0; p2 < 4; ++p2) {
      const T* wp = ws + p2 * E * LD;
      float acc[2 * KT][4];
#pragma unroll
      for (int n = 0; n < 2 * KT; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
      for (int kt = 0; kt < KT; ++kt)
#pragma unroll
        for (int np = 0; np < KT; ++np) {
          uint32_t bw[4];  // n-tiles 2 np and 2 np + 1 for k = kt*16 .. +15
          ldsm_x4(bw, wp + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LD + kt * 16 + ((lane >> 3) & 1) * 8);
          mma16816<T>(acc[2 * np], a[kt], bw[0], bw[1]);
          mma16816<T>(acc[2 * np + 1], a[kt], bw[2], bw[3]);
        }
      head_subpixel<T, KT, NT>(acc, hf, lane, classes, p2, sw);
    }
    store_tile_logits(logits, sw, tile, res, p1, classes, lane);
  }
}

// final_expand_head_kernel's work by warpgroup (sm_90a, E = 96): the expand
// product of a sub-pixel for 64 tokens is 6 wgmma m64n96k16 with A from
// registers (each warp's 16-token tile, the ldmatrix fragments the mma.sync
// form uses) and B, the sub-pixel's 96 x 96 weight rows, read by descriptor
// from shared memory in core-matrix layout, where the mma.sync form reads
// the weights 16 tokens at a time by ldmatrix (ncu, session 6: the SM's
// shared-memory pipe 73% busy). Lane l of warp w gets rows 16 w + l / 4
// (+ 8) in mma.m16n8 accumulator order, so from the accumulators on it is
// the mma.sync form's code (head_subpixel, store_tile_logits). A warpgroup
// takes units of 64 tokens (4 tiles, one a warp; res % 8 == 0 makes every
// image a whole number of units), a thread block one p1 as before.
constexpr int kXhWgE = 96;

template <typename T, int NT>
__global__ void __launch_bounds__(32 * kXhWarps, 1)
    final_expand_head_wg_kernel(const T* __restrict__ x, int64_t units, int res, int upi, const T* __restrict__ wexp,
                                const uint32_t* __restrict__ frags, int classes, float* __restrict__ logits,
                                bool early) {
  if (!early) wait_for_prior_grids();  // else after the weights and head fragments, the engine's constants
  constexpr int E = kXhWgE, KT = E / 16, LD = xh_ld(E), VR = E / 8, FW = head_frag_words(KT, NT), SLD = kXhSld;
  extern __shared__ __align__(128) unsigned char xsm[];
  T* ws = reinterpret_cast<T*>(xsm);                                               // [4 sub-pixels][E x E] core matrices
  T* xs = ws + 4 * E * E;                                                          // [warps][16 tokens][LD]
  float* stg = reinterpret_cast<float*>(xs + kXhWarps * 16 * LD);                  // [warps][2 runs][classes][SLD]
  uint32_t* hf = reinterpret_cast<uint32_t*>(stg + kXhWarps * 2 * classes * SLD);  // head fragments
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
  const int p1 = blockIdx.x & 3;
  // Sub-pixel p2's weights as [k-tile][8-row group][k half][8 rows][8 k]: 16-byte piece i in that order is
  // row n = 8 group + n7, k = 16 kt + 8 half; consecutive threads fill consecutive pieces (conflict-free), a
  // warp reads the two halves of 16 rows' 32 bytes.
  const T* wsrc = wexp + int64_t(p1) * 4 * E * E;  // rows (p1 * 4 + p2) * E + n
  for (int i = tid; i < 4 * E * VR; i += blockDim.x) {
    const int n7 = i & 7, half = (i >> 3) & 1, rest = i >> 4, grp = rest % (E / 8), kt = rest / (E / 8) % KT,
              p2 = rest / (E / 8) / KT;
    cp_async16(ws + p2 * E * E + kt * E * 16 + grp * 128 + n7 * 8 + half * 64,
               wsrc + int64_t(p2 * E + grp * 8 + n7) * E + kt * 16 + half * 8);
  }
  cp_async_commit();
  stage_head_frags(hf, frags, FW);
  if (early) wait_for_prior_grids();
  x = after_wait(x);
  T* xw = xs + warp * 16 * LD;
  float* sw = stg + warp * 2 * classes * SLD;
  const int64_t groups = (units + upi - 1) / upi, step = gridDim.x >> 2;
  int64_t grp = blockIdx.x >> 2;
  // Warpgroup-uniform: all four warps of a warpgroup run every wgmma together.
  const bool active = wg < upi && grp * upi + wg < units;
  if (active) fetch_tile16<T, E>(xw, x, (grp * upi + wg) * 4 + (warp & 3), lane);
  cp_async_wait<0>();
  fence_proxy_async();  // the weights, written through cp.async, are read by wgmma
  __syncthreads();      // W and the head fragments are in
  if (!active) return;
  const uint32_t wsb = smem_u32(ws);
  for (; grp < groups; grp += step) {
    const int64_t unit = grp * upi + wg;
    if (unit >= units) break;
    const int64_t tile = unit * 4 + (warp & 3);
    cp_async_wait<0>();
    __syncwarp();
    uint32_t a[KT][4];
#pragma unroll
    for (int kt = 0; kt < KT; ++kt) ldsm_x4(a[kt], xw + (lane & 15) * LD + kt * 16 + (lane >> 4) * 8);
    __syncwarp();
    const int64_t next = (grp + step) * upi + wg;
    if (grp + step < groups && next < units) fetch_tile16<T, E>(xw, x, next * 4 + (warp & 3), lane);
#pragma unroll 1
    for (int p2 = 0; p2 < 4; ++p2) {
      float d[48];
      wgmma_fence();
#pragma unroll
      for (int kt = 0; kt < KT; ++kt)
        wgmma_m64n96k16_rs<T>(d, a[kt], wgmma_desc(wsb + (p2 * E * E + kt * E * 16) * 2, 128, 256), kt > 0);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_hold(d);
#pragma unroll
      for (int kt = 0; kt < KT; ++kt) wgmma_hold(a[kt]);
      // d[4 n .. 4 n + 3] is n-tile n's m16n8 accumulator.
      head_subpixel<T, KT, NT>(reinterpret_cast<const float(&)[2 * KT][4]>(d), hf, lane, classes, p2, sw);
    }
    store_tile_logits(logits, sw, tile, res, p1, classes, lane);
  }
}
}  // namespace

void patch_embed(const float* img, int B, int img_size, int patch, const float* w, const float* bias, int E,
                 const float* ln_g, const float* ln_b, const float* ape, float* x, void* xt, DT t, cudaStream_t s,
                 int64_t ldt, bool pairs, bool tf32) {
  if (ldt == 0) ldt = E;
  if (tf32 && t != DT::F32) throw Error("patch_embed: TF32 rounding of an output that is not FP32");
  if (E > kMaxE) throw Error(fmt::format("patch_embed: embed_dim {} exceeds the kernel's {}", E, kMaxE));
  const int64_t tokens = int64_t(B) * (img_size / patch) * (img_size / patch);
  // Tokens per warp: up to 8 (the weights are staged once per thread block),
  // fewer where the batch would not give every SM two blocks (batch 1: 2).
  const int tpw = static_cast<int>(std::clamp<int64_t>(tokens / (int64_t(sm_count()) * 2 * 8), 1, kTokensPerWarp));
  const dim3 block(32, 8);
  const unsigned grid = ceil_div(tokens, 8 * tpw);
  const size_t smem = sizeof(float) * E * patch * patch;
  if (patch * patch > 32) throw Error(fmt::format("patch_embed: patch size {} exceeds the kernel's 5x5", patch));
  if (smem > 48 * 1024) throw Error(fmt::format("patch_embed: {}x{} patches of {} channels exceed the kernel", patch, patch, E));
  auto go = [&](auto* out, auto npl) {
    using T = std::remove_pointer_t<decltype(out)>;
    constexpr int N = decltype(npl)::value;
    // 4 x 4 patches of up to 96 channels: the weights in registers (80 a thread, three blocks an SM).
    if constexpr (N == 3) {
      if (patch == 4 && E == 96 && pairs && (img_size / 4) % 2 == 0) {
        // Pairs of tokens: as many per warp as patch_embed_kernel's tokens (batch 1: 1 pair).
        const int64_t pairs_total = tokens / 2;
        const int ppw = std::clamp(tpw / 2, 1, kPairsPerWarp);
        const unsigned pgrid = ceil_div(pairs_total, 8 * ppw);
        patch_embed_pairs_kernel<T><<<pgrid, block, 0, s>>>(img, pairs_total, img_size, w, bias, ln_g, ln_b, ape, ppw,
                                                             x, out, ldt, tf32);
        return;
      }
      if (patch == 4) {
        patch_embed_kernel<T, N, 16>
            <<<grid, block, smem, s>>>(img, tokens, img_size, patch, w, bias, E, ln_g, ln_b, ape, tpw, x, out, ldt, tf32);
        return;
      }
    }
    patch_embed_kernel<T, N, 0>
        <<<grid, block, smem, s>>>(img, tokens, img_size, patch, w, bias, E, ln_g, ln_b, ape, tpw, x, out, ldt, tf32);
  };
  auto dispatch = [&](auto npl) {
    switch (t) {
      case DT::F32: go(static_cast<float*>(xt), npl); break;
      case DT::F16: go(static_cast<__half*>(xt), npl); break;
      case DT::BF16: go(static_cast<__nv_bfloat16*>(xt), npl); break;
    }
  };
  if (E <= 96) dispatch(std::integral_constant<int, 3>{});
  else dispatch(std::integral_constant<int, kMaxE / 32>{});
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

namespace {

// Calls f(T, KT, NT) for a tensor-core head shape; false where there is none.
template <class F>
bool head_shape(DT t, int E, int classes, F&& f) {
  if (t == DT::F32 || E % 16 || E > 96 || classes > 16) return false;
  auto by_type = [&](auto tag) {
    const bool two = classes > 8;
    switch (E / 16) {
#define SWINRT_HEAD_CASE(K)                                                                     \
  case K:                                                                                       \
    two ? f(tag, std::integral_constant<int, K>{}, std::integral_constant<int, 2>{})            \
        : f(tag, std::integral_constant<int, K>{}, std::integral_constant<int, 1>{});           \
    return true;
      SWINRT_HEAD_CASE(2)
      SWINRT_HEAD_CASE(3)
      SWINRT_HEAD_CASE(4)
      SWINRT_HEAD_CASE(6)
#undef SWINRT_HEAD_CASE
      default: return false;
    }
  };
  return t == DT::F16 ? by_type(__half{}) : by_type(__nv_bfloat16{});
}

}  // namespace

size_t final_head_frags_bytes(DT t, int E, int classes) {
  size_t bytes = 0;
  head_shape(t, E, classes, [&](auto, auto kt, auto nt) {
    bytes = sizeof(uint32_t) * head_frag_words(decltype(kt)::value, decltype(nt)::value);
  });
  return bytes;
}

void final_head_prepare(DT t, int E, int classes, const float* head, const float* g, const float* b, void* frags,
                        cudaStream_t s) {
  const bool ok = head_shape(t, E, classes, [&](auto tag, auto kt, auto nt) {
    final_head_prepare_kernel<decltype(tag), decltype(kt)::value, decltype(nt)::value>
        <<<1, 32, 0, s>>>(head, g, b, classes, static_cast<uint32_t*>(frags));
  });
  if (!ok) throw Error(fmt::format("final_head_prepare: no tensor-core head for E {} and {} classes", E, classes));
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void final_norm_head(const void* e, DT t, int64_t row0, int64_t rows, int res, int E, const float* g,
                     const float* b, const float* head, int classes, const void* frags, float* logits,
                     cudaStream_t s) {
  if (frags && res % 4 == 0 && rows % res == 0 &&
      head_shape(t, E, classes, [&](auto tag, auto kt, auto nt) {
        using T = decltype(tag);
        // One warp step per token (16 pixels); at most 8 blocks of 4 warps per SM.
        const unsigned grid = static_cast<unsigned>(std::min<int64_t>(ceil_div(rows, 4), 132 * 8));
        final_norm_head_mma_kernel<T, decltype(kt)::value, decltype(nt)::value><<<grid, 128, 0, s>>>(
            static_cast<const T*>(e), row0, rows, res, classes, static_cast<const uint32_t*>(frags), logits);
      })) {
    SWINRT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  if (E > kMaxHeadE || E % 8 != 0)
    throw Error(fmt::format("final_norm_head: embed_dim {} must be a multiple of 8 and at most {}", E, kMaxHeadE));
  const unsigned grid = ceil_div(rows * 16, 128);
  // head, g, b (FP32, padded to 16 bytes), then 4 warps x 32 staged rows of E + 16 bytes.
  const size_t head_floats = (size_t(classes + 2) * E + 3) / 4 * 4;
  const size_t smem = sizeof(float) * head_floats + 128 * (E * dt_size(t) + 16);
  if (smem > 200 * 1024)
    throw Error(fmt::format("final_norm_head: {} classes x embed_dim {} exceed the kernel", classes, E));
  auto go = [&](auto* ptr, auto emax) {
    using T = std::remove_cv_t<std::remove_pointer_t<decltype(ptr)>>;
    auto kernel = final_norm_head_kernel<T, decltype(emax)::value>;
    if (smem > 48 * 1024)
      SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<grid, 128, smem, s>>>(ptr, row0, rows, res, E, g, b, head, classes, logits);
  };
  auto dispatch = [&](auto emax) {
    switch (t) {
      case DT::F32: go(static_cast<const float*>(e), emax); break;
      case DT::F16: go(static_cast<const __half*>(e), emax); break;
      case DT::BF16: go(static_cast<const __nv_bfloat16*>(e), emax); break;
    }
  };
  if (E <= 96) dispatch(std::integral_constant<int, 96>{});
  else dispatch(std::integral_constant<int, kMaxHeadE>{});
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

namespace {

// Shared bytes of final_expand_head_kernel: the expand weight rows of 4
// sub-pixels and each warp's token tile (padded rows), the staging of each
// warp's 2 x classes lines of 32 logits, the head fragments.
size_t expand_head_smem(int E, int classes, size_t frag_bytes) {
  return sizeof(uint16_t) * xh_ld(E) * size_t(4 * E + kXhWarps * 16) +
         sizeof(float) * size_t(kXhWarps) * 2 * classes * kXhSld + frag_bytes;
}

}  // namespace

bool final_expand_head_supported(DT t, int E, int classes, int res) {
  const size_t frag_bytes = final_head_frags_bytes(t, E, classes);
  return frag_bytes > 0 && res % 8 == 0 && expand_head_smem(E, classes, frag_bytes) <= 227 * 1024;
}

bool final_expand_head_wg_supported(DT t, int E, int classes, int res) {
  return E == kXhWgE && final_expand_head_supported(t, E, classes, res) && wgmma_supported();
}

void final_expand_head(const void* x, DT t, int64_t M, int res, int E, const void* wexp, int classes,
                       const void* frags, float* logits, cudaStream_t s, bool wg) {
  if (!frags || !final_expand_head_supported(t, E, classes, res) || M % 16 != 0)
    throw Error(fmt::format("final_expand_head: {} with embed_dim {}, {} classes, {} tokens of a {}x{} grid is not "
                            "supported",
                            t == DT::F32 ? "fp32" : "fp16/bf16", E, classes, M, res, res));
  if (M >= (int64_t(1) << 31))
    throw Error(fmt::format("final_expand_head: {} tokens exceed the kernel's 32-bit token index", M));
  const size_t frag_bytes = final_head_frags_bytes(t, E, classes);
  const int sms = std::max(4, sm_count() / 4 * 4);
  if (wg && E == kXhWgE && M % 64 == 0) {  // res % 8 == 0: M is a whole number of 64-token units
    // By warpgroup: units of 64 tokens, per thread block enough of them for every SM where the batch is small.
    const size_t smem = expand_head_smem(E, classes, frag_bytes) - sizeof(uint16_t) * 4 * E * (xh_ld(E) - E);
    const int64_t units = M / 64;
    const int upi = static_cast<int>(std::clamp<int64_t>((4 * units + sms - 1) / sms, 1, kXhWarps / 4));
    const int64_t groups = (units + upi - 1) / upi;
    const unsigned grid = static_cast<unsigned>(4 * std::min<int64_t>(groups, sms / 4));
    head_shape(t, E, classes, [&](auto tag, auto, auto nt) {
      using T = decltype(tag);
      auto kernel = final_expand_head_wg_kernel<T, decltype(nt)::value>;
      SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      kernel<<<grid, 32 * kXhWarps, smem, s>>>(static_cast<const T*>(x), units, res, upi, static_cast<const T*>(wexp),
                                               static_cast<const uint32_t*>(frags), classes, logits,
                                               early_constants());
    });
    SWINRT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  const size_t smem = expand_head_smem(E, classes, frag_bytes);
  const int64_t tiles = M / 16;
  // Tiles per thread block: enough blocks for every SM where the batch is small.
  const int tpi = static_cast<int>(std::clamp<int64_t>((4 * tiles + sms - 1) / sms, 1, kXhWarps));
  const int64_t groups = (tiles + tpi - 1) / tpi;
  const unsigned grid = static_cast<unsigned>(4 * std::min<int64_t>(groups, sms / 4));
  head_shape(t, E, classes, [&](auto tag, auto kt, auto nt) {
    using T = decltype(tag);
    auto kernel = final_expand_head_kernel<T, decltype(kt)::value, decltype(nt)::value>;
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<grid, 32 * kXhWarps, smem, s>>>(static_cast<const T*>(x), tiles, res, tpi, static_cast<const T*>(wexp),
                                             static_cast<const uint32_t*>(frags), classes, logits, early_constants());
  });
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

namespace {

// FinalPatchExpand_X4 + LayerNorm + head in FP32 (FP32/TF32 engines): SIMT
// FMAs, the unfused pair's arithmetic (expand dot products over E, two-pass
// LayerNorm statistics, the head's dot products) in another summation
// order. A thread block takes one p1 (the output row of each token's 4 x 4
// sub-pixels) and keeps the expand weight rows of its four sub-pixels in
// shared memory for its life (grid = 4 x SMs / 4, the blocks walk tiles of
// 32 tokens, the next tile loading by cp.async while this one computes).
// Thread (tg, p2, cg) of 4 x 4 x 16 computes 8 tokens' sub-pixel (p1, p2),
// channels cg, cg + 16, ... (CPT of them: conflict-free float4 reads of the
// weight rows; the token rows are warp broadcasts); the 16 lanes of a
// pixel sum its LayerNorm statistics and head products by shuffles.
constexpr int kF32Tile = 32;  // tokens per tile

template <int E>
__global__ void __launch_bounds__(256, 1)
    final_expand_head_f32_kernel(const float* __restrict__ x, int64_t M, int res, const float* __restrict__ wexp,
                                 const float* __restrict__ g, const float* __restrict__ bt,
                                 const float* __restrict__ head, int classes, float* __restrict__ logits) {
  wait_for_prior_grids();
  constexpr int LDW = E + 4, CPT = E / 16, K4 = E / 4;
  extern __shared__ float4 smem4[];
  float* ws = reinterpret_cast<float*>(smem4);  // [p2][E channels][LDW]: expand rows (p1 * 4 + p2) * E + c
  float* xs = ws + 4 * E * LDW;                 // [2][kF32Tile][E]: token tiles
  float* gs = xs + 2 * kF32Tile * E;            // gamma [E], beta [E], head [classes][E]
  float* bs = gs + E;
  float* hs = bs + E;
  const int p1 = blockIdx.x & 3;
  const int64_t groups = gridDim.x >> 2, tiles = (M + kF32Tile - 1) / kF32Tile;
  for (int i = threadIdx.x; i < 4 * E * K4; i += blockDim.x) {
    const int row = i / K4, k = (i % K4) * 4;
    cp_async16(ws + row * LDW + k, wexp + (int64_t(p1) * 4 * E + row) * E + k);
  }
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    gs[i] = g[i];
    bs[i] = bt[i];
  }
  for (int i = threadIdx.x; i < classes * E; i += blockDim.x) hs[i] = head[i];
  auto load_tile = [&](int64_t t, int buf) {
    float* dst = xs + buf * kF32Tile * E;
    for (int i = threadIdx.x; i < kF32Tile * K4; i += blockDim.x) {
      const int r = i / K4, k = (i % K4) * 4;
      const int64_t tok = t * kF32Tile + r;
      cp_async16_zfill(dst + r * E + k, x + (tok < M ? tok : 0) * E + k, tok < M);
    }
  };
  int64_t t = blockIdx.x >> 2;
  if (t < tiles) load_tile(t, 0);
  cp_async_commit();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int cg = lane & 15, p2 = (lane >> 4) + 2 * (warp & 1), tg = warp >> 1;
  const float* wrow = ws + (p2 * E + cg) * LDW;  // channel cg + 16 j at wrow + j * 16 * LDW
  const int64_t tokens = int64_t(res) * res, H = 4 * int64_t(res), plane = H * H;
  for (int buf = 0; t < tiles; t += groups, buf ^= 1) {
    if (t + groups < tiles) load_tile(t + groups, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const float* xt = xs + (buf * kF32Tile + tg * 8) * E;
    float acc[8][CPT];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < CPT; ++j) acc[i][j] = 0.f;
#pragma unroll 2
    for (int k = 0; k < E; k += 4) {
      float4 w[CPT];
#pragma unroll
      for (int j = 0; j < CPT; ++j) w[j] = *reinterpret_cast<const float4*>(wrow + j * 16 * LDW + k);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 xv = *reinterpret_cast<const float4*>(xt + i * E + k);
#pragma unroll
        for (int j = 0; j < CPT; ++j)
          acc[i][j] = fmaf(xv.w, w[j].w, fmaf(xv.z, w[j].z, fmaf(xv.y, w[j].y, fmaf(xv.x, w[j].x, acc[i][j]))));
      }
    }
    __syncthreads();  // the next iteration refills this tile's buffer
    // LayerNorm of the 8 pixels, FP32 two-pass statistics over the 16 lanes.
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < CPT; ++j) sum += acc[i][j];
      const float mean = group_sum<16>(sum) / E;
      float sq = 0.f;
#pragma unroll
      for (int j = 0; j < CPT; ++j) {
        const float d = acc[i][j] - mean;
        sq += d * d;
      }
      const float rstd = rsqrtf(group_sum<16>(sq) / E + 1e-5f);
#pragma unroll
      for (int j = 0; j < CPT; ++j) {
        const int c = cg + 16 * j;
        acc[i][j] = (acc[i][j] - mean) * rstd * gs[c] + bs[c];
      }
    }
    // Pixel cg / 2 of the 8 is this lane's after the reduce-scatter below;
    // where its logits go (class 0).
    const int64_t tok = t * kF32Tile + tg * 8 + (cg >> 1);
    const int64_t b = tok / tokens, rem = tok - b * tokens, hy = rem / res, wx = rem - hy * res;
    float* out = logits + b * classes * plane + (4 * hy + p1) * H + 4 * wx + p2;
    const bool store = (cg & 1) == 0 && tok < M;
    for (int cls = 0; cls < classes; ++cls) {
      float part[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        float a = 0.f;
#pragma unroll
        for (int j = 0; j < CPT; ++j) a = fmaf(acc[i][j], hs[cls * E + cg + 16 * j], a);
        part[i] = a;
      }
      // Reduce-scatter over the 16 lanes: lane bit 3 keeps pixels 4..7 or
      // 0..3, bit 2 two of those, bit 1 one; bit 0's pair sums the last.
      const bool h8 = lane & 8, h4 = lane & 4, h2 = lane & 2;
      float r4[4], r2[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float send = h8 ? part[i] : part[i + 4], keep = h8 ? part[i + 4] : part[i];
        r4[i] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const float send = h4 ? r4[i] : r4[i + 2], keep = h4 ? r4[i + 2] : r4[i];
        r2[i] = keep + __shfl_xor_sync(0xffffffffu, send, 4);
      }
      const float send = h2 ? r2[0] : r2[1], keep = h2 ? r2[1] : r2[0];
      float v = keep + __shfl_xor_sync(0xffffffffu, send, 2);
      v += __shfl_xor_sync(0xffffffffu, v, 1);
      if (store) out[cls * plane] = v;
    }
  }
  cp_async_wait<0>();
}

template <int E>
size_t expand_head_f32_smem(int classes) {
  return sizeof(float) * (size_t(4) * E * (E + 4) + 2 * kF32Tile * E + size_t(classes + 2) * E);
}

}  // namespace

bool final_expand_head_f32_supported(int E, int classes) {
  size_t smem = 0;
  return with_value<48, 64, 96>(E, [&](auto e) { smem = expand_head_f32_smem<decltype(e)::value>(classes); }) &&
         smem <= 227 * 1024;
}

void final_expand_head_f32(const float* x, int64_t M, int res, int E, const float* wexp, const float* g,
                           const float* b, const float* head, int classes, float* logits, cudaStream_t s) {
  if (!final_expand_head_f32_supported(E, classes))
    throw Error(fmt::format("final_expand_head_f32: embed_dim {} with {} classes is not supported", E, classes));
  const int64_t tiles = (M + kF32Tile - 1) / kF32Tile;
  const int sms = std::max(4, sm_count() / 4 * 4);
  const unsigned grid = static_cast<unsigned>(4 * std::min<int64_t>(tiles, sms / 4));
  with_value<48, 64, 96>(E, [&](auto e) {
    constexpr int EE = decltype(e)::value;
    auto kernel = final_expand_head_f32_kernel<EE>;
    const size_t smem = expand_head_f32_smem<EE>(classes);
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<grid, 256, smem, s>>>(x, M, res, wexp, g, b, head, classes, logits);
  });
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

namespace {

// PatchExpand (fp16/bf16, sm_90a, 192 input channels): the x2 expand GEMM,
// the pixel shuffle and the LayerNorm in one kernel, where they were a cast of
// x to the activation dtype, a cuBLASLt GEMM writing the [rows, 384] expand
// output and a LayerNorm gathering it. One thread block an SM keeps the
// expand weights of all four sub-pixels s = 2 p1 + p2 (rows [96 s, 96 s + 96))
// in shared memory in core-matrix layout and walks tiles of 64 input tokens:
// the tile's rows of x (FP32) arrive by cp.async while the previous tile
// computes, are rounded to T (as the cast did) into the GEMM
// operand, and warpgroup wg multiplies them by sub-pixels 2 wg and 2 wg + 1
// (wgmma m64n96k16, K = 192). Each product is rounded to T (where the
// unfused GEMM stores it), normalised over its 96 channels (FP32
// statistics by the tensor cores, tile_row_norm) and written to its output pixel's row
// of the next concat, [rows', 192] with the 96 normalised channels on the
// left. Same rounding points as the three launches; sums in another order.
// A first form (a block per (tile, sub-pixel), weights and rows loaded per
// block) measured slower than the three launches at batch 1 and 128
// (docs/PERFORMANCE_LOG.md, session 12).
constexpr int kPxC = 96, kPxK = 192;  // output channels of a sub-pixel, input channels

template <typename T>
__global__ void __launch_bounds__(256, 1) patch_expand_wg_kernel(const float* __restrict__ x, int64_t tokens,
                                                                 int res, const T* __restrict__ w,
                                                                 const float* __restrict__ g,
                                                                 const float* __restrict__ bt, T* __restrict__ out) {
  wait_for_prior_grids();
  constexpr int C = kPxC, K = kPxK, KT = K / 16, VK = K / 8;
  constexpr int SPR = K / 4;  // 16-byte pieces a row of x
  extern __shared__ __align__(128) unsigned char pxs[];
  T* ws = reinterpret_cast<T*>(pxs);  // [4 sub-pixels][kt][C / 8 row groups][k half][8 rows][8 k]
  T* as = ws + 4 * C * K;             // [64][K], cm_index<K>
  float* stg = reinterpret_cast<float*>(as + 64 * K);  // [64][K] rows of x as they come
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
  for (int i = tid; i < 4 * C * VK; i += 256) {
    const int n7 = i & 7, half = (i >> 3) & 1, rest = i >> 4, grp = rest % (C / 8), kt = rest / (C / 8) % KT,
              sp = rest / (C / 8) / KT;
    cp_async16(ws + sp * C * K + kt * C * 16 + grp * 128 + n7 * 8 + half * 64,
               w + int64_t(sp * C + grp * 8 + n7) * K + kt * 16 + half * 8);
  }
  const int64_t tiles = (tokens + 63) / 64;
  auto fetch = [&](int64_t tile) {  // the tile's rows to stg, zeros past the end
    const float* rows = x + tile * 64 * K;
    for (int i = tid; i < 64 * SPR; i += 256) {
      const int r = i / SPR;
      const bool valid = tile * 64 + r < tokens;
      cp_async16_zfill(stg + i * 4, valid ? rows + i * 4 : x, valid);
    }
  };
  int64_t tile = blockIdx.x;
  if (tile < tiles) fetch(tile);
  cp_async_commit();
  const int c2 = (lane & 3) * 2;
  const int64_t per_img = int64_t(res) * res, out_res = 2 * int64_t(res);
  const uint32_t a0 = smem_u32(as);
  for (; tile < tiles; tile += gridDim.x) {
    cp_async_wait<0>();
    __syncthreads();  // the rows (and the weights) are in; every warpgroup is done with the last tile's operand
    for (int i = tid; i < 64 * VK; i += 256) {
      const int r = i / VK, k = (i - r * VK) * 8;
      const float4 a = *reinterpret_cast<const float4*>(stg + r * K + k);
      const float4 b = *reinterpret_cast<const float4*>(stg + r * K + k + 4);
      *reinterpret_cast<uint4*>(as + cm_index<K>(r, k)) =
          make_uint4(pack2<T>(a.x, a.y), pack2<T>(a.z, a.w), pack2<T>(b.x, b.y), pack2<T>(b.z, b.w));
    }
    fence_proxy_async();
    __syncthreads();  // the operand is in; stg is free
    if (tile + gridDim.x < tiles) fetch(tile + gridDim.x);
    cp_async_commit();
#pragma unroll 1
    for (int sp = 2 * wg; sp < 2 * wg + 2; ++sp) {
      float d[48];
      const uint32_t b0 = smem_u32(ws + sp * C * K);
      wgmma_fence();
#pragma unroll
      for (int kt = 0; kt < KT; ++kt)
        wgmma_m64n96k16_ss<T>(d, wgmma_desc(a0 + kt * 256, 128, K * 16), wgmma_desc(b0 + kt * C * 32, 128, 256),
                              kt > 0);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_hold(d);
      // Lane l of warp w: rows 16 (w % 4) + l / 4 (h = 0) and + 8 (h = 1), columns 8 j + c2 (+ 1): d[4 j + 2 h (+ 1)],
      // which are a warp's m16n8 accumulators: rounded to T (as the GEMM stored the expand output) they are the
      // mma A fragments tile_row_norm takes the rows' statistics from.
      static_assert(C == 96, "m64n96 rows");
      float mu[2], rs[2];
      {
        uint32_t e[C / 16][4];
        round_to_frags<T, C / 16>(reinterpret_cast<const float(&)[C / 8][4]>(d), e);
        tile_row_norm<T, C / 16>(e, mu[0], rs[0], mu[1], rs[1]);
      }
#pragma unroll
      for (int i = 0; i < 48; ++i) d[i] = to_f(from_f<T>(d[i]));
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float mean = mu[h], rstd = rs[h];
        const int64_t t = tile * 64 + (warp & 3) * 16 + (lane >> 2) + 8 * h;
        if (t >= tokens) continue;
        const int64_t b = t / per_img, p = t - b * per_img, yy = p / res, xx = p - yy * res;
        T* o = out + ((b * out_res + 2 * yy + (sp >> 1)) * out_res + 2 * xx + (sp & 1)) * K + c2;
#pragma unroll
        for (int j = 0; j < 12; ++j) {
          const int col = 8 * j + c2;
          const float2 gg = __ldg(reinterpret_cast<const float2*>(g + col));
          const float2 bb = __ldg(reinterpret_cast<const float2*>(bt + col));
          *reinterpret_cast<uint32_t*>(o + 8 * j) = pack2<T>((d[4 * j + 2 * h] - mean) * rstd * gg.x + bb.x,
                                                             (d[4 * j + 2 * h + 1] - mean) * rstd * gg.y + bb.y);
        }
      }
    }
  }
  cp_async_wait<0>();
}

// Weights of 4 sub-pixels and the GEMM operand (16-bit), the staged FP32 rows.
constexpr size_t kPatchExpandSmem = size_t(4 * kPxC + 64) * kPxK * 2 + size_t(64) * kPxK * 4;

}  // namespace

bool patch_expand_fused_supported(DT t, int C) {
  return (t == DT::F16 || t == DT::BF16) && C == kPxK && wgmma_supported();
}

void patch_expand_fused(const float* x, DT t, int64_t tokens, int res, int C, const void* w, const float* g,
                        const float* b, void* out, cudaStream_t s, int max_blocks) {
  if ((t != DT::F16 && t != DT::BF16) || C != kPxK || !wgmma_supported())
    throw Error(fmt::format("patch_expand_fused: no kernel for {} channels in this dtype or on this device", C));
  const unsigned grid =
      static_cast<unsigned>(std::min<int64_t>((tokens + 63) / 64, max_blocks > 0 ? max_blocks : sm_count()));
  auto go = [&](auto tag) {
    using T = decltype(tag);
    auto kernel = patch_expand_wg_kernel<T>;
    SWINRT_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kPatchExpandSmem)));
    kernel<<<grid, 256, kPatchExpandSmem, s>>>(x, tokens, res, static_cast<const T*>(w), g, b, static_cast<T*>(out));
  };
  if (t == DT::F16) go(__half{});
  else go(__nv_bfloat16{});
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
