// gemm_sm90.cuh's kernels for tf32 operands (FP32 in memory) and 64-token tiles, k tiles of 64 (see there).
#ifdef SWINRT_WITH_CUTLASS
#define SWINRT_SM90_GEMM_IMPL
#include "gemm_sm90.cuh"

namespace swinrt::cuda::sm90 {
SWINRT_SM90_DEFINE(tf32_n64_k64, cutlass::tfloat32_t, 64, 64)
}  // namespace swinrt::cuda::sm90
#endif
