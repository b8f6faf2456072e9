// The GPU evaluation pipeline (src/cuda/zoom.cu, edt.cu) against the CPU one
// (src/pipeline/zoom.cpp, edt.cpp, metrics.cpp), bit for bit: the CPU path is
// itself checked against scipy and medpy (zoom_test.cpp, metrics_test.cpp,
// tests/python/test_pipeline.py). Each case is a row of a table and a failure
// names it. Skips itself where no usable GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <random>
#include <vector>

#include "cuda/pipeline.h"
#include "pipeline/edt.h"
#include "pipeline/metrics.h"
#include "pipeline/zoom.h"

namespace swinrt {
namespace {

#define SKIP_WITHOUT_GPU()                                      \
  do {                                                          \
    std::string why_;                                           \
    if (!cuda_pipeline_available(&why_)) GTEST_SKIP() << why_;  \
  } while (0)

// Index of the first element whose bits differ, or -1.
template <typename T>
int64_t first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<int64_t>(i);
  return -1;
}

struct ZoomCase {
  int64_t h, w, oh, ow, slices, max_slices;
};

std::string zoom_name(const ZoomCase& z) {
  return fmt::format("{}x{}_to_{}x{}_x{}_by{}", z.h, z.w, z.oh, z.ow, z.slices, z.max_slices);
}

class CudaZoom : public ::testing::TestWithParam<ZoomCase> {};

TEST_P(CudaZoom, Order3BitIdenticalToCpu) {
  SKIP_WITHOUT_GPU();
  const ZoomCase z = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(z.h * 7919 + z.w));
  // CT-like values: Synapse images are normalised to [0, 1]; wider here.
  std::uniform_real_distribution<float> u(-200.f, 300.f);
  std::vector<float> in(static_cast<size_t>(z.slices * z.h * z.w));
  for (float& v : in) v = u(rng);
  std::vector<float> cpu(static_cast<size_t>(z.slices * z.oh * z.ow)), gpu(cpu.size(), -1.f);
  Zoom2D(z.h, z.w, z.oh, z.ow, 3).apply_many(z.slices, in.data(), cpu.data());
  CudaZoom2D(z.h, z.w, z.oh, z.ow, 3, z.max_slices).apply_many(z.slices, in.data(), gpu.data());
  const int64_t i = first_difference(cpu, gpu);
  EXPECT_EQ(i, -1) << zoom_name(z) << fmt::format(": output {} cpu {:.9g} gpu {:.9g}", i, i < 0 ? 0.f : cpu[i],
                                                  i < 0 ? 0.f : gpu[i]);
}

TEST_P(CudaZoom, Order0BitIdenticalToCpu) {
  SKIP_WITHOUT_GPU();
  const ZoomCase z = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(z.h * 31 + z.w));
  std::uniform_int_distribution<int32_t> u(0, 8);
  std::vector<int32_t> in(static_cast<size_t>(z.slices * z.h * z.w));
  for (int32_t& v : in) v = u(rng);
  std::vector<int32_t> cpu(static_cast<size_t>(z.slices * z.oh * z.ow)), gpu(cpu.size(), -1);
  Zoom2D(z.h, z.w, z.oh, z.ow, 0).apply_many(z.slices, in.data(), cpu.data());
  CudaZoom2D(z.h, z.w, z.oh, z.ow, 0, z.max_slices).apply_many(z.slices, in.data(), gpu.data());
  EXPECT_EQ(first_difference(cpu, gpu), -1) << zoom_name(z);
  // Float images through order 0 too.
  std::vector<float> fin(in.begin(), in.end()), fcpu(cpu.size()), fgpu(cpu.size(), -1.f);
  Zoom2D(z.h, z.w, z.oh, z.ow, 0).apply_many(z.slices, fin.data(), fcpu.data());
  CudaZoom2D(z.h, z.w, z.oh, z.ow, 0, z.max_slices).apply_many(z.slices, fin.data(), fgpu.data());
  EXPECT_EQ(first_difference(fcpu, fgpu), -1) << zoom_name(z);
}

