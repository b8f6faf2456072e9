// Weight loading: a valid file round-trips; every malformed file is refused
// with a message that names the file and the tensor or field at fault.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "swinrt/error.h"
#include "test_util.h"

namespace swinrt {
namespace {

using test::RawTensor;

std::map<std::string, std::string> meta(const Config& c) { return {{"swinrt_format", "1"}, {"config", c.to_json()}}; }

// Expects Weights::load(path) to throw an Error whose message holds every
// fragment in `parts`.
void expect_load_error(const std::string& bytes, const std::string& name, std::vector<std::string> parts) {
  const std::string path = test::temp_path(name);
  test::write_bytes(path, bytes);
  try {
    Weights::load(path);
    FAIL() << name << ": expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << name << ": '" << p << "' not in: " << msg;
  }
}

TEST(Loader, ValidFileRoundTrips) {
  const Config c = test::tiny_config();
  auto tensors = test::random_tensors(c);
  const std::string path = test::temp_path("valid.safetensors");
  test::write_bytes(path, test::safetensors_bytes(tensors, meta(c)));
  Weights w = Weights::load(path);
  EXPECT_EQ(w.config().to_json(), c.to_json());
  EXPECT_EQ(w.stored_dtype(), DType::F32);
  int64_t expected = 0;
  for (const auto& [name, shape] : expected_parameters(c)) {
    const Tensor& t = w.at(name);
    EXPECT_EQ(t.shape, shape) << name;
    ASSERT_EQ(std::memcmp(t.data.data(), tensors[name].bytes.data(), tensors[name].bytes.size()), 0) << name;
    expected += t.numel();
  }
  EXPECT_EQ(w.parameter_count(), expected);
}

TEST(Loader, HalfPrecisionFilesConvertExactly) {
  const Config c = test::tiny_config();
  for (const char* dt : {"F16", "BF16"}) {
    std::map<std::string, RawTensor> tensors;
    std::map<std::string, std::vector<float>> want;
    uint16_t k = 0;
    for (const auto& [name, shape] : expected_parameters(c)) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      std::string bytes;
      for (int64_t i = 0; i < n; ++i, k += 37) {
        uint16_t h = static_cast<uint16_t>(k & 0x3bff);  // finite, |x| < 1 in F16
        if (std::string(dt) == "BF16") h = static_cast<uint16_t>(k & 0x3f7f);
        bytes.append(reinterpret_cast<const char*>(&h), 2);
        want[name].push_back(std::string(dt) == "F16" ? f16_to_f32(h) : bf16_to_f32(h));
      }
      tensors[name] = RawTensor{dt, shape, bytes};
    }
    const std::string path = test::temp_path(std::string("half_") + dt + ".safetensors");
    test::write_bytes(path, test::safetensors_bytes(tensors, meta(c)));
    Weights w = Weights::load(path);
    EXPECT_EQ(std::string(dtype_name(w.stored_dtype())), dt);
    for (const auto& [name, v] : want) EXPECT_EQ(w.at(name).data, v) << name;
  }
}

TEST(Loader, HalfConversionsMatchIeee) {
  // Every F16 value: decode, re-encode, compare bits (NaN payloads quieted).
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "f16 bits " << h;
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(h))), h) << "bf16 bits " << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);          // rounds to inf
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie to even
}

TEST(Loader, RefusesTruncatedFiles) {
  const Config c = test::tiny_config();
  const std::string full = test::safetensors_bytes(test::random_tensors(c), meta(c));
  for (size_t cut : {size_t{0}, size_t{5}, size_t{8}, size_t{40}, full.size() / 2, full.size() - 1}) {
    const std::string path = test::temp_path("truncated.safetensors");
    test::write_bytes(path, full.substr(0, cut));
    EXPECT_THROW(Weights::load(path), Error) << "cut at " << cut;
  }
}

