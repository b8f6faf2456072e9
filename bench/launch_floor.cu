// Launch floor: a CUDA graph of 95 dependent kernels (as many as swinrt's
// batch-1 fp16 forward) that do almost nothing, timed per kernel with plain
// edges and with programmatic (PDL) edges, for 1, 132 and 264 blocks
// (docs/PERFORMANCE_LOG.md, "Session 11"). Build and run on the GPU machine:
//   nvcc -std=c++17 -arch=sm_90a -O2 -o launch_floor bench/launch_floor.cu && ./launch_floor
#include <cstdio>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)
__global__ void tiny(float* p, int pdl) {
  if (pdl) asm volatile("griddepcontrol.wait;" ::: "memory");
  if (pdl) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  if (threadIdx.x == 0 && blockIdx.x == 0) p[0] += 1.f;
}
int main() {
  float* p; CK(cudaMalloc(&p, 4)); CK(cudaMemset(p, 0, 4));
  cudaStream_t s; CK(cudaStreamCreate(&s));
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int blocks : {1, 132, 264}) for (int pdl : {0, 1}) {
    const int n = 95;
    cudaGraph_t g; cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < n; ++i) {
      cudaLaunchAttribute at[1]; at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      at[0].val.programmaticStreamSerializationAllowed = 1;
      cudaLaunchConfig_t c{}; c.gridDim = blocks; c.blockDim = 256; c.stream = s; c.attrs = at; c.numAttrs = pdl;
      CK(cudaLaunchKernelEx(&c, tiny, p, pdl));
    }
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    std::vector<float> t;
    for (int r = 0; r < 60; ++r) {
      cudaEventRecord(a, s); cudaGraphLaunch(ge, s); cudaEventRecord(b, s); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b); if (r >= 10) t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    printf("blocks %3d pdl %d: %d kernels %.4f ms, %.2f us per kernel\n", blocks, pdl, n, t[t.size() / 2], 1000 * t[t.size() / 2] / n);
    cudaGraphExecDestroy(ge); cudaGraphDestroy(g);
  }
  return 0;
}