// The protocol's shapes (512 -> 224 and back, several chunks), then the odd
// shapes of zoom_test.cpp (one-sample axes, the past-the-end cval rows of
// 32 -> 224, equal shapes).
INSTANTIATE_TEST_SUITE_P(Shapes, CudaZoom,
                         ::testing::Values(ZoomCase{512, 512, 224, 224, 5, 2}, ZoomCase{224, 224, 512, 512, 3, 8},
                                           ZoomCase{512, 512, 224, 224, 1, 8}, ZoomCase{64, 64, 28, 28, 4, 4},
                                           ZoomCase{40, 30, 28, 28, 3, 2}, ZoomCase{20, 20, 56, 56, 2, 1},
                                           ZoomCase{28, 17, 28, 28, 2, 8}, ZoomCase{32, 32, 224, 224, 2, 8},
                                           ZoomCase{1, 9, 4, 5, 3, 2}, ZoomCase{9, 1, 4, 5, 3, 2},
                                           ZoomCase{2, 3, 7, 7, 2, 2}, ZoomCase{7, 7, 1, 1, 2, 2},
                                           ZoomCase{30, 20, 30, 20, 2, 2}, ZoomCase{78, 93, 64, 64, 3, 2}),
                         [](const ::testing::TestParamInfo<ZoomCase>& i) { return zoom_name(i.param); });

struct EdtCase {
  Dims3 dims;
  Spacing3 spacing;
  double density;  // fraction of site voxels
};

class CudaEdt : public ::testing::TestWithParam<EdtCase> {};

TEST_P(CudaEdt, BitIdenticalToCpu) {
  SKIP_WITHOUT_GPU();
  const EdtCase e = GetParam();
  const int64_t n = e.dims[0] * e.dims[1] * e.dims[2];
  std::mt19937 rng(static_cast<uint32_t>(n));
  std::bernoulli_distribution site(e.density);
  std::vector<uint8_t> sites(static_cast<size_t>(n));
  for (uint8_t& s : sites) s = site(rng);
  std::vector<double> cpu(sites.size()), gpu(sites.size(), -1.0);
  squared_edt(sites.data(), e.dims, e.spacing, cpu.data());
  cuda_squared_edt(sites.data(), e.dims, e.spacing, gpu.data());
  const int64_t i = first_difference(cpu, gpu);
  EXPECT_EQ(i, -1) << fmt::format("{}x{}x{} spacing ({}, {}, {}) density {}: voxel {} cpu {} gpu {}", e.dims[0],
                                  e.dims[1], e.dims[2], e.spacing[0], e.spacing[1], e.spacing[2], e.density, i,
                                  i < 0 ? 0.0 : cpu[i], i < 0 ? 0.0 : gpu[i]);
}

INSTANTIATE_TEST_SUITE_P(Masks, CudaEdt,
                         ::testing::Values(EdtCase{{20, 64, 64}, {1, 1, 1}, 0.01}, EdtCase{{20, 64, 64}, {1, 1, 1}, 0.3},
                                           EdtCase{{9, 40, 33}, {3, 1, 2}, 0.02},
                                           EdtCase{{9, 40, 33}, {0.7, 1.3, 2.5}, 0.02},
                                           EdtCase{{1, 128, 128}, {1, 1, 1}, 0.001}, EdtCase{{64, 1, 50}, {1, 1, 1}, 0.05},
                                           EdtCase{{30, 30, 1}, {1, 2, 1}, 0.05}, EdtCase{{5, 6, 7}, {1, 1, 1}, 0.0},
                                           EdtCase{{100, 128, 128}, {1, 1, 1}, 0.0005}),
                         [](const ::testing::TestParamInfo<EdtCase>& i) {
                           const EdtCase& e = i.param;
                           return fmt::format("{}_{}x{}x{}", i.index, e.dims[0], e.dims[1], e.dims[2]);
                         });

