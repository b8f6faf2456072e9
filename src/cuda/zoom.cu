// scipy.ndimage.zoom of 2D slices on the GPU, mirror of src/pipeline/zoom.cpp
// (see zoom.h there for what scipy does). The sampling tables (tap indices,
// B-spline weights, cval rows/columns) are the CPU's own Zoom2D tables,
// uploaded once; the kernels repeat the CPU's floating-point operations in
// the same order, and this file is built with -fmad=false (CMakeLists.txt)
// so that no a*b+c becomes an FMA: the results are the CPU's bits.
//
// Order 3, per chunk of B slices [B, H, W] float -> [B, OH, OW] float:
//   prefilter_rows   one thread per (slice, column): converts to double,
//                    gain, recursive filter down the column (axis 0). Adjacent
//                    threads read adjacent columns, so every step of the
//                    recursion is one coalesced row access.
//   prefilter_cols   one thread per (slice, row): the filter along the row
//                    (axis 1); strided between threads, but each thread walks
//                    its own cache lines (512 x B lines, ~10 passes of 8 MB).
//   interpolate      one thread per output pixel: 16 taps, summed as scipy.
// Order 0: one thread per output pixel, a gather (float images or int32 labels).
// Device memory: 4 + 8 + 4 bytes per input pixel of one chunk (max_slices).
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.cuh"
#include "pipeline.h"
#include "pipeline/zoom.h"
#include "swinrt/engine.h"

namespace swinrt {

namespace {

using namespace cuda;

// The recursive filter of one line of n coefficients at p[0], p[step], ...,
// already multiplied by the gain: prefilter_lanes of zoom.cpp for one lane.
__device__ void filter_line(double* p, int64_t n, int64_t step, double z_last) {
  if (n < 2) return;
  const double z = kSplinePole;
  double first = p[0] + z_last * p[(n - 1) * step];
  double zi = z;
  for (int64_t i = 1; i < n - 1; ++i) {
    first += zi * (p[i * step] + z_last * p[(n - 1 - i) * step]);
    zi *= z;
  }
  const double denom = 1 - z_last * z_last;
  p[0] = first / denom;
  for (int64_t i = 1; i < n; ++i) p[i * step] += z * p[(i - 1) * step];
  p[(n - 1) * step] = (z * p[(n - 2) * step] + p[(n - 1) * step]) * z / (z * z - 1);
  for (int64_t i = n - 2; i >= 0; --i) p[i * step] = z * (p[(i + 1) * step] - p[i * step]);
}

__global__ void prefilter_rows(const float* in, double* coef, int64_t B, int64_t H, int64_t W, double gain,
                               double z_last) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= B * W) return;
  const int64_t b = t / W, j = t % W;
  const float* x = in + b * H * W + j;
  double* p = coef + b * H * W + j;
  for (int64_t i = 0; i < H; ++i) p[i * W] = static_cast<double>(x[i * W]) * gain;
  filter_line(p, H, W, z_last);
}

__global__ void prefilter_cols(double* coef, int64_t B, int64_t H, int64_t W, double gain, double z_last) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= B * H) return;
  double* p = coef + t * W;
  for (int64_t k = 0; k < W; ++k) p[k] = p[k] * gain;
  filter_line(p, W, 1, z_last);
}

struct AxisTables {
  const uint8_t* zero;
  const int32_t* index;
  const double* weight;
};

__global__ void interpolate(const double* coef, float* out, int64_t B, int64_t H, int64_t W, int64_t OH, int64_t OW,
                            AxisTables rows, AxisTables cols) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= B * OH * OW) return;
  const int64_t c = t % OW, r = (t / OW) % OH, b = t / (OW * OH);
  if (rows.zero[r] || cols.zero[c]) {
    out[t] = 0.f;
    return;
  }
  const double* cb = coef + b * H * W;
  double sum = 0.0;
  for (int a = 0; a < 4; ++a) {
    const double* line = cb + int64_t(rows.index[r * 4 + a]) * W;
    for (int k = 0; k < 4; ++k) {
      double v = line[cols.index[c * 4 + k]];
      v *= rows.weight[r * 4 + a];
      v *= cols.weight[c * 4 + k];
      sum += v;
    }
  }
  out[t] = static_cast<float>(sum);
}

template <typename T>
__global__ void nearest(const T* in, T* out, int64_t B, int64_t H, int64_t W, int64_t OH, int64_t OW, AxisTables rows,
                        AxisTables cols) {
  wait_for_prior_grids();
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= B * OH * OW) return;
  const int64_t c = t % OW, r = (t / OW) % OH, b = t / (OW * OH);
  out[t] = rows.zero[r] || cols.zero[c] ? T(0) : in[b * H * W + int64_t(rows.index[r]) * W + cols.index[c]];
}

constexpr int kThreads = 256;

struct DeviceAxis {
  DeviceArray<uint8_t> zero;
  DeviceArray<int32_t> index;
  DeviceArray<double> weight;

