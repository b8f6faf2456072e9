// ONNX import on the committed micro model (tests/fuzz/corpus/, written by
// tests/fuzz/make_corpus.py): four exports of one model (legacy opset 13,
// legacy 17 + onnxsim, dynamo 18, dynamo 18 + onnxslim) give exactly the
// tensors and config of its .safetensors; truncated, corrupt and mutated
// bytes give a swinrt::Error naming the input, never a crash. The full matrix
// against PyTorch exports is tests/python/test_onnx.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "swinrt/error.h"
#include "swinrt/onnx.h"

namespace swinrt {
namespace {

const std::string kCorpus = SWINRT_ONNX_CORPUS;
const std::vector<std::string> kExports = {"micro_legacy13.onnx", "micro_legacy17_onnxsim.onnx",
                                           "micro_dynamo18.onnx", "micro_dynamo18_onnxslim.onnx"};

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// load_onnx_bytes must return or throw swinrt::Error naming the input.
void expect_clean(const std::string& bytes, const std::string& name, bool must_fail) {
  try {
    load_onnx_bytes(bytes.data(), bytes.size(), name);
    EXPECT_FALSE(must_fail) << name << ": expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;
  }
}

class Onnx : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onnx_supported()) GTEST_SKIP() << "built without ONNX support";
  }
};

TEST_F(Onnx, EveryExportGivesTheSafetensorsWeights) {
  const Weights ref = Weights::load(kCorpus + "/micro.safetensors");
  for (const auto& file : kExports) {
    SCOPED_TRACE(file);
    const Weights w = load_onnx(kCorpus + "/" + file);
    EXPECT_EQ(w.config().to_json(), ref.config().to_json());
    ASSERT_EQ(w.tensors().size(), ref.tensors().size());
    for (const auto& [name, t] : ref.tensors()) {
      const Tensor& got = w.at(name);
      EXPECT_EQ(got.shape, t.shape) << name;
      EXPECT_EQ(got.data, t.data) << name;
    }
  }
}

TEST_F(Onnx, TruncatedFilesAreErrors) {
  const std::string bytes = read(kCorpus + "/micro_dynamo18_onnxslim.onnx");
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t cut : {size_t(0), size_t(1), size_t(7), size_t(100), bytes.size() / 4, bytes.size() / 2,
                     bytes.size() - 100, bytes.size() - 1}) {
    SCOPED_TRACE(cut);
    expect_clean(bytes.substr(0, cut), "cut.onnx", true);
  }
  try {
    load_onnx_bytes(bytes.data(), bytes.size() / 2, "half.onnx");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a valid ONNX file"), std::string::npos) << e.what();
  }
}

TEST_F(Onnx, RandomAndMutatedBytesAreErrorsNotCrashes) {
  std::mt19937 rng(5);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  expect_clean(noise, "noise.onnx", true);
  // Single-byte mutations of a valid export: each loads or is refused cleanly.
  const std::string bytes = read(kCorpus + "/micro_dynamo18_onnxslim.onnx");
  for (int k = 0; k < 300; ++k) {
    std::string m = bytes;
    m[rng() % m.size()] = static_cast<char>(rng());
    expect_clean(m, "mutated.onnx", false);
  }
}

TEST_F(Onnx, FileErrorsNameTheFile) {
  try {
    load_onnx("/nonexistent/model.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.onnx: cannot open"), std::string::npos) << e.what();
  }
  // A safetensors file is no ONNX model.
  try {
    load_onnx(kCorpus + "/micro.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("micro.safetensors: not"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace swinrt
