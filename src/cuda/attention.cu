// window_attention: one thread block per (window, head, slice) computes
// softmax(q k^T * scale + bias + mask) v for the window's N = w*w tokens;
// mirror of src/cpu/attention.cpp. The cyclic shift, window partition and
// window reverse are index math on the loads and stores (no copies), the
// relative position bias comes pre-gathered as [heads, N, N], and the shift
// mask (-100 across regions, as the original) is computed from coordinates.
// Traffic: q, k, v of the window read once, the output written once; scores
// live in shared memory, in FP32.
#include "ops.cuh"

namespace swinrt::cuda {

namespace {

__device__ __forceinline__ int region(int v, int res, int window, int shift) {
  return v < res - window ? 0 : (v < res - shift ? 1 : 2);
}

template <typename T>
__global__ void window_attention_kernel(const T* __restrict__ qkv, int res, int C, int heads, int window, int shift,
                                        float scale, const float* __restrict__ bias, T* __restrict__ out) {
  extern __shared__ float smem[];
  const int N = window * window, d = C / heads, dp = d + 1;  // +1: no bank conflicts on column reads
  float* q = smem;
  float* k = q + N * dp;
  float* v = k + N * dp;
  float* S = v + N * dp;
  int* tok = reinterpret_cast<int*>(S + N * N);
  int* reg = tok + N;

  const int nw = res / window, w = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int wy = w / nw, wx = w % nw;
  const int64_t base = int64_t(b) * res * res;
  for (int i = threadIdx.x; i < N; i += blockDim.x) {
    const int ys = wy * window + i / window, xs = wx * window + i % window;
    tok[i] = ((ys + shift) % res) * res + (xs + shift) % res;
    reg[i] = shift > 0 ? region(ys, res, window, shift) * 3 + region(xs, res, window, shift) : 0;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < N * d; idx += blockDim.x) {
    const int i = idx / d, e = idx % d;
    const T* row = qkv + (base + tok[i]) * 3 * C + h * d + e;
    q[i * dp + e] = to_f(row[0]) * scale;
    k[i * dp + e] = to_f(row[C]);
    v[i * dp + e] = to_f(row[2 * C]);
  }
  __syncthreads();
  const float* bh = bias + int64_t(h) * N * N;
  for (int idx = threadIdx.x; idx < N * N; idx += blockDim.x) {
    const int i = idx / N, j = idx % N;
    float acc = 0.f;
    for (int e = 0; e < d; ++e) acc += q[i * dp + e] * k[j * dp + e];
    acc += bh[idx];
    if (reg[i] != reg[j]) acc += -100.0f;
    S[idx] = acc;
  }
  __syncthreads();
  // Softmax: one warp per row.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int i = warp; i < N; i += nwarps) {
    float mx = -INFINITY;
    for (int j = lane; j < N; j += 32) mx = fmaxf(mx, S[i * N + j]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int j = lane; j < N; j += 32) {
      const float e = expf(S[i * N + j] - mx);
      S[i * N + j] = e;
      sum += e;
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < N; j += 32) S[i * N + j] *= inv;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < N * d; idx += blockDim.x) {
    const int i = idx / d, e = idx % d;
    float acc = 0.f;
    for (int j = 0; j < N; ++j) acc += S[i * N + j] * v[j * dp + e];
    out[(base + tok[i]) * C + h * d + e] = from_f<T>(acc);
  }
}

template <typename T>
void launch(const void* qkv, int B, int res, int C, int heads, int window, int shift, float scale, const float* bias,
            void* out, cudaStream_t s) {
  const int N = window * window, d = C / heads;
  const size_t smem = sizeof(float) * (3 * N * (d + 1) + N * N) + sizeof(int) * 2 * N;
  auto kernel = window_attention_kernel<T>;
  if (smem > 48 * 1024)
    SWINRT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid((res / window) * (res / window), heads, B);
  kernel<<<grid, 128, smem, s>>>(static_cast<const T*>(qkv), res, C, heads, window, shift, scale, bias,
                                 static_cast<T*>(out));
}

}  // namespace

void window_attention(const void* qkv, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                      const float* bias, void* out, cudaStream_t s) {
  switch (t) {
    case DT::F32: launch<float>(qkv, B, res, C, heads, window, shift, scale, bias, out, s); break;
    case DT::F16: launch<__half>(qkv, B, res, C, heads, window, shift, scale, bias, out, s); break;
    case DT::BF16: launch<__nv_bfloat16>(qkv, B, res, C, heads, window, shift, scale, bias, out, s); break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
