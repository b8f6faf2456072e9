// scipy.ndimage.zoom for 2D slices (see zoom.h for what is reproduced).
//
// Cost for 512x512 -> 224x224: the B-spline prefilter touches the 512x512
// input ~10 times in double (axis 0 runs over all columns at once, row by
// row, so every pass streams memory in order); the 224x224 output is 16
// multiply-adds per pixel. Both loops are parallel over rows/column blocks.
// Floating-point operations are done one by one in scipy's order so that the
// results match bit for bit where the compiler does not contract a*b+c into
// an FMA (the default x86-64 target has none).
#include "zoom.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

#include "swinrt/error.h"

namespace swinrt {

namespace {

constexpr double kPole = kSplinePole;

// Reflects an integer tap index into [0, len) the way scipy's 'mirror'
// boundary does (the sample at the edge is not repeated: -1 -> 1, len -> len-2).
int64_t mirror_index(int64_t idx, int64_t len) {
  if (len <= 1) return 0;
  const int64_t period = 2 * len - 2;
  if (idx < 0) {
    idx += period * (-idx / period);
    return idx <= 1 - len ? idx + period : -idx;
  }
  if (idx > len - 1) {
    idx -= period * (idx / period);
    if (idx >= len) idx = period - idx;
  }
  return idx;
}

// The four cubic B-spline weights for coordinate x, for taps floor(x)-1 ..
// floor(x)+2, each term evaluated as scipy evaluates it; the last weight is
// 1 minus the others.
void cubic_weights(double x, double* w) {
  const double t = x - std::floor(x);
  const double u = 1.0 - t;
  w[1] = (t * t * (t - 2.0) * 3.0 + 4.0) / 6.0;
  w[2] = (u * u * (u - 2.0) * 3.0 + 4.0) / 6.0;
  w[0] = u * u * u / 6.0;
  double last = 1.0;
  last -= w[0];
  last -= w[1];
  last -= w[2];
  w[3] = last;
}

constexpr double kGain = kSplineGain;

// The prefilter of `lanes` independent lines of length n: element i of lane
// j sits at c[i * step + j * lane_step]. Lane by lane the arithmetic is that
// of scipy's filter of one line; running many lanes at once turns the
// recursions' dependency chains into independent work (SIMD along axis 0,
// where lanes are adjacent; instruction-level parallelism along axis 1).
// The lines must already be multiplied by kGain (done by the callers while
// they copy the data in).
template <int64_t kLanesMax>
void prefilter_lanes(double* c, int64_t n, int64_t step, int64_t lanes, int64_t lane_step) {
  if (n < 2) return;
  const double z = kPole;
  auto at = [&](int64_t i, int64_t j) -> double& { return c[i * step + j * lane_step]; };
  // Causal initialisation for a mirror-symmetric extension of the line.
  const double z_last = std::pow(z, static_cast<double>(n - 1));
  double first[kLanesMax];
  for (int64_t j = 0; j < lanes; ++j) first[j] = at(0, j) + z_last * at(n - 1, j);
  double zi = z;
  for (int64_t i = 1; i < n - 1; ++i) {
    for (int64_t j = 0; j < lanes; ++j) first[j] += zi * (at(i, j) + z_last * at(n - 1 - i, j));
    zi *= z;
  }
  const double denom = 1 - z_last * z_last;
  for (int64_t j = 0; j < lanes; ++j) at(0, j) = first[j] / denom;
  // Causal pass.
  for (int64_t i = 1; i < n; ++i)
    for (int64_t j = 0; j < lanes; ++j) at(i, j) += z * at(i - 1, j);
  // Anticausal initialisation and pass.
  for (int64_t j = 0; j < lanes; ++j) at(n - 1, j) = (z * at(n - 2, j) + at(n - 1, j)) * z / (z * z - 1);
  for (int64_t i = n - 2; i >= 0; --i)
    for (int64_t j = 0; j < lanes; ++j) at(i, j) = z * (at(i + 1, j) - at(i, j));
}

constexpr int64_t kColumnLanes = 64;  // axis 0: adjacent columns per task
constexpr int64_t kRowLanes = 8;      // axis 1: rows filtered together

}  // namespace

void spline_prefilter_line(double* c, int64_t n) {
  if (n < 2) return;
  for (int64_t i = 0; i < n; ++i) c[i] *= kGain;
  prefilter_lanes<1>(c, n, 1, 1, 1);
}

int64_t zoom_output_size(int64_t in, double factor) {
  // Python's round() on a float rounds half to even: nearbyint in the
  // default rounding mode.
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(in) * factor));
}

