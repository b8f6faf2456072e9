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

// The single pole of the cubic B-spline prefilter, sqrt(3) - 2.
constexpr double kPole = -0.267949192431122706472553658494127633;

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

// The prefilter of `lanes` independent lines of length n whose element i sits
// at c[i * stride + lane]. Lane by lane the arithmetic is identical to
// spline_prefilter_line; running many lanes at once keeps the memory access
// of the axis-0 pass sequential.
void prefilter_lanes(double* c, int64_t n, int64_t stride, int64_t lanes) {
  if (n < 2) return;
  const double z = kPole;
  const double gain = (1.0 - z) * (1.0 - 1.0 / z);
  for (int64_t i = 0; i < n; ++i) {
    double* row = c + i * stride;
    for (int64_t j = 0; j < lanes; ++j) row[j] *= gain;
  }
  // Causal initialisation for a mirror-symmetric extension of the line.
  const double z_last = std::pow(z, static_cast<double>(n - 1));
  std::vector<double> first(static_cast<size_t>(lanes));
  {
    const double* r0 = c;
    const double* rn = c + (n - 1) * stride;
    for (int64_t j = 0; j < lanes; ++j) first[j] = r0[j] + z_last * rn[j];
  }
  double zi = z;
  for (int64_t i = 1; i < n - 1; ++i) {
    const double* a = c + i * stride;
    const double* b = c + (n - 1 - i) * stride;
    for (int64_t j = 0; j < lanes; ++j) first[j] += zi * (a[j] + z_last * b[j]);
    zi *= z;
  }
  const double denom = 1 - z_last * z_last;
  for (int64_t j = 0; j < lanes; ++j) c[j] = first[j] / denom;
  // Causal pass.
  for (int64_t i = 1; i < n; ++i) {
    double* row = c + i * stride;
    const double* prev = row - stride;
    for (int64_t j = 0; j < lanes; ++j) row[j] += z * prev[j];
  }
  // Anticausal initialisation and pass.
  {
    double* last = c + (n - 1) * stride;
    const double* before = last - stride;
    for (int64_t j = 0; j < lanes; ++j) last[j] = (z * before[j] + last[j]) * z / (z * z - 1);
  }
  for (int64_t i = n - 2; i >= 0; --i) {
    double* row = c + i * stride;
    const double* next = row + stride;
    for (int64_t j = 0; j < lanes; ++j) row[j] = z * (next[j] - row[j]);
  }
}

}  // namespace

void spline_prefilter_line(double* c, int64_t n) { prefilter_lanes(c, n, 1, 1); }

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
  constexpr int64_t kBlock = 64;  // columns per task of the axis-0 pass
  const int64_t blocks = (W + kBlock - 1) / kBlock;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j0 = b * kBlock, nj = std::min(kBlock, W - j0);
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < nj; ++j) coef[i * W + j0 + j] = static_cast<double>(in[i * W + j0 + j]);
      prefilter_lanes(coef + j0, H, W, nj);
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < H; ++i) prefilter_lanes(coef + i * W, W, 1, 1);
  }
}

void Zoom2D::interpolate(const double* coef, float* out) const {
  const int64_t W = in_w_, OW = out_w_;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < out_h_; ++r) {
    float* o = out + r * OW;
    if (rows_.zero[r]) {
      std::fill(o, o + OW, 0.f);
      continue;
    }
    const int64_t* ri = &rows_.index[r * 4];
    const double* rw = &rows_.weight[r * 4];
    for (int64_t c = 0; c < OW; ++c) {
      if (cols_.zero[c]) {
        o[c] = 0.f;
        continue;
      }
      const int64_t* ci = &cols_.index[c * 4];
      const double* cw = &cols_.weight[c * 4];
      double t = 0.0;
      for (int a = 0; a < 4; ++a) {
        const double* line = coef + ri[a] * W;
        for (int b = 0; b < 4; ++b) {
          double v = line[ci[b]];
          v *= rw[a];
          v *= cw[b];
          t += v;
        }
      }
      o[c] = static_cast<float>(t);
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
