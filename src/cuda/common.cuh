// Shared CUDA helpers: error checks that throw swinrt::Error, the activation
// dtype, and small device utilities (conversions, warp reductions).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <fmt/format.h>
#include <string>
#include <type_traits>

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

// Every kernel of this namespace calls this before it reads an activation or
// writes anything: where the forward graph's edge into its launch is
// programmatic (graph_edges.cu), the launch may begin while the kernel
// before it still runs, and this waits until that kernel has finished and
// its writes are visible (griddepcontrol.wait). Then it lets the kernel
// after it launch (griddepcontrol.launch_dependents: with SWINRT_PDL=1 that
// kernel's blocks start once all of this one's have passed here, one kernel
// ahead). On an ordinary launch both return at once. sm_90 and later.
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether the developer switch `name` (an environment variable read where
// the engine decides) is set to 0, i.e. its path is turned off.
inline bool switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v && *v == '0';
}

// Whether kernels load their constants (weights, LayerNorm gamma and beta,
// the attention's window tables and bias) before their wait (SWINRT_EARLY=0:
// after it, as before session 27). The engine's constants are written once
// at upload and never by a kernel of the forward, so a kernel may read them
// before griddepcontrol.wait; on a programmatic edge they then arrive while
// the kernel before it still runs.
inline bool early_constants() {
  static const bool on = !switched_off("SWINRT_EARLY");
  return on;
}

// p, passed through an empty asm volatile: for the activation pointer of a
// kernel that reads constants before its wait. Through a const __restrict__
// pointer nvcc emits read-only loads (ld.global.nc) that may be served or
// scheduled as if the memory never changed: in session 27 run 5 the
// LayerNorm's row loads, after the wait in the PTX, read rows the kernel
// before had not yet written (logits off by up to 4 at batches 1 and 2).
// Through the pointer this returns, which the compiler cannot know before
// the asm, the loads are ordinary ones after the wait (run 6: every test
// passed, three times over).
template <typename T>
__device__ __forceinline__ T* after_wait(T* p) {
  asm volatile("" : "+l"(p));
  return p;
}

// Asks the L2 for [p, p + bytes), one prefetch.global.L2 a 128-byte line,
// lines spread over threads `tid` of `n`.
__device__ __forceinline__ void prefetch_l2(const void* p, int64_t bytes, int tid, int n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  for (int64_t i = tid; i * 128 < bytes; i += n)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(static_cast<const char*>(p) + i * 128) : "memory");
#endif
}

// v rounded to TF32 (10 mantissa bits; nearest, ties away from zero), as an
// FP32 value whose low 13 bits are zero: what the TF32 path's producers
// store for the CUTLASS tf32 GEMMs, whose wgmma reads the FP32 bits as they
// are (cuBLASLt's TF32 GEMMs round their operands alike). sm_80 and later.
__device__ __forceinline__ float round_tf32(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
  return __uint_as_float(r);
#else
  return v;
#endif
}

// v where !tf32, else rounded to tf32: the store of a kernel that writes a
// GEMM operand, on the TF32 path (`tf32`) and off it.
__device__ __forceinline__ float tf32_if(bool tf32, float v) { return tf32 ? round_tf32(v) : v; }
__device__ __forceinline__ float4 tf32_if(bool tf32, float4 v) {
  return tf32 ? make_float4(round_tf32(v.x), round_tf32(v.y), round_tf32(v.z), round_tf32(v.w)) : v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// v summed over each aligned group of N neighbouring lanes (N a power of two,
// at most 32): xor shuffles at distances 1, 2, ..., N / 2, the reverse of
// warp_sum's order (so their FP32 sums may differ in the last bits).
template <int N>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int m = 1; m < N; m <<= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// GELU in its tanh form, 0.5 v (1 + tanh(sqrt(2 / pi) (v + 0.044715 v^3))),
// with the hardware tanh (MUFU.TANH), as cuBLASLt's GELU epilogue on the
// op-by-op FP16/BF16 path: within 4.7e-4 of the erf form (at v = 2.7), under
// one fp16 ulp of the rounded result with tanh.approx's own 2^-11 relative
// error. Computed as u = v (a + b v^2) and h + h t with h = v / 2: five FP32
// operations besides the tanh (erff took ~40% of the fused block's
// instructions; the GELU is a quarter of the fused MLP's).
__device__ __forceinline__ float gelu_tanh(float v) {
  const float u = v * fmaf(0.7978845608028654f * 0.044715f, v * v, 0.7978845608028654f);
  float t;
  asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(u));
  const float h = 0.5f * v;
  return fmaf(h, t, h);
}
// gelu_tanh(acc + b) from acc and hb = b / 2 (FP32), to the bit and in one
// operation fewer: h = acc / 2 + hb is (acc + b) / 2 rounded once, as 0.5
// (acc + b) is; u = h (2 a + 8 b h^2) is v (a + b v^2) with v = 2 h, every
// product scaled by powers of two (exact, barring FP32 underflow).
__device__ __forceinline__ float gelu_tanh_half(float acc, float hb) {
  const float h = fmaf(0.5f, acc, hb);
  const float u = h * fmaf(8.0f * (0.7978845608028654f * 0.044715f), h * h, 2.0f * 0.7978845608028654f);
  float t;
  asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(u));
  return fmaf(h, t, h);
}

