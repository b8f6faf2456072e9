// build_plan: the forward of the original SwinTransformerSys, step by step
// (forward_features, forward_up_features, up_x4).
#include "swinrt/plan.h"

#include <fmt/format.h>

#include "swinrt/error.h"
#include "swinrt/weights.h"

namespace swinrt {

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::PatchEmbed: return "PatchEmbed";
    case OpKind::SaveSkip: return "SaveSkip";
    case OpKind::SwinBlock: return "SwinTransformerBlock";
    case OpKind::PatchMerging: return "PatchMerging";
    case OpKind::LayerNorm: return "LayerNorm";
    case OpKind::PatchExpand: return "PatchExpand";
    case OpKind::ConcatLinear: return "ConcatLinear";
    case OpKind::FinalExpand: return "FinalPatchExpand_X4";
  }
  return "?";
}

std::vector<Step> build_plan(const Config& c) {
  std::vector<Step> plan;
  const int L = c.num_layers();
  auto add = [&](OpKind op, std::string name, int s) -> Step& {
    Step st{op, std::move(name)};
    st.res = c.resolution(s);
    st.dim = c.dim(s);
    plan.push_back(st);
    return plan.back();
  };
  auto blocks = [&](const std::string& layer, int s) {
    for (int b = 0; b < c.depths[s]; ++b) {
      Step& st = add(OpKind::SwinBlock, fmt::format("{}.blocks.{}", layer, b), s);
      st.heads = c.num_heads[s];
      st.window = c.window(s);
      st.shift = c.shift(s, b);
      st.hidden = c.mlp_hidden(c.dim(s));
      st.scale = c.attn_scale(s);
    }
  };

  add(OpKind::PatchEmbed, "patch_embed", 0);
  for (int s = 0; s < L; ++s) {
    // x_downsample[s] is the input of encoder layer s; the deepest is unused.
    if (s < L - 1) add(OpKind::SaveSkip, fmt::format("x_downsample.{}", s), s).skip = s;
    blocks(fmt::format("layers.{}", s), s);
    if (s < L - 1) add(OpKind::PatchMerging, fmt::format("layers.{}.downsample", s), s);
  }
  add(OpKind::LayerNorm, "norm", L - 1);
  add(OpKind::PatchExpand, "layers_up.0", L - 1);
  for (int i = 1; i < L; ++i) {
    const int s = L - 1 - i;
    add(OpKind::ConcatLinear, fmt::format("concat_back_dim.{}", i), s).skip = s;
    blocks(fmt::format("layers_up.{}", i), s);
    if (i < L - 1) add(OpKind::PatchExpand, fmt::format("layers_up.{}.upsample", i), s);
  }
  add(OpKind::LayerNorm, "norm_up", 0);
  add(OpKind::FinalExpand, "up", 0);
  return plan;
}

std::vector<float> folded_patch_weight(const Weights& w) {
  const Config& c = w.config();
  if (c.in_chans != 1 && c.in_chans != 3)
    throw Error(fmt::format("{}: in_chans = {}: swinrt runs single-channel slices, which the original wrapper "
                            "only accepts for in_chans 1 or 3", w.source(), c.in_chans));
  const Tensor& t = w.at("patch_embed.proj.weight");
  const int pp = c.patch_size * c.patch_size;
  std::vector<float> out(static_cast<size_t>(c.embed_dim) * pp, 0.f);
  for (int e = 0; e < c.embed_dim; ++e)
    for (int ch = 0; ch < c.in_chans; ++ch)
      for (int k = 0; k < pp; ++k) out[e * pp + k] += t.data[(e * c.in_chans + ch) * pp + k];
  return out;
}

std::vector<int> relative_position_index(int window) {
  const int N = window * window, span = 2 * window - 1;
  std::vector<int> rpi(static_cast<size_t>(N) * N);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j)
      rpi[i * N + j] = (i / window - j / window + window - 1) * span + (i % window - j % window + window - 1);
  return rpi;
}

std::vector<float> benchmark_slices(int64_t batch, int img) {
  std::vector<float> in(static_cast<size_t>(batch * img * img));
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f;
  return in;
}

}  // namespace swinrt
