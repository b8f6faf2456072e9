// Weights: load a .safetensors file, convert to FP32, and check every tensor
// against the parameters the config implies.
#include "swinrt/weights.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <set>

#include "safetensors.h"
#include "swinrt/error.h"

namespace swinrt {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

std::optional<DType> dtype_from_name(const std::string& name) {
  for (DType d : {DType::F32, DType::F16, DType::BF16})
    if (name == dtype_name(d)) return d;
  return std::nullopt;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::vector<std::pair<std::string, Shape>> expected_parameters(const Config& c) {
  std::vector<std::pair<std::string, Shape>> p;
  const int64_t E = c.embed_dim, L = c.num_layers();
  auto norm = [&](const std::string& n, int64_t d) {
    p.push_back({n + ".weight", {d}});
    p.push_back({n + ".bias", {d}});
  };
  auto linear = [&](const std::string& n, int64_t in, int64_t out, bool bias) {
    p.push_back({n + ".weight", {out, in}});
    if (bias) p.push_back({n + ".bias", {out}});
  };
  auto blocks = [&](const std::string& layer, int s) {
    const int64_t d = c.dim(s), w = c.window(s), h = c.mlp_hidden(c.dim(s));
    for (int b = 0; b < c.depths[s]; ++b) {
      const std::string n = fmt::format("{}.blocks.{}", layer, b);
      norm(n + ".norm1", d);
      p.push_back({n + ".attn.relative_position_bias_table", {(2 * w - 1) * (2 * w - 1), c.num_heads[s]}});
      linear(n + ".attn.qkv", d, 3 * d, c.qkv_bias);
      linear(n + ".attn.proj", d, d, true);
      norm(n + ".norm2", d);
      linear(n + ".mlp.fc1", d, h, true);
      linear(n + ".mlp.fc2", h, d, true);
    }
  };
  if (c.ape) p.push_back({"absolute_pos_embed", {1, int64_t(c.patches_resolution()) * c.patches_resolution(), E}});
  p.push_back({"patch_embed.proj.weight", {E, c.in_chans, c.patch_size, c.patch_size}});
  p.push_back({"patch_embed.proj.bias", {E}});
  if (c.patch_norm) norm("patch_embed.norm", E);
  for (int s = 0; s < L; ++s) {
    const std::string n = fmt::format("layers.{}", s);
    blocks(n, s);
    if (s < L - 1) {
      linear(n + ".downsample.reduction", 4 * c.dim(s), 2 * c.dim(s), false);
      norm(n + ".downsample.norm", 4 * c.dim(s));
    }
  }
  for (int i = 0; i < L; ++i) {
    const int s = L - 1 - i;
    const int64_t d = c.dim(s);
    if (i == 0) {
      linear("layers_up.0.expand", d, 2 * d, false);
      norm("layers_up.0.norm", d / 2);
      continue;
    }
    const std::string n = fmt::format("layers_up.{}", i);
    blocks(n, s);
    if (i < L - 1) {
      linear(n + ".upsample.expand", d, 2 * d, false);
      norm(n + ".upsample.norm", d / 2);
    }
  }
  for (int i = 1; i < L; ++i) linear(fmt::format("concat_back_dim.{}", i), 2 * c.dim(L - 1 - i), c.dim(L - 1 - i), true);
  norm("norm", c.dim(L - 1));
  norm("norm_up", E);
  linear("up.expand", E, 16 * E, false);
  norm("up.norm", E);
  p.push_back({"output.weight", {c.num_classes, E, 1, 1}});
  return p;
}

Weights::Weights(Config config, std::map<std::string, Tensor> tensors, DType stored, std::string source)
    : config_(std::move(config)), tensors_(std::move(tensors)), stored_(stored), source_(std::move(source)) {
  config_.validate(source_);
  std::set<std::string> expected;
  for (const auto& [name, shape] : expected_parameters(config_)) {
    expected.insert(name);
    auto it = tensors_.find(name);
    if (it == tensors_.end())
      throw Error(fmt::format("{}: missing tensor '{}' (expected shape {} for this config)", source_, name, shape_str(shape)));
    if (it->second.shape != shape)
      throw Error(fmt::format("{}: tensor '{}' has shape {}, the config expects {}", source_, name,
                              shape_str(it->second.shape), shape_str(shape)));
    for (float v : it->second.data)
      if (!std::isfinite(v)) throw Error(fmt::format("{}: tensor '{}' holds NaN or Inf values", source_, name));
  }
  for (const auto& [name, t] : tensors_)
    if (!expected.count(name))
      throw Error(fmt::format("{}: unexpected tensor '{}' of shape {} for this config", source_, name, shape_str(t.shape)));
}

Weights Weights::load(const std::string& path) {
  SafetensorsFile file(path);
  const auto& meta = file.metadata();
  if (auto it = meta.find("swinrt_format"); it != meta.end() && it->second != "1")
    throw Error(fmt::format("{}: swinrt_format '{}' is not supported (expected '1')", path, it->second));
  auto cfg = meta.find("config");
  if (cfg == meta.end())
    throw Error(fmt::format("{}: no 'config' in the metadata; convert the checkpoint with swinrt-convert", path));
  Config config = Config::from_json(cfg->second, path);
  std::map<std::string, Tensor> tensors;
  std::set<DType> dtypes;
  for (const auto& [name, e] : file.entries()) {
    Tensor t;
    t.shape = e.shape;
    const size_t n = e.nbytes / (e.dtype == DType::F32 ? 4 : 2);
    t.data.resize(n);
    if (e.dtype == DType::F32) {
      std::memcpy(t.data.data(), e.data, e.nbytes);
    } else {
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, e.data + 2 * i, 2);
        t.data[i] = e.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
    }
    dtypes.insert(e.dtype);
    tensors.emplace(name, std::move(t));
  }
  const DType stored = dtypes.size() == 1 ? *dtypes.begin() : DType::F32;
  return Weights(std::move(config), std::move(tensors), stored, path);
}

const Tensor& Weights::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(fmt::format("{}: no tensor '{}'", source_, name));
  return it->second;
}

int64_t Weights::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.numel();
  return n;
}

}  // namespace swinrt
