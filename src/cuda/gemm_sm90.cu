// linear_sm90: picks the token tile and the epilogue for gemm_sm90.cuh's
// CUTLASS kernels (fp16, bf16, tf32), and names those kernels for
// graph_edges.cu.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "gemm_sm90.cuh"
#include "ops.cuh"

namespace swinrt::cuda {

#ifdef SWINRT_WITH_CUTLASS

namespace {

// The token tile: the narrowest whose tiles fit in one wave (132 SMs on
// the H100), else the widest. Session 24's ncu times of the 49 GEMMs of
// fp16 batch 1 under each tile (docs/PERFORMANCE_LOG.md): this choice was
// the fastest tile for 48 of them and 3% slower for the other; the 49 took
// 314 us in all, cuBLASLt's 317.
// SWINRT_SM90_TN=32/64/128 forces one.
int token_tile(int M, int N) {
  static const int forced = [] {
    const char* v = std::getenv("SWINRT_SM90_TN");
    return v ? std::atoi(v) : 0;
  }();
  if (forced == 32 || forced == 64 || forced == 128) return forced;
  const int64_t sms = sm_count(), rows = (N + 63) / 64;
  for (int tn : {32, 64}) {
    if (rows * ((M + tn - 1) / tn) <= sms) return tn;
  }
  return 128;
}

// k tiles of 128 instead of 64 (half the pipeline's steps) from this K on
// (SWINRT_SM90_K128: the K from which they run; 0: never).
bool long_k(int K) {
  static const int from = [] {
    const char* v = std::getenv("SWINRT_SM90_K128");
    return v ? std::atoi(v) : 768;
  }();
  return from > 0 && K >= from;
}

}  // namespace

bool linear_sm90(const void* x, int ldx, const void* w, int ldw, DT in, int64_t M, int K, int N, const void* bias,
                 void* y, DT out, bool accumulate, bool tanh_gelu, bool tf32, cudaStream_t s) {
  if ((in == DT::F32 && (!tf32 || out != DT::F32 || tanh_gelu)) || M > (int64_t(1) << 30)) return false;
  // TMA: 16-byte row strides and bases.
  const auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  if (ldx % 8 || ldw % 8 || K % 8 || N % 8 || !aligned(x) || !aligned(w) || !aligned(y) || (bias && !aligned(bias)))
    return false;
  sm90::Epi e;
  if (in == DT::F32) {
    e = accumulate ? sm90::Epi::F32 : sm90::Epi::Bias;  // TF32: FP32 out, FP32 bias
  } else if (out == DT::F32) {
    if (tanh_gelu) return false;
    e = sm90::Epi::F32;
  } else {
    if (out != in || accumulate) return false;
    e = tanh_gelu ? sm90::Epi::BiasGelu : sm90::Epi::Bias;
  }
  const sm90::GemmArgs a{x, ldx, w, ldw, static_cast<int>(M), K, N, bias, y, accumulate};
  const bool f16 = in == DT::F16;
  const int tn = token_tile(static_cast<int>(M), N);
  if (in == DT::F32) {  // TF32: k tiles of 32 (the bytes of the halves' 64), 64 for the long products
    if (tn <= 64 && long_k(K)) return tn == 32 ? sm90::run_tf32_n32_k64(e, a, s) : sm90::run_tf32_n64_k64(e, a, s);
    return tn == 32 ? sm90::run_tf32_n32(e, a, s) : tn == 64 ? sm90::run_tf32_n64(e, a, s) : sm90::run_tf32_n128(e, a, s);
  }
  if (tn <= 64 && long_k(K)) {
    if (tn == 32) return f16 ? sm90::run_f16_n32_k128(e, a, s) : sm90::run_bf16_n32_k128(e, a, s);
    return f16 ? sm90::run_f16_n64_k128(e, a, s) : sm90::run_bf16_n64_k128(e, a, s);
  }
  switch (tn) {
    case 32: return f16 ? sm90::run_f16_n32(e, a, s) : sm90::run_bf16_n32(e, a, s);
    case 64: return f16 ? sm90::run_f16_n64(e, a, s) : sm90::run_bf16_n64(e, a, s);
    default: return f16 ? sm90::run_f16_n128(e, a, s) : sm90::run_bf16_n128(e, a, s);
  }
}

bool sm90_gemm_built() { return true; }

bool is_sm90_gemm_kernel(const std::string& mangled) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (auto names : {sm90::names_f16_n32, sm90::names_f16_n64, sm90::names_f16_n128, sm90::names_bf16_n32,
                       sm90::names_bf16_n64, sm90::names_bf16_n128, sm90::names_f16_n32_k128,
                       sm90::names_f16_n64_k128, sm90::names_bf16_n32_k128, sm90::names_bf16_n64_k128,
                       sm90::names_tf32_n32, sm90::names_tf32_n64, sm90::names_tf32_n128,
                       sm90::names_tf32_n32_k64, sm90::names_tf32_n64_k64})
      names(v);
    return v;
  }();
  return std::find(names.begin(), names.end(), mangled) != names.end();
}

#else

bool linear_sm90(const void*, int, const void*, int, DT, int64_t, int, int, const void*, void*, DT, bool, bool, bool,
                 cudaStream_t) {
  return false;
}
bool is_sm90_gemm_kernel(const std::string&) { return false; }
bool sm90_gemm_built() { return false; }

#endif

}  // namespace swinrt::cuda
