// Patch ops on the GPU; mirror of src/cpu/patch.cpp and the head of
// src/cpu/backend.cpp's FinalExpand.
//  - patch_embed: one warp per token: the patch x patch conv, LayerNorm and
//    absolute position embedding in registers; writes x (FP32) and xt.
//  - final_norm_head: FinalPatchExpand_X4's pixel shuffle + LayerNorm + the
//    1x1 conv head in one pass over the expand GEMM's output: one warp per
//    output pixel, the normalised E-vector never leaves registers, and only
//    the logits [B, classes, H, W] are written.
#include "ops.cuh"

namespace swinrt::cuda {

namespace {

constexpr int kMaxE = 32 * 8;  // embed_dim up to 256 (8 channels per lane)

template <typename T>
__global__ void patch_embed_kernel(const float* __restrict__ img, int64_t tokens_total, int img_size, int patch,
                                   const float* __restrict__ w, const float* __restrict__ bias, int E,
                                   const float* __restrict__ g, const float* __restrict__ bt,
                                   const float* __restrict__ ape, float* __restrict__ x, T* __restrict__ xt) {
  const int64_t tok = blockIdx.x * int64_t(blockDim.y) + threadIdx.y;
  if (tok >= tokens_total) return;
  const int lane = threadIdx.x, grid = img_size / patch, pp = patch * patch;
  const int64_t b = tok / (int64_t(grid) * grid);
  const int p = static_cast<int>(tok - b * grid * grid), py = p / grid, px = p % grid;
  const float* src = img + (b * img_size + py * patch) * img_size + px * patch;
  float v[kMaxE / 32];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kMaxE / 32; ++i) {
    const int e = lane + 32 * i;
    float acc = 0.f;
    if (e < E) {
      acc = bias[e];
      for (int k = 0; k < pp; ++k) acc += w[e * pp + k] * src[(k / patch) * img_size + k % patch];
    }
    v[i] = acc;
    sum += acc;
  }
  if (g) {
    const float mean = warp_sum(sum) / E;
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxE / 32; ++i) {
      const float dlt = lane + 32 * i < E ? v[i] - mean : 0.f;
      sq += dlt * dlt;
    }
    const float rstd = rsqrtf(warp_sum(sq) / E + 1e-5f);
#pragma unroll
    for (int i = 0; i < kMaxE / 32; ++i) {
      const int e = lane + 32 * i;
      if (e < E) v[i] = (v[i] - mean) * rstd * g[e] + bt[e];
    }
  }
#pragma unroll
  for (int i = 0; i < kMaxE / 32; ++i) {
    const int e = lane + 32 * i;
    if (e < E) {
      const float y = ape ? v[i] + ape[int64_t(p) * E + e] : v[i];
      x[tok * E + e] = y;
      xt[tok * E + e] = from_f<T>(y);
    }
  }
}

template <typename T>
__global__ void final_norm_head_kernel(const T* __restrict__ ex, int64_t row0, int64_t rows, int res, int E,
                                       const float* __restrict__ g, const float* __restrict__ bt,
                                       const float* __restrict__ head, int classes, float* __restrict__ logits) {
  extern __shared__ float wh[];  // [classes, E]
  for (int i = threadIdx.y * 32 + threadIdx.x; i < classes * E; i += blockDim.x * blockDim.y) wh[i] = head[i];
  __syncthreads();
  // One warp per output pixel: token r (relative to row0), sub-pixel k.
  const int64_t item = blockIdx.x * int64_t(blockDim.y) + threadIdx.y;
  if (item >= rows * 16) return;
  const int lane = threadIdx.x;
  const int64_t r = item / 16;
  const int kk = static_cast<int>(item % 16), p1 = kk / 4, p2 = kk % 4;
  const T* src = ex + r * 16 * E + kk * E;
  float v[kMaxE / 32];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kMaxE / 32; ++i) {
    const int e = lane + 32 * i;
    v[i] = e < E ? to_f(src[e]) : 0.f;
    sum += v[i];
  }
  const float mean = warp_sum(sum) / E;
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < kMaxE / 32; ++i) {
    const float dlt = lane + 32 * i < E ? v[i] - mean : 0.f;
    sq += dlt * dlt;
  }
  const float rstd = rsqrtf(warp_sum(sq) / E + 1e-5f);
#pragma unroll
  for (int i = 0; i < kMaxE / 32; ++i) {
    const int e = lane + 32 * i;
    v[i] = e < E ? (v[i] - mean) * rstd * g[e] + bt[e] : 0.f;
  }
  const int64_t tok = row0 + r, tokens = int64_t(res) * res, b = tok / tokens;
  const int p = static_cast<int>(tok - b * tokens), H = 4 * res;
  const int64_t pixel = int64_t(p / res * 4 + p1) * H + p % res * 4 + p2;
  for (int c = 0; c < classes; ++c) {
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxE / 32; ++i) {
      const int e = lane + 32 * i;
      if (e < E) acc += v[i] * wh[c * E + e];
    }
    acc = warp_sum(acc);
    if (lane == 0) logits[(b * classes + c) * int64_t(H) * H + pixel] = acc;
  }
}

}  // namespace

void patch_embed(const float* img, int B, int img_size, int patch, const float* w, const float* bias, int E,
                 const float* ln_g, const float* ln_b, const float* ape, float* x, void* xt, DT t, cudaStream_t s) {
  if (E > kMaxE) throw Error(fmt::format("patch_embed: embed_dim {} exceeds the kernel's {}", E, kMaxE));
  const int64_t tokens = int64_t(B) * (img_size / patch) * (img_size / patch);
  const dim3 block(32, 8);
  const unsigned grid = ceil_div(tokens, 8);
  switch (t) {
    case DT::F32:
      patch_embed_kernel<<<grid, block, 0, s>>>(img, tokens, img_size, patch, w, bias, E, ln_g, ln_b, ape, x,
                                                static_cast<float*>(xt));
      break;
    case DT::F16:
      patch_embed_kernel<<<grid, block, 0, s>>>(img, tokens, img_size, patch, w, bias, E, ln_g, ln_b, ape, x,
                                                static_cast<__half*>(xt));
      break;
    case DT::BF16:
      patch_embed_kernel<<<grid, block, 0, s>>>(img, tokens, img_size, patch, w, bias, E, ln_g, ln_b, ape, x,
                                                static_cast<__nv_bfloat16*>(xt));
      break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void final_norm_head(const void* e, DT t, int64_t row0, int64_t rows, int res, int E, const float* g,
                     const float* b, const float* head, int classes, float* logits, cudaStream_t s) {
  if (E > kMaxE) throw Error(fmt::format("final_norm_head: embed_dim {} exceeds the kernel's {}", E, kMaxE));
  const dim3 block(32, 8);
  const unsigned grid = ceil_div(rows * 16, 8);
  const size_t smem = sizeof(float) * classes * E;
  switch (t) {
    case DT::F32:
      final_norm_head_kernel<<<grid, block, smem, s>>>(static_cast<const float*>(e), row0, rows, res, E, g, b, head,
                                                        classes, logits);
      break;
    case DT::F16:
      final_norm_head_kernel<<<grid, block, smem, s>>>(static_cast<const __half*>(e), row0, rows, res, E, g, b, head,
                                                        classes, logits);
      break;
    case DT::BF16:
      final_norm_head_kernel<<<grid, block, smem, s>>>(static_cast<const __nv_bfloat16*>(e), row0, rows, res, E, g, b,
                                                        head, classes, logits);
      break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
