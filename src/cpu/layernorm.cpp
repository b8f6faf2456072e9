// layernorm: nn.LayerNorm over the channel axis; statistics in double so the
// CPU reference is at least as exact as PyTorch's.
#include <cmath>

#include "ops.h"

namespace swinrt::cpu {

void layernorm(const float* x, int64_t rows, int C, const float* g, const float* b, float* y, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * C;
    float* out = y + r * C;
    // Each sum in lanes of doubles, added up at the end: as exact as one chain
    // of doubles (768 floats lose nothing in a double either way), and 4 wide.
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; ++c) sum += in[c];
    const double mean = sum / C;
    double sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int c = 0; c < C; ++c) sq += (in[c] - mean) * (in[c] - mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(sq / C + eps));
    const float m = static_cast<float>(mean);
    for (int c = 0; c < C; ++c) out[c] = (in[c] - m) * rstd * g[c] + b[c];
  }
}

}  // namespace swinrt::cpu
