// The layer plan: Swin-Unet as a flat list of steps named as the paper and
// the original checkpoint name them. The CPU and CUDA backends both execute
// this list, op by op; `swinrt info --plan` prints it.
//
// Activations are token-major [B, res*res, dim] throughout, as in PyTorch.
// Every step reads and writes the residual stream `x` in place (changing its
// shape as the paper's layer does) except SaveSkip, which copies x into a
// skip slot, and FinalExpand, which writes the logits [B, classes, H, W].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "swinrt/config.h"

namespace swinrt {

enum class OpKind {
  PatchEmbed,    // conv patch x patch, stride patch (+ LayerNorm) (+ absolute_pos_embed)
  SaveSkip,      // x_downsample[skip] = x
  SwinBlock,     // x += W-MSA/SW-MSA(norm1(x)); x += MLP(norm2(x))
  PatchMerging,  // 2x2 gather -> LayerNorm(4C) -> Linear(4C, 2C)
  LayerNorm,     // x = LayerNorm(x)
  PatchExpand,   // Linear(C, 2C) -> 2x2 pixel shuffle -> LayerNorm(C/2)
  ConcatLinear,  // x = Linear(cat(x, x_downsample[skip]))
  FinalExpand,   // Linear(E, 16E) -> 4x4 pixel shuffle -> LayerNorm(E) -> 1x1 conv head
};
const char* op_name(OpKind op);

struct Step {
  OpKind op;
  std::string name;  // parameter prefix: "layers.0.blocks.1", "concat_back_dim.2", "up"
  int res = 0;       // token grid side of the input
  int dim = 0;       // channels of the input
  int skip = -1;     // SaveSkip, ConcatLinear: the skip slot (= encoder stage)
  // SwinBlock only.
  int heads = 0, window = 0, shift = 0, hidden = 0;
  float scale = 0.f;

  std::string param(const char* suffix) const { return name + "." + suffix; }
  int tokens() const { return res * res; }
};

std::vector<Step> build_plan(const Config& c);

// Helpers both backends use when they bind a plan to weights.
class Weights;
// patch_embed.proj.weight as [embed_dim, patch*patch]: the wrapper feeds a
// 1-channel slice as 3 identical channels, so summing the conv weight over
// input channels once gives the same convolution. Throws for in_chans other
// than 1 or 3 (the only ones the original wrapper accepts for a 1-channel slice).
std::vector<float> folded_patch_weight(const Weights& w);
// relative_position_index of the original WindowAttention: [N*N] indices into
// the (2w-1)^2 bias table, N = w*w.
std::vector<int> relative_position_index(int window);
// Deterministic slices in [0, 1) for benchmarks: [batch, img, img].
std::vector<float> benchmark_slices(int64_t batch, int img);

}  // namespace swinrt
