// EDT, dc, hd95 and the per-case rules against brute force computed here:
// surfaces by explicit neighbour checks, distances by trying every site,
// percentiles by sorting. tests/python/test_pipeline.py compares with medpy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <random>
#include <vector>

#include "pipeline/edt.h"
#include "pipeline/metrics.h"
#include "swinrt/error.h"

namespace swinrt {
namespace {

struct Grid {
  Dims3 d;
  int64_t n() const { return d[0] * d[1] * d[2]; }
  int64_t idx(int64_t a, int64_t b, int64_t c) const { return (a * d[1] + b) * d[2] + c; }
};

std::vector<uint8_t> random_mask(const Grid& g, double p, std::mt19937& rng) {
  std::bernoulli_distribution b(p);
  std::vector<uint8_t> m(static_cast<size_t>(g.n()));
  for (auto& v : m) v = b(rng) ? 1 : 0;
  return m;
}

// Squared distance from every voxel to the nearest site, trying all sites;
// terms added axis 0 first, as scipy does.
std::vector<double> brute_edt(const std::vector<uint8_t>& sites, const Grid& g, const Spacing3& s) {
  std::vector<double> out(static_cast<size_t>(g.n()), kEdtInfinity);
  for (int64_t a = 0; a < g.d[0]; ++a)
    for (int64_t b = 0; b < g.d[1]; ++b)
      for (int64_t c = 0; c < g.d[2]; ++c) {
        double best = kEdtInfinity;
        for (int64_t x = 0; x < g.d[0]; ++x)
          for (int64_t y = 0; y < g.d[1]; ++y)
            for (int64_t z = 0; z < g.d[2]; ++z) {
              if (!sites[g.idx(x, y, z)]) continue;
              const double t0 = double(a - x) * s[0], t1 = double(b - y) * s[1], t2 = double(c - z) * s[2];
              best = std::min(best, t0 * t0 + t1 * t1 + t2 * t2);
            }
        out[g.idx(a, b, c)] = best;
      }
  return out;
}

// mask & ~erosion(mask): some face neighbour along the first `rank` trailing
// axes is outside the grid or background.
std::vector<uint8_t> brute_surface(const std::vector<uint8_t>& m, const Grid& g, int rank) {
  std::vector<uint8_t> s(m.size(), 0);
  for (int64_t a = 0; a < g.d[0]; ++a)
    for (int64_t b = 0; b < g.d[1]; ++b)
      for (int64_t c = 0; c < g.d[2]; ++c) {
        if (!m[g.idx(a, b, c)]) continue;
        const int64_t p[3] = {a, b, c};
        bool edge = false;
        for (int ax = 3 - rank; ax < 3; ++ax)
          for (int dlt : {-1, 1}) {
            int64_t q[3] = {p[0], p[1], p[2]};
            q[ax] += dlt;
            if (q[ax] < 0 || q[ax] >= g.d[ax] || !m[g.idx(q[0], q[1], q[2])]) edge = true;
          }
        s[g.idx(a, b, c)] = edge;
      }
  return s;
}

double sorted_percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = (double(v.size()) - 1.0) * q / 100.0;
  const size_t lo = static_cast<size_t>(std::floor(pos));
  if (lo + 1 >= v.size()) return v.back();
  const double g = pos - double(lo);
  return v[lo] + (v[lo + 1] - v[lo]) * g;
}

double brute_hd95(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, const Grid& g, int rank,
                  const Spacing3& s) {
  const auto sa = brute_surface(a, g, rank), sb = brute_surface(b, g, rank);
  const auto da = brute_edt(sb, g, s), db = brute_edt(sa, g, s);
  std::vector<double> d;
  for (int64_t i = 0; i < g.n(); ++i) {
    if (sa[i]) d.push_back(std::sqrt(da[i]));
  }
  for (int64_t i = 0; i < g.n(); ++i) {
    if (sb[i]) d.push_back(std::sqrt(db[i]));
  }
  return sorted_percentile(d, 95.0);
}

TEST(Edt, MatchesBruteForceOnRandomMasks) {
  std::mt19937 rng(11);
  const std::vector<Grid> grids = {{{1, 1, 9}}, {{1, 7, 1}}, {{6, 1, 1}}, {{5, 7, 9}}, {{9, 4, 6}}, {{3, 11, 2}}};
  const std::vector<Spacing3> spacings = {{1, 1, 1}, {2.5, 0.7, 1.3}, {0.3, 3, 1}};
  for (const Grid& g : grids)
    for (const Spacing3& s : spacings)
      for (double p : {0.02, 0.2, 0.7}) {
        const auto sites = random_mask(g, p, rng);
        const auto ref = brute_edt(sites, g, s);
        std::vector<double> out(static_cast<size_t>(g.n()));
        squared_edt(sites.data(), g.d, s, out.data());
        for (int64_t i = 0; i < g.n(); ++i) {
          if (std::isinf(ref[i])) {
            ASSERT_TRUE(std::isinf(out[i])) << fmt::format("{}x{}x{} p={} voxel {}", g.d[0], g.d[1], g.d[2], p, i);
          } else {
            ASSERT_NEAR(out[i], ref[i], 1e-9 * std::max(1.0, ref[i]))
                << fmt::format("{}x{}x{} spacing {},{},{} p={} voxel {}", g.d[0], g.d[1], g.d[2], s[0], s[1], s[2], p, i);
          }
        }
      }
}

TEST(Edt, IntegerSpacingIsExact) {
  std::mt19937 rng(5);
  const Grid g{{6, 9, 8}};
  const Spacing3 s{1, 2, 3};
  for (int rep = 0; rep < 5; ++rep) {
    const auto sites = random_mask(g, 0.05, rng);
    const auto ref = brute_edt(sites, g, s);
    std::vector<double> out(static_cast<size_t>(g.n()));
    squared_edt(sites.data(), g.d, s, out.data());
    EXPECT_EQ(out, ref);
  }
}

TEST(Edt, LineEnvelope) {
  const double inf = kEdtInfinity;
  const std::vector<double> f = {inf, 4, inf, inf, 0, inf, 1};
  std::vector<double> out(f.size()), z(f.size() + 1);
  std::vector<int64_t> v(f.size());
  squared_edt_line(f.data(), 7, 1.0, out.data(), v.data(), z.data());
  const std::vector<double> want = {5, 4, 4, 1, 0, 1, 1};
  EXPECT_EQ(out, want);
  const std::vector<double> none(5, inf);
  squared_edt_line(none.data(), 5, 1.0, out.data(), v.data(), z.data());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(std::isinf(out[i]));
}

TEST(Percentile, NumpyLinear) {
  for (size_t n : {1u, 2u, 3u, 20u, 21u, 41u, 100u, 101u}) {
    std::vector<double> v(n);
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::uniform_real_distribution<double> u(0, 10);
    for (double& x : v) x = u(rng);
    for (double q : {0.0, 50.0, 95.0, 100.0}) {
      std::vector<double> w = v;
      EXPECT_NEAR(percentile_linear(w, q), sorted_percentile(v, q), 1e-12) << "n=" << n << " q=" << q;
    }
  }
  std::vector<double> v = {3, 1, 2, 4, 0};  // (5-1)*0.95 = 3.8: 3 + (4-3)*0.8
  EXPECT_DOUBLE_EQ(percentile_linear(v, 95.0), 3.8);
  std::vector<double> empty;
  EXPECT_THROW(percentile_linear(empty, 95.0), Error);
}

TEST(Hd95, MatchesBruteForce) {
  std::mt19937 rng(21);
  struct Case {
    Grid g;
    int rank;
  };
  const std::vector<Case> cases = {{{{1, 12, 15}}, 2}, {{{1, 12, 15}}, 3}, {{{6, 8, 7}}, 3}, {{{1, 1, 30}}, 1},
                                   {{{4, 1, 9}}, 3}};
  const std::vector<Spacing3> spacings = {{1, 1, 1}, {2.5, 0.7, 1.3}};
  for (const Case& c : cases)
    for (const Spacing3& s : spacings)
      for (double p : {0.05, 0.4, 0.9}) {
        auto a = random_mask(c.g, p, rng), b = random_mask(c.g, p * 0.7, rng);
        a[0] = 1;
        b[static_cast<size_t>(c.g.n() - 1)] = 1;
        VolumeShape vs;
        vs.rank = c.rank;
        vs.dims = c.g.d;
        const double got = hd95(a.data(), b.data(), vs, s);
        const double want = brute_hd95(a, b, c.g, c.rank, s);
        EXPECT_NEAR(got, want, 1e-9) << fmt::format("{}x{}x{} rank {} p={}", c.g.d[0], c.g.d[1], c.g.d[2], c.rank, p);
      }
}

TEST(Hd95, RankDecidesTheSurface) {
  // A filled 8x8 square and its outline in a 10x10 plane: as 2D arrays the
  // square's surface is the outline itself (hd95 0); as 1x10x10 volumes every
  // voxel touches the outside along axis 0, so the inner ones count too.
  const Grid g{{1, 10, 10}};
  std::vector<uint8_t> a(100, 0), b(100, 0);
  for (int i = 1; i < 9; ++i)
    for (int j = 1; j < 9; ++j) {
      a[i * 10 + j] = 1;
      b[i * 10 + j] = i == 1 || i == 8 || j == 1 || j == 8;
    }
  VolumeShape two{2, {1, 10, 10}}, three{3, {1, 10, 10}};
  EXPECT_NEAR(hd95(a.data(), b.data(), two, {1, 1, 1}), brute_hd95(a, b, g, 2, {1, 1, 1}), 1e-12);
  EXPECT_NEAR(hd95(a.data(), b.data(), three, {1, 1, 1}), brute_hd95(a, b, g, 3, {1, 1, 1}), 1e-12);
  EXPECT_EQ(brute_hd95(a, b, g, 2, {1, 1, 1}), 0.0);
  EXPECT_GT(brute_hd95(a, b, g, 3, {1, 1, 1}), 1.0);
}

TEST(Hd95, EmptyMaskThrows) {
  std::vector<uint8_t> a(27, 0), b(27, 0);
  b[13] = 1;
  const VolumeShape vs{3, {3, 3, 3}};
  EXPECT_THROW(hd95(a.data(), b.data(), vs, {1, 1, 1}), Error);
  EXPECT_THROW(hd95(b.data(), a.data(), vs, {1, 1, 1}), Error);
  EXPECT_DOUBLE_EQ(hd95(b.data(), b.data(), vs, {1, 1, 1}), 0.0);
}

TEST(Dice, Values) {
  const std::vector<uint8_t> a = {1, 1, 0, 0, 1}, b = {1, 0, 0, 1, 2};
  EXPECT_DOUBLE_EQ(dice_coefficient(a.data(), b.data(), 5), 2.0 * 2 / 6);
  const std::vector<uint8_t> z(5, 0);
  EXPECT_DOUBLE_EQ(dice_coefficient(z.data(), z.data(), 5), 1.0);  // medpy: 0/0 -> 1
}

TEST(MetricPercase, EmptyMaskRules) {
  const VolumeShape vs{3, {2, 3, 4}};
  std::vector<uint8_t> some(24, 0), none(24, 0);
  some[5] = 1;
  const ClassMetric both = metric_percase(some.data(), some.data(), vs, {1, 1, 1});
  EXPECT_DOUBLE_EQ(both.dice, 1.0);
  EXPECT_DOUBLE_EQ(both.hd95, 0.0);
  const ClassMetric pred_only = metric_percase(some.data(), none.data(), vs, {1, 1, 1});
  EXPECT_DOUBLE_EQ(pred_only.dice, 1.0);  // the original's (1, 0)
  EXPECT_DOUBLE_EQ(pred_only.hd95, 0.0);
  const ClassMetric gt_only = metric_percase(none.data(), some.data(), vs, {1, 1, 1});
  EXPECT_DOUBLE_EQ(gt_only.dice, 0.0);
  EXPECT_DOUBLE_EQ(gt_only.hd95, 0.0);
  const ClassMetric neither = metric_percase(none.data(), none.data(), vs, {1, 1, 1});
  EXPECT_DOUBLE_EQ(neither.dice, 0.0);
  EXPECT_DOUBLE_EQ(neither.hd95, 0.0);
}

TEST(EvaluateVolume, EqualsPerClassMasks) {
  std::mt19937 rng(4);
  const Grid g{{7, 13, 11}};
  std::uniform_int_distribution<int> lab(-1, 6);
  std::vector<int32_t> pred(static_cast<size_t>(g.n())), gt(pred.size());
  for (auto& v : pred) v = lab(rng);
  for (auto& v : gt) v = lab(rng) % 4;  // classes 4, 5 never in gt
  for (int64_t i = 0; i < g.n(); ++i)
    if (pred[i] == 3) pred[i] = 0;  // class 3 never predicted
  const std::vector<int> classes = {1, 2, 3, 4, 5, 7};
  const VolumeShape vs{3, g.d};
  const Spacing3 s{1.5, 1, 0.5};
  const auto got = evaluate_volume(pred.data(), gt.data(), vs, s, classes);
  ASSERT_EQ(got.size(), classes.size());
  for (size_t k = 0; k < classes.size(); ++k) {
    std::vector<uint8_t> p(pred.size()), t(gt.size());
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] = pred[i] == classes[k];
      t[i] = gt[i] == classes[k];
    }
    const ClassMetric want = metric_percase(p.data(), t.data(), vs, s);
    EXPECT_DOUBLE_EQ(got[k].dice, want.dice) << "class " << classes[k];
    EXPECT_DOUBLE_EQ(got[k].hd95, want.hd95) << "class " << classes[k];
  }
  EXPECT_DOUBLE_EQ(got[2].dice, 0.0);  // class 3: gt only
  EXPECT_DOUBLE_EQ(got[3].dice, 1.0);  // class 4: pred only
  EXPECT_DOUBLE_EQ(got[5].dice, 0.0);  // class 7: neither
  EXPECT_THROW(evaluate_volume(pred.data(), gt.data(), vs, s, {-1}), Error);
}

TEST(VolumeShape, Ranks) {
  EXPECT_EQ(volume_shape({5}).dims, (Dims3{1, 1, 5}));
  EXPECT_EQ(volume_shape({4, 5}).rank, 2);
  EXPECT_EQ(volume_shape({3, 4, 5}).dims, (Dims3{3, 4, 5}));
  EXPECT_THROW(volume_shape({}), Error);
  EXPECT_THROW(volume_shape({1, 2, 3, 4}), Error);
  EXPECT_THROW(volume_shape({3, 0}), Error);
}

}  // namespace
}  // namespace swinrt
