// Plan files: the weight image, its layout per precision, and the .plan
// container (docs/FORMATS.md, "Plans").
#include "swinrt/plan_file.h"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "safetensors.h"
#include "swinrt/error.h"
#include "swinrt/plan.h"

namespace swinrt {

namespace {

constexpr char kMagic[8] = {'S', 'W', 'R', 'T', 'P', 'L', 'A', 'N'};
constexpr size_t kPreamble = 32;  // magic, version, crc32, header bytes, data bytes
constexpr size_t kAlign = 256;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 2; }

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

DType parse_dtype(const std::string& s, const std::string& where) {
  if (const auto d = dtype_from_name(s)) return *d;
  throw Error(fmt::format("{}: unknown dtype '{}'", where, s));
}

// Tensor names, dtypes and shapes of the weight image of `c` at precision `p`,
// in upload order. The single source of the image layout.
std::vector<std::pair<std::string, ImageTensor>> image_layout(const Config& c, Precision p) {
  const DType act = gemm_dtype(p);
  std::vector<std::pair<std::string, ImageTensor>> out;
  std::map<std::string, Shape> shapes;
  for (auto& [name, shape] : expected_parameters(c)) shapes[name] = shape;
  auto add = [&](const std::string& name, DType t, Shape shape) { out.push_back({name, ImageTensor{t, std::move(shape)}}); };
  auto same = [&](const std::string& name, DType t) { add(name, t, shapes.at(name)); };
  auto norm = [&](const std::string& n) {
    same(n + ".weight", DType::F32);
    same(n + ".bias", DType::F32);
  };
  add("patch_embed.proj.weight_folded", DType::F32, {c.embed_dim, int64_t(c.patch_size) * c.patch_size});
  same("patch_embed.proj.bias", DType::F32);
  if (c.patch_norm) norm("patch_embed.norm");
  if (c.ape) same("absolute_pos_embed", DType::F32);
  for (const Step& st : build_plan(c)) {
    switch (st.op) {
      case OpKind::SwinBlock: {
        norm(st.param("norm1"));
        norm(st.param("norm2"));
        same(st.param("attn.qkv.weight"), act);
        if (c.qkv_bias) same(st.param("attn.qkv.bias"), act);
        same(st.param("attn.proj.weight"), act);
        same(st.param("attn.proj.bias"), DType::F32);
        same(st.param("mlp.fc1.weight"), act);
        same(st.param("mlp.fc1.bias"), act);
        same(st.param("mlp.fc2.weight"), act);
        same(st.param("mlp.fc2.bias"), DType::F32);
        const int64_t N = int64_t(st.window) * st.window;
        add(st.param("attn.relative_position_bias"), DType::F32, {st.heads, N, N});
        break;
      }
      case OpKind::PatchMerging:
        norm(st.param("norm"));
        same(st.param("reduction.weight"), act);
        break;
      case OpKind::LayerNorm: norm(st.name); break;
      case OpKind::PatchExpand:
        norm(st.param("norm"));
        same(st.param("expand.weight"), act);
        break;
      case OpKind::ConcatLinear:
        same(st.param("weight"), act);
        same(st.param("bias"), DType::F32);
        break;
      case OpKind::FinalExpand:
        norm(st.param("norm"));
        same(st.param("expand.weight"), act);
        same("output.weight", DType::F32);
        break;
      case OpKind::PatchEmbed:
      case OpKind::SaveSkip: break;
    }
  }
  return out;
}

std::string ends_with_strip(const std::string& s, const std::string& suffix) {
  if (s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0)
    return s.substr(0, s.size() - suffix.size());
  return {};
}

std::string hex(const std::array<uint64_t, 8>& a) {
  std::string s;
  for (uint64_t v : a) s += fmt::format("{:016x}", v);
  return s;
}

std::array<uint64_t, 8> unhex(const std::string& s, const std::string& where) {
  std::array<uint64_t, 8> a{};
  if (s.size() != 128 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw Error(fmt::format("{}: a GEMM algorithm is not 128 hex digits", where));
  for (int i = 0; i < 8; ++i) a[i] = std::stoull(s.substr(16 * i, 16), nullptr, 16);
  return a;
}

uint32_t crc32_of(const std::byte* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
void put(std::vector<std::byte>& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof(T));
}
template <typename T>
T get(const std::vector<std::byte>& in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof(T));
  return v;
}

}  // namespace

