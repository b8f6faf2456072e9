// gemm_sm90.cuh's kernels for tf32 operands (FP32 in memory) and 128-token tiles, k tiles of 32 (see there).
#ifdef SWINRT_WITH_CUTLASS
#define SWINRT_SM90_GEMM_IMPL
#include "gemm_sm90.cuh"

namespace swinrt::cuda::sm90 {
SWINRT_SM90_DEFINE(tf32_n128, cutlass::tfloat32_t, 128, 32)
}  // namespace swinrt::cuda::sm90
#endif