  DeviceAxis(const Zoom2D::Axis& a, cudaStream_t s) {
    std::vector<int32_t> idx(a.index.begin(), a.index.end());
    zero = DeviceArray<uint8_t>(a.zero.size(), "zoom tables");
    index = DeviceArray<int32_t>(idx.size(), "zoom tables");
    SWINRT_CUDA_CHECK(cudaMemcpyAsync(zero.ptr, a.zero.data(), a.zero.size(), cudaMemcpyHostToDevice, s));
    SWINRT_CUDA_CHECK(cudaMemcpyAsync(index.ptr, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice, s));
    if (!a.weight.empty()) {
      weight = DeviceArray<double>(a.weight.size(), "zoom tables");
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(weight.ptr, a.weight.data(), a.weight.size() * 8, cudaMemcpyHostToDevice, s));
    }
    SWINRT_CUDA_CHECK(cudaStreamSynchronize(s));  // `idx` goes out of scope
  }
  AxisTables tables() const { return {zero.ptr, index.ptr, weight.ptr}; }
};

}  // namespace

struct CudaZoom2D::Impl {
  Zoom2D host;  // the tables, and the identity copy
  int64_t max_slices;
  Stream stream;
  std::unique_ptr<DeviceAxis> rows, cols;
  DeviceArray<float> in, out;  // int32 labels use the same bytes
  DeviceArray<double> coef;
  double z_last_h = 0.0, z_last_w = 0.0;

  Impl(int64_t ih, int64_t iw, int64_t oh, int64_t ow, int order, int64_t max)
      : host(ih, iw, oh, ow, order), max_slices(std::max<int64_t>(1, max)) {
    std::string why;
    if (!cuda_available(&why)) throw Error(why);
    if (host.identity()) return;
    rows = std::make_unique<DeviceAxis>(host.row_axis(), stream.s);
    cols = std::make_unique<DeviceAxis>(host.col_axis(), stream.s);
    in = DeviceArray<float>(static_cast<size_t>(max_slices * ih * iw), "zoom input slices");
    out = DeviceArray<float>(static_cast<size_t>(max_slices * oh * ow), "zoom output slices");
    if (order == 3) coef = DeviceArray<double>(static_cast<size_t>(max_slices * ih * iw), "zoom spline coefficients");
    // As the CPU computes them (std::pow on the host).
    z_last_h = std::pow(kSplinePole, static_cast<double>(ih - 1));
    z_last_w = std::pow(kSplinePole, static_cast<double>(iw - 1));
  }

  // One chunk of n slices already in `in` -> `out`.
  template <typename T>
  void run_chunk(int64_t n) {
    const int64_t H = host.in_h(), W = host.in_w(), OH = host.out_h(), OW = host.out_w();
    cudaStream_t s = stream.s;
    if (host.order() == 3) {
      prefilter_rows<<<ceil_div(n * W, kThreads), kThreads, 0, s>>>(in.ptr, coef.ptr, n, H, W,
                                                                   H > 1 ? kSplineGain : 1.0, z_last_h);
      prefilter_cols<<<ceil_div(n * H, kThreads), kThreads, 0, s>>>(coef.ptr, n, H, W, W > 1 ? kSplineGain : 1.0,
                                                                   z_last_w);
      interpolate<<<ceil_div(n * OH * OW, kThreads), kThreads, 0, s>>>(coef.ptr, out.ptr, n, H, W, OH, OW,
                                                                       rows->tables(), cols->tables());
    } else {
      nearest<T><<<ceil_div(n * OH * OW, kThreads), kThreads, 0, s>>>(reinterpret_cast<const T*>(in.ptr),
                                                                       reinterpret_cast<T*>(out.ptr), n, H, W, OH,
                                                                       OW, rows->tables(), cols->tables());
    }
    SWINRT_CUDA_CHECK(cudaGetLastError());
  }

  template <typename T>
  void apply(int64_t count, const T* src, T* dst) {
    const int64_t is = host.in_h() * host.in_w(), os = host.out_h() * host.out_w();
    if (host.identity()) {
      std::copy(src, src + count * is, dst);
      return;
    }
    for (int64_t s0 = 0; s0 < count; s0 += max_slices) {
      const int64_t n = std::min(max_slices, count - s0);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(in.ptr, src + s0 * is, n * is * 4, cudaMemcpyHostToDevice, stream.s));
      run_chunk<T>(n);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(dst + s0 * os, out.ptr, n * os * 4, cudaMemcpyDeviceToHost, stream.s));
      SWINRT_CUDA_CHECK(cudaStreamSynchronize(stream.s));
    }
  }
};

CudaZoom2D::CudaZoom2D(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, int order, int64_t max_slices)
    : impl_(std::make_unique<Impl>(in_h, in_w, out_h, out_w, order, max_slices)) {}
CudaZoom2D::~CudaZoom2D() = default;

void CudaZoom2D::apply_many(int64_t count, const float* in, float* out) { impl_->apply(count, in, out); }

void CudaZoom2D::apply_many(int64_t count, const int32_t* in, int32_t* out) {
  if (impl_->host.order() != 0) throw Error("zoom: integer labels take order 0 only");
  impl_->apply(count, in, out);
}

bool cuda_pipeline_available(std::string* why) { return cuda_available(why); }

}  // namespace swinrt
