// gemm_sm90.cuh's kernels for f16 operands and 32-token tiles, k tiles of 128 (see there).
#ifdef SWINRT_WITH_CUTLASS
#define SWINRT_SM90_GEMM_IMPL
#include "gemm_sm90.cuh"

namespace swinrt::cuda::sm90 {
SWINRT_SM90_DEFINE(f16_n32_k128, cutlass::half_t, 32, 128)
}  // namespace swinrt::cuda::sm90
#endif
