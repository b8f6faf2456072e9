// linear() as CUTLASS's sm90 GEMM (TMA loads, wgmma, one producer warp
// and one consumer warpgroup a tile), for the small batches' forward graph,
// whose edges into these kernels may be programmatic: CUTLASS's sm90 kernel
// waits (griddepcontrol.wait) before its first global load, where cuBLASLt
// 13's kernels do not (docs/PERFORMANCE_LOG.md, sessions 21 and 23).
//
// The product is taken transposed, y^T [N, M] = w [N, K] . x^T: the weight
// rows fill the wgmma's 64-row side and the tokens, 49 to 784 a slice, the
// narrow side, the form cuBLASLt's nvjet kernels take for few rows.
// Included by gemm_sm90_{f16,bf16}_n{32,64,128}[_k128].cu and
// gemm_sm90_tf32_n{32,64,128}[_k64].cu, one dtype and tile each (their
// epilogues), so that they compile in parallel; gemm_sm90.cu dispatches.
// TF32: the FP32 operands go to the wgmma as they are, read as tf32 there
// (no rounding pass of our own), and y is FP32.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "ops.cuh"

namespace swinrt::cuda::sm90 {

enum class Epi { Bias, BiasGelu, F32 };  // y (T) = acc + b; y (T) = gelu(acc + b); y (FP32) (+)= acc + b (FP32 b)

struct GemmArgs {
  const void* x;
  int64_t ldx;
  const void* w;
  int64_t ldw;
  int M, K, N;       // tokens, inputs, outputs
  const void* bias;  // or null
  void* y;           // [M, N], row stride N
  bool accumulate;   // Epi::F32: y += ...
};

// Per dtype and token tile (the wgmma's N: 32, 64, 128; k tiles of 64, or
// 128 where noted, for the long products): launch the GEMM on
// `s`, false where CUTLASS cannot take the problem (nothing launched); and
// the mangled names of the three kernels.
#define SWINRT_SM90_DECLARE(NAME)                                  \
  bool run_##NAME(Epi e, const GemmArgs& a, cudaStream_t s);      \
  void names_##NAME(std::vector<std::string>& out);
SWINRT_SM90_DECLARE(f16_n32)
SWINRT_SM90_DECLARE(f16_n64)
SWINRT_SM90_DECLARE(f16_n128)
SWINRT_SM90_DECLARE(bf16_n32)
SWINRT_SM90_DECLARE(bf16_n64)
SWINRT_SM90_DECLARE(bf16_n128)
SWINRT_SM90_DECLARE(f16_n32_k128)
SWINRT_SM90_DECLARE(f16_n64_k128)
SWINRT_SM90_DECLARE(bf16_n32_k128)
SWINRT_SM90_DECLARE(bf16_n64_k128)
SWINRT_SM90_DECLARE(tf32_n32)
SWINRT_SM90_DECLARE(tf32_n64)
SWINRT_SM90_DECLARE(tf32_n128)
SWINRT_SM90_DECLARE(tf32_n32_k64)
SWINRT_SM90_DECLARE(tf32_n64_k64)
#undef SWINRT_SM90_DECLARE

}  // namespace swinrt::cuda::sm90

#ifdef SWINRT_SM90_GEMM_IMPL
#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/thread/activation.h>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/gemm_universal.hpp>

