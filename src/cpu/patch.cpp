// Patch ops: embedding (conv as im2col + GEMM), PatchMerging's 2x2 gather,
// the (p1 p2 c) pixel shuffle of PatchExpand / FinalPatchExpand_X4, and the
// skip concat.
#include <cstring>
#include <vector>

#include "ops.h"

namespace swinrt::cpu {

void patch_embed(const float* img, int B, int img_size, int patch, const float* w, const float* b, int E, float* out) {
  const int g = img_size / patch, pp = patch * patch;
  std::vector<float> cols(static_cast<size_t>(B) * g * g * pp);
#pragma omp parallel for collapse(2) schedule(static)
  for (int bi = 0; bi < B; ++bi)
    for (int py = 0; py < g; ++py)
      for (int px = 0; px < g; ++px) {
        float* col = cols.data() + ((static_cast<int64_t>(bi) * g + py) * g + px) * pp;
        for (int ky = 0; ky < patch; ++ky)
          std::memcpy(col + ky * patch,
                      img + (static_cast<int64_t>(bi) * img_size + py * patch + ky) * img_size + px * patch,
                      sizeof(float) * patch);
      }
  linear(cols.data(), static_cast<int64_t>(B) * g * g, pp, w, b, E, out, Epilogue::Store);
}

void patch_merge_gather(const float* x, int B, int res, int C, float* out) {
  const int h = res / 2;
  static constexpr int kDy[4] = {0, 1, 0, 1}, kDx[4] = {0, 0, 1, 1};  // x0, x1, x2, x3
#pragma omp parallel for collapse(2) schedule(static)
  for (int bi = 0; bi < B; ++bi)
    for (int y = 0; y < h; ++y)
      for (int xx = 0; xx < h; ++xx) {
        float* o = out + ((static_cast<int64_t>(bi) * h + y) * h + xx) * 4 * C;
        for (int k = 0; k < 4; ++k) {
          const float* in = x + ((static_cast<int64_t>(bi) * res + 2 * y + kDy[k]) * res + 2 * xx + kDx[k]) * C;
          std::memcpy(o + k * C, in, sizeof(float) * C);
        }
      }
}

void pixel_shuffle(const float* x, int B, int res, int s, int c, float* out) {
  const int R = res * s;
#pragma omp parallel for collapse(2) schedule(static)
  for (int bi = 0; bi < B; ++bi)
    for (int h = 0; h < res; ++h)
      for (int w = 0; w < res; ++w) {
        const float* in = x + ((static_cast<int64_t>(bi) * res + h) * res + w) * s * s * c;
        for (int p1 = 0; p1 < s; ++p1)
          for (int p2 = 0; p2 < s; ++p2)
            std::memcpy(out + ((static_cast<int64_t>(bi) * R + h * s + p1) * R + w * s + p2) * c,
                        in + (p1 * s + p2) * c, sizeof(float) * c);
      }
}

void concat(const float* a, int Ca, const float* b, int Cb, int64_t rows, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out + r * (Ca + Cb), a + r * Ca, sizeof(float) * Ca);
    std::memcpy(out + r * (Ca + Cb) + Ca, b + r * Cb, sizeof(float) * Cb);
  }
}

}  // namespace swinrt::cpu
