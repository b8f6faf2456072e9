// Shifted-window geometry shared by the attention kernels and the fused Swin
// block: the cyclic shift and the window partition as index math.
#pragma once

namespace swinrt::cuda {

// Region of a shifted-grid coordinate for the shift mask (the original's
// three slices per axis: [0, res - window), [res - window, res - shift), rest).
__device__ __forceinline__ int window_region(int v, int res, int window, int shift) {
  return v < res - window ? 0 : (v < res - shift ? 1 : 2);
}

// Position i of window (wy, wx): the token (y * res + x) it reads and writes,
// ((wy*window + i/window + shift) mod res, (wx*window + i%window + shift) mod
// res), and its mask region (0 when there is no shift). Tokens of different
// regions see each other through -100 in the scores.
__device__ __forceinline__ void window_token(int i, int wy, int wx, int res, int window, int shift, int& tok,
                                             int& reg) {
  const int ys = wy * window + i / window, xs = wx * window + i % window;
  tok = ((ys + shift) % res) * res + (xs + shift) % res;
  reg = shift > 0 ? window_region(ys, res, window, shift) * 3 + window_region(xs, res, window, shift) : 0;
}

}  // namespace swinrt::cuda
