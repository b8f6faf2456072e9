// linear: nn.Linear as one cuBLASLt matmul with the bias fused in its
// epilogue and the residual add as beta = 1 into the FP32 stream; mirror of
// src/cpu/linear.cpp. Row-major y = x . w^T is column-major y^T = w . x^T,
// so A = w (transposed), B = x. For FP32/TF32 GELU stays a separate exact-erf
// kernel (cuBLASLt's GELU epilogue is the tanh approximation, which would cost
// the FP32 path its 1e-4 match); FP16/BF16 take the epilogue.
#include <cmath>

#include "ops.cuh"

namespace swinrt::cuda {

namespace {

cudaDataType_t cuda_type(DT t) {
  switch (t) {
    case DT::F32: return CUDA_R_32F;
    case DT::F16: return CUDA_R_16F;
    case DT::BF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error(fmt::format("cuBLASLt {} failed: {} ({})", what, cublasGetStatusName(st), cublasGetStatusString(st)));
}

// RAII for the per-call descriptors.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

void linear(const GemmContext& g, const void* x, const void* w, int ldw, DT in, int64_t M, int K, int N,
            const void* bias, void* y, DT out, bool accumulate, cudaStream_t s, bool tanh_gelu) {
  if (M == 0) return;
  const cublasComputeType_t compute =
      in == DT::F32 ? (g.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_32F;
  Descs d;
  lt_check(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F), "MatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
  lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
  if (bias || tanh_gelu) {
    const cublasLtEpilogue_t ep = tanh_gelu ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                            : CUBLASLT_EPILOGUE_BIAS;
    lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)), "EPILOGUE");
    if (bias)
      lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "BIAS");
  }
  lt_check(cublasLtMatrixLayoutCreate(&d.a, cuda_type(in), K, N, ldw), "layout A");
  lt_check(cublasLtMatrixLayoutCreate(&d.b, cuda_type(in), K, M, K), "layout B");
  lt_check(cublasLtMatrixLayoutCreate(&d.c, cuda_type(out), N, M, N), "layout C");
  lt_check(cublasLtMatmulPreferenceCreate(&d.pref), "PreferenceCreate");
  lt_check(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g.workspace_bytes,
                                                sizeof(g.workspace_bytes)),
           "workspace");
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  lt_check(cublasLtMatmulAlgoGetHeuristic(g.handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &heur, &found), "heuristic");
  if (found == 0)
    throw Error(fmt::format("cuBLASLt has no algorithm for a {}x{}x{} matmul", M, N, K));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  lt_check(cublasLtMatmul(g.handle, d.op, &alpha, w, d.a, x, d.b, &beta, y, d.c, y, d.c, &heur.algo, g.workspace,
                          g.workspace_bytes, s),
           "Matmul");
}

namespace {

__device__ __forceinline__ float gelu_f(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f)); }

// 16 bytes per thread per step (8 halves or 4 floats), scalar tail.
template <typename T>
__global__ void gelu_kernel(T* x, int64_t n) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t nvec = n / kVec, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < nvec; i += stride) {
    uint4 raw = reinterpret_cast<uint4*>(x)[i];
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) e[k] = from_f<T>(gelu_f(to_f(e[k])));
    reinterpret_cast<uint4*>(x)[i] = raw;
  }
  for (int64_t i = nvec * kVec + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += stride)
    x[i] = from_f<T>(gelu_f(to_f(x[i])));
}

}  // namespace

void gelu(void* x, DT t, int64_t n, cudaStream_t s) {
  const unsigned blocks = std::min<long long>(ceil_div(n / (16 / dt_size(t)) + 1, 256), 132 * 32);
  switch (t) {
    case DT::F32: gelu_kernel<<<blocks, 256, 0, s>>>(static_cast<float*>(x), n); break;
    case DT::F16: gelu_kernel<<<blocks, 256, 0, s>>>(static_cast<__half*>(x), n); break;
    case DT::BF16: gelu_kernel<<<blocks, 256, 0, s>>>(static_cast<__nv_bfloat16*>(x), n); break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
