// layernorm: one warp per row, the row held in registers, FP32 two-pass
// statistics; mirror of src/cpu/layernorm.cpp. The gather modes fold
// PatchMerging's 2x2 concat and PatchExpand's pixel shuffle into the loads,
// so neither rearrangement is ever written to memory. Traffic: one read of the
// source row, one write of the normalised row and, where asked (raw), one of
// the source row itself in the output dtype (SaveSkip's copy, folded in).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "ops.cuh"

namespace swinrt::cuda {

namespace {

constexpr int kMaxPerLane = 64;  // rows of up to 2048 channels

// Registers per lane are a template parameter (the row's C / 32, rounded up
// to one of a few sizes) so the row stays in registers without a 64-wide
// predicated loop for a 96-channel row.

// n / d by a multiply-high with m = ceil(2^32 / d), exact while n * d <
// 2^32 (the error n (m d - 2^32) / 2^32 / d stays below 1 / d); a runtime
// 32-bit division is a dozen instructions, a 64-bit one a long subroutine,
// and each LayerNorm row paid up to five.
struct FastDiv {
  uint32_t d = 1, m = 0;
  static FastDiv of(uint32_t d) { return {d, d <= 1 ? 0u : uint32_t(((uint64_t(1) << 32) + d - 1) / d)}; }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return d <= 1 ? n : __umulhi(n, m); }
};

// The gather's sizes and their divisors, made once per launch (geometry()).
struct Geo {
  int res, factor;
  FastDiv tokens, side, quarter, f;  // by res^2, res, C / 4, factor
  bool fast;  // rows * res^2 and res^3 below 2^32: the row's position by multiply-high
};
Geo geometry(int64_t rows, int C, int res, int factor) {
  const int64_t tokens = int64_t(res) * res;
  return {res,
          factor,
          FastDiv::of(static_cast<uint32_t>(tokens)),
          FastDiv::of(static_cast<uint32_t>(res)),
          FastDiv::of(static_cast<uint32_t>(C / 4)),
          FastDiv::of(static_cast<uint32_t>(std::max(factor, 1))),
          rows * tokens < (int64_t(1) << 32) && tokens * res < (int64_t(1) << 32)};
}

// Output row `row` as (slice b, grid row Y, grid column X).
struct RowPos {
  int64_t b;
  int Y, X;
};
__device__ __forceinline__ RowPos row_pos(int64_t row, const Geo& geo) {
  const int64_t tokens = int64_t(geo.res) * geo.res;
  const int64_t b = geo.fast ? int64_t(geo.tokens.div(uint32_t(row))) : row / tokens;
  const int p = static_cast<int>(row - b * tokens);
  const int Y = geo.fast ? static_cast<int>(geo.side.div(uint32_t(p))) : p / geo.res;
  return {b, Y, p - Y * geo.res};
}

// Address of element k of output row `row` at `at` (the Rows gather reads
// row `row` itself and needs no position).
template <Gather G>
__device__ __forceinline__ int64_t source_index(int64_t row, const RowPos& at, int k, int C, const Geo& geo) {
  const int64_t b = at.b;
  const int Y = at.Y, X = at.X, res = geo.res;
  if constexpr (G == Gather::Rows) {
    return row * C + k;
  } else if constexpr (G == Gather::Merge2x2) {
    const int cin = C / 4, q = static_cast<int>(geo.quarter.div(uint32_t(k))), in_res = res * 2;
    const int dy = q & 1, dx = q >> 1;  // x0 (0,0), x1 (1,0), x2 (0,1), x3 (1,1)
    return ((b * in_res + 2 * Y + dy) * in_res + 2 * X + dx) * cin + (k - q * cin);
  } else {
    const int factor = geo.factor, in_res = res / factor;
    const int Yf = static_cast<int>(geo.f.div(uint32_t(Y))), Xf = static_cast<int>(geo.f.div(uint32_t(X)));
    const int sub = (Y - Yf * factor) * factor + X - Xf * factor;
    return ((b * in_res + Yf) * in_res + Xf) * int64_t(factor * factor * C) + sub * C + k;
  }
}

template <typename Tin, typename Tout, Gather G, int NPL>
__global__ void layernorm_kernel(const Tin* __restrict__ src, int64_t rows, int C, const Geo geo,
                                 const float* __restrict__ g, const float* __restrict__ bta, Tout* __restrict__ out,
                                 Tout* __restrict__ raw, int64_t ldo, int64_t ldr, bool tf32) {
  wait_for_prior_grids();
  const int64_t row = blockIdx.x * int64_t(blockDim.y) + threadIdx.y;
  if (row >= rows) return;
  const int lane = threadIdx.x;
  const RowPos at = G == Gather::Rows ? RowPos{} : row_pos(row, geo);
  float v[NPL];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int k = lane + 32 * i;
    v[i] = k < C ? to_f(src[source_index<G>(row, at, k, C, geo)]) : 0.f;
    sum += v[i];
  }
  const float mean = warp_sum(sum) / C;
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int k = lane + 32 * i;
    const float d = k < C ? v[i] - mean : 0.f;
    sq += d * d;
  }
  const float rstd = rsqrtf(warp_sum(sq) / C + 1e-5f);
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int k = lane + 32 * i;
    if (k < C) {
      const float y = (v[i] - mean) * rstd * g[k] + bta[k];
      out[row * ldo + k] = from_f<Tout>(tf32_if(tf32, y));
      if (raw) raw[row * ldr + k] = from_f<Tout>(tf32_if(tf32, v[i]));
    }
  }
}

