// safetensors reader: 8-byte little-endian header length, a JSON header, then
// the data section. Every offset and size in the header is checked against
// the mapped file before a byte of tensor data is touched.
#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swinrt/error.h"

namespace swinrt {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the format's own limit is 100 MB

size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 2; }

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("{}: not a regular file", path));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw Error(fmt::format("{}: {} bytes is too short for a safetensors file (8-byte header length expected)", path, size_));
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(fmt::format("{}: mmap failed ({})", path, std::strerror(errno)));
  }
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    if (n == 0 || n > kMaxHeader || n > size_ - 8)
      throw Error(fmt::format("{}: header length {} does not fit the file of {} bytes", path, n, size_));
    json header;
    try {
      header = json::parse(bytes + 8, bytes + 8 + n);
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: header is not valid JSON ({})", path, e.what()));
    }
    if (!header.is_object()) throw Error(fmt::format("{}: header is not a JSON object", path));
    const std::byte* data = static_cast<const std::byte*>(map_) + 8 + n;
    const uint64_t data_size = size_ - 8 - n;
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) throw Error(fmt::format("{}: __metadata__ is not an object", path));
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string())
            throw Error(fmt::format("{}: __metadata__ value '{}' is not a string", path, m.key()));
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      auto bad = [&](const std::string& what) {
        return Error(fmt::format("{}: tensor '{}': {}", path, name, what));
      };
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw bad("expected an object with dtype, shape and data_offsets");
      const json& dt = v["dtype"];
      SafetensorsEntry e{};
      const std::optional<DType> d = dt.is_string() ? dtype_from_name(dt.get<std::string>()) : std::nullopt;
      if (!d) throw bad(fmt::format("dtype {} is not supported (F32, F16 or BF16 expected)", dt.dump()));
      e.dtype = *d;
      if (!v["shape"].is_array() || v["shape"].size() > 8) throw bad("shape must be a list of at most 8 dimensions");
      uint64_t numel = 1;
      for (const json& d : v["shape"]) {
        if (!d.is_number_unsigned()) throw bad(fmt::format("shape {} holds a non-integer or negative", v["shape"].dump()));
        const uint64_t x = d.get<uint64_t>();
        if (x != 0 && numel > (uint64_t{1} << 40) / x)
          throw bad(fmt::format("shape {} is too large", v["shape"].dump()));
        numel *= x;
        e.shape.push_back(static_cast<int64_t>(x));
      }
      const json& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw bad("data_offsets must be two non-negative integers");
      const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
      if (begin > end || end > data_size)
        throw bad(fmt::format("data_offsets [{}, {}] leave the data section of {} bytes", begin, end, data_size));
      if (end - begin != numel * dtype_size(e.dtype))
        throw bad(fmt::format("data_offsets span {} bytes, shape {} of {} needs {}", end - begin,
                              v["shape"].dump(), dt.get<std::string>(), numel * dtype_size(e.dtype)));
      e.data = data + begin;
      e.nbytes = end - begin;
      spans.emplace_back(begin, end);
      entries_.emplace(name, std::move(e));
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
      if (spans[i].first < spans[i - 1].second)
        throw Error(fmt::format("{}: tensors overlap at byte {} of the data section", path, spans[i].first));
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | ((112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((b >> 16) | 0x40);  // quiet NaN
  b += 0x7fffu + ((b >> 16) & 1);
  return static_cast<uint16_t>(b >> 16);
}

uint16_t f32_to_f16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  const uint32_t a = b & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (a < 0x38800000u) {                         // below 2^-14: subnormal or zero
    if (a < 0x33000001u) return sign;            // <= 2^-25 rounds to zero
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = a + 0xc8000fffu + ((a >> 13) & 1);  // rebias 127->15 and round to nearest even
  return sign | static_cast<uint16_t>(r >> 13);
}

}  // namespace swinrt
