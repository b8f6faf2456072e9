// The layer plan: Swin-Unet as a flat list of steps named as the paper and
// the original checkpoint name them. The CPU and CUDA backends both execute
// this list, op by op; `swinrt info --plan` prints it.
//
// Activations are token-major [B, res*res, dim] throughout, as in PyTorch.
// Every step reads and writes the residual stream `x` in place (changing its
// shape as the paper's layer does) except SaveSkip, which copies x into a
// skip slot, and FinalExpand, which writes the logits [B, classes, H, W].
#pragma once

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

}  // namespace swinrt