template <typename Tin, typename Tout, int NPL>
void launch_npl(const void* src, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
                const float* b, void* out, void* raw_out, int64_t ldo, int64_t ldr, bool tf32, cudaStream_t s) {
  const dim3 block(32, 8);
  const unsigned grid = ceil_div(rows, 8);
  const Geo geo = geometry(rows, C, res, factor);
  auto* in = static_cast<const Tin*>(src);
  auto* o = static_cast<Tout*>(out);
  auto* raw = static_cast<Tout*>(raw_out);
  switch (gather) {
    case Gather::Rows:
      layernorm_kernel<Tin, Tout, Gather::Rows, NPL>
          <<<grid, block, 0, s>>>(in, rows, C, geo, g, b, o, raw, ldo, ldr, tf32);
      break;
    case Gather::Merge2x2:
      layernorm_kernel<Tin, Tout, Gather::Merge2x2, NPL>
          <<<grid, block, 0, s>>>(in, rows, C, geo, g, b, o, raw, ldo, ldr, tf32);
      break;
    case Gather::Shuffle:
      layernorm_kernel<Tin, Tout, Gather::Shuffle, NPL>
          <<<grid, block, 0, s>>>(in, rows, C, geo, g, b, o, raw, ldo, ldr, tf32);
      break;
  }
}

// 4 consecutive elements of a source row as FP32 (16-byte FP32 or 8-byte
// 16-bit loads), and 4 results stored alike.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
template <typename T>
__device__ __forceinline__ float4 load4(const T* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const T* e = reinterpret_cast<const T*>(&u);
  return make_float4(to_f(e[0]), to_f(e[1]), to_f(e[2]), to_f(e[3]));
}
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
template <typename T>
__device__ __forceinline__ void store4(T* p, float4 v) {
  __align__(8) T e[4] = {from_f<T>(v.x), from_f<T>(v.y), from_f<T>(v.z), from_f<T>(v.w)};
  *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(e);
}

// Row-parallel variant for rows of groups of 4 channels that stay contiguous
// under the gather: TPR threads per row (one warp, or up to 8 for wide rows,
// so that a batch-1 PatchMerging's 49 rows of 1536 channels are 49 thread
// blocks, not 7 warps' worth of serial work), each with at most NV groups.
// Every load of a thread (row values, gamma, beta) is in flight at once: the
// kernel is one memory round trip, two reductions and the stores. Same
// arithmetic as layernorm_kernel (two-pass FP32 statistics, eps 1e-5), summed
// in another order.
template <typename Tin, typename Tout, Gather G, int TPR, int NV>
__global__ void __launch_bounds__(256) layernorm_vec_kernel(const Tin* __restrict__ src, int64_t rows, int C,
                                                            const Geo geo, const float* __restrict__ g,
                                                            const float* __restrict__ bta, Tout* __restrict__ out,
                                                            Tout* __restrict__ raw, int64_t ldo, int64_t ldr,
                                                            bool tf32, bool early) {
  if (!early) wait_for_prior_grids();
  constexpr int RPB = 256 / TPR, WPR = TPR / 32;  // rows per block, warps per row
  __shared__ float red[2][8];
  const int rb = threadIdx.x / TPR, t = threadIdx.x % TPR, warp = threadIdx.x >> 5;
  const int64_t row = blockIdx.x * int64_t(RPB) + rb;
  const bool live = row < rows;
  const RowPos at = G == Gather::Rows || !live ? RowPos{} : row_pos(row, geo);
  float4 v[NV], gq[NV], bq[NV];
  // gamma and beta (the engine's constants) first: with `early`, before the wait.
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int k = 4 * (t + j * TPR);
    gq[j] = bq[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (live && k < C) {
      gq[j] = __ldg(reinterpret_cast<const float4*>(g + k));
      bq[j] = __ldg(reinterpret_cast<const float4*>(bta + k));
    }
  }
  if (early) wait_for_prior_grids();
  const Tin* const x = after_wait(src);
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int k = 4 * (t + j * TPR);
    v[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (live && k < C) v[j] = load4(x + source_index<G>(row, at, k, C, geo));
    sum += (v[j].x + v[j].y) + (v[j].z + v[j].w);
  }
  auto row_sum = [&](float x, int slot) {
    x = warp_sum(x);
    if constexpr (WPR > 1) {
      if ((threadIdx.x & 31) == 0) red[slot][warp] = x;
      __syncthreads();
      x = 0.f;
#pragma unroll
      for (int w = 0; w < WPR; ++w) x += red[slot][rb * WPR + w];
    }
    return x;
  };
  const float mean = row_sum(sum, 0) / C;
  float sq = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j)
    if (4 * (t + j * TPR) < C) {
      const float a = v[j].x - mean, bb = v[j].y - mean, c = v[j].z - mean, d = v[j].w - mean;
      sq += (a * a + bb * bb) + (c * c + d * d);
    }
  const float rstd = rsqrtf(row_sum(sq, 1) / C + 1e-5f);
  if (!live) return;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int k = 4 * (t + j * TPR);
    if (k >= C) continue;
    const float4 y = make_float4((v[j].x - mean) * rstd * gq[j].x + bq[j].x, (v[j].y - mean) * rstd * gq[j].y + bq[j].y,
                                 (v[j].z - mean) * rstd * gq[j].z + bq[j].z, (v[j].w - mean) * rstd * gq[j].w + bq[j].w);
    store4(out + row * ldo + k, tf32_if(tf32, y));
    if (raw) store4(raw + row * ldr + k, tf32_if(tf32, v[j]));
  }
}

