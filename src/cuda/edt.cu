// The exact squared Euclidean distance transform and the per-class metrics
// (dc, hd95) on the GPU, mirror of src/pipeline/edt.cpp and metrics.cpp: the
// same separable algorithm and the same double operations in the same order
// (this file is built with -fmad=false), so every distance, and every hd95,
// is the CPU's.
//
//   edt_axis0      one thread per column (i1, i2): forward and backward scans
//                  down axis 0; adjacent threads read adjacent bytes.
//   edt_envelope   one thread per line: the lower envelope of parabolas
//                  (squared_edt_line) along axis 1 (lines (i0, i2), coalesced)
//                  and then axis 2 (rows). Reads one buffer, writes the other;
//                  the scratch v, z of each line is interleaved with the other
//                  lines' ([k * lines + line]) so that it is coalesced too, and
//                  lines go in chunks so the scratch stays under 256 MB.
//   class_stats    per class voxel counts and bounding boxes of both volumes:
//                  one pass, shared-memory atomics per block, one global atomic
//                  per block and class.
//   surface        mask ^ erosion(mask) of `label == c` on the class's box.
//   gather         sqrt of the transform at the other surface's voxels,
//                  appended through an atomic counter (the percentile does not
//                  depend on the order).
// Device memory per case: 8 bytes per voxel (both label volumes), and per
// class 18 bytes per voxel of its bounding box, 8 per surface voxel, and the
// scratch (256 MB at most); a volume whose worst case does not fit in the
// free device memory is evaluated on the CPU instead (same results).
#include <algorithm>
#include <climits>
#include <cmath>
#include <math_constants.h>
#include <vector>

#include "common.cuh"
#include "pipeline.h"
#include "swinrt/engine.h"

namespace swinrt {

namespace {

using namespace cuda;

constexpr int kThreads = 256;
constexpr size_t kScratchBytes = size_t(256) << 20;

__global__ void edt_axis0(const uint8_t* sites, int64_t n0, int64_t plane, double s0, double* out) {
  wait_for_prior_grids();
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= plane) return;
  int64_t last = -1;
  for (int64_t i = 0; i < n0; ++i) {
    if (sites[i * plane + j]) last = i;
    out[i * plane + j] = last < 0 ? -1.0 : static_cast<double>(i - last);
  }
  last = -1;
  for (int64_t i = n0 - 1; i >= 0; --i) {
    if (sites[i * plane + j]) last = i;
    double dist = out[i * plane + j];
    if (last >= 0) {
      const double below = static_cast<double>(last - i);
      if (dist < 0 || below < dist) dist = below;
    }
    if (dist < 0) {
      out[i * plane + j] = CUDART_INF;
    } else {
      const double t = dist * s0;
      out[i * plane + j] = t * t;
    }
  }
}

// Lines [first, first + count) of a pass: line l starts at
// (l / inner) * outer_stride + (l % inner) * inner_stride and has n elements
// `step` apart. v, z: scratch of `count` lines, interleaved.
struct LineSet {
  int64_t first, count, inner, outer_stride, inner_stride, n, step;
};

// squared_edt_line of edt.cpp for one line.
__global__ void edt_envelope(const double* in, double* out, LineSet ls, double spacing, int32_t* v, double* z) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= ls.count) return;
  const int64_t l = ls.first + t;
  const int64_t base = (l / ls.inner) * ls.outer_stride + (l % ls.inner) * ls.inner_stride;
  const int64_t n = ls.n, step = ls.step, L = ls.count;
  const double* f = in + base;
  double* o = out + base;
  auto V = [&](int64_t k) -> int32_t& { return v[k * L + t]; };
  auto Z = [&](int64_t k) -> double& { return z[k * L + t]; };
  const double s2 = spacing * spacing;
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    const double fq = f[q * step];
    if (fq == CUDART_INF) continue;
    if (k < 0) {
      k = 0;
      V(0) = static_cast<int32_t>(q);
      Z(0) = -CUDART_INF;
      Z(1) = CUDART_INF;
      continue;
    }
    const double dq = static_cast<double>(q);
    double cross;
    for (;;) {
      const int64_t vk = V(k);
      const double dv = static_cast<double>(vk);
      cross = ((fq + s2 * dq * dq) - (f[vk * step] + s2 * dv * dv)) / (2.0 * s2 * (dq - dv));
      if (cross > Z(k)) break;
      --k;
    }
    ++k;
    V(k) = static_cast<int32_t>(q);
    Z(k) = cross;
    Z(k + 1) = CUDART_INF;
  }
  if (k < 0) {
    for (int64_t i = 0; i < n; ++i) o[i * step] = CUDART_INF;
    return;
  }
  int64_t j = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (Z(j + 1) < static_cast<double>(i)) ++j;
    const int64_t vj = V(j);
    const double d = static_cast<double>(i - vj) * spacing;
    o[i * step] = f[vj * step] + d * d;
  }
}

