// Each CPU op (src/cpu/*.cpp) against values computed by the PyTorch
// reference modules: tests/gen_op_cases.py writes one folder per case (its
// parameters in meta.json, tensors as .npy), ctest runs it first (fixture
// op_cases) and points SWINRT_OP_CASES at the folder. A failing case prints
// its folder name, which spells its parameters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cpu/ops.h"
#include "pipeline/npy.h"

namespace swinrt {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string name;
  fs::path dir;
  nlohmann::json meta;
  std::vector<float> operator[](const std::string& t) const { return read_npy((dir / (t + ".npy")).string()).data; }
  int i(const char* k) const { return meta.at(k).get<int>(); }
};

std::vector<Case> cases(const std::string& prefix) {
  const char* root = std::getenv("SWINRT_OP_CASES");
  if (!root) {
    ADD_FAILURE() << "SWINRT_OP_CASES is not set: run through ctest (it generates the cases with "
                     "tests/gen_op_cases.py first)";
    return {};
  }
  std::vector<Case> out;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    std::ifstream f(e.path() / "meta.json");
    out.push_back({n, e.path(), nlohmann::json::parse(f)});
  }
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  EXPECT_FALSE(out.empty()) << "no cases named " << prefix << "* in " << root;
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

TEST(Ops, LayerNorm) {
  for (const Case& c : cases("layernorm_")) {
    SCOPED_TRACE(c.name);
    auto x = c["x"];
    const int C = c.i("C");
    std::vector<float> y(x.size());
    cpu::layernorm(x.data(), static_cast<int64_t>(x.size() / C), C, c["weight"].data(), c["bias"].data(), y.data());
    EXPECT_LE(max_abs_diff(y, c["expected"]), 1e-5);
    cpu::layernorm(x.data(), static_cast<int64_t>(x.size() / C), C, c["weight"].data(), c["bias"].data(), x.data());
    EXPECT_EQ(x, y) << "in place";
  }
}

TEST(Ops, LinearEpilogues) {
  for (const Case& c : cases("linear_")) {
    SCOPED_TRACE(c.name);
    const int M = c.i("M"), K = c.i("K"), N = c.i("N");
    const auto x = c["x"], w = c["weight"], b = c["bias"];
    std::vector<float> y(size_t(M) * N);
    cpu::linear(x.data(), M, K, w.data(), b.data(), N, y.data(), cpu::Epilogue::Store);
    EXPECT_LE(max_abs_diff(y, c["store"]), 1e-5);
    cpu::linear(x.data(), M, K, w.data(), b.data(), N, y.data(), cpu::Epilogue::Gelu);
    EXPECT_LE(max_abs_diff(y, c["gelu"]), 1e-5);
    y = c["y0"];
    cpu::linear(x.data(), M, K, w.data(), b.data(), N, y.data(), cpu::Epilogue::Accumulate);
    EXPECT_LE(max_abs_diff(y, c["accumulate"]), 1e-5);
  }
}

// The attention core alone, then the whole block as the CPU backend composes it.
TEST(Ops, WindowAttentionAndSwinBlock) {
  for (const Case& c : cases("swinblock_")) {
    SCOPED_TRACE(c.name);
    const int B = c.i("B"), res = c.i("res"), C = c.i("dim"), hidden = c.i("hidden");
    const int64_t rows = int64_t(B) * res * res;
    const float scale = c.meta.at("scale").get<float>();
    const auto qkv = c["qkv"], table = c["attn_relative_position_bias_table"];
    std::vector<float> core(rows * C);
    cpu::window_attention(qkv.data(), B, res, C, c.i("heads"), c.i("window"), c.i("shift"), scale, table.data(),
                          core.data());
    EXPECT_LE(max_abs_diff(core, c["core"]), 2e-5);

    auto x = c["x"];
    std::vector<float> t(rows * C), q(rows * 3 * C), att(rows * C), hid(rows * hidden);
    cpu::layernorm(x.data(), rows, C, c["norm1_weight"].data(), c["norm1_bias"].data(), t.data());
    cpu::linear(t.data(), rows, C, c["attn_qkv_weight"].data(), c["attn_qkv_bias"].data(), 3 * C, q.data(),
                cpu::Epilogue::Store);
    cpu::window_attention(q.data(), B, res, C, c.i("heads"), c.i("window"), c.i("shift"), scale, table.data(),
                          att.data());
    cpu::linear(att.data(), rows, C, c["attn_proj_weight"].data(), c["attn_proj_bias"].data(), C, x.data(),
                cpu::Epilogue::Accumulate);
    cpu::layernorm(x.data(), rows, C, c["norm2_weight"].data(), c["norm2_bias"].data(), t.data());
    cpu::linear(t.data(), rows, C, c["mlp_fc1_weight"].data(), c["mlp_fc1_bias"].data(), hidden, hid.data(),
                cpu::Epilogue::Gelu);
    cpu::linear(hid.data(), rows, hidden, c["mlp_fc2_weight"].data(), c["mlp_fc2_bias"].data(), C, x.data(),
                cpu::Epilogue::Accumulate);
    EXPECT_LE(max_abs_diff(x, c["expected"]), 5e-5);
  }
}

