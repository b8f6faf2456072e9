// .npy: magic "\x93NUMPY", version, header length, a Python-dict header
// ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }), raw data.
#include "npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

#include "../model/safetensors.h"
#include "swinrt/error.h"

namespace swinrt {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  const std::regex re("'" + key + R"('\s*:\s*('[^']*'|True|False|\([^)]*\)))");
  std::smatch m;
  if (!std::regex_search(header, m, re)) throw Error(fmt::format("{}: .npy header lacks '{}'", path, key));
  return m[1].str();
}

template <typename T>
T load_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw Error(fmt::format("{}: not a .npy file (magic \\x93NUMPY expected)", path));
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(fmt::format("{}: truncated .npy header", path));
    hlen = load_le<uint32_t>(bytes.data() + 8);
    hstart = 12;
  } else {
    throw Error(fmt::format("{}: .npy version {} is not supported", path, major));
  }
  if (hstart + hlen > bytes.size()) throw Error(fmt::format("{}: truncated .npy header", path));
  const std::string header = bytes.substr(hstart, hlen);
  NpyArray a;
  std::string descr = header_field(header, "descr", path);
  a.dtype = descr.substr(1, descr.size() - 2);
  if (header_field(header, "fortran_order", path) != "False")
    throw Error(fmt::format("{}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)", path));
  const std::string shape = header_field(header, "shape", path);
  std::stringstream ss(shape.substr(1, shape.size() - 2));
  for (std::string tok; std::getline(ss, tok, ',');) {
    tok.erase(0, tok.find_first_not_of(" \t"));
    tok.erase(tok.find_last_not_of(" \tL") + 1);
    if (tok.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > (1ll << 40)) throw Error(fmt::format("{}: bad .npy shape {}", path, shape));
    a.shape.push_back(v);
  }
  const std::string& dt = a.dtype;
  if (dt.size() < 2 || (dt[0] == '>' && dt != ">i1" && dt != ">u1"))
    throw Error(fmt::format("{}: dtype '{}' is not supported (little-endian numbers expected)", path, dt));
  const char kind = dt[1];
  const int size = std::atoi(dt.c_str() + 2);
  const bool ok = (kind == 'f' && (size == 2 || size == 4 || size == 8)) ||
                  ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
                  (kind == 'b' && size == 1);
  if (!ok) throw Error(fmt::format("{}: dtype '{}' is not supported (float or integer expected)", path, dt));
  int64_t n = 1;
  for (int64_t d : a.shape) {
    if (d != 0 && n > (int64_t{1} << 40) / d) throw Error(fmt::format("{}: shape {} is too large", path, shape));
    n *= d;
  }
  const size_t need = static_cast<size_t>(n) * size, have = bytes.size() - hstart - hlen;
  if (have < need)
    throw Error(fmt::format("{}: truncated: shape {} of {} needs {} data bytes, the file has {}", path, shape, dt, need, have));
  const char* p = bytes.data() + hstart + hlen;
  if (kind == 'f') {
    a.data.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const char* q = p + i * size;
      a.data[i] = size == 4 ? load_le<float>(q) : size == 8 ? static_cast<float>(load_le<double>(q)) : f16_to_f32(load_le<uint16_t>(q));
    }
  } else {
    a.integer = true;
    a.ints.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const char* q = p + i * size;
      int64_t v = 0;
      if (kind == 'i') v = size == 1 ? load_le<int8_t>(q) : size == 2 ? load_le<int16_t>(q) : size == 4 ? load_le<int32_t>(q) : load_le<int64_t>(q);
      else v = size == 1 ? load_le<uint8_t>(q) : size == 2 ? load_le<uint16_t>(q) : size == 4 ? load_le<uint32_t>(q) : static_cast<int64_t>(load_le<uint64_t>(q));
      a.ints[i] = v;
    }
  }
  return a;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = fmt::format("{}.tmp{}", path, static_cast<long>(::getpid()));
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(fmt::format("{}: cannot write ({})", path, std::strerror(errno)));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: write failed ({})", path, why));
  }
}

namespace {

void write_npy(const std::string& path, const char* descr, const std::vector<int64_t>& shape, const void* data,
               size_t elem) {
  std::string dims;
  int64_t n = 1;
  for (int64_t d : shape) {
    dims += fmt::format("{}, ", d);
    n *= d;
  }
  if (shape.size() > 1) dims.erase(dims.size() - 2);
  else if (shape.size() == 1) dims.erase(dims.size() - 1);
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(static_cast<const char*>(data), static_cast<size_t>(n) * elem);
  write_file_atomic(path, out);
}

}  // namespace

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  write_npy(path, "<f4", shape, data, 4);
}
void write_npy_u8(const std::string& path, const std::vector<int64_t>& shape, const uint8_t* data) {
  write_npy(path, "|u1", shape, data, 1);
}
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, const int32_t* data) {
  write_npy(path, "<i4", shape, data, 4);
}

}  // namespace swinrt