// Work buffers of the transform, grown as needed and reused across classes.
struct EdtBuffers {
  DeviceArray<double> a, b;
  DeviceArray<int32_t> v;
  DeviceArray<double> z;
};

// The envelope pass over `lines` lines of n elements, in chunks.
void envelope_pass(const double* in, double* out, LineSet ls, int64_t lines, double spacing, EdtBuffers& buf,
                   cudaStream_t s) {
  const int64_t per_line = (ls.n + 1) * 12;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(lines, int64_t(kScratchBytes) / per_line));
  buf.v.reserve(static_cast<size_t>(chunk * (ls.n + 1)), "EDT scratch");
  buf.z.reserve(static_cast<size_t>(chunk * (ls.n + 1)), "EDT scratch");
  for (int64_t l0 = 0; l0 < lines; l0 += chunk) {
    ls.first = l0;
    ls.count = std::min(chunk, lines - l0);
    edt_envelope<<<ceil_div(ls.count, kThreads), kThreads, 0, s>>>(in, out, ls, spacing, buf.v.ptr, buf.z.ptr);
    SWINRT_CUDA_CHECK(cudaGetLastError());
  }
}

// squared_edt of device `sites` on dims; returns the buffer holding the result.
const double* device_squared_edt(const uint8_t* sites, const Dims3& d, const Spacing3& spacing, EdtBuffers& buf,
                                 cudaStream_t s) {
  const int64_t n0 = d[0], n1 = d[1], n2 = d[2], voxels = n0 * n1 * n2;
  if (n1 * n2 >= (int64_t(1) << 31) || n0 >= INT32_MAX)
    throw Error(fmt::format("EDT: volume {}x{}x{} too large for the GPU transform", n0, n1, n2));
  buf.a.reserve(static_cast<size_t>(voxels), "EDT volume");
  buf.b.reserve(static_cast<size_t>(voxels), "EDT volume");
  double* cur = buf.a.ptr;
  double* other = buf.b.ptr;
  edt_axis0<<<ceil_div(n1 * n2, kThreads), kThreads, 0, s>>>(sites, n0, n1 * n2, spacing[0], cur);
  SWINRT_CUDA_CHECK(cudaGetLastError());
  if (n1 >= 2) {  // lines (i0, i2) along axis 1
    envelope_pass(cur, other, {0, 0, n2, n1 * n2, 1, n1, n2}, n0 * n2, spacing[1], buf, s);
    std::swap(cur, other);
  }
  if (n2 >= 2) {  // rows (i0, i1) along axis 2
    envelope_pass(cur, other, {0, 0, 1, n2, 0, n2, 1}, n0 * n1, spacing[2], buf, s);
    std::swap(cur, other);
  }
  return cur;
}

// Per-class statistics, as evaluate_volume's pass: counts and the box of
// the class in either volume (hi inclusive here).
struct ClassStats {
  unsigned long long pred, gt, both;
  int lo[3], hi[3];
};
constexpr int kMaxSharedClasses = 128;

__global__ void class_stats(const int32_t* pred, const int32_t* gt, int64_t n1, int64_t n2, int64_t voxels,
                            const int* slot, int top, int nc, ClassStats* stats) {
  wait_for_prior_grids();
  __shared__ ClassStats local[kMaxSharedClasses];
  for (int k = threadIdx.x; k < nc; k += blockDim.x) {
    local[k].pred = local[k].gt = local[k].both = 0;
    for (int a = 0; a < 3; ++a) {
      local[k].lo[a] = INT_MAX;
      local[k].hi[a] = -1;
    }
  }
  __syncthreads();
  auto add_point = [](ClassStats& st, int i0, int i1, int i2) {
    atomicMin(&st.lo[0], i0);
    atomicMin(&st.lo[1], i1);
    atomicMin(&st.lo[2], i2);
    atomicMax(&st.hi[0], i0);
    atomicMax(&st.hi[1], i1);
    atomicMax(&st.hi[2], i2);
  };
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < voxels; i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t lp = pred[i], lg = gt[i];
    const int sp = lp >= 0 && lp <= top ? slot[lp] : -1;
    const int sg = lg >= 0 && lg <= top ? slot[lg] : -1;
    if (sp < 0 && sg < 0) continue;
    const int i2 = static_cast<int>(i % n2), i1 = static_cast<int>((i / n2) % n1), i0 = static_cast<int>(i / (n1 * n2));
    if (sp >= 0) {
      atomicAdd(&local[sp].pred, 1ull);
      add_point(local[sp], i0, i1, i2);
    }
    if (sg >= 0) {
      atomicAdd(&local[sg].gt, 1ull);
      if (sg == sp) atomicAdd(&local[sg].both, 1ull);
      else add_point(local[sg], i0, i1, i2);
    }
  }
  __syncthreads();
  for (int k = threadIdx.x; k < nc; k += blockDim.x) {
    if (local[k].pred) atomicAdd(&stats[k].pred, local[k].pred);
    if (local[k].gt) atomicAdd(&stats[k].gt, local[k].gt);
    if (local[k].both) atomicAdd(&stats[k].both, local[k].both);
    for (int a = 0; a < 3; ++a) {
      if (local[k].hi[a] < 0) continue;
      atomicMin(&stats[k].lo[a], local[k].lo[a]);
      atomicMax(&stats[k].hi[a], local[k].hi[a]);
    }
  }
}