// Labels 1..classes as overlapping, noisy ellipsoids ("organs"); the
// prediction is the ground truth moved and eroded/grown at random.
std::vector<int32_t> organ_labels(const Dims3& d, int classes, uint32_t seed, double noise) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int32_t> v(static_cast<size_t>(d[0] * d[1] * d[2]), 0);
  for (int c = 1; c <= classes; ++c) {
    const double c0 = u(rng) * d[0], c1 = u(rng) * d[1], c2 = u(rng) * d[2];
    const double r0 = 2 + u(rng) * d[0] / 4, r1 = 2 + u(rng) * d[1] / 6, r2 = 2 + u(rng) * d[2] / 6;
    for (int64_t i = 0; i < d[0]; ++i)
      for (int64_t j = 0; j < d[1]; ++j)
        for (int64_t k = 0; k < d[2]; ++k) {
          const double a = (i - c0) / r0, b = (j - c1) / r1, e = (k - c2) / r2;
          if (a * a + b * b + e * e < 1.0 + noise * (u(rng) - 0.5)) v[(i * d[1] + j) * d[2] + k] = c;
        }
  }
  return v;
}

struct MetricsCase {
  std::vector<int64_t> shape;
  int classes;
  double noise;
  bool random;  // uniformly random labels instead of organs
  Spacing3 spacing;
};

class CudaMetrics : public ::testing::TestWithParam<MetricsCase> {};

TEST_P(CudaMetrics, EvaluateVolumeBitIdenticalToCpu) {
  SKIP_WITHOUT_GPU();
  const MetricsCase m = GetParam();
  const VolumeShape shape = volume_shape(m.shape);
  std::vector<int32_t> gt, pred;
  if (m.random) {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> u(0, m.classes);
    gt.resize(static_cast<size_t>(shape.voxels()));
    pred.resize(gt.size());
    for (int32_t& x : gt) x = u(rng);
    for (int32_t& x : pred) x = u(rng);
  } else {
    gt = organ_labels(shape.dims, m.classes, 1, m.noise);
    pred = organ_labels(shape.dims, m.classes, 2, m.noise);
    // Half the prediction's classes are the ground truth's, perturbed.
    std::mt19937 rng(3);
    std::bernoulli_distribution flip(0.02);
    for (size_t i = 0; i < gt.size(); ++i)
      if (gt[i] % 2 == 1 && !flip(rng)) pred[i] = gt[i];
  }
  std::vector<int> classes;
  for (int c = 1; c <= m.classes + 1; ++c) classes.push_back(c);  // the last is absent from both
  const auto cpu = evaluate_volume(pred.data(), gt.data(), shape, m.spacing, classes);
  const auto gpu = cuda_evaluate_volume(pred.data(), gt.data(), shape, m.spacing, classes);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t k = 0; k < cpu.size(); ++k) {
    const std::string what = fmt::format("rank {} class {}: cpu ({:.17g}, {:.17g}) gpu ({:.17g}, {:.17g})", shape.rank,
                                         classes[k], cpu[k].dice, cpu[k].hd95, gpu[k].dice, gpu[k].hd95);
    EXPECT_EQ(std::memcmp(&cpu[k].dice, &gpu[k].dice, sizeof(double)), 0) << what;
    EXPECT_EQ(std::memcmp(&cpu[k].hd95, &gpu[k].hd95, sizeof(double)), 0) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Volumes, CudaMetrics,
    ::testing::Values(MetricsCase{{40, 96, 96}, 8, 0.3, false, {1, 1, 1}},
                      MetricsCase{{100, 256, 256}, 8, 0.1, false, {1, 1, 1}},
                      MetricsCase{{24, 50, 70}, 4, 0.0, true, {1, 1, 1}},
                      MetricsCase{{24, 50, 70}, 8, 0.3, false, {2, 1, 3}},
                      MetricsCase{{24, 50, 70}, 8, 0.3, false, {2.5, 0.7, 0.9}},
                      MetricsCase{{120, 90}, 5, 0.3, false, {1, 1, 1}},     // rank 2: a 2D surface
                      MetricsCase{{1, 120, 90}, 5, 0.3, false, {1, 1, 1}}),  // rank 3, one slice
    [](const ::testing::TestParamInfo<MetricsCase>& i) {
      std::string name = fmt::format("{}_{}", i.index, i.param.random ? "random" : "organs");
      for (int64_t n : i.param.shape) name += fmt::format("_{}", n);
      return name;
    });

}  // namespace
}  // namespace swinrt
