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
// TF32: the FP32 operands go to the wgmma as they are, which reads them as
// tf32 by truncation, so the TF32 engine stores them rounded to tf32
// already (backend.cu's tf32_round); y is FP32. Each launch is our
// gemm_kernel, CUTLASS's kernel body after an L2 prefetch of the weights.
#pragma once

#include <cstdint>
#include <cstdlib>
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
#include <cutlass/gemm/kernel/gemm_universal.hpp>

namespace swinrt::cuda::sm90 {

// The rows of w a GEMM's thread blocks stream, for the L2 prefetch below.
struct WeightRows {
  const char* w;     // null: no prefetch
  int64_t ld_bytes;  // between rows
  uint32_t bytes;    // a row's K elements, in bytes
  int rows;          // N
  const char* bias;  // null: none (or not prefetched)
  int bias_elem;     // its element's bytes
};

// A Gemm's kernel, launched by Gemm::run in place of CUTLASS's
// device_kernel: before CUTLASS's body (whose producer warp waits on the
// grid, griddepcontrol.wait, and only then loads), warps 1 to 3 of the
// producer warpgroup, idle in CUTLASS's kernel, ask the L2 for this block's
// weight rows, one prefetch.global.L2 a 128-byte line. The weights are the
// engine's, written once at upload and never by a kernel of the forward, so
// reading them before the wait is safe; on a programmatic edge the block
// may start while the kernel before it still runs, and its weights, which
// at batch 1 come from HBM (the forward's 54 MB of fp16 weights do not stay
// in the 50 MB L2), arrive meanwhile. The token tiles of a 64-row tile
// (grid y) share its rows: the block at y takes every gridDim.y-th line.
// Session 27 (runs 1 to 3, three alternating rounds each against no
// prefetch): this form took fp16 batch 1 from 0.349-0.351 to 0.343 ms and
// bf16 from 0.345-0.347 to 0.338-0.339, batch 2 -1.5%; each block
// prefetching its whole tile lost (0.350-0.352), and so did bulk
// prefetches (cp.async.bulk.prefetch.L2; -1% as a share, +13% whole:
// through the TMA unit, where, we think, the block's own loads wait behind
// them). tf32 lost a little (batch 2 +0.6%): its GEMMs do not prefetch.
// The bias rows (the epilogue's) are asked for too (SWINRT_EARLY).
template <class Kernel>
__global__ void __launch_bounds__(Kernel::MaxThreadsPerBlock, Kernel::MinBlocksPerMultiprocessor)
    gemm_kernel(CUTLASS_GRID_CONSTANT typename Kernel::Params const params, const WeightRows wr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (wr.w != nullptr && threadIdx.x >= 32 && threadIdx.x < 128) {
    const int row0 = static_cast<int>(blockIdx.x) * 64;
    const int rows = min(64, wr.rows - row0);
    const int lines = static_cast<int>((wr.bytes + 127) / 128);
    const int ny = static_cast<int>(gridDim.y);
    for (int i = static_cast<int>(blockIdx.y) + ny * (static_cast<int>(threadIdx.x) - 32); i < rows * lines;
         i += 96 * ny) {
      const int r = i / lines, l = i - r * lines;
      asm volatile("prefetch.global.L2 [%0];" ::"l"(wr.w + (row0 + r) * wr.ld_bytes + l * 128) : "memory");
    }
    if (wr.bias != nullptr && blockIdx.y == 0 && (static_cast<int>(threadIdx.x) - 32) * 128 < rows * wr.bias_elem)
      asm volatile("prefetch.global.L2 [%0];" ::"l"(wr.bias + (row0 * wr.bias_elem) + (threadIdx.x - 32) * 128)
                   : "memory");
  }
#endif
  extern __shared__ char smem[];
  Kernel op;
  op(params, smem);
}

// Whether the fp16/bf16 GEMMs prefetch their weights (SWINRT_SM90_PREFETCH=0: not).
inline bool prefetch_weights() {
  static const bool on = !switched_off("SWINRT_SM90_PREFETCH");
  return on;
}

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

  static bool run(const GemmArgs& a, cudaStream_t s) {
    using cute::Int;
    typename Kernel::StrideA sa = cute::make_stride(a.ldw, Int<1>{}, int64_t(0));
    typename Kernel::StrideB sb = cute::make_stride(a.ldx, Int<1>{}, int64_t(0));
    typename Kernel::StrideC sc = cute::make_stride(Int<1>{}, int64_t(a.N), int64_t(0));
    typename Kernel::StrideD sd = cute::make_stride(Int<1>{}, int64_t(a.N), int64_t(0));
    typename Kernel::Arguments args{cutlass::gemm::GemmUniversalMode::kGemm,
                                {a.N, a.M, a.K, 1},
                                {static_cast<const T*>(a.w), sa, static_cast<const T*>(a.x), sb},
                                {{}, nullptr, sc, static_cast<TD*>(a.y), sd}};
    auto& f = args.epilogue.thread;
    f.alpha = 1.0f;
    f.beta = (E == Epi::F32 && a.accumulate) ? 1.0f : 0.0f;
    f.bias_ptr = static_cast<const TD*>(a.bias);
    if constexpr (E == Epi::F32) args.epilogue.ptr_C = static_cast<const float*>(a.y);
    if (!Kernel::can_implement(args) || Kernel::get_workspace_size(args) != 0) return false;
    const typename Kernel::Params params = Kernel::to_underlying_arguments(args, nullptr);
    constexpr int smem = Kernel::SharedStorageSize;
    const cudaError_t attr =
        cudaFuncSetAttribute(gemm_kernel<Kernel>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (attr != cudaSuccess)
      throw Error(fmt::format("CUTLASS GEMM {}x{}x{}: {} bytes of shared memory refused ({})", a.M, a.N, a.K, smem,
                              cudaGetErrorString(attr)));
    const bool pf = prefetch_weights() && !kTf32;
    const WeightRows wr{pf ? static_cast<const char*>(a.w) : nullptr,
                        a.ldw * static_cast<int64_t>(sizeof(T)),
                        static_cast<uint32_t>(a.K * sizeof(T)),
                        a.N,
                        pf && early_constants() ? static_cast<const char*>(a.bias) : nullptr,
                        static_cast<int>(sizeof(TD))};
    gemm_kernel<Kernel><<<Kernel::get_grid_shape(params), Kernel::get_block_shape(), smem, s>>>(params, wr);
    SWINRT_CUDA_CHECK(cudaGetLastError());
    return true;
  }

  static void name(std::vector<std::string>& out) {
    const char* n = nullptr;
    if (cudaFuncGetName(&n, reinterpret_cast<const void*>(&gemm_kernel<Kernel>)) == cudaSuccess && n)
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