struct SurfaceArgs {
  int64_t d[3];          // the volume
  int64_t lo[3], bs[3];  // the box
  int first_axis;        // 3 - rank
};

// surface_in_box of metrics.cpp for `labels == c`; counts the surface voxels.
__global__ void surface(const int32_t* labels, int32_t c, SurfaceArgs a, uint8_t* out, unsigned long long* count) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t n = a.bs[0] * a.bs[1] * a.bs[2];
  uint8_t s = 0;
  if (t < n) {
    const int64_t coord[3] = {a.lo[0] + t / (a.bs[1] * a.bs[2]), a.lo[1] + (t / a.bs[2]) % a.bs[1], a.lo[2] + t % a.bs[2]};
    const int64_t stride[3] = {a.d[1] * a.d[2], a.d[2], 1};
    const int64_t idx = coord[0] * stride[0] + coord[1] * stride[1] + coord[2];
    if (labels[idx] == c) {
      for (int x = a.first_axis; x < 3 && !s; ++x) {
        if (coord[x] == 0 || labels[idx - stride[x]] != c) s = 1;
        else if (coord[x] == a.d[x] - 1 || labels[idx + stride[x]] != c) s = 1;
      }
    }
    out[t] = s;
  }
  const int block_count = __syncthreads_count(s);
  if (threadIdx.x == 0 && block_count) atomicAdd(count, static_cast<unsigned long long>(block_count));
}

__global__ void gather(const uint8_t* from, const double* sq, int64_t n, double* dist, unsigned long long* next) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= n || !from[t]) return;
  dist[atomicAdd(next, 1ull)] = sqrt(sq[t]);
}

}  // namespace

void cuda_squared_edt(const uint8_t* sites, const Dims3& dims, const Spacing3& spacing, double* out) {
  std::string why;
  if (!cuda_available(&why)) throw Error(why);
  if (dims[0] <= 0 || dims[1] <= 0 || dims[2] <= 0) return;
  const size_t n = static_cast<size_t>(dims[0] * dims[1] * dims[2]);
  Stream stream;
  DeviceArray<uint8_t> d_sites(n, "EDT sites");
  EdtBuffers buf;
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(d_sites.ptr, sites, n, cudaMemcpyHostToDevice, stream.s));
  const double* res = device_squared_edt(d_sites.ptr, dims, spacing, buf, stream.s);
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(out, res, n * 8, cudaMemcpyDeviceToHost, stream.s));
  SWINRT_CUDA_CHECK(cudaStreamSynchronize(stream.s));
}

