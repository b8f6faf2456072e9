// Random-weight models (see include/swinrt/random.h).
#include "swinrt/random.h"

#include <cmath>
#include <fmt/format.h>
#include <random>

#include "swinrt/error.h"

namespace swinrt {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

Weights random_weights(const Config& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : expected_parameters(c)) {
    Tensor t;
    t.shape = shape;
    t.data.resize(static_cast<size_t>(t.numel()));
    float mean = 0.f, sd = 0.1f;
    const bool is_norm = name.find("norm") != std::string::npos;
    if (ends_with(name, "relative_position_bias_table")) sd = 0.5f;
    else if (is_norm && ends_with(name, ".weight")) mean = 1.f;
    else if (ends_with(name, ".weight") && shape.size() >= 2) {
      int64_t fan_in = 1;
      for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
      sd = 1.f / std::sqrt(static_cast<float>(fan_in));
    }
    for (float& v : t.data) v = mean + sd * nd(rng);
    tensors.emplace(name, std::move(t));
  }
  return Weights(c, std::move(tensors), DType::F32, fmt::format("random weights (seed {})", seed));
}

Config named_config(const std::string& name) {
  Config c;  // defaults: Swin-Unet-T
  if (name == "swin-t") return c;
  if (name == "tiny" || name == "ape") {
    c.img_size = 64;
    c.embed_dim = 24;
    c.num_heads = {1, 2, 4, 8};
    c.window_size = 4;
    c.num_classes = 5;
    if (name == "ape") {
      c.ape = true;
      c.qkv_bias = false;
      c.qk_scale = 0.25;
      c.depths = {2, 1, 2, 2};
    }
    return c;
  }
  if (name == "w8") {
    c.img_size = 256;
    c.embed_dim = 48;
    c.window_size = 8;
    c.num_classes = 4;
    return c;
  }
  // tiny with embed_dim 48 or 64: head dim 48 (the CUDA WMMA attention
  // kernel's shapes) or 64 (the widest of the register-resident attention)
  // at every stage.
  if (name == "hd48" || name == "hd64") {
    c = named_config("tiny");
    c.embed_dim = name == "hd48" ? 48 : 64;
    return c;
  }
  throw Error(fmt::format("unknown model config '{}' (swin-t, tiny, w8, ape, hd48 or hd64)", name));
}

}  // namespace swinrt