TEST(Loader, RefusesLyingHeaders) {
  const Config c = test::tiny_config();
  auto tensors = test::random_tensors(c);
  nlohmann::json h;
  const std::string good = test::safetensors_bytes(tensors, meta(c), &h);
  const std::string data = good.substr(8 + h.dump().size());
  const std::string victim = "patch_embed.proj.bias";

  std::string huge = good;
  huge[7] = '\x7f';
  expect_load_error(huge, "huge_header.safetensors", {"header length"});
  expect_load_error(std::string("\x05\0\0\0\0\0\0\0{abc}", 13), "not_json.safetensors", {"JSON"});
  expect_load_error(test::header_and_data(nlohmann::json::array(), ""), "array.safetensors", {"object"});

  auto edit = [&](auto f, const char* name, std::vector<std::string> parts) {
    nlohmann::json e = h;
    f(e[victim]);
    expect_load_error(test::header_and_data(e, data), name, parts);
  };
  edit([](auto& t) { t["dtype"] = "I32"; }, "dtype.safetensors", {victim, "I32"});
  edit([](auto& t) { t["data_offsets"][1] = 1u << 30; }, "past_end.safetensors", {victim, "data section"});
  edit([](auto& t) { t["data_offsets"] = {8, 4}; }, "reversed.safetensors", {victim});
  edit([](auto& t) { t["shape"] = {9}; }, "size_mismatch.safetensors", {victim, "needs"});
  edit([](auto& t) { t["shape"] = {-1}; }, "negative.safetensors", {victim, "shape"});
  edit([](auto& t) { t["shape"] = {1ll << 40, 1ll << 40}; }, "overflow.safetensors", {victim, "too large"});
  edit([](auto& t) { t["data_offsets"] = {0, 32}; }, "overlap.safetensors", {"overlap"});
}

TEST(Loader, RefusesTensorsThatDoNotFitTheConfig) {
  const Config c = test::tiny_config();
  {
    auto t = test::random_tensors(c);
    t.erase("layers.1.blocks.0.attn.qkv.weight");
    expect_load_error(test::safetensors_bytes(t, meta(c)), "missing.safetensors",
                      {"missing", "layers.1.blocks.0.attn.qkv.weight", "[48, 16]"});
  }
  {
    auto t = test::random_tensors(c);
    t["layers.0.blocks.0.attn.proj.weight"].shape = {4, 16};
    expect_load_error(test::safetensors_bytes(t, meta(c)), "misshaped.safetensors",
                      {"layers.0.blocks.0.attn.proj.weight", "[4, 16]", "[8, 8]"});
  }
  {
    auto t = test::random_tensors(c);
    t["extra.weight"] = RawTensor{"F32", {1}, test::f32_bytes({1.f})};
    expect_load_error(test::safetensors_bytes(t, meta(c)), "unexpected.safetensors", {"unexpected", "extra.weight"});
  }
  {
    auto t = test::random_tensors(c);
    std::vector<float> v(8, 0.f);
    v[3] = NAN;
    t["norm_up.weight"].bytes = test::f32_bytes(v);
    expect_load_error(test::safetensors_bytes(t, meta(c)), "nan.safetensors", {"norm_up.weight", "NaN"});
  }
  expect_load_error(test::safetensors_bytes(test::random_tensors(c), {}), "no_config.safetensors", {"config"});
  Config bad = c;
  bad.window_size = 3;  // 8x8 grid is not divisible by 3
  expect_load_error(test::safetensors_bytes(test::random_tensors(c), meta(bad)), "bad_config.safetensors",
                    {"window"});
  expect_load_error(test::safetensors_bytes(test::random_tensors(c), {{"config", "{\"depths\": [2, \"x\"]}"}}),
                    "bad_json.safetensors", {"depths"});
  expect_load_error(test::safetensors_bytes(test::random_tensors(c), {{"swinrt_format", "9"}, {"config", c.to_json()}}),
                    "format.safetensors", {"swinrt_format"});
}

TEST(Loader, MissingFileNamesThePath) {
  try {
    Weights::load("/nonexistent/model.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.safetensors"), std::string::npos);
  }
}

}  // namespace
}  // namespace swinrt