Zoom2D::Axis Zoom2D::make_axis(int64_t in, int64_t out, int order) {
  Axis a;
  a.in = in;
  a.out = out;
  const int taps = order + 1;
  a.zero.assign(static_cast<size_t>(out), 0);
  a.index.assign(static_cast<size_t>(out * taps), 0);
  if (order > 0) a.weight.assign(static_cast<size_t>(out * taps), 0.0);
  // scipy recomputes the factor from the shapes (grid_mode=False): output k
  // samples input coordinate k * (in-1)/(out-1); a single output samples 0.
  const double step = out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 1.0;
  for (int64_t k = 0; k < out; ++k) {
    const double x = static_cast<double>(k) * step;
    // mode 'constant': a coordinate outside [0, in-1] takes cval.
    if (x < 0.0 || x > static_cast<double>(in - 1)) {
      a.zero[k] = 1;
      continue;
    }
    const int64_t start = order == 3 ? static_cast<int64_t>(std::floor(x)) - 1
                                     : static_cast<int64_t>(std::floor(x + 0.5));
    const bool edge = start < 0 || start + order >= in;
    for (int t = 0; t < taps; ++t)
      a.index[k * taps + t] = edge ? mirror_index(start + t, in) : start + t;
    if (order == 3) cubic_weights(x, &a.weight[k * taps]);
  }
  return a;
}

Zoom2D::Zoom2D(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, int order)
    : in_h_(in_h), in_w_(in_w), out_h_(out_h), out_w_(out_w), order_(order) {
  if (order != 0 && order != 3) throw Error(fmt::format("zoom: spline order {} is not supported (0 or 3)", order));
  if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw Error(fmt::format("zoom: empty shape {}x{} -> {}x{}", in_h, in_w, out_h, out_w));
  identity_ = in_h == out_h && in_w == out_w;
  rows_ = make_axis(in_h, out_h, order);
  cols_ = make_axis(in_w, out_w, order);
}

void Zoom2D::prefilter(const float* in, double* coef) const {
  const int64_t H = in_h_, W = in_w_;
  const int64_t col_blocks = (W + kColumnLanes - 1) / kColumnLanes;
  const int64_t row_blocks = (H + kRowLanes - 1) / kRowLanes;
  // A line of one sample is left alone, gain included.
  const double g0 = H > 1 ? kGain : 1.0, g1 = W > 1 ? kGain : 1.0;
#pragma omp parallel
  {
    // Axis 0: blocks of adjacent columns, filtered in place.
#pragma omp for schedule(static)
    for (int64_t b = 0; b < col_blocks; ++b) {
      const int64_t j0 = b * kColumnLanes, nj = std::min(kColumnLanes, W - j0);
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < nj; ++j) coef[i * W + j0 + j] = static_cast<double>(in[i * W + j0 + j]) * g0;
      prefilter_lanes<kColumnLanes>(coef + j0, H, W, nj, 1);
    }
    // Axis 1: blocks of rows, transposed into a small tile so that the rows
    // become adjacent lanes, filtered, and written back.
    std::vector<double> tile(static_cast<size_t>(W * kRowLanes));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < row_blocks; ++b) {
      const int64_t i0 = b * kRowLanes, ni = std::min(kRowLanes, H - i0);
      for (int64_t r = 0; r < ni; ++r) {
        const double* row = coef + (i0 + r) * W;
        for (int64_t k = 0; k < W; ++k) tile[k * kRowLanes + r] = row[k] * g1;
      }
      prefilter_lanes<kRowLanes>(tile.data(), W, kRowLanes, ni, 1);
      for (int64_t r = 0; r < ni; ++r) {
        double* row = coef + (i0 + r) * W;
        for (int64_t k = 0; k < W; ++k) row[k] = tile[k * kRowLanes + r];
      }
    }
  }
}