template <typename Tin, typename Tout, int TPR, int NV>
void launch_vec(const void* src, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
                const float* b, void* out, void* raw_out, int64_t ldo, int64_t ldr, bool tf32, cudaStream_t s) {
  const unsigned grid = ceil_div(rows, 256 / TPR);
  const Geo geo = geometry(rows, C, res, factor);
  auto* in = static_cast<const Tin*>(src);
  auto* o = static_cast<Tout*>(out);
  auto* raw = static_cast<Tout*>(raw_out);
  switch (gather) {
    case Gather::Rows:
      layernorm_vec_kernel<Tin, Tout, Gather::Rows, TPR, NV>
          <<<grid, 256, 0, s>>>(in, rows, C, geo, g, b, o, raw, ldo, ldr, tf32, early_constants());
      break;
    case Gather::Merge2x2:
      layernorm_vec_kernel<Tin, Tout, Gather::Merge2x2, TPR, NV>
          <<<grid, 256, 0, s>>>(in, rows, C, geo, g, b, o, raw, ldo, ldr, tf32, early_constants());
      break;
    case Gather::Shuffle:
      layernorm_vec_kernel<Tin, Tout, Gather::Shuffle, TPR, NV>
          <<<grid, 256, 0, s>>>(in, rows, C, geo, g, b, o, raw, ldo, ldr, tf32, early_constants());
      break;
  }
}

// Threads per row: a warp while a thread has at most two groups of 4, more
// (up to 8 warps) for wider rows; false where the vector kernel does not apply.
template <typename Tin, typename Tout>
bool launch_vec_for(const void* src, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
                    const float* b, void* out, void* raw, int64_t ldo, int64_t ldr, bool tf32, cudaStream_t s) {
  if (C % 4 || (gather == Gather::Merge2x2 && (C / 4) % 4) || C > 8 * 256) return false;
  const int groups = C / 4;
  int tpr = 32;
  while (tpr < 256 && groups > 2 * tpr) tpr *= 2;
  const bool one = groups <= tpr;
  switch (tpr) {
    case 32: one ? launch_vec<Tin, Tout, 32, 1>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s)
                 : launch_vec<Tin, Tout, 32, 2>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
    case 64: one ? launch_vec<Tin, Tout, 64, 1>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s)
                 : launch_vec<Tin, Tout, 64, 2>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
    case 128: one ? launch_vec<Tin, Tout, 128, 1>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s)
                  : launch_vec<Tin, Tout, 128, 2>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
    default: one ? launch_vec<Tin, Tout, 256, 1>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s)
                 : launch_vec<Tin, Tout, 256, 2>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
  }
  return true;
}

// SWINRT_LN_VEC=0 keeps every LayerNorm on layernorm_kernel (A/B runs, tests).
bool vector_layernorm() {
  const char* env = std::getenv("SWINRT_LN_VEC");
  return !(env && std::string(env) == "0");
}

