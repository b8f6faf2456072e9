// Head ops: token-major class scores to NCHW logits, and argmax labels.
#include "ops.h"

namespace swinrt::cpu {

void to_nchw(const float* x, int B, int64_t HW, int C, float* out) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) {
      float* o = out + (static_cast<int64_t>(b) * C + c) * HW;
      const float* in = x + static_cast<int64_t>(b) * HW * C + c;
      for (int64_t p = 0; p < HW; ++p) o[p] = in[p * C];
    }
}

void argmax_channels(const float* logits, int B, int C, int64_t HW, int32_t* labels) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int64_t p = 0; p < HW; ++p) {
      const float* l = logits + static_cast<int64_t>(b) * C * HW + p;
      int best = 0;
      for (int c = 1; c < C; ++c)
        if (l[c * HW] > l[best * HW]) best = c;
      labels[static_cast<int64_t>(b) * HW + p] = best;
    }
}

}  // namespace swinrt::cpu
