// A built plan (.plan, `swinrt build`): one model's weights already arranged
// and converted for one precision, the GEMM algorithms chosen for them on the
// GPU, and that GPU's architecture, in one versioned, checksummed file
// (docs/FORMATS.md). Engine::create takes a plan as it takes weights.
//
//   PlanFile p = PlanFile::from_weights(Weights::load("m.safetensors"), Precision::FP16, 32);
//   p.gemms = tuned_engine->gemm_choices();   // when built on a GPU
//   p.save("m.plan");
//   auto e = Engine::create(PlanFile::load("m.plan"), {.device = Device::Cuda});
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "swinrt/config.h"
#include "swinrt/engine.h"
#include "swinrt/weights.h"

namespace swinrt {

// One tensor of a weight image: dtype, shape, and where its bytes are.
struct ImageTensor {
  DType dtype = DType::F32;
  Shape shape;
  size_t offset = 0, bytes = 0;
};

// The weights as the engines consume them: every tensor 256-byte aligned in
// one buffer (one upload), GEMM operands in the precision's dtype, LayerNorm
// and the FP32 stream's biases in FP32, and two tensors re-arranged from the
// checkpoint's: `patch_embed.proj.weight_folded` [E, p*p] (the wrapper's
// channel repeat summed in) and `<block>.attn.relative_position_bias`
// [heads, N, N] (the table gathered by relative_position_index).
struct WeightImage {
  std::vector<std::byte> bytes;
  std::map<std::string, ImageTensor> tensors;

  // Throws swinrt::Error when `name` is absent.
  const ImageTensor& at(const std::string& name) const;
  const std::byte* data(const std::string& name) const { return bytes.data() + at(name).offset; }
  std::vector<float> to_f32(const std::string& name) const;
};

// The activation (GEMM operand) dtype of a precision.
DType gemm_dtype(Precision p);
WeightImage make_weight_image(const Weights& w, Precision p);

class PlanFile {
 public:
  static constexpr uint32_t kFormatVersion = 1;

  Config config;
  Precision precision = Precision::FP32;
  int max_batch = 1;
  GpuTarget gpu;
  std::vector<GemmChoice> gemms;
  WeightImage image;
  std::string source;  // the file it was read from (error messages)
  std::string built_from;  // the weights or ONNX file it was built from

  static PlanFile from_weights(const Weights& w, Precision p, int max_batch);

  // Writes atomically (temporary name, then rename).
  void save(const std::string& path) const;
  // Reads and checks magic, format version, checksum and every tensor's
  // extent; throws swinrt::Error naming the file and what is wrong.
  static PlanFile load(const std::string& path);

  // FP32 weights with the plan's values (for the CPU backend): the folded
  // patch weight as a 1-channel conv, each bias table recovered from the
  // gathered bias.
  Weights to_weights() const;
};

}  // namespace swinrt
