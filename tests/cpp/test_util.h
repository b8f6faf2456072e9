// Helpers shared by the C++ tests: a tiny safetensors writer and temp files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "swinrt/weights.h"

namespace swinrt::test {

inline std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "swinrt_tests";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct RawTensor {
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::string bytes;
};

// Serialises tensors (in map order) with the given metadata and header edits.
inline std::string safetensors_bytes(const std::map<std::string, RawTensor>& tensors,
                                     const std::map<std::string, std::string>& metadata,
                                     nlohmann::json* header_out = nullptr) {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::string data;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (header_out) *header_out = h;
  const std::string hs = h.dump();
  std::string out(8, '\0');
  uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + hs + data;
}

inline std::string header_and_data(const nlohmann::json& h, const std::string& data) {
  const std::string hs = h.dump();
  std::string out(8, '\0');
  uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + hs + data;
}

inline std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// A small valid config used by the loader tests.
inline Config tiny_config() {
  Config c;
  c.img_size = 32;
  c.patch_size = 4;
  c.embed_dim = 8;
  c.depths = {1, 1};
  c.num_heads = {1, 2};
  c.window_size = 4;
  c.num_classes = 3;
  return c;
}

// Random F32 tensors for every parameter of `c`.
inline std::map<std::string, RawTensor> random_tensors(const Config& c, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.5f);
  std::map<std::string, RawTensor> out;
  for (const auto& [name, shape] : expected_parameters(c)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    out[name] = RawTensor{"F32", shape, f32_bytes(v)};
  }
  return out;
}

}  // namespace swinrt::test
