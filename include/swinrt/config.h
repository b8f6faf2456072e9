// The Swin-Unet hyper-parameters: the arguments of the original
// SwinTransformerSys, plus the derived per-stage shapes every backend uses.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace swinrt {

struct Config {
  int img_size = 224;
  int patch_size = 4;
  int in_chans = 3;
  int num_classes = 9;
  int embed_dim = 96;
  std::vector<int> depths{2, 2, 2, 2};
  std::vector<int> num_heads{3, 6, 12, 24};
  int window_size = 7;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  std::optional<double> qk_scale;  // default: head_dim ** -0.5
  bool ape = false;
  bool patch_norm = true;

  // Parses the JSON object stored in a weights file's metadata. `where`
  // names the file in error messages. The result is validated.
  static Config from_json(const std::string& json, const std::string& where);
  std::string to_json() const;
  // Throws swinrt::Error naming `where` and the first field that is wrong.
  void validate(const std::string& where) const;

  int num_layers() const { return static_cast<int>(depths.size()); }
  int patches_resolution() const { return img_size / patch_size; }
  // Stage s (0 = highest resolution): token grid side and channel count.
  int resolution(int s) const { return patches_resolution() >> s; }
  int dim(int s) const { return embed_dim << s; }
  // The original clamps the window to the grid and drops the shift when the
  // grid is no larger than the window.
  int window(int s) const;
  int shift(int s, int block) const;
  int mlp_hidden(int d) const { return static_cast<int>(d * mlp_ratio); }
  float attn_scale(int s) const;
};

}  // namespace swinrt
