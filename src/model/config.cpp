// Config parsing and validation. The JSON layout is documented in
// docs/FORMATS.md; the rules mirror what the original model code accepts.
#include "swinrt/config.h"

#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "swinrt/error.h"

namespace swinrt {

using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(fmt::format("{}: model config: {}", where, what));
}

int get_int(const json& j, const char* key, int fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number_integer()) fail(where, fmt::format("'{}' must be an integer, got {}", key, v.dump()));
  const long long x = v.get<long long>();
  if (x < 0 || x > (1 << 20)) fail(where, fmt::format("'{}' = {} is out of range", key, x));
  return static_cast<int>(x);
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j.at(key).is_boolean()) fail(where, fmt::format("'{}' must be true or false, got {}", key, j.at(key).dump()));
  return j.at(key).get<bool>();
}

std::vector<int> get_list(const json& j, const char* key, std::vector<int> fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_array()) fail(where, fmt::format("'{}' must be a list of integers, got {}", key, v.dump()));
  std::vector<int> out;
  for (const json& e : v) {
    if (!e.is_number_integer() || e.get<long long>() <= 0 || e.get<long long>() > 4096)
      fail(where, fmt::format("'{}' must hold positive integers, got {}", key, v.dump()));
    out.push_back(e.get<int>());
  }
  return out;
}

}  // namespace

Config Config::from_json(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(where, fmt::format("not valid JSON ({})", e.what()));
  }
  if (!j.is_object()) fail(where, "expected a JSON object");
  Config c;
  c.img_size = get_int(j, "img_size", c.img_size, where);
  c.patch_size = get_int(j, "patch_size", c.patch_size, where);
  c.in_chans = get_int(j, "in_chans", c.in_chans, where);
  c.num_classes = get_int(j, "num_classes", c.num_classes, where);
  c.embed_dim = get_int(j, "embed_dim", c.embed_dim, where);
  c.depths = get_list(j, "depths", c.depths, where);
  c.num_heads = get_list(j, "num_heads", c.num_heads, where);
  c.window_size = get_int(j, "window_size", c.window_size, where);
  if (j.contains("mlp_ratio")) {
    if (!j["mlp_ratio"].is_number()) fail(where, "'mlp_ratio' must be a number");
    c.mlp_ratio = j["mlp_ratio"].get<double>();
  }
  c.qkv_bias = get_bool(j, "qkv_bias", c.qkv_bias, where);
  if (j.contains("qk_scale") && !j["qk_scale"].is_null()) {
    if (!j["qk_scale"].is_number()) fail(where, "'qk_scale' must be a number or null");
    c.qk_scale = j["qk_scale"].get<double>();
  }
  c.ape = get_bool(j, "ape", c.ape, where);
  c.patch_norm = get_bool(j, "patch_norm", c.patch_norm, where);
  if (j.contains("final_upsample") && j["final_upsample"] != "expand_first")
    fail(where, fmt::format("final_upsample {} is not supported (only \"expand_first\", the original's)",
                            j["final_upsample"].dump()));
  c.validate(where);
  return c;
}

std::string Config::to_json() const {
  json j = {{"img_size", img_size},       {"patch_size", patch_size}, {"in_chans", in_chans},
            {"num_classes", num_classes}, {"embed_dim", embed_dim},   {"depths", depths},
            {"num_heads", num_heads},     {"window_size", window_size}, {"mlp_ratio", mlp_ratio},
            {"qkv_bias", qkv_bias},       {"ape", ape},               {"patch_norm", patch_norm},
            {"final_upsample", "expand_first"}};
  j["qk_scale"] = qk_scale ? json(*qk_scale) : json(nullptr);
  return j.dump();
}

void Config::validate(const std::string& where) const {
  if (img_size <= 0 || patch_size <= 0 || in_chans <= 0 || num_classes <= 0 || embed_dim <= 0 || window_size <= 0)
    fail(where, "img_size, patch_size, in_chans, num_classes, embed_dim and window_size must be positive");
  if (img_size % patch_size != 0)
    fail(where, fmt::format("img_size {} is not a multiple of patch_size {}", img_size, patch_size));
  if (depths.size() < 2 || depths.size() > 6) fail(where, "depths must list 2 to 6 stages");
  if (num_heads.size() != depths.size())
    fail(where, fmt::format("num_heads has {} entries, depths {}", num_heads.size(), depths.size()));
  if (!(mlp_ratio > 0 && mlp_ratio <= 64)) fail(where, fmt::format("mlp_ratio {} is out of range", mlp_ratio));
  if (qk_scale && !std::isfinite(*qk_scale)) fail(where, "qk_scale must be finite");
  const int pr = patches_resolution();
  if (pr % (1 << (num_layers() - 1)) != 0)
    fail(where, fmt::format("patch grid {} is not divisible by 2^{} for {} stages", pr, num_layers() - 1, num_layers()));
  for (int s = 0; s < num_layers(); ++s) {
    if (dim(s) % num_heads[s] != 0)
      fail(where, fmt::format("stage {}: dim {} is not divisible by {} heads", s, dim(s), num_heads[s]));
    if (resolution(s) % window(s) != 0)
      fail(where, fmt::format("stage {}: grid {} is not divisible by window {}", s, resolution(s), window(s)));
    if (mlp_hidden(dim(s)) <= 0) fail(where, fmt::format("stage {}: MLP hidden size is zero", s));
  }
}

int Config::window(int s) const { return resolution(s) <= window_size ? resolution(s) : window_size; }

int Config::shift(int s, int block) const {
  if (resolution(s) <= window_size) return 0;
  return block % 2 == 0 ? 0 : window_size / 2;
}

float Config::attn_scale(int s) const {
  if (qk_scale && *qk_scale != 0.0) return static_cast<float>(*qk_scale);  // Python: qk_scale or default
  return static_cast<float>(std::pow(static_cast<double>(dim(s) / num_heads[s]), -0.5));
}

}  // namespace swinrt
