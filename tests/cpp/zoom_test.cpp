// Zoom2D against an independent statement of what scipy.ndimage.zoom
// computes: B-spline coefficients by a direct tridiagonal solve of the
// mirror-boundary interpolation conditions (instead of the recursive filter),
// the cubic B-spline kernel evaluated directly, taps mirrored at the borders,
// and cval 0 past the last sample. tests/python/test_pipeline.py compares
// with scipy itself.
#include <gtest/gtest.h>

#include <cmath>
#include <fmt/format.h>
#include <random>
#include <vector>

#include "pipeline/zoom.h"
#include "swinrt/error.h"

namespace swinrt {
namespace {

// Solves (c[i-1] + 4 c[i] + c[i+1]) / 6 = f[i] with the mirror extension
// c[-1] = c[1], c[n] = c[n-2] (Thomas algorithm on the 2-corner system).
std::vector<double> spline_coefficients(const std::vector<double>& f) {
  const size_t n = f.size();
  if (n == 1) return f;
  // Row i: a[i] c[i-1] + b[i] c[i] + u[i] c[i+1] = 6 f[i].
  std::vector<double> a(n, 1.0), b(n, 4.0), u(n, 1.0), d(n);
  for (size_t i = 0; i < n; ++i) d[i] = 6.0 * f[i];
  u[0] = 2.0;       // c[-1] = c[1]
  a[n - 1] = 2.0;   // c[n] = c[n-2]
  for (size_t i = 1; i < n; ++i) {
    const double m = a[i] / b[i - 1];
    b[i] -= m * u[i - 1];
    d[i] -= m * d[i - 1];
  }
  std::vector<double> c(n);
  c[n - 1] = d[n - 1] / b[n - 1];
  for (size_t i = n - 1; i-- > 0;) c[i] = (d[i] - u[i] * c[i + 1]) / b[i];
  return c;
}

double bspline3(double x) {
  x = std::fabs(x);
  if (x < 1.0) return (4.0 - 6.0 * x * x + 3.0 * x * x * x) / 6.0;
  if (x < 2.0) return (2.0 - x) * (2.0 - x) * (2.0 - x) / 6.0;
  return 0.0;
}

int64_t mirror(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// The reference: separable by construction (coefficients along axis 0, then
// axis 1), evaluation as a double sum over the 4x4 support.
std::vector<float> reference_zoom3(const std::vector<float>& in, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  std::vector<double> coef(in.begin(), in.end());
  for (int64_t j = 0; j < W; ++j) {
    std::vector<double> col(H);
    for (int64_t i = 0; i < H; ++i) col[i] = coef[i * W + j];
    col = spline_coefficients(col);
    for (int64_t i = 0; i < H; ++i) coef[i * W + j] = col[i];
  }
  for (int64_t i = 0; i < H; ++i) {
    std::vector<double> row(coef.begin() + i * W, coef.begin() + (i + 1) * W);
    row = spline_coefficients(row);
    std::copy(row.begin(), row.end(), coef.begin() + i * W);
  }
  auto coord = [](int64_t k, int64_t n_in, int64_t n_out) {
    return n_out > 1 ? double(k) * (double(n_in - 1) / double(n_out - 1)) : 0.0;
  };
  std::vector<float> out(static_cast<size_t>(OH * OW));
  for (int64_t r = 0; r < OH; ++r)
    for (int64_t c = 0; c < OW; ++c) {
      const double y = coord(r, H, OH), x = coord(c, W, OW);
      if (y > double(H - 1) || x > double(W - 1)) continue;  // cval
      double t = 0.0;
      for (int64_t i = int64_t(std::floor(y)) - 1; i <= int64_t(std::floor(y)) + 2; ++i)
        for (int64_t j = int64_t(std::floor(x)) - 1; j <= int64_t(std::floor(x)) + 2; ++j)
          t += coef[mirror(i, H) * W + mirror(j, W)] * bspline3(y - double(i)) * bspline3(x - double(j));
      out[r * OW + c] = static_cast<float>(t);
    }
  return out;
}

struct ZoomCase {
  int64_t h, w, oh, ow;
};

class Zoom3 : public ::testing::TestWithParam<ZoomCase> {};

TEST_P(Zoom3, MatchesDirectSplineEvaluation) {
  const ZoomCase z = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(z.h * 1000 + z.w));
  std::uniform_real_distribution<float> u(-200.f, 300.f);
  std::vector<float> in(static_cast<size_t>(z.h * z.w));
  for (float& v : in) v = u(rng);
  const std::vector<float> ref = reference_zoom3(in, z.h, z.w, z.oh, z.ow);
  std::vector<float> out(static_cast<size_t>(z.oh * z.ow));
  Zoom2D(z.h, z.w, z.oh, z.ow, 3).apply(in.data(), out.data());
  double worst = 0;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(double(out[i]) - double(ref[i])));
  // float32 outputs of magnitude <= ~500: a few float ulps at most.
  EXPECT_LT(worst, 2e-4) << fmt::format("{}x{} -> {}x{}", z.h, z.w, z.oh, z.ow);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Zoom3,
                         ::testing::Values(ZoomCase{64, 64, 28, 28}, ZoomCase{40, 30, 28, 28}, ZoomCase{20, 20, 56, 56},
                                           ZoomCase{28, 17, 28, 28}, ZoomCase{32, 32, 224, 224},
                                           ZoomCase{1, 9, 4, 5}, ZoomCase{9, 1, 4, 5}, ZoomCase{2, 3, 7, 7},
                                           ZoomCase{7, 7, 1, 1}),
                         [](const ::testing::TestParamInfo<ZoomCase>& i) {
                           return fmt::format("{}x{}_to_{}x{}", i.param.h, i.param.w, i.param.oh, i.param.ow);
                         });

TEST(Zoom, ConstantStaysConstantInside) {
  const int64_t H = 50, W = 37;
  std::vector<float> in(H * W, 7.25f), out(28 * 28);
  Zoom2D(H, W, 28, 28, 3).apply(in.data(), out.data());
  for (float v : out) EXPECT_NEAR(v, 7.25f, 1e-5f);
}

TEST(Zoom, LastSamplePastTheEndIsZero) {
  // 31 * (31/223) * 223 rounds above 31 in double: scipy's last row and
  // column of zoom(32x32 -> 224x224) are cval, and so are ours.
  ASSERT_GT(223.0 * (31.0 / 223.0), 31.0);
  std::vector<float> in(32 * 32, 1.0f), out(224 * 224);
  Zoom2D(32, 32, 224, 224, 3).apply(in.data(), out.data());
  for (int64_t k = 0; k < 224; ++k) {
    EXPECT_EQ(out[223 * 224 + k], 0.0f);
    EXPECT_EQ(out[k * 224 + 223], 0.0f);
  }
  EXPECT_NEAR(out[222 * 224 + 222], 1.0f, 1e-6f);
}

TEST(Zoom, EqualShapesCopy) {
  std::vector<float> in(30 * 20);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i) * 0.5f;
  std::vector<float> out(in.size());
  Zoom2D(30, 20, 30, 20, 3).apply(in.data(), out.data());
  EXPECT_EQ(in, out);
}

