// gemm_sm90.cuh's kernels for bf16 operands and 64-token tiles, k tiles of 128 (see there).
#ifdef SWINRT_WITH_CUTLASS
#define SWINRT_SM90_GEMM_IMPL
#include "gemm_sm90.cuh"

namespace swinrt::cuda::sm90 {
SWINRT_SM90_DEFINE(bf16_n64_k128, cutlass::bfloat16_t, 64, 128)
}  // namespace swinrt::cuda::sm90
#endif
