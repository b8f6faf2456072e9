// CPU reference ops: FP32, multithreaded (OpenMP loops, OpenBLAS GEMMs).
// Each op's CUDA twin lives in src/cuda/<same file>.cu, its test in
// tests/cpp/<file>_test.cpp. Activations are token-major [rows, channels].
#pragma once

#include <cstdint>

namespace swinrt::cpu {

// --- linear.cpp ---
enum class Epilogue { Store, Gelu, Accumulate };  // y = r, y = gelu(r), y += r
// r = x[M,K] . w[N,K]^T (+ b[N]); b may be null.
void linear(const float* x, int64_t M, int K, const float* w, const float* b, int N, float* y, Epilogue e);
float gelu(float v);  // exact: 0.5 v (1 + erf(v / sqrt 2))

// --- layernorm.cpp ---
// y = (x - mean) / sqrt(var + eps) * g + b over the last axis; y may equal x.
void layernorm(const float* x, int64_t rows, int C, const float* g, const float* b, float* y, float eps = 1e-5f);

// --- attention.cpp ---
// Shifted-window multi-head attention core of WindowAttention, with the
// cyclic shift, window partition and reverse done as index math.
// qkv: [B, res*res, 3C] (q | k | v, each heads x head_dim), tokens in image
// order; out: [B, res*res, C] in image order. table: [(2w-1)^2, heads].
void window_attention(const float* qkv, int B, int res, int C, int heads, int window, int shift, float scale,
                      const float* table, float* out);

// --- patch.cpp ---
// Conv2d(k = s = patch) of single-channel slices [B, H, W]; w: [E, patch*patch]
// (the wrapper's 3-channel repeat already summed in), out: [B, (H/p)*(W/p), E].
void patch_embed(const float* img, int B, int img_size, int patch, const float* w, const float* b, int E, float* out);
// PatchMerging's gather: [B, res^2, C] -> [B, (res/2)^2, 4C] as cat(x0, x1, x2, x3).
void patch_merge_gather(const float* x, int B, int res, int C, float* out);
// rearrange 'b h w (p1 p2 c) -> b (h p1) (w p2) c': [B, res^2, s*s*c] -> [B, (res*s)^2, c].
void pixel_shuffle(const float* x, int B, int res, int s, int c, float* out);
// cat([a, b], -1): [rows, Ca] + [rows, Cb] -> [rows, Ca + Cb].
void concat(const float* a, int Ca, const float* b, int Cb, int64_t rows, float* out);

// --- head.cpp ---
// Token-major per-pixel class scores [B, H*W, C] -> NCHW logits [B, C, H, W].
void to_nchw(const float* x, int B, int64_t HW, int C, float* out);
// labels[b, p] = argmax_c logits[b, c, p], first maximum on ties (torch.argmax).
void argmax_channels(const float* logits, int B, int C, int64_t HW, int32_t* labels);

}  // namespace swinrt::cpu
