// layernorm: one warp per row, the row held in registers, FP32 two-pass
// statistics; mirror of src/cpu/layernorm.cpp. The gather modes fold
// PatchMerging's 2x2 concat and PatchExpand's pixel shuffle into the loads,
// so neither rearrangement is ever written to memory. Traffic: one read of the
// source row, one write per output dtype.
#include "ops.cuh"

namespace swinrt::cuda {

namespace {

constexpr int kMaxPerLane = 64;  // rows of up to 2048 channels

// Registers per lane are a template parameter (the row's C / 32, rounded up
// to one of a few sizes) so the row stays in registers without a 64-wide
// predicated loop for a 96-channel row.

// Address of element k of output row (b, Y, X).
template <Gather G>
__device__ __forceinline__ int64_t source_index(int64_t b, int Y, int X, int k, int C, int res, int factor) {
  if constexpr (G == Gather::Rows) {
    return ((b * res + Y) * res + X) * C + k;
  } else if constexpr (G == Gather::Merge2x2) {
    const int cin = C / 4, q = k / cin, in_res = res * 2;
    const int dy = q & 1, dx = q >> 1;  // x0 (0,0), x1 (1,0), x2 (0,1), x3 (1,1)
    return ((b * in_res + 2 * Y + dy) * in_res + 2 * X + dx) * cin + (k - q * cin);
  } else {
    const int in_res = res / factor, sub = (Y % factor) * factor + X % factor;
    return ((b * in_res + Y / factor) * in_res + X / factor) * int64_t(factor * factor * C) + sub * C + k;
  }
}

template <typename Tin, typename Tout, Gather G, int NPL>
__global__ void layernorm_kernel(const Tin* __restrict__ src, int64_t rows, int C, int res, int factor,
                                 const float* __restrict__ g, const float* __restrict__ bta, Tout* __restrict__ out,
                                 float* __restrict__ out32) {
  const int64_t row = blockIdx.x * int64_t(blockDim.y) + threadIdx.y;
  if (row >= rows) return;
  const int lane = threadIdx.x;
  const int64_t tokens = int64_t(res) * res, b = row / tokens;
  const int p = static_cast<int>(row - b * tokens), Y = p / res, X = p % res;
  float v[NPL];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    const int k = lane + 32 * i;
    v[i] = k < C ? to_f(src[source_index<G>(b, Y, X, k, C, res, factor)]) : 0.f;
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
      out[row * C + k] = from_f<Tout>(y);
      if (out32) out32[row * C + k] = y;
    }
  }
}

template <typename Tin, typename Tout, int NPL>
void launch_npl(const void* src, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
                const float* b, void* out, float* out32, cudaStream_t s) {
  const dim3 block(32, 8);
  const unsigned grid = ceil_div(rows, 8);
  auto* in = static_cast<const Tin*>(src);
  auto* o = static_cast<Tout*>(out);
  switch (gather) {
    case Gather::Rows:
      layernorm_kernel<Tin, Tout, Gather::Rows, NPL><<<grid, block, 0, s>>>(in, rows, C, res, factor, g, b, o, out32);
      break;
    case Gather::Merge2x2:
      layernorm_kernel<Tin, Tout, Gather::Merge2x2, NPL>
          <<<grid, block, 0, s>>>(in, rows, C, res, factor, g, b, o, out32);
      break;
    case Gather::Shuffle:
      layernorm_kernel<Tin, Tout, Gather::Shuffle, NPL><<<grid, block, 0, s>>>(in, rows, C, res, factor, g, b, o, out32);
      break;
  }
}

template <typename Tin, typename Tout>
void launch(const void* src, int64_t rows, int C, Gather gather, int res, int factor, const float* g, const float* b,
            void* out, float* out32, cudaStream_t s) {
  const int need = (C + 31) / 32;
  if (need <= 2) launch_npl<Tin, Tout, 2>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  else if (need <= 3) launch_npl<Tin, Tout, 3>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  else if (need <= 6) launch_npl<Tin, Tout, 6>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  else if (need <= 12) launch_npl<Tin, Tout, 12>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  else if (need <= 24) launch_npl<Tin, Tout, 24>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  else if (need <= 48) launch_npl<Tin, Tout, 48>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  else launch_npl<Tin, Tout, kMaxPerLane>(src, rows, C, gather, res, factor, g, b, out, out32, s);
}

template <typename T>
__global__ void cast_kernel(const float* __restrict__ x, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f<T>(x[i]);
}

}  // namespace

void layernorm(const void* src, DT in_t, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
               const float* b, void* out, DT out_t, float* out32, cudaStream_t s) {
  if (C > 32 * kMaxPerLane) throw Error(fmt::format("layernorm: {} channels exceed the kernel's {}", C, 32 * kMaxPerLane));
  // Sources are FP32 (the residual stream) or the activation dtype (GEMM output).
  if (in_t == DT::F32) {
    switch (out_t) {
      case DT::F32: launch<float, float>(src, rows, C, gather, res, factor, g, b, out, out32, s); break;
      case DT::F16: launch<float, __half>(src, rows, C, gather, res, factor, g, b, out, out32, s); break;
      case DT::BF16: launch<float, __nv_bfloat16>(src, rows, C, gather, res, factor, g, b, out, out32, s); break;
    }
  } else if (in_t == out_t) {
    if (in_t == DT::F16) launch<__half, __half>(src, rows, C, gather, res, factor, g, b, out, out32, s);
    else launch<__nv_bfloat16, __nv_bfloat16>(src, rows, C, gather, res, factor, g, b, out, out32, s);
  } else {
    throw Error("layernorm: unsupported dtype pair");
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void cast(const float* x, int64_t n, void* out, DT t, cudaStream_t s) {
  const unsigned blocks = std::min<long long>(ceil_div(n, 256), 132 * 16);
  switch (t) {
    case DT::F32: SWINRT_CUDA_CHECK(cudaMemcpyAsync(out, x, n * 4, cudaMemcpyDeviceToDevice, s)); return;
    case DT::F16: cast_kernel<<<blocks, 256, 0, s>>>(x, n, static_cast<__half*>(out)); break;
    case DT::BF16: cast_kernel<<<blocks, 256, 0, s>>>(x, n, static_cast<__nv_bfloat16*>(out)); break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
