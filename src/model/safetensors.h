// A bounds-checked, memory-mapped reader of the safetensors container.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "swinrt/weights.h"

namespace swinrt {

struct SafetensorsEntry {
  DType dtype;
  Shape shape;
  const std::byte* data;  // inside the mapping; valid while the file object lives
  size_t nbytes;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, SafetensorsEntry> entries_;
};

// Half-precision bit patterns to float, exact (subnormals, inf and NaN kept).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
uint16_t f32_to_bf16(float f);  // round to nearest even

}  // namespace swinrt
