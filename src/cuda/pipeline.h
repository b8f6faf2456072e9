// The evaluation pipeline on the GPU: resampling (src/cuda/zoom.cu, mirror of
// src/pipeline/zoom.cpp) and the per-class metrics with the exact distance
// transform (src/cuda/edt.cu, mirror of src/pipeline/edt.cpp and
// metrics.cpp). Results are the same bits as the CPU path: the same tables,
// the same operations in the same order, no FMA contraction (-fmad=false).
// Plain C++ header; without CUDA the functions throw swinrt::Error
// (src/pipeline/cuda_stub.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/edt.h"
#include "pipeline/metrics.h"

namespace swinrt {

// True when this build has CUDA and a GPU is usable (as cuda_available()).
bool cuda_pipeline_available(std::string* why);

// Zoom2D on the GPU, for slices in host memory: `count` slices go up in
// chunks of at most `max_slices`, are resampled on the device and come back;
// device memory is bounded by max_slices whatever the count.
class CudaZoom2D {
 public:
  CudaZoom2D(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, int order, int64_t max_slices = 8);
  ~CudaZoom2D();
  CudaZoom2D(const CudaZoom2D&) = delete;
  CudaZoom2D& operator=(const CudaZoom2D&) = delete;

  void apply_many(int64_t count, const float* in, float* out);
  void apply_many(int64_t count, const int32_t* in, int32_t* out);  // order 0 only

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// squared_edt on the GPU (host arrays; every voxel computed).
void cuda_squared_edt(const uint8_t* sites, const Dims3& dims, const Spacing3& spacing, double* out);

// evaluate_volume on the GPU: the same ClassMetric values (dice from the
// same counts, hd95 from the same distances and the same percentile).
std::vector<ClassMetric> cuda_evaluate_volume(const int32_t* pred, const int32_t* gt, const VolumeShape& shape,
                                              const Spacing3& spacing, const std::vector<int>& classes);

}  // namespace swinrt
