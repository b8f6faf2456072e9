// dc and hd95 with medpy's semantics (see metrics.h).
//
// hd95 works on the bounding box of both masks: the surfaces are found from
// the full arrays (the array border counts as background), the distance
// transform of one surface is evaluated on the box only (every site lies in
// it), and distances are read at the other surface's voxels. The order
// statistics are picked with nth_element, then interpolated as numpy's
// percentile does.
#include "metrics.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <cmath>
#include <fmt/format.h>

#include "swinrt/error.h"

namespace swinrt {

VolumeShape volume_shape(const std::vector<int64_t>& shape) {
  if (shape.empty() || shape.size() > 3)
    throw Error(fmt::format("label volume of rank {}: rank 1 to 3 expected", shape.size()));
  VolumeShape s;
  s.rank = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] <= 0) throw Error(fmt::format("label volume with an empty axis {}", i));
    s.dims[3 - shape.size() + i] = shape[i];
  }
  return s;
}

namespace {

// An axis-aligned box of voxels, lo inclusive, hi exclusive; empty at first.
struct Box {
  Dims3 lo{INT64_MAX, INT64_MAX, INT64_MAX}, hi{0, 0, 0};
  bool empty() const { return hi[0] <= lo[0] || hi[1] <= lo[1] || hi[2] <= lo[2]; }
  int64_t voxels() const { return empty() ? 0 : (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]); }
  Dims3 size() const { return {hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]}; }
  void add(const Box& o) {
    if (o.empty()) return;
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], o.lo[a]);
      hi[a] = std::max(hi[a], o.hi[a]);
    }
  }
  void add_point(int64_t i0, int64_t i1, int64_t i2) {
    const int64_t p[3] = {i0, i1, i2};
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a] + 1);
    }
  }
};

// out[box voxel] = 1 where inside(voxel) and some face neighbour (along the
// shape's real axes) is outside the array or not inside: mask ^ erosion(mask).
template <typename Inside>
void surface_in_box(const Inside& inside, const VolumeShape& shape, const Box& box, uint8_t* out) {
  const Dims3& d = shape.dims;
  const int64_t stride[3] = {d[1] * d[2], d[2], 1};
  const int first_axis = 3 - shape.rank;
  const Dims3 bs = box.size();
#pragma omp parallel for schedule(static) collapse(2)
  for (int64_t b0 = 0; b0 < bs[0]; ++b0)
    for (int64_t b1 = 0; b1 < bs[1]; ++b1) {
      const int64_t i0 = box.lo[0] + b0, i1 = box.lo[1] + b1;
      uint8_t* o = out + (b0 * bs[1] + b1) * bs[2];
      for (int64_t b2 = 0; b2 < bs[2]; ++b2) {
        const int64_t i2 = box.lo[2] + b2;
        const int64_t idx = i0 * stride[0] + i1 * stride[1] + i2;
        uint8_t s = 0;
        if (inside(idx)) {
          const int64_t coord[3] = {i0, i1, i2};
          for (int a = first_axis; a < 3 && !s; ++a) {
            if (coord[a] == 0 || !inside(idx - stride[a])) s = 1;
            else if (coord[a] == d[a] - 1 || !inside(idx + stride[a])) s = 1;
          }
        }
        o[b2] = s;
      }
    }
}

// The distances from each voxel of `from` to the nearest voxel of `to`
// (surfaces on the same box), appended to `dist`.
void surface_distances(const uint8_t* from, const uint8_t* to, const Dims3& box, const Spacing3& spacing,
                       std::vector<double>& scratch, std::vector<double>& dist) {
  const int64_t n = box[0] * box[1] * box[2];
  scratch.resize(static_cast<size_t>(n));
  squared_edt(to, box, spacing, scratch.data(), from);
  for (int64_t i = 0; i < n; ++i)
    if (from[i]) dist.push_back(std::sqrt(scratch[i]));
}

