// Shared CUDA helpers: error checks that throw swinrt::Error, the activation
// dtype, and small device utilities (conversions, warp reductions).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "swinrt/error.h"

namespace swinrt::cuda {

#define SWINRT_CUDA_CHECK(expr)                                                                       \
  do {                                                                                                \
    cudaError_t err_ = (expr);                                                                        \
    if (err_ != cudaSuccess)                                                                          \
      throw ::swinrt::Error(fmt::format("CUDA error {} ({}) at {}:{}: {}", static_cast<int>(err_),   \
                                        cudaGetErrorString(err_), __FILE__, __LINE__, #expr));        \
  } while (0)

// The dtype of GEMM operands and the activations that feed them. The residual
// stream, LayerNorm statistics, softmax and all accumulation stay FP32.
enum class DT { F32, F16, BF16 };
inline size_t dt_size(DT t) { return t == DT::F32 ? 4 : 2; }

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

inline unsigned ceil_div(long long a, long long b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace swinrt::cuda
