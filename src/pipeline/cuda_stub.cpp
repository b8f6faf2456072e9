// The GPU pipeline's entry points (src/cuda/pipeline.h) in a build without
// CUDA: available() says so, everything else throws.
#include "cuda/pipeline.h"

#ifndef SWINRT_WITH_CUDA
#include "swinrt/error.h"

namespace swinrt {

namespace {
[[noreturn]] void no_cuda() {
  throw Error("this swinrt was built without CUDA (rebuild where nvcc is found, or use --device cpu)");
}
}  // namespace

bool cuda_pipeline_available(std::string* why) {
  if (why) *why = "this swinrt was built without CUDA";
  return false;
}

struct CudaZoom2D::Impl {};
CudaZoom2D::CudaZoom2D(int64_t, int64_t, int64_t, int64_t, int, int64_t) { no_cuda(); }
CudaZoom2D::~CudaZoom2D() = default;
void CudaZoom2D::apply_many(int64_t, const float*, float*) { no_cuda(); }
void CudaZoom2D::apply_many(int64_t, const int32_t*, int32_t*) { no_cuda(); }

void cuda_squared_edt(const uint8_t*, const Dims3&, const Spacing3&, double*) { no_cuda(); }

std::vector<ClassMetric> cuda_evaluate_volume(const int32_t*, const int32_t*, const VolumeShape&, const Spacing3&,
                                              const std::vector<int>&) {
  no_cuda();
}

}  // namespace swinrt
#endif
