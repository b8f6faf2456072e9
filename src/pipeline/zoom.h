// Resampling of 2D slices exactly as scipy.ndimage.zoom does it with its
// defaults (mode='constant', cval=0, prefilter=True, grid_mode=False), the
// two calls of the Synapse test protocol:
//
//   image slice -> network input:  zoom(slice, (S/x, S/y), order=3)
//   network labels -> slice:       zoom(labels, (x/S, y/S), order=0)
//
// What scipy does (and what this file reproduces, edges included):
//  - output side = int(round(in * factor)), Python's round (half to even);
//  - output index k maps to input coordinate k * (in-1)/(out-1) (the factor
//    passed in only fixes the output shape); a coordinate beyond in-1 by any
//    rounding error gives cval = 0;
//  - order 3: the input is first converted to a grid of cubic B-spline
//    coefficients in double (causal/anticausal recursive filter, pole
//    sqrt(3)-2, mirror boundary initialisation, axis 0 then axis 1); each
//    output is the 4x4 tap sum in scipy's order, taps beyond the border
//    mirrored (-1 -> 1, n -> n-2), then cast to float32;
//  - order 0: nearest input index floor(c + 0.5);
//  - equal input and output shapes: a copy (scipy returns the input when
//    every factor is exactly 1).
#pragma once

#include <cstdint>
#include <vector>

namespace swinrt {

// The single pole of the cubic B-spline prefilter, sqrt(3) - 2, and the
// filter gain (1 - z)(1 - 1/z) (shared with src/cuda/zoom.cu).
constexpr double kSplinePole = -0.267949192431122706472553658494127633;
constexpr double kSplineGain = (1.0 - kSplinePole) * (1.0 - 1.0 / kSplinePole);

// int(round(in * factor)) as scipy computes the output shape.
int64_t zoom_output_size(int64_t in, double factor);

// One resampling between two fixed 2D shapes; the per-axis tap indices and
// weights are computed once and reused for every slice.
class Zoom2D {
 public:
  Zoom2D(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, int order);  // order 0 or 3

  int64_t in_h() const { return in_h_; }
  int64_t in_w() const { return in_w_; }
  int64_t out_h() const { return out_h_; }
  int64_t out_w() const { return out_w_; }
  int order() const { return order_; }

  // One slice [in_h, in_w] -> [out_h, out_w]. Uses OpenMP over rows unless
  // called from inside a parallel region.
  void apply(const float* in, float* out) const;
  // Order 0 only (labels): integer values are copied, never rounded.
  void apply(const int32_t* in, int32_t* out) const;
  // `count` consecutive slices, in parallel over slices.
  void apply_many(int64_t count, const float* in, float* out) const;
  void apply_many(int64_t count, const int32_t* in, int32_t* out) const;

  // The per-axis sampling tables (src/cuda/zoom.cu runs on the same ones).
  struct Axis {
    int64_t in = 0, out = 0;
    std::vector<uint8_t> zero;    // [out]: coordinate outside the input -> cval
    std::vector<int64_t> index;   // [out * taps]: input index of each tap (mirrored at the borders)
    std::vector<double> weight;   // [out * taps]: B-spline weight of each tap (order 3)
  };
  const Axis& row_axis() const { return rows_; }
  const Axis& col_axis() const { return cols_; }
  bool identity() const { return identity_; }

 private:
  static Axis make_axis(int64_t in, int64_t out, int order);
  void prefilter(const float* in, double* coef) const;
  void interpolate(const double* coef, float* out) const;

  int64_t in_h_, in_w_, out_h_, out_w_;
  int order_;
  bool identity_;
  Axis rows_, cols_;
};

// Cubic B-spline prefilter of one 1D line in place, as scipy's spline_filter1d
// with mode 'mirror' (exposed for the tests).
void spline_prefilter_line(double* c, int64_t n);

}  // namespace swinrt
