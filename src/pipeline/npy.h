// NumPy .npy reading and atomic writing (format versions 1.0-3.0, C order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swinrt {

struct NpyArray {
  std::vector<int64_t> shape;
  std::string dtype;         // numpy descr of the file, e.g. "<f4"
  std::vector<float> data;   // floats converted to float32
  std::vector<int64_t> ints; // integer and bool arrays
  bool integer = false;      // true: values are in `ints`, else in `data`
  int64_t numel() const;
};

// Reads a little-endian, C-ordered array of float16/32/64, int8..64,
// uint8..64 or bool. Throws swinrt::Error naming the file and the problem.
NpyArray read_npy(const std::string& path);

// Writes through a temporary file renamed into place at the end, so a failed
// write never leaves a partial file under `path`.
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);
void write_npy_u8(const std::string& path, const std::vector<int64_t>& shape, const uint8_t* data);
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, const int32_t* data);

// Writes `bytes` to `path` atomically (temporary name in the same directory).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace swinrt