std::vector<ClassMetric> cuda_evaluate_volume(const int32_t* pred, const int32_t* gt, const VolumeShape& shape,
                                              const Spacing3& spacing, const std::vector<int>& classes) {
  const std::vector<int> slot = class_slots(classes);
  const int nc = static_cast<int>(classes.size()), top = static_cast<int>(slot.size()) - 1;
  // Beyond the shared-memory table, or with coordinates past int: the CPU.
  const Dims3& d = shape.dims;
  if (nc > kMaxSharedClasses || d[0] >= INT_MAX || d[1] >= INT_MAX || d[2] >= INT_MAX)
    return evaluate_volume(pred, gt, shape, spacing, classes);
  std::string why;
  if (!cuda_available(&why)) throw Error(why);
  // Device memory at worst (a class whose box is the whole volume): both
  // label volumes, two transform buffers, two surfaces, the distances, the
  // scratch. A volume that does not fit in what is free goes to the CPU.
  const int64_t voxels = shape.voxels();
  size_t free_bytes = 0, total_bytes = 0;
  SWINRT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (static_cast<double>(voxels) * (8 + 16 + 2 + 8) + double(kScratchBytes) > 0.8 * double(free_bytes))
    return evaluate_volume(pred, gt, shape, spacing, classes);
  std::vector<ClassMetric> out(static_cast<size_t>(nc));
  if (nc == 0) return out;

  Stream stream;
  cudaStream_t s = stream.s;
  DeviceArray<int32_t> d_pred(static_cast<size_t>(voxels), "predicted labels"),
      d_gt(static_cast<size_t>(voxels), "ground-truth labels"), d_slot(slot.size(), "class table");
  DeviceArray<ClassStats> d_stats(static_cast<size_t>(nc), "class statistics");
  DeviceArray<unsigned long long> d_count(3, "counters");
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(d_pred.ptr, pred, voxels * 4, cudaMemcpyHostToDevice, s));
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(d_gt.ptr, gt, voxels * 4, cudaMemcpyHostToDevice, s));
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(d_slot.ptr, slot.data(), slot.size() * 4, cudaMemcpyHostToDevice, s));
  std::vector<ClassStats> stats(static_cast<size_t>(nc));
  for (ClassStats& st : stats) {
    st.pred = st.gt = st.both = 0;
    for (int a = 0; a < 3; ++a) {
      st.lo[a] = INT_MAX;
      st.hi[a] = -1;
    }
  }
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(d_stats.ptr, stats.data(), nc * sizeof(ClassStats), cudaMemcpyHostToDevice, s));
  const unsigned blocks = std::min<unsigned>(ceil_div(voxels, kThreads), 1024);
  class_stats<<<blocks, kThreads, 0, s>>>(d_pred.ptr, d_gt.ptr, d[1], d[2], voxels, d_slot.ptr, top, nc, d_stats.ptr);
  SWINRT_CUDA_CHECK(cudaGetLastError());
  SWINRT_CUDA_CHECK(cudaMemcpyAsync(stats.data(), d_stats.ptr, nc * sizeof(ClassStats), cudaMemcpyDeviceToHost, s));
  SWINRT_CUDA_CHECK(cudaStreamSynchronize(s));

  EdtBuffers buf;
  DeviceArray<uint8_t> sa, sb;
  DeviceArray<double> dist;
  for (int k = 0; k < nc; ++k) {
    const ClassStats& st = stats[k];
    if (st.pred > 0 && st.gt > 0) {
      out[k].dice = 2.0 * static_cast<double>(st.both) / static_cast<double>(st.pred + st.gt);
      SurfaceArgs sa_args{};
      for (int a = 0; a < 3; ++a) {
        sa_args.d[a] = d[a];
        sa_args.lo[a] = st.lo[a];
        sa_args.bs[a] = int64_t(st.hi[a]) + 1 - st.lo[a];
      }
      sa_args.first_axis = 3 - shape.rank;
      const Dims3 box{sa_args.bs[0], sa_args.bs[1], sa_args.bs[2]};
      const int64_t n = box[0] * box[1] * box[2];
      sa.reserve(static_cast<size_t>(n), "surface");
      sb.reserve(static_cast<size_t>(n), "surface");
      SWINRT_CUDA_CHECK(cudaMemsetAsync(d_count.ptr, 0, 3 * sizeof(unsigned long long), s));
      surface<<<ceil_div(n, kThreads), kThreads, 0, s>>>(d_pred.ptr, classes[k], sa_args, sa.ptr, d_count.ptr);
      surface<<<ceil_div(n, kThreads), kThreads, 0, s>>>(d_gt.ptr, classes[k], sa_args, sb.ptr, d_count.ptr + 1);
      SWINRT_CUDA_CHECK(cudaGetLastError());
      unsigned long long counts[2];
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(counts, d_count.ptr, sizeof(counts), cudaMemcpyDeviceToHost, s));
      SWINRT_CUDA_CHECK(cudaStreamSynchronize(s));
      const size_t total = static_cast<size_t>(counts[0] + counts[1]);
      dist.reserve(total, "surface distances");
      // a's surface to the nearest of b's, then b's to a's (hd95_of_surfaces).
      const double* sq = device_squared_edt(sb.ptr, box, spacing, buf, s);
      gather<<<ceil_div(n, kThreads), kThreads, 0, s>>>(sa.ptr, sq, n, dist.ptr, d_count.ptr + 2);
      SWINRT_CUDA_CHECK(cudaGetLastError());
      sq = device_squared_edt(sa.ptr, box, spacing, buf, s);
      gather<<<ceil_div(n, kThreads), kThreads, 0, s>>>(sb.ptr, sq, n, dist.ptr, d_count.ptr + 2);
      SWINRT_CUDA_CHECK(cudaGetLastError());
      std::vector<double> host(total);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(host.data(), dist.ptr, total * 8, cudaMemcpyDeviceToHost, s));
      SWINRT_CUDA_CHECK(cudaStreamSynchronize(s));
      out[k].hd95 = percentile_linear(host, 95.0);
    } else if (st.pred > 0) {
      out[k] = {1.0, 0.0};
    }
  }
  return out;
}

}  // namespace swinrt
