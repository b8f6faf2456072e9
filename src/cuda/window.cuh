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

// window_token for positions 0..rows-1 of window (wy, wx), spread over the
// block's threads (`stride` of them); positions >= window^2 (padding rows)
// get token 0 and region -1, a region no real key has. The caller syncs.
__device__ __forceinline__ void window_tokens(int wy, int wx, int res, int window, int shift, int rows, int stride,
                                              int* tok, int* reg) {
  const int N = window * window;
  for (int i = threadIdx.x; i < rows; i += stride) {
    if (i < N) {
      window_token(i, wy, wx, res, window, shift, tok[i], reg[i]);
    } else {
      tok[i] = 0;
      reg[i] = -1;
    }
  }
}

// A window's token map and shift-mask bits as window_tokens and
// window_mask_bits (attention.cuh) make them, built once per engine and
// block shape (window_table, attention.cu) for the attention kernel.
struct WindowTable {
  int tok[64];
  unsigned long long mbits[64];
};

}  // namespace swinrt::cuda
