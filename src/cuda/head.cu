// argmax over classes of NCHW logits; mirror of src/cpu/head.cpp.
#include "ops.cuh"

namespace swinrt::cuda {

namespace {

__global__ void argmax_kernel(const float* __restrict__ logits, int B, int C, int64_t HW, int32_t* __restrict__ labels) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= B * HW) return;
  const int64_t b = i / HW, p = i - b * HW;
  const float* l = logits + b * C * HW + p;
  int best = 0;
  float bv = l[0];
  for (int c = 1; c < C; ++c)
    if (l[c * HW] > bv) {
      bv = l[c * HW];
      best = c;
    }
  labels[i] = best;
}

}  // namespace

void argmax_channels(const float* logits, int B, int C, int64_t HW, int32_t* labels, cudaStream_t s) {
  argmax_kernel<<<ceil_div(B * HW, 256), 256, 0, s>>>(logits, B, C, HW, labels);
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
