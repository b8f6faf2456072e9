// window_attention: WindowAttention.forward between qkv and proj, for one
// SwinTransformerBlock. The block's torch.roll(-shift), window_partition,
// window_reverse and roll(+shift) become an index map: window position
// (i, j) of window (wy, wx) reads the token at image coordinates
// ((wy*w + i + shift) mod res, (wx*w + j + shift) mod res) and the result is
// written back to the same token. The shift mask is the original's -100 on
// pairs from different regions of the shifted image.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops.h"
#include "swinrt/plan.h"

namespace swinrt::cpu {

namespace {

// Region id (0..8) of a position of the shifted image, as the original's
// three slices per axis assign it.
int region(int ys, int xs, int res, int window, int shift) {
  auto band = [&](int v) { return v < res - window ? 0 : (v < res - shift ? 1 : 2); };
  return band(ys) * 3 + band(xs);
}

}  // namespace

void window_attention(const float* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
                      const float* table, float* out) {
  const int N = window * window, d = C / heads, nw = res / window;
  const std::vector<int> rpi = relative_position_index(window);

#pragma omp parallel
  {
    std::vector<int> token(N), reg(N);
    // k is stored transposed ([d][N]) so the score loop runs over j with no
    // reduction in the inner loop, which the compiler vectorises.
    std::vector<float> q(N * d), kT(d * N), v(N * d), s(N);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int w = 0; w < nw * nw; ++w) {
        const int wy = w / nw, wx = w % nw;
        for (int i = 0; i < N; ++i) {
          const int ys = wy * window + i / window, xs = wx * window + i % window;
          token[i] = ((ys + shift) % res) * res + (xs + shift) % res;
          reg[i] = shift > 0 ? region(ys, xs, res, window, shift) : 0;
        }
        for (int h = 0; h < heads; ++h) {
          for (int i = 0; i < N; ++i) {
            const float* row = qkv + (static_cast<int64_t>(b) * res * res + token[i]) * 3 * C + h * d;
            for (int e = 0; e < d; ++e) {
              q[i * d + e] = row[e] * scale;
              kT[e * N + i] = row[C + e];
              v[i * d + e] = row[2 * C + e];
            }
          }
          for (int i = 0; i < N; ++i) {
            for (int j = 0; j < N; ++j) s[j] = 0.f;
            for (int e = 0; e < d; ++e) {
              const float qe = q[i * d + e];
              const float* kr = kT.data() + e * N;
              for (int j = 0; j < N; ++j) s[j] += qe * kr[j];
            }
            float mx = -INFINITY;
            for (int j = 0; j < N; ++j) {
              float acc = s[j] + table[rpi[i * N + j] * heads + h];
              if (reg[i] != reg[j]) acc += -100.0f;
              s[j] = acc;
              mx = std::max(mx, acc);
            }
            double sum = 0;
            for (int j = 0; j < N; ++j) {
              s[j] = std::exp(s[j] - mx);
              sum += s[j];
            }
            const float inv = static_cast<float>(1.0 / sum);
            float* o = out + (static_cast<int64_t>(b) * res * res + token[i]) * C + h * d;
            for (int e = 0; e < d; ++e) o[e] = 0;
            for (int j = 0; j < N; ++j) {
              const float p = s[j] * inv;
              for (int e = 0; e < d; ++e) o[e] += p * v[j * d + e];
            }
          }
        }
      }
    }
  }
}

}  // namespace swinrt::cpu
