// gemm_sm90.cuh's kernels for bf16 operands and 128-token tiles, k tiles of 64 (see there).
#ifdef SWINRT_WITH_CUTLASS
#define SWINRT_SM90_GEMM_IMPL
#include "gemm_sm90.cuh"

namespace swinrt::cuda::sm90 {
SWINRT_SM90_DEFINE(bf16_n128, cutlass::bfloat16_t, 128, 64)
}  // namespace swinrt::cuda::sm90
#endif
