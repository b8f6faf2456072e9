// linear: nn.Linear as SGEMMs (row-major x . w^T) plus a fused epilogue.
// Threading: the rows are split across the OpenMP threads, each calling a
// single-threaded OpenBLAS; OpenBLAS's own pthread pool would otherwise spin
// against OpenMP's between ops (measured: 2x slower on the 2-core machine).
#include <cblas.h>
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <omp.h>
#include <vector>

#include "ops.h"

namespace swinrt::cpu {

float gelu(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f)); }

namespace {

#ifdef SWINRT_MVEC_ERFF
extern "C" __m256 _ZGVdN8v_erff(__m256);  // glibc libmvec: erff on 8 lanes (AVX2)
#endif

// gelu() over a row; 8 lanes at a time where libmvec has a vector erff (the
// same formula, erf within a few ulp of the scalar one).
void gelu_row(float* row, int N) {
  int n = 0;
#ifdef SWINRT_MVEC_ERFF
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), r2 = _mm256_set1_ps(0.70710678118654752440f);
  for (; n + 8 <= N; n += 8) {
    const __m256 v = _mm256_loadu_ps(row + n);
    const __m256 e = _ZGVdN8v_erff(_mm256_mul_ps(v, r2));
    _mm256_storeu_ps(row + n, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e)));
  }
#endif
  for (; n < N; ++n) row[n] = gelu(row[n]);
}

}  // namespace

void linear(const float* x, int64_t M, int K, const float* w, const float* b, int N, float* y, Epilogue e) {
  if (M == 0) return;
  // Accumulate: let BLAS add into y (beta = 1) and add the bias after.
  const float beta = e == Epilogue::Accumulate ? 1.0f : 0.0f;
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (M + nt - 1) / nt, m0 = std::min(M, t * chunk), m1 = std::min(M, m0 + chunk);
    if (m1 > m0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m1 - m0), N, K, 1.0f, x + m0 * K, K, w, K,
                  beta, y + m0 * N, N);
  }
  if (!b && e != Epilogue::Gelu) return;
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    float* row = y + m * N;
    if (b)
      for (int n = 0; n < N; ++n) row[n] += b[n];
    if (e == Epilogue::Gelu) gelu_row(row, N);
  }
}

}  // namespace swinrt::cpu