double hd95_of_surfaces(const uint8_t* sa, const uint8_t* sb, const Dims3& box, const Spacing3& spacing) {
  const int64_t n = box[0] * box[1] * box[2];
  const int64_t na = std::count_if(sa, sa + n, [](uint8_t x) { return x != 0; });
  const int64_t nb = std::count_if(sb, sb + n, [](uint8_t x) { return x != 0; });
  std::vector<double> dist, scratch;
  dist.reserve(static_cast<size_t>(na + nb));
  surface_distances(sa, sb, box, spacing, scratch, dist);
  surface_distances(sb, sa, box, spacing, scratch, dist);
  return percentile_linear(dist, 95.0);
}

// First and last nonzero byte of a row (-1 when none), eight bytes at a time.
std::pair<int64_t, int64_t> nonzero_span(const uint8_t* row, int64_t n) {
  auto word = [row](int64_t i) {
    uint64_t w;
    std::memcpy(&w, row + i, 8);
    return w;
  };
  int64_t first = -1;
  int64_t i = 0;
  for (; i + 8 <= n && first < 0; i += 8)
    if (word(i)) first = i;
  if (first < 0)
    for (; i < n; ++i)
      if (row[i]) {
        first = i;
        break;
      }
  if (first < 0) return {-1, -1};
  while (!row[first]) ++first;
  int64_t last = n - 1;
  while (last >= first + 8 && !word(last - 7)) last -= 8;
  while (!row[last]) --last;
  return {first, last};
}

Box mask_box(const uint8_t* m, const VolumeShape& shape) {
  const Dims3& d = shape.dims;
  const int64_t rows = d[0] * d[1];
  Box box;
#pragma omp parallel
  {
    Box local;
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      const auto [first, last] = nonzero_span(m + r * d[2], d[2]);
      if (first >= 0) {
        local.add_point(r / d[1], r % d[1], first);
        local.add_point(r / d[1], r % d[1], last);
      }
    }
#pragma omp critical
    box.add(local);
  }
  return box;
}

}  // namespace

double percentile_linear(std::vector<double>& values, double q) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (n == 0) throw Error("percentile of an empty set");
  // numpy: virtual index (n-1) * q/100, neighbours floor() and floor()+1
  // (both the last element at or past the end), weight = the fraction.
  const double index = static_cast<double>(n - 1) * (q / 100.0);
  int64_t lo, hi;
  double gamma;
  if (index >= static_cast<double>(n - 1)) {
    lo = hi = n - 1;
    gamma = 0.0;
  } else {
    const double fl = std::floor(index);
    lo = static_cast<int64_t>(fl);
    hi = lo + 1;
    gamma = index - fl;
  }
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double a = values[static_cast<size_t>(lo)];
  const double b = hi == lo ? a : *std::min_element(values.begin() + lo + 1, values.end());
  // numpy's _lerp: from the nearer end, so that gamma 1 gives b exactly.
  const double diff = b - a;
  return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

double dice_coefficient(const uint8_t* a, const uint8_t* b, int64_t n) {
  int64_t inter = 0, na = 0, nb = 0;
#pragma omp parallel for reduction(+ : inter, na, nb) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const bool x = a[i] != 0, y = b[i] != 0;
    na += x;
    nb += y;
    inter += x && y;
  }
  if (na + nb == 0) return 1.0;
  return 2.0 * static_cast<double>(inter) / static_cast<double>(na + nb);
}

double hd95(const uint8_t* a, const uint8_t* b, const VolumeShape& shape, const Spacing3& spacing) {
  Box box = mask_box(a, shape);
  if (box.voxels() == 0) throw Error("hd95: the first mask contains no object");
  const Box bb = mask_box(b, shape);
  if (bb.voxels() == 0) throw Error("hd95: the second mask contains no object");
  box.add(bb);
  const int64_t n = box.voxels();
  std::vector<uint8_t> sa(static_cast<size_t>(n)), sb(static_cast<size_t>(n));
  surface_in_box([a](int64_t i) { return a[i] != 0; }, shape, box, sa.data());
  surface_in_box([b](int64_t i) { return b[i] != 0; }, shape, box, sb.data());
  return hd95_of_surfaces(sa.data(), sb.data(), box.size(), spacing);
}