DType gemm_dtype(Precision p) {
  switch (p) {
    case Precision::FP16: return DType::F16;
    case Precision::BF16: return DType::BF16;
    default: return DType::F32;
  }
}

const ImageTensor& WeightImage::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error(fmt::format("weight image: no tensor '{}'", name));
  return it->second;
}

std::vector<float> WeightImage::to_f32(const std::string& name) const {
  const ImageTensor& t = at(name);
  const size_t n = static_cast<size_t>(numel(t.shape));
  std::vector<float> out(n);
  const std::byte* src = bytes.data() + t.offset;
  if (t.dtype == DType::F32) {
    std::memcpy(out.data(), src, n * 4);
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = t.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  return out;
}

WeightImage make_weight_image(const Weights& w, Precision p) {
  const Config& c = w.config();
  WeightImage img;
  size_t end = 0;
  auto layout = image_layout(c, p);
  for (auto& [name, t] : layout) {
    t.offset = align_up(end);
    t.bytes = static_cast<size_t>(numel(t.shape)) * dtype_size(t.dtype);
    end = t.offset + t.bytes;
  }
  img.bytes.assign(align_up(end), std::byte{0});
  for (auto& [name, t] : layout) {
    std::vector<float> values;
    if (name == "patch_embed.proj.weight_folded") {
      values = folded_patch_weight(w);
    } else if (std::string block = ends_with_strip(name, ".attn.relative_position_bias"); !block.empty()) {
      const Tensor& table = w.at(block + ".attn.relative_position_bias_table");
      const int heads = static_cast<int>(t.shape[0]), N = static_cast<int>(t.shape[1]);
      const std::vector<int> rpi = relative_position_index(static_cast<int>(std::lround(std::sqrt(N))));
      values.resize(size_t(heads) * N * N);
      for (int h = 0; h < heads; ++h)
        for (int ij = 0; ij < N * N; ++ij) values[size_t(h) * N * N + ij] = table.data[size_t(rpi[ij]) * heads + h];
    } else {
      values = w.at(name).data;
    }
    std::byte* dst = img.bytes.data() + t.offset;
    for (size_t i = 0; i < values.size(); ++i) {
      if (t.dtype == DType::F32) {
        std::memcpy(dst + 4 * i, &values[i], 4);
      } else {
        const uint16_t h = t.dtype == DType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    }
    img.tensors.emplace(name, t);
  }
  return img;
}

PlanFile PlanFile::from_weights(const Weights& w, Precision p, int max_batch) {
  PlanFile plan;
  plan.config = w.config();
  plan.precision = p;
  plan.max_batch = max_batch;
  plan.image = make_weight_image(w, p);
  plan.built_from = w.source();
  plan.source = w.source();
  return plan;
}

void PlanFile::save(const std::string& path) const {
  nlohmann::ordered_json h;
  h["format"] = "swinrt-plan";
  h["format_version"] = kFormatVersion;
  h["config"] = nlohmann::ordered_json::parse(config.to_json());
  h["precision"] = precision_name(precision);
  h["max_batch"] = max_batch;
  h["built_from"] = printable_message(built_from);  // JSON holds UTF-8 only; a path need not be
  h["gpu"] = {{"arch", gpu.arch}, {"name", gpu.name}, {"cublaslt_version", gpu.cublaslt_version}};
  auto& tensors = h["tensors"] = nlohmann::ordered_json::object();
  for (const auto& [name, t] : image.tensors)
    tensors[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"offset", t.offset}, {"bytes", t.bytes}};
  auto& gj = h["gemms"] = nlohmann::ordered_json::array();
  for (const GemmChoice& g : gemms) gj.push_back({{"key", g.key}, {"algo", hex(g.algo)}, {"ms", g.ms}});
  const std::string header = h.dump();

  const size_t data_at = align_up(kPreamble + header.size());
  std::vector<std::byte> head(data_at, std::byte{0});
  std::memcpy(head.data(), kMagic, 8);
  put<uint32_t>(head, 8, kFormatVersion);
  put<uint64_t>(head, 16, header.size());
  put<uint64_t>(head, 24, image.bytes.size());
  std::memcpy(head.data() + kPreamble, header.data(), header.size());
  uLong crc = crc32_of(head.data() + kPreamble, data_at - kPreamble);
  crc = crc32_combine(crc, crc32_of(image.bytes.data(), image.bytes.size()), static_cast<z_off_t>(image.bytes.size()));
  put<uint32_t>(head, 12, static_cast<uint32_t>(crc));

  const std::string tmp = fmt::format("{}.tmp{}", path, ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(fmt::format("{}: cannot write the plan", path));
    f.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
    f.write(reinterpret_cast<const char*>(image.bytes.data()), static_cast<std::streamsize>(image.bytes.size()));
    f.flush();
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      throw Error(fmt::format("{}: writing the plan failed (disk full?)", path));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename {} to it", path, tmp));
  }
}

PlanFile PlanFile::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw Error(fmt::format("{}: cannot open the plan", path));
  const std::streamoff size = f.tellg();
  if (size < static_cast<std::streamoff>(kPreamble))
    throw Error(fmt::format("{}: {} bytes is too short for a swinrt plan (truncated?)", path, size));
  std::vector<std::byte> head(kPreamble);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(head.data()), kPreamble);
  if (std::memcmp(head.data(), kMagic, 8) != 0)
    throw Error(fmt::format("{}: not a swinrt plan (no SWRTPLAN magic); build one with `swinrt build`", path));
  const uint32_t version = get<uint32_t>(head, 8);
  if (version != kFormatVersion)
    throw Error(fmt::format("{}: plan format version {}, this swinrt reads version {}; rebuild the plan with "
                            "`swinrt build`", path, version, kFormatVersion));
  const uint32_t crc_stored = get<uint32_t>(head, 12);
  const uint64_t header_bytes = get<uint64_t>(head, 16), data_bytes = get<uint64_t>(head, 24);
  const uint64_t usize = static_cast<uint64_t>(size);
  if (header_bytes > usize || data_bytes > usize || align_up(kPreamble + header_bytes) + data_bytes != usize)
    throw Error(fmt::format("{}: the plan declares {} header and {} data bytes but the file has {} bytes "
                            "(truncated or corrupt)", path, header_bytes, data_bytes, usize));
  const size_t data_at = align_up(kPreamble + header_bytes);
  std::vector<std::byte> rest(usize - kPreamble);
  f.read(reinterpret_cast<char*>(rest.data()), static_cast<std::streamsize>(rest.size()));
  if (!f) throw Error(fmt::format("{}: read error", path));
  if (crc32_of(rest.data(), rest.size()) != crc_stored)
    throw Error(fmt::format("{}: checksum mismatch: the plan is corrupt", path));

  PlanFile plan;
  plan.source = path;
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(reinterpret_cast<const char*>(rest.data()),
                              reinterpret_cast<const char*>(rest.data()) + header_bytes);
    if (h.value("format", "") != "swinrt-plan") throw Error(fmt::format("{}: header 'format' is not swinrt-plan", path));
    plan.config = Config::from_json(h.at("config").dump(), path);
    plan.precision = parse_precision(h.at("precision").get<std::string>());
    plan.max_batch = h.at("max_batch").get<int>();
    if (plan.max_batch < 1) throw Error(fmt::format("{}: max_batch {} < 1", path, plan.max_batch));
    plan.built_from = h.value("built_from", "");
    const auto& g = h.at("gpu");
    plan.gpu = {g.at("arch").get<std::string>(), g.at("name").get<std::string>(), g.at("cublaslt_version").get<int>()};
    for (const auto& gj : h.at("gemms"))
      plan.gemms.push_back({gj.at("key").get<std::string>(), unhex(gj.at("algo").get<std::string>(), path),
                            gj.at("ms").get<double>()});
    // Every tensor the layout asks for, with its dtype and shape, inside the data.
    const auto& tj = h.at("tensors");
    for (auto& [name, want] : image_layout(plan.config, plan.precision)) {
      if (!tj.contains(name)) throw Error(fmt::format("{}: tensor '{}' is missing", path, name));
      const auto& e = tj.at(name);
      ImageTensor t{parse_dtype(e.at("dtype").get<std::string>(), path), e.at("shape").get<Shape>(),
                    e.at("offset").get<size_t>(), e.at("bytes").get<size_t>()};
      if (t.dtype != want.dtype || t.shape != want.shape)
        throw Error(fmt::format("{}: tensor '{}' is {} {}, the config and precision expect {} {}", path, name,
                                dtype_name(t.dtype), shape_str(t.shape), dtype_name(want.dtype), shape_str(want.shape)));
      if (t.bytes != static_cast<size_t>(numel(t.shape)) * dtype_size(t.dtype) || t.offset % kAlign != 0 ||
          t.offset > data_bytes || t.bytes > data_bytes - t.offset)
        throw Error(fmt::format("{}: tensor '{}' has a bad extent (offset {}, {} bytes, data {} bytes)", path, name,
                                t.offset, t.bytes, data_bytes));
      plan.image.tensors.emplace(name, std::move(t));
    }
    if (tj.size() != plan.image.tensors.size())
      throw Error(fmt::format("{}: {} tensors, the config expects {}", path, tj.size(), plan.image.tensors.size()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: malformed plan header: {}", path, e.what()));
  } catch (const std::invalid_argument&) {
    throw Error(fmt::format("{}: malformed plan header", path));
  }
  rest.erase(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(data_at - kPreamble));
  plan.image.bytes = std::move(rest);
  return plan;
}

