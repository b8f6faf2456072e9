// Cluster exchange floor: what a thread-block cluster per window would pay
// between its phases if the batch-1 Swin blocks of 192 to 768 channels ran
// as one kernel with the window's work split over S thread blocks (one an
// SM, 512 threads, 200 KB of shared memory each, 16 clusters as the
// 192-channel stage's 16 windows). Per cluster size S: how many clusters the
// device holds at once, the time of a cluster barrier, and of an all-gather
// through distributed shared memory (each block stores its slice of a
// window's 64 rows into every block of the cluster, then a barrier) for
// the rows each phase would exchange: 192 channels fp16 (attention output),
// 192 fp32 (the residual rows after proj), 384 fp16, 768 fp16 (fc1's hidden
// layer); a round ends with a cluster barrier or (the "by mbarriers" rows)
// with mbarrier arrivals across the cluster (exchange's sync 2). Thread 0
// of block 0 times 200 rounds with %globaltimer; medians of 5 launches. Build and run on the GPU machine:
//   nvcc -std=c++17 -arch=sm_90a -O2 -o cluster_exchange bench/cluster_exchange.cu && ./cluster_exchange
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace cg = cooperative_groups;

#define CK(x)                                                           \
  do {                                                                  \
    cudaError_t e = (x);                                                \
    if (e != cudaSuccess) {                                             \
      std::printf("%s: %s\n", #x, cudaGetErrorString(e));               \
      return 1;                                                         \
    }                                                                   \
  } while (0)

constexpr int kThreads = 512, kRounds = 200, kClusters = 16;
constexpr int kSmem = 200 * 1024;

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// How a round ends (sync):
// 0: barrier.cluster, arrive.release / wait.acquire (cluster.sync());
// 1: barrier.cluster, arrive.relaxed (what the barrier costs without its memory ordering);
// 2: mbarriers: a block barrier, then thread 0 arrives (release, cluster scope) on the mbarrier of every
//    block of the cluster, its own included, and every thread waits (acquire, cluster scope) on its own
//    block's, which completes with S arrivals; two mbarriers a block, alternating with the rounds (a
//    block is never more than one round ahead of another).
// slice: bytes each block contributes (0: barriers only); its slice lands at offset rank * slice in every
// block's buffer.
__global__ void __launch_bounds__(kThreads, 1) exchange(int slice, int sync, unsigned long long* ns) {
  extern __shared__ uint4 buf[];
  __shared__ __align__(8) unsigned long long bars[2];
  cg::cluster_group cluster = cg::this_cluster();
  const unsigned S = cluster.num_blocks(), me = cluster.block_rank();
  const int n16 = slice / 16;
  if (threadIdx.x == 0) {
    for (int i = 0; i < 2; ++i) asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(&bars[i])), "r"(S));
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  cluster.sync();
  const unsigned long long t0 = global_ns();
  for (int r = 0; r < kRounds; ++r) {
    for (unsigned d = 0; d < S; ++d) {
      const unsigned dst = (me + d) % S;  // every block starts with itself, then its neighbours
      uint4* remote = cluster.map_shared_rank(buf, dst) + me * n16;
      for (int i = threadIdx.x; i < n16; i += kThreads) remote[i] = make_uint4(r, i, me, d);
    }
    if (sync == 1) {
      asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
      asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
    } else if (sync == 2) {
      const uint32_t bar = smem_addr(&bars[r & 1]);
      __syncthreads();
      if (threadIdx.x == 0)
        for (unsigned d = 0; d < S; ++d) {
          uint32_t remote;
          asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(bar), "r"(d));
          asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
        }
      const uint32_t parity = (r >> 1) & 1;
      uint32_t done = 0;
      while (!done)
        asm volatile(
            "{\n .reg .pred p;\n mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
            " selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } else {
      cluster.sync();
    }
  }
  const unsigned long long t1 = global_ns();
  if (threadIdx.x == 0 && blockIdx.x == 0) *ns = t1 - t0;
  cluster.sync();  // no block exits while another may still arrive on its mbarriers
}

int main() {
  unsigned long long* d_ns;
  CK(cudaMalloc(&d_ns, sizeof(unsigned long long)));
  CK(cudaFuncSetAttribute(exchange, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  CK(cudaFuncSetAttribute(exchange, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  struct Payload {
    const char* what;
    int bytes;  // the whole window's rows: 64 x channels x element size
    int sync;
  };
  const Payload payloads[] = {{"relaxed barrier only", 0, 1},
                              {"barrier only", 0, 0},
                              {"mbarriers only", 0, 2},
                              {"64 x 192 fp16", 64 * 192 * 2, 0},
                              {"64 x 192 fp16 by mbarriers", 64 * 192 * 2, 2},
                              {"64 x 192 fp32", 64 * 192 * 4, 0},
                              {"64 x 192 fp32 by mbarriers", 64 * 192 * 4, 2},
                              {"64 x 384 fp16", 64 * 384 * 2, 0},
                              {"64 x 768 fp16", 64 * 768 * 2, 0}};
  std::printf("%d clusters of S blocks (%d threads, %d KB shared memory each), %d rounds a launch, us a round\n",
              kClusters, kThreads, kSmem / 1024, kRounds);
  for (int S : {1, 2, 4, 6, 8, 12, 16}) {
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = S, at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
    cudaLaunchConfig_t c{};
    c.gridDim = dim3(kClusters * S);
    c.blockDim = dim3(kThreads);
    c.dynamicSmemBytes = kSmem;
    c.attrs = at;
    c.numAttrs = 1;
    int active = 0;
    if (cudaOccupancyMaxActiveClusters(&active, exchange, &c) != cudaSuccess) {
      cudaGetLastError();
      std::printf("S %2d: not launchable here\n", S);
      continue;
    }
    std::printf("S %2d: %3d clusters at once%s", S, active, active < kClusters ? " (fewer than 16: two waves)" : "");
    for (const Payload& p : payloads) {
      const int slice = p.bytes / S;
      if (slice % 16 || p.bytes > kSmem) continue;
      std::vector<double> us;
      for (int rep = 0; rep < 5; ++rep) {
        CK(cudaLaunchKernelEx(&c, exchange, slice, p.sync, d_ns));
        CK(cudaDeviceSynchronize());
        unsigned long long ns = 0;
        CK(cudaMemcpy(&ns, d_ns, sizeof ns, cudaMemcpyDeviceToHost));
        us.push_back(ns * 1e-3 / kRounds);
      }
      std::sort(us.begin(), us.end());
      std::printf("; %s %.3f", p.what, us[us.size() / 2]);
    }
    std::printf("\n");
  }
  return 0;
}