ClassMetric metric_percase(const uint8_t* pred, const uint8_t* gt, const VolumeShape& shape, const Spacing3& spacing) {
  const int64_t n = shape.voxels();
  const bool any_pred = std::any_of(pred, pred + n, [](uint8_t x) { return x != 0; });
  const bool any_gt = std::any_of(gt, gt + n, [](uint8_t x) { return x != 0; });
  if (any_pred && any_gt) return {dice_coefficient(pred, gt, n), hd95(pred, gt, shape, spacing)};
  if (any_pred) return {1.0, 0.0};
  return {0.0, 0.0};
}

std::vector<int> class_slots(const std::vector<int>& classes) {
  constexpr int kMaxClass = 1 << 16;
  int top = -1;
  for (int c : classes) {
    if (c < 0 || c >= kMaxClass) throw Error(fmt::format("class {} out of range [0, {})", c, kMaxClass));
    top = std::max(top, c);
  }
  std::vector<int> slot(static_cast<size_t>(top + 1), -1);
  for (size_t k = 0; k < classes.size(); ++k) slot[classes[k]] = static_cast<int>(k);
  return slot;
}

std::vector<ClassMetric> evaluate_volume(const int32_t* pred, const int32_t* gt, const VolumeShape& shape,
                                         const Spacing3& spacing, const std::vector<int>& classes) {
  const std::vector<int> slot = class_slots(classes);
  const int nc = static_cast<int>(classes.size()), top = static_cast<int>(slot.size()) - 1;

  // One pass: per class, voxel counts and the bounding box of both masks.
  struct Stats {
    int64_t pred = 0, gt = 0, both = 0;
    Box box;
  };
  std::vector<Stats> stats(static_cast<size_t>(nc));
  const Dims3& d = shape.dims;
  const int64_t rows = d[0] * d[1];
#pragma omp parallel
  {
    std::vector<Stats> local(static_cast<size_t>(nc));
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i0 = r / d[1], i1 = r % d[1];
      const int32_t* p = pred + r * d[2];
      const int32_t* g = gt + r * d[2];
      for (int64_t i2 = 0; i2 < d[2]; ++i2) {
        const int32_t lp = p[i2], lg = g[i2];
        const int sp = lp >= 0 && lp <= top ? slot[lp] : -1;
        const int sg = lg >= 0 && lg <= top ? slot[lg] : -1;
        if (sp >= 0) {
          ++local[sp].pred;
          local[sp].box.add_point(i0, i1, i2);
        }
        if (sg >= 0) {
          ++local[sg].gt;
          if (sg == sp) ++local[sg].both;
          else local[sg].box.add_point(i0, i1, i2);
        }
      }
    }
#pragma omp critical
    for (int k = 0; k < nc; ++k) {
      stats[k].pred += local[k].pred;
      stats[k].gt += local[k].gt;
      stats[k].both += local[k].both;
      stats[k].box.add(local[k].box);
    }
  }

  std::vector<ClassMetric> out(static_cast<size_t>(nc));
  std::vector<uint8_t> sa, sb;
  for (int k = 0; k < nc; ++k) {
    const Stats& s = stats[k];
    if (s.pred > 0 && s.gt > 0) {
      out[k].dice = 2.0 * static_cast<double>(s.both) / static_cast<double>(s.pred + s.gt);
      const int32_t c = classes[k];
      const int64_t n = s.box.voxels();
      sa.resize(static_cast<size_t>(n));
      sb.resize(static_cast<size_t>(n));
      surface_in_box([pred, c](int64_t i) { return pred[i] == c; }, shape, s.box, sa.data());
      surface_in_box([gt, c](int64_t i) { return gt[i] == c; }, shape, s.box, sb.data());
      out[k].hd95 = hd95_of_surfaces(sa.data(), sb.data(), s.box.size(), spacing);
    } else if (s.pred > 0) {
      out[k] = {1.0, 0.0};
    }
  }
  return out;
}

}  // namespace swinrt
