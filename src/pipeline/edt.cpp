// Squared Euclidean distance transform (see edt.h). Three passes, each
// parallel over independent lines:
//   axis 0: forward and backward scans over whole rows of lanes, so memory is
//           read in order; gives ((i0 - nearest site in the column) * s0)^2;
//   axis 1: lines gathered in tiles of kTile columns, lower envelope per line;
//   axis 2: contiguous rows, lower envelope per row (rows without a queried
//           voxel are skipped when a query mask is given).
#include "edt.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace swinrt {

void squared_edt_line(const double* f, int64_t n, double spacing, double* out, int64_t* v, double* z) {
  const double s2 = spacing * spacing;
  // Lower envelope of the parabolas f[q] + s2 * (i - q)^2 over finite f[q]:
  // v[0..k] are their apexes left to right, parabola v[j] is lowest on
  // (z[j], z[j+1]] (index units).
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    if (f[q] == kEdtInfinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -kEdtInfinity;
      z[1] = kEdtInfinity;
      continue;
    }
    // Where parabola q starts to undercut the envelope's last one; pop those
    // it hides completely (z[0] = -inf stops the loop at the first).
    const double dq = static_cast<double>(q);
    double cross;
    for (;;) {
      const double dv = static_cast<double>(v[k]);
      cross = ((f[q] + s2 * dq * dq) - (f[v[k]] + s2 * dv * dv)) / (2.0 * s2 * (dq - dv));
      if (cross > z[k]) break;
      --k;
    }
    ++k;
    v[k] = q;
    z[k] = cross;
    z[k + 1] = kEdtInfinity;
  }
  if (k < 0) {
    std::fill(out, out + n, kEdtInfinity);
    return;
  }
  int64_t j = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (z[j + 1] < static_cast<double>(i)) ++j;
    const double d = static_cast<double>(i - v[j]) * spacing;
    out[i] = f[v[j]] + d * d;
  }
}

namespace {

constexpr int64_t kLanes = 256;  // columns per task of the axis-0 scans
constexpr int64_t kTile = 8;     // lines per gather of the axis-1 pass

// Axis 0: for each lane, the distance in index units to the nearest site of
// its column, squared with spacing s0.
void pass_axis0(const uint8_t* sites, const Dims3& d, double s0, double* out) {
  const int64_t n0 = d[0], plane = d[1] * d[2];
  const int64_t blocks = (plane + kLanes - 1) / kLanes;
#pragma omp parallel
  {
    std::vector<int64_t> last(kLanes);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j0 = b * kLanes, nj = std::min(kLanes, plane - j0);
      std::fill(last.begin(), last.begin() + nj, int64_t{-1});
      // Forward: distance to the nearest site at or above i0 (-1 = none).
      for (int64_t i = 0; i < n0; ++i) {
        const uint8_t* s = sites + i * plane + j0;
        double* o = out + i * plane + j0;
        for (int64_t j = 0; j < nj; ++j) {
          if (s[j]) last[j] = i;
          o[j] = last[j] < 0 ? -1.0 : static_cast<double>(i - last[j]);
        }
      }
      // Backward: the nearer of that and the nearest site below.
      std::fill(last.begin(), last.begin() + nj, int64_t{-1});
      for (int64_t i = n0 - 1; i >= 0; --i) {
        const uint8_t* s = sites + i * plane + j0;
        double* o = out + i * plane + j0;
        for (int64_t j = 0; j < nj; ++j) {
          if (s[j]) last[j] = i;
          double dist = o[j];
          if (last[j] >= 0) {
            const double below = static_cast<double>(last[j] - i);
            if (dist < 0 || below < dist) dist = below;
          }
          if (dist < 0) {
            o[j] = kEdtInfinity;
          } else {
            const double t = dist * s0;
            o[j] = t * t;
          }
        }
      }
    }
  }
}

// Axis 1: lines of n1 elements with stride n2 inside each plane i0.
void pass_axis1(const Dims3& d, double s1, double* g) {
  const int64_t n0 = d[0], n1 = d[1], n2 = d[2];
  if (n1 < 2) return;  // a single element per line: nothing to do
  const int64_t tiles = (n2 + kTile - 1) / kTile;
#pragma omp parallel
  {
    std::vector<double> in(static_cast<size_t>(kTile * n1)), res(static_cast<size_t>(n1)), z(static_cast<size_t>(n1 + 1));
    std::vector<int64_t> v(static_cast<size_t>(n1));
#pragma omp for schedule(static) collapse(2)
    for (int64_t i0 = 0; i0 < n0; ++i0)
      for (int64_t t = 0; t < tiles; ++t) {
        double* base = g + i0 * n1 * n2;
        const int64_t c0 = t * kTile, nc = std::min(kTile, n2 - c0);
        for (int64_t i1 = 0; i1 < n1; ++i1)
          for (int64_t c = 0; c < nc; ++c) in[c * n1 + i1] = base[i1 * n2 + c0 + c];
        for (int64_t c = 0; c < nc; ++c) {
          squared_edt_line(&in[c * n1], n1, s1, res.data(), v.data(), z.data());
          for (int64_t i1 = 0; i1 < n1; ++i1) base[i1 * n2 + c0 + c] = res[i1];
        }
      }
  }
}

// Axis 2: contiguous rows.
void pass_axis2(const Dims3& d, double s2, double* g, const uint8_t* query) {
  const int64_t rows = d[0] * d[1], n2 = d[2];
  if (n2 < 2) return;
#pragma omp parallel
  {
    std::vector<double> in(static_cast<size_t>(n2)), z(static_cast<size_t>(n2 + 1));
    std::vector<int64_t> v(static_cast<size_t>(n2));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double* row = g + r * n2;
      if (query) {
        const uint8_t* q = query + r * n2;
        if (std::find_if(q, q + n2, [](uint8_t x) { return x != 0; }) == q + n2) continue;
      }
      std::copy(row, row + n2, in.begin());
      squared_edt_line(in.data(), n2, s2, row, v.data(), z.data());
    }
  }
}

}  // namespace

void squared_edt(const uint8_t* sites, const Dims3& dims, const Spacing3& spacing, double* out,
                 const uint8_t* query) {
  if (dims[0] <= 0 || dims[1] <= 0 || dims[2] <= 0) return;
  pass_axis0(sites, dims, spacing[0], out);
  pass_axis1(dims, spacing[1], out);
  pass_axis2(dims, spacing[2], out, query);
}

}  // namespace swinrt