template <typename Tin, typename Tout>
void launch(const void* src, int64_t rows, int C, Gather gather, int res, int factor, const float* g, const float* b,
            void* out, void* raw, int64_t ldo, int64_t ldr, bool tf32, cudaStream_t s) {
  if (vector_layernorm() && launch_vec_for<Tin, Tout>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s))
    return;
  const int need = (C + 31) / 32;
  if (need <= 2) launch_npl<Tin, Tout, 2>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  else if (need <= 3) launch_npl<Tin, Tout, 3>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  else if (need <= 6) launch_npl<Tin, Tout, 6>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  else if (need <= 12) launch_npl<Tin, Tout, 12>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  else if (need <= 24) launch_npl<Tin, Tout, 24>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  else if (need <= 48) launch_npl<Tin, Tout, 48>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  else launch_npl<Tin, Tout, kMaxPerLane>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
}

// (T float: the TF32 path's copies, rounded to tf32.)
template <typename T>
__global__ void cast_kernel(const float* __restrict__ x, int64_t n, T* __restrict__ out) {
  wait_for_prior_grids();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = std::is_same_v<T, float> ? from_f<T>(round_tf32(x[i])) : from_f<T>(x[i]);
}

// Rows of `cols` FP32 values (cols % 4 == 0) into rows of stride ldo, four
// values per thread and step; I: the index type (32-bit where n fits).
template <typename T, typename I>
__global__ void cast_rows_kernel(const float* __restrict__ x, I n4, I cols4, int64_t ldo, T* __restrict__ out) {
  wait_for_prior_grids();
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n4; i += I(gridDim.x) * blockDim.x) {
    const I r = i / cols4, c = (i - r * cols4) * 4;
    const float4 v = __ldg(reinterpret_cast<const float4*>(x) + i);
    if constexpr (std::is_same_v<T, float>) {
      *reinterpret_cast<float4*>(out + int64_t(r) * ldo + c) = tf32_if(true, v);
    } else {
      __align__(8) T e[4] = {from_f<T>(v.x), from_f<T>(v.y), from_f<T>(v.z), from_f<T>(v.w)};
      *reinterpret_cast<uint2*>(out + int64_t(r) * ldo + c) = *reinterpret_cast<const uint2*>(e);
    }
  }
}

}  // namespace

void layernorm(const void* src, DT in_t, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
               const float* b, void* out, DT out_t, void* raw, cudaStream_t s, int64_t ldo, int64_t ldr, bool tf32) {
  if (tf32 && out_t != DT::F32) throw Error("layernorm: TF32 rounding of an output that is not FP32");
  if (C > 32 * kMaxPerLane) throw Error(fmt::format("layernorm: {} channels exceed the kernel's {}", C, 32 * kMaxPerLane));
  if (raw && gather != Gather::Rows) throw Error("layernorm: a copy of the source rows needs the Rows gather");
  if (ldo == 0) ldo = C;
  if (ldr == 0) ldr = C;
  // Sources are FP32 (the residual stream) or the activation dtype (GEMM output).
  if (in_t == DT::F32) {
    switch (out_t) {
      case DT::F32: launch<float, float>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
      case DT::F16: launch<float, __half>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
      case DT::BF16: launch<float, __nv_bfloat16>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s); break;
    }
  } else if (in_t == out_t) {
    if (in_t == DT::F16) launch<__half, __half>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
    else launch<__nv_bfloat16, __nv_bfloat16>(src, rows, C, gather, res, factor, g, b, out, raw, ldo, ldr, tf32, s);
  } else {
    throw Error("layernorm: unsupported dtype pair");
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void cast(const float* x, int64_t n, void* out, DT t, cudaStream_t s, int64_t cols, int64_t ldo, bool tf32) {
  const unsigned blocks = std::min<long long>(ceil_div(n, 256), 132 * 16);
  const bool strided = cols > 0 && ldo != cols;
  if (t == DT::F32 && !tf32) {
    if (strided)
      SWINRT_CUDA_CHECK(cudaMemcpy2DAsync(out, ldo * 4, x, cols * 4, cols * 4, n / cols, cudaMemcpyDeviceToDevice, s));
    else
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(out, x, n * 4, cudaMemcpyDeviceToDevice, s));
    return;
  }
  if (strided && (cols % 4 || ldo % 4))
    throw Error(fmt::format("cast: rows of {} values into a stride of {} (multiples of 4 only)", cols, ldo));
  auto go = [&](auto* o) {
    using T = std::remove_pointer_t<decltype(o)>;
    if (!strided) {
      cast_kernel<T><<<blocks, 256, 0, s>>>(x, n, o);
    } else if (n / 4 < (int64_t(1) << 31)) {
      cast_rows_kernel<T, uint32_t><<<blocks, 256, 0, s>>>(x, uint32_t(n / 4), uint32_t(cols / 4), ldo, o);
    } else {
      cast_rows_kernel<T, int64_t><<<blocks, 256, 0, s>>>(x, n / 4, cols / 4, ldo, o);
    }
  };
  if (t == DT::F32) go(static_cast<float*>(out));  // tf32
  else if (t == DT::F16) go(static_cast<__half*>(out));
  else go(static_cast<__nv_bfloat16*>(out));
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