TEST(Zoom, OneAxisUnchangedIsStillFiltered) {
  // zoom(slice, (1.0, S/y)) is not the early exit: the spline along the
  // unchanged axis reproduces the samples to rounding only.
  const int64_t H = 16, W = 24;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> in(H * W);
  for (float& v : in) v = u(rng);
  std::vector<float> out(H * 12);
  Zoom2D(H, W, H, 12, 3).apply(in.data(), out.data());
  const std::vector<float> ref = reference_zoom3(in, H, W, H, 12);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-6f);
}

TEST(Zoom, NearestLabels) {
  // Order 0 picks input index floor(k * (in-1)/(out-1) + 0.5); labels are
  // copied exactly, never interpolated.
  const int64_t H = 7, W = 5, OH = 13, OW = 3;
  std::vector<int32_t> in(H * W);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int32_t>(1000 + i);
  std::vector<int32_t> out(OH * OW);
  Zoom2D(H, W, OH, OW, 0).apply(in.data(), out.data());
  for (int64_t r = 0; r < OH; ++r)
    for (int64_t c = 0; c < OW; ++c) {
      const int64_t i = static_cast<int64_t>(std::floor(double(r) * (6.0 / 12.0) + 0.5));
      const int64_t j = static_cast<int64_t>(std::floor(double(c) * (4.0 / 2.0) + 0.5));
      EXPECT_EQ(out[r * OW + c], in[i * W + j]) << r << "," << c;
    }
  // Downsampling 64 -> 24: the last row and column fall past the end (cval 0).
  std::vector<int32_t> ones(64 * 64, 3), small(24 * 24);
  Zoom2D(64, 64, 24, 24, 0).apply(ones.data(), small.data());
  EXPECT_EQ(small[23 * 24 + 5], 0);
  EXPECT_EQ(small[5 * 24 + 23], 0);
  EXPECT_EQ(small[22 * 24 + 22], 3);
}

TEST(Zoom, ManySlicesEqualOneByOne) {
  const int64_t B = 5, H = 41, W = 23, OH = 28, OW = 28;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> in(B * H * W), many(B * OH * OW), one(OH * OW);
  for (float& v : in) v = u(rng);
  const Zoom2D z(H, W, OH, OW, 3);
  z.apply_many(B, in.data(), many.data());
  for (int64_t b = 0; b < B; ++b) {
    z.apply(in.data() + b * H * W, one.data());
    for (int64_t i = 0; i < OH * OW; ++i) ASSERT_EQ(one[i], many[b * OH * OW + i]);
  }
}

TEST(Zoom, OutputSizeRoundsHalfToEven) {
  EXPECT_EQ(zoom_output_size(512, 224.0 / 512.0), 224);
  EXPECT_EQ(zoom_output_size(224, 512.0 / 224.0), 512);
  EXPECT_EQ(zoom_output_size(5, 0.5), 2);  // round(2.5) = 2 in Python
  EXPECT_EQ(zoom_output_size(7, 0.5), 4);  // round(3.5) = 4
}

TEST(Zoom, RejectsBadArguments) {
  EXPECT_THROW(Zoom2D(4, 4, 2, 2, 1), Error);
  EXPECT_THROW(Zoom2D(0, 4, 2, 2, 3), Error);
  const Zoom2D z(4, 4, 2, 2, 3);
  std::vector<int32_t> a(16), b(4);
  EXPECT_THROW(z.apply(a.data(), b.data()), Error);
}

}  // namespace
}  // namespace swinrt
