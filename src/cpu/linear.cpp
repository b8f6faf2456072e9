// linear: nn.Linear as one SGEMM (row-major x . w^T) plus a fused epilogue.
#include <cblas.h>
#include <cmath>
#include <vector>

#include "ops.h"

namespace swinrt::cpu {

float gelu(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f)); }

void linear(const float* x, int64_t M, int K, const float* w, const float* b, int N, float* y, Epilogue e) {
  if (M == 0) return;
  // Accumulate: let BLAS add into y (beta = 1) and add the bias after.
  const float beta = e == Epilogue::Accumulate ? 1.0f : 0.0f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), N, K, 1.0f, x, K, w, K, beta, y, N);
  if (!b && e != Epilogue::Gelu) return;
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    float* row = y + m * N;
    if (b)
      for (int n = 0; n < N; ++n) row[n] += b[n];
    if (e == Epilogue::Gelu)
      for (int n = 0; n < N; ++n) row[n] = gelu(row[n]);
  }
}

}  // namespace swinrt::cpu