void Zoom2D::interpolate(const double* coef, float* out) const {
  const int64_t W = in_w_, OW = out_w_;
  // Each output sums its 16 taps in scipy's order (row tap outer, column tap
  // inner, ((value * row weight) * column weight)); four outputs at a time so
  // that their addition chains overlap.
  constexpr int kGroup = 4;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < out_h_; ++r) {
    float* o = out + r * OW;
    if (rows_.zero[r]) {
      std::fill(o, o + OW, 0.f);
      continue;
    }
    const int64_t* ri = &rows_.index[r * 4];
    const double* rw = &rows_.weight[r * 4];
    const double* lines[4] = {coef + ri[0] * W, coef + ri[1] * W, coef + ri[2] * W, coef + ri[3] * W};
    int64_t c = 0;
    for (; c + kGroup <= OW; c += kGroup) {
      const int64_t* ci = &cols_.index[c * 4];
      const double* cw = &cols_.weight[c * 4];
      double t[kGroup] = {0.0, 0.0, 0.0, 0.0};
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b)
          for (int u = 0; u < kGroup; ++u) {
            double v = lines[a][ci[u * 4 + b]];
            v *= rw[a];
            v *= cw[u * 4 + b];
            t[u] += v;
          }
      for (int u = 0; u < kGroup; ++u) o[c + u] = cols_.zero[c + u] ? 0.f : static_cast<float>(t[u]);
    }
    for (; c < OW; ++c) {
      const int64_t* ci = &cols_.index[c * 4];
      const double* cw = &cols_.weight[c * 4];
      double t = 0.0;
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          double v = lines[a][ci[b]];
          v *= rw[a];
          v *= cw[b];
          t += v;
        }
      o[c] = cols_.zero[c] ? 0.f : static_cast<float>(t);
    }
  }
}

namespace {

template <typename T>
void nearest(const T* in, T* out, int64_t in_w, int64_t out_h, int64_t out_w, const std::vector<uint8_t>& rz,
             const std::vector<int64_t>& ri, const std::vector<uint8_t>& cz, const std::vector<int64_t>& ci) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < out_h; ++r) {
    T* o = out + r * out_w;
    if (rz[r]) {
      std::fill(o, o + out_w, T(0));
      continue;
    }
    const T* line = in + ri[r] * in_w;
    for (int64_t c = 0; c < out_w; ++c) o[c] = cz[c] ? T(0) : line[ci[c]];
  }
}

}  // namespace

void Zoom2D::apply(const float* in, float* out) const {
  if (identity_) {
    std::memcpy(out, in, static_cast<size_t>(in_h_ * in_w_) * sizeof(float));
    return;
  }
  if (order_ == 0) {
    nearest(in, out, in_w_, out_h_, out_w_, rows_.zero, rows_.index, cols_.zero, cols_.index);
    return;
  }
  thread_local std::vector<double> coef;
  coef.resize(static_cast<size_t>(in_h_ * in_w_));
  prefilter(in, coef.data());
  interpolate(coef.data(), out);
}

void Zoom2D::apply(const int32_t* in, int32_t* out) const {
  if (order_ != 0) throw Error("zoom: integer labels take order 0 only");
  if (identity_) {
    std::memcpy(out, in, static_cast<size_t>(in_h_ * in_w_) * sizeof(int32_t));
    return;
  }
  nearest(in, out, in_w_, out_h_, out_w_, rows_.zero, rows_.index, cols_.zero, cols_.index);
}

void Zoom2D::apply_many(int64_t count, const float* in, float* out) const {
  const int64_t is = in_h_ * in_w_, os = out_h_ * out_w_;
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
  for (int64_t s = 0; s < count; ++s) apply(in + s * is, out + s * os);
}

void Zoom2D::apply_many(int64_t count, const int32_t* in, int32_t* out) const {
  const int64_t is = in_h_ * in_w_, os = out_h_ * out_w_;
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
  for (int64_t s = 0; s < count; ++s) apply(in + s * is, out + s * os);
}

}  // namespace swinrt