Weights PlanFile::to_weights() const {
  Config c = config;
  c.in_chans = 1;  // the patch weight is stored folded over the repeated channels
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : expected_parameters(c)) {
    Tensor t;
    t.shape = shape;
    if (name == "patch_embed.proj.weight") {
      t.data = image.to_f32("patch_embed.proj.weight_folded");
    } else if (std::string block = ends_with_strip(name, ".attn.relative_position_bias_table"); !block.empty()) {
      const std::vector<float> bias = image.to_f32(block + ".attn.relative_position_bias");
      const ImageTensor& bt = image.at(block + ".attn.relative_position_bias");
      const int heads = static_cast<int>(bt.shape[0]), N = static_cast<int>(bt.shape[1]);
      const std::vector<int> rpi = relative_position_index(static_cast<int>(std::lround(std::sqrt(N))));
      t.data.assign(static_cast<size_t>(numel(shape)), 0.f);
      for (int h = 0; h < heads; ++h)
        for (int ij = 0; ij < N * N; ++ij) t.data[size_t(rpi[ij]) * heads + h] = bias[size_t(h) * N * N + ij];
    } else {
      t.data = image.to_f32(name);
    }
    if (static_cast<int64_t>(t.data.size()) != numel(shape))
      throw Error(fmt::format("{}: tensor '{}' has {} values, expected {}", source, name, t.data.size(), numel(shape)));
    tensors.emplace(name, std::move(t));
  }
  return Weights(std::move(c), std::move(tensors), gemm_dtype(precision), source);
}

}  // namespace swinrt