TEST(Ops, PatchMerging) {
  for (const Case& c : cases("patch_merging_")) {
    SCOPED_TRACE(c.name);
    const int B = c.i("B"), res = c.i("res"), C = c.i("dim");
    const int64_t rows = int64_t(B) * (res / 2) * (res / 2);
    std::vector<float> g(rows * 4 * C), y(rows * 2 * C);
    cpu::patch_merge_gather(c["x"].data(), B, res, C, g.data());
    cpu::layernorm(g.data(), rows, 4 * C, c["norm_weight"].data(), c["norm_bias"].data(), g.data());
    cpu::linear(g.data(), rows, 4 * C, c["reduction_weight"].data(), nullptr, 2 * C, y.data(), cpu::Epilogue::Store);
    EXPECT_LE(max_abs_diff(y, c["expected"]), 1e-5);
  }
}

TEST(Ops, PatchExpand) {
  for (const Case& c : cases("patch_expand_")) {
    SCOPED_TRACE(c.name);
    const int B = c.i("B"), res = c.i("res"), C = c.i("dim");
    const int64_t rows = int64_t(B) * res * res;
    std::vector<float> e(rows * 2 * C), y(rows * 2 * C);
    cpu::linear(c["x"].data(), rows, C, c["expand_weight"].data(), nullptr, 2 * C, e.data(), cpu::Epilogue::Store);
    cpu::pixel_shuffle(e.data(), B, res, 2, C / 2, y.data());
    cpu::layernorm(y.data(), rows * 4, C / 2, c["norm_weight"].data(), c["norm_bias"].data(), y.data());
    EXPECT_LE(max_abs_diff(y, c["expected"]), 1e-5);
  }
}

TEST(Ops, FinalExpandAndHead) {
  for (const Case& c : cases("final_expand_")) {
    SCOPED_TRACE(c.name);
    const int res = c.i("res"), C = c.i("dim"), K = c.i("classes");
    const int64_t HW = int64_t(16) * res * res;
    std::vector<float> e(HW * C), s(HW * C), h(HW * K), logits(HW * K);
    cpu::linear(c["x"].data(), res * res, C, c["expand_weight"].data(), nullptr, 16 * C, e.data(),
                cpu::Epilogue::Store);
    cpu::pixel_shuffle(e.data(), 1, res, 4, C, s.data());
    cpu::layernorm(s.data(), HW, C, c["norm_weight"].data(), c["norm_bias"].data(), s.data());
    cpu::linear(s.data(), HW, C, c["head_weight"].data(), nullptr, K, h.data(), cpu::Epilogue::Store);
    cpu::to_nchw(h.data(), 1, HW, K, logits.data());
    EXPECT_LE(max_abs_diff(logits, c["expected"]), 1e-5);
    std::vector<int32_t> labels(HW);
    cpu::argmax_channels(logits.data(), 1, K, HW, labels.data());
    const auto ref = c["expected"];
    for (int64_t p = 0; p < HW; ++p) {
      int best = 0;
      for (int k = 1; k < K; ++k)
        if (ref[k * HW + p] > ref[best * HW + p]) best = k;
      ASSERT_EQ(labels[p], best) << "pixel " << p;
    }
  }
}

TEST(Ops, PatchEmbedFoldsTheChannelRepeat) {
  for (const Case& c : cases("patch_embed_")) {
    SCOPED_TRACE(c.name);
    const int B = c.i("B"), S = c.i("img"), p = c.i("patch"), E = c.i("dim");
    const int64_t rows = int64_t(B) * (S / p) * (S / p);
    std::vector<float> y(rows * E);
    cpu::patch_embed(c["img"].data(), B, S, p, c["folded_weight"].data(), c["proj_bias"].data(), E, y.data());
    cpu::layernorm(y.data(), rows, E, c["norm_weight"].data(), c["norm_bias"].data(), y.data());
    EXPECT_LE(max_abs_diff(y, c["expected"]), 1e-5);
  }
}

}  // namespace
}  // namespace swinrt