namespace swinrt::cuda::sm90 {

template <typename T, Epi E, int TN, int TK>
struct Gemm {
  // TF32 (FP32 operands read as tf32 by the wgmma) writes FP32 with an FP32 bias.
  static constexpr bool kTf32 = std::is_same_v<T, cutlass::tfloat32_t>;
  using TD = std::conditional_t<E == Epi::F32 || kTf32, float, T>;
  using TC = std::conditional_t<E == Epi::F32, float, void>;
  using Layout = cutlass::layout::ColumnMajor;  // y^T [N, M]: a token's outputs contiguous
  using Tile = cute::Shape<cute::_64, cute::Int<TN>, cute::Int<TK>>;
  using Cluster = cute::Shape<cute::_1, cute::_1, cute::_1>;
  using Fusion = std::conditional_t<
      E == Epi::BiasGelu,
      cutlass::epilogue::fusion::LinCombPerRowBiasEltAct<cutlass::epilogue::thread::GELU_taylor, TD, float, T>,
      cutlass::epilogue::fusion::LinCombPerRowBias<TD, float, TD, TD, float>>;
  static constexpr int kAlignD = 16 / sizeof(TD);
  static constexpr int kAlignAB = 16 / sizeof(T);
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Tile, Cluster,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, TC, Layout, kAlignD, TD, Layout, kAlignD,
      cutlass::epilogue::TmaWarpSpecialized, Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, T, cutlass::layout::RowMajor, kAlignAB, T,
      cutlass::layout::ColumnMajor, kAlignAB, float, Tile, Cluster,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      cutlass::gemm::KernelTmaWarpSpecialized>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Op = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static bool run(const GemmArgs& a, cudaStream_t s) {
    using cute::Int;
    typename Kernel::StrideA sa = cute::make_stride(a.ldw, Int<1>{}, int64_t(0));
    typename Kernel::StrideB sb = cute::make_stride(a.ldx, Int<1>{}, int64_t(0));
    typename Kernel::StrideC sc = cute::make_stride(Int<1>{}, int64_t(a.N), int64_t(0));
    typename Kernel::StrideD sd = cute::make_stride(Int<1>{}, int64_t(a.N), int64_t(0));
    typename Op::Arguments args{cutlass::gemm::GemmUniversalMode::kGemm,
                                {a.N, a.M, a.K, 1},
                                {static_cast<const T*>(a.w), sa, static_cast<const T*>(a.x), sb},
                                {{}, nullptr, sc, static_cast<TD*>(a.y), sd}};
    auto& f = args.epilogue.thread;
    f.alpha = 1.0f;
    f.beta = (E == Epi::F32 && a.accumulate) ? 1.0f : 0.0f;
    f.bias_ptr = static_cast<const TD*>(a.bias);
    if constexpr (E == Epi::F32) args.epilogue.ptr_C = static_cast<const float*>(a.y);
    Op op;
    if (op.can_implement(args) != cutlass::Status::kSuccess || Op::get_workspace_size(args) != 0) return false;
    if (op.initialize(args, nullptr, s) != cutlass::Status::kSuccess)
      throw Error(fmt::format("CUTLASS GEMM {}x{}x{}: initialize failed", a.M, a.N, a.K));
    const cutlass::Status st = op.run(s, nullptr, false);
    SWINRT_CUDA_CHECK(cudaGetLastError());
    if (st != cutlass::Status::kSuccess)
      throw Error(fmt::format("CUTLASS GEMM {}x{}x{}: launch failed ({})", a.M, a.N, a.K,
                              cutlass::cutlassGetStatusString(st)));
    return true;
  }

  static void name(std::vector<std::string>& out) {
    const char* n = nullptr;
    if (cudaFuncGetName(&n, reinterpret_cast<const void*>(&cutlass::device_kernel<Kernel>)) == cudaSuccess && n)
      out.emplace_back(n);
    cudaGetLastError();
  }
};

// TF32 takes no GELU epilogue (its GELU is the exact erf kernel, linear.cu).
template <typename T, int TN, int TK>
bool run_tile(Epi e, const GemmArgs& a, cudaStream_t s) {
  constexpr bool gelu = !std::is_same_v<T, cutlass::tfloat32_t>;
  switch (e) {
    case Epi::Bias: return Gemm<T, Epi::Bias, TN, TK>::run(a, s);
    case Epi::BiasGelu:
      if constexpr (gelu) return Gemm<T, Epi::BiasGelu, TN, TK>::run(a, s);
      return false;
    case Epi::F32: return Gemm<T, Epi::F32, TN, TK>::run(a, s);
  }
  return false;
}

template <typename T, int TN, int TK>
void names_tile(std::vector<std::string>& out) {
  Gemm<T, Epi::Bias, TN, TK>::name(out);
  if constexpr (!std::is_same_v<T, cutlass::tfloat32_t>) Gemm<T, Epi::BiasGelu, TN, TK>::name(out);
  Gemm<T, Epi::F32, TN, TK>::name(out);
}

// The definitions one file of the set gives.
#define SWINRT_SM90_DEFINE(NAME, T, TN, TK)                                                                 \
  bool run_##NAME(Epi e, const GemmArgs& a, cudaStream_t s) { return run_tile<T, TN, TK>(e, a, s); }      \
  void names_##NAME(std::vector<std::string>& out) { names_tile<T, TN, TK>(out); }

}  // namespace swinrt::cuda::sm90
#endif  // SWINRT_SM90_GEMM_IMPL
