// The metrics of the Synapse test protocol with medpy's semantics:
//
//   dc(a, b)   = 2 |a & b| / (|a| + |b|)                  (medpy.metric.binary.dc)
//   hd95(a, b) = 95th percentile (numpy's default linear interpolation) of
//                the distances from every surface voxel of a to the nearest
//                surface voxel of b, and from b's to a's  (medpy.metric.binary.hd95)
//
// where the surface of a mask is mask & ~binary_erosion(mask) with the
// face-connected cross (connectivity 1) and voxels outside the array counted
// as background (so mask voxels on the array border are surface), and
// distances are Euclidean with the voxel spacing per array axis.
//
// calculate_metric_percase of the original utils.py decides which applies:
// both masks non-empty -> (dc, hd95); only the prediction -> (1, 0);
// otherwise (0, 0).
#pragma once

#include <cstdint>
#include <vector>

#include "edt.h"

namespace swinrt {

// A C-ordered array of rank 1..3; dims are padded with leading 1s to 3 and
// the padding axes take no part in the surface (as for a lower-rank array).
struct VolumeShape {
  int rank = 3;
  Dims3 dims{1, 1, 1};
  int64_t voxels() const { return dims[0] * dims[1] * dims[2]; }
};
// shape: 1 to 3 extents, C order.
VolumeShape volume_shape(const std::vector<int64_t>& shape);

struct ClassMetric {
  double dice = 0.0;
  double hd95 = 0.0;
};

// medpy.metric.binary.dc of two masks of n voxels (nonzero = object); 1 when
// both are empty, as medpy.
double dice_coefficient(const uint8_t* a, const uint8_t* b, int64_t n);

// medpy.metric.binary.hd95(a, b, voxelspacing=spacing, connectivity=1).
// Throws swinrt::Error when either mask is empty (medpy raises too).
double hd95(const uint8_t* a, const uint8_t* b, const VolumeShape& shape, const Spacing3& spacing);

// numpy.percentile(values, q) with method='linear'; reorders `values`.
double percentile_linear(std::vector<double>& values, double q);

// calculate_metric_percase(pred, gt) of the original utils.py.
ClassMetric metric_percase(const uint8_t* pred, const uint8_t* gt, const VolumeShape& shape, const Spacing3& spacing);

// The class table both evaluate_volume and its GPU twin index labels with:
// slot[c] = k for classes[k], -1 for labels that are not evaluated; throws
// for a class outside [0, 65536).
std::vector<int> class_slots(const std::vector<int>& classes);

// calculate_metric_percase(pred == c, gt == c) for every c of `classes`, from
// one pass over the label volumes; the distance transforms run on the
// bounding box of the class in either volume only (the result is the same:
// outside it there is neither surface nor site).
std::vector<ClassMetric> evaluate_volume(const int32_t* pred, const int32_t* gt, const VolumeShape& shape,
                                         const Spacing3& spacing, const std::vector<int>& classes);

}  // namespace swinrt
