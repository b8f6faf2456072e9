// Exact Euclidean distance transform on a 3D grid with anisotropic spacing:
// for every voxel, the squared distance to the nearest "site" voxel, as
// scipy.ndimage.distance_transform_edt(~sites, sampling) squared.
//
// Separable: axis 0 by two scans (distance to the nearest site in the
// column), then axes 1 and 2 by the lower envelope of parabolas
// (Felzenszwalb & Huttenlocher 2012), in double. The squared terms are added
// axis 0 first, as scipy adds them, so with integer spacings the result is
// exact and bit-identical; otherwise it agrees to rounding.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

namespace swinrt {

using Dims3 = std::array<int64_t, 3>;   // C order: dims[2] varies fastest
using Spacing3 = std::array<double, 3>; // per array axis

constexpr double kEdtInfinity = std::numeric_limits<double>::infinity();

// sites: dims[0]*dims[1]*dims[2] bytes, nonzero = site. out: squared
// distances, kEdtInfinity everywhere when there is no site. `query`, when
// given, marks the voxels whose value is needed: the last pass skips rows
// without any (their values are left unspecified).
void squared_edt(const uint8_t* sites, const Dims3& dims, const Spacing3& spacing, double* out,
                 const uint8_t* query = nullptr);

// The 1D lower envelope step: out[i] = min_q f[q] + ((i - q) * spacing)^2
// over q with finite f[q] (kEdtInfinity where all are infinite). v and z are
// scratch of n and n+1 elements.
void squared_edt_line(const double* f, int64_t n, double spacing, double* out, int64_t* v, double* z);

}  // namespace swinrt