// Two neighbouring 16-bit values (b even-aligned) as FP32, one 4-byte load.
__device__ __forceinline__ float2 bias2(const __half* b) {
  return __half22float2(__ldg(reinterpret_cast<const __half2*>(b)));
}
__device__ __forceinline__ float2 bias2(const __nv_bfloat16* b) {
  return __bfloat1622float2(__ldg(reinterpret_cast<const __nv_bfloat162*>(b)));
}

// Calls f(std::integral_constant<int, V>) for the V among Vs that equals v
// (the sizes a kernel is instantiated for); false where none does.
template <int... Vs, class F>
bool with_value(int v, F&& f) {
  return ((v == Vs ? (f(std::integral_constant<int, Vs>{}), true) : false) || ...);
}

inline unsigned ceil_div(long long a, long long b) { return static_cast<unsigned>((a + b - 1) / b); }


// A developer switch around a default policy: 0 where `name` is "0" (the
// path never taken), 2 where it is "1" (taken wherever it applies, for
// tests), 1 otherwise (where the engine's policy says).
inline int policy_switch(const char* name) {
  const char* v = std::getenv(name);
  const std::string s = v ? v : "";
  return s == "0" ? 0 : s == "1" ? 2 : 1;
}

// Attribute `attr` of the current device into `value`, or false (the error
// cleared) where it cannot be read: the "is this supported" checks answer
// no instead of throwing.
inline bool device_attribute(cudaDeviceAttr attr, int& value) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&value, attr, dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return true;
}

// Streaming multiprocessors of the current device (launch shapes that adapt
// to small batches).
inline int sm_count() {
  int dev = 0, sms = 0;
  SWINRT_CUDA_CHECK(cudaGetDevice(&dev));
  SWINRT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

}  // namespace swinrt::cuda

namespace swinrt::cuda {

// A typed device array for the evaluation pipeline (src/cuda/zoom.cu,
// edt.cu): allocation failures throw swinrt::Error naming `what`.
template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  size_t count = 0;
  DeviceArray() = default;
  DeviceArray(size_t n, const char* what) : count(n) {
    if (n == 0) return;
    const cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T));
    if (err != cudaSuccess) {
      cudaGetLastError();
      ptr = nullptr;
      throw ::swinrt::Error(fmt::format("CUDA: cannot allocate {} bytes for {} ({})", n * sizeof(T), what,
                                        cudaGetErrorString(err)));
    }
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : ptr(o.ptr), count(o.count) { o.ptr = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    T* p = ptr;
    ptr = o.ptr;
    o.ptr = p;
    const size_t c = count;
    count = o.count;
    o.count = c;
    return *this;
  }
  ~DeviceArray() {
    if (ptr) cudaFree(ptr);
  }
  // Grows (never shrinks) to at least n elements; the contents are lost.
  void reserve(size_t n, const char* what) {
    if (n > count) *this = DeviceArray(n, what);
  }
};

// A stream owned by one object of the pipeline.
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { SWINRT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
};

}  // namespace swinrt::cuda
