// argmax over classes of NCHW logits; mirror of src/cpu/head.cpp.
#include <algorithm>

#include "ops.cuh"

namespace swinrt::cuda {

namespace {

// Thread x of block (x, y) takes pixel x of slices y, y + gridDim.y, ...:
// no division per pixel.
__global__ void argmax_kernel(const float* __restrict__ logits, int B, int C, int64_t HW, int32_t* __restrict__ labels) {
  wait_for_prior_grids();
  const int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (p >= HW) return;
  for (int b = blockIdx.y; b < B; b += gridDim.y) {
    const float* l = logits + int64_t(b) * C * HW + p;
    int best = 0;
    float bv = l[0];
    for (int c = 1; c < C; ++c)
      if (l[c * HW] > bv) {
        bv = l[c * HW];
        best = c;
      }
    labels[int64_t(b) * HW + p] = best;
  }
}

}  // namespace

void argmax_channels(const float* logits, int B, int C, int64_t HW, int32_t* labels, cudaStream_t s) {
  if (B <= 0 || HW <= 0) return;
  argmax_kernel<<<dim3(ceil_div(HW, 256), std::min(B, 65535)), 256, 0, s>>>(logits, B, C, HW, labels);
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
