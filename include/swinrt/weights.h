// Model weights: the config plus every parameter as FP32 host memory, read
// from a .safetensors file (docs/FORMATS.md) and checked against the config.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "swinrt/config.h"

namespace swinrt {

enum class DType { F32, F16, BF16 };
const char* dtype_name(DType d);
// The DType of a name dtype_name gives ("F32", "F16", "BF16"); none for others.
std::optional<DType> dtype_from_name(const std::string& name);

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  int64_t numel() const;
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);

// The parameters a Swin-Unet of this config has, in state_dict order, under
// the original names without the wrapper's "swin_unet." prefix.
std::vector<std::pair<std::string, Shape>> expected_parameters(const Config& c);

class Weights {
 public:
  // Reads and checks a .safetensors file; throws swinrt::Error naming the file
  // and the tensor at fault.
  static Weights load(const std::string& path);
  // Checks `tensors` against `config` (same rules as load); `source` names
  // where they came from in error messages.
  Weights(Config config, std::map<std::string, Tensor> tensors, DType stored, std::string source);

  const Config& config() const { return config_; }
  const std::string& source() const { return source_; }
  DType stored_dtype() const { return stored_; }
  const Tensor& at(const std::string& name) const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  int64_t parameter_count() const;

 private:
  Config config_;
  std::map<std::string, Tensor> tensors_;
  DType stored_;
  std::string source_;
};

}  // namespace swinrt
