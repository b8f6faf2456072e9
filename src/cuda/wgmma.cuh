// Hopper warpgroup tensor-core helpers (wgmma.mma_async, sm_90a) for the
// fused Swin block and the fused MLP: shared-memory matrix descriptors, the
// m64nNk16 products with FP32 accumulators in registers, and the fences and
// waits around them.
//
// Operand layout ("core matrices", no swizzle, K-major): a [rows][K] 16-bit
// matrix is stored as 8 x 8 blocks of 128 contiguous bytes (8 rows of 8
// consecutive k); within a k-tile of 16 the two blocks along k are 128 bytes
// apart (the descriptor's leading byte offset), blocks 8 rows apart are the
// stride byte offset apart. Activations ([64][K], cm_index) put a row
// group's K / 8 blocks together: leading offset 128, stride K * 16 bytes,
// k-tile kt at byte kt * 256. The weight stages (swin_block_arrange) hold per
// k-tile [8-column group][k half][8 columns][8 k]: leading 128, stride 256.
//
// Everything here compiles to a trap where the target is not sm_90a: the
// host runs these kernels only where wgmma_supported() says the sm_90a code
// was loaded.
#pragma once

#include <cstdint>
#include <type_traits>

#include "common.cuh"
#include "mma.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SWINRT_WGMMA_CODE 1
#endif

namespace swinrt::cuda {

// Element index of (r, k) in a [rows][K] operand in core-matrix layout.
template <int K>
__device__ __forceinline__ int cm_index(int r, int k) {
  return (r >> 3) * (K * 8) + (k >> 3) * 64 + (r & 7) * 8 + (k & 7);
}

// FP32 LayerNorm statistics (two-pass, eps 1e-5) of row h of NY m64n96
// accumulator tiles side by side (rows of 96 NY values): lane l of warp w
// holds rows 16 w + l / 4 (h = 0) and + 8 (h = 1), columns 96 n + 8 j + 2
// (l % 4) (+ 1) in d[n][4 j + 2 h (+ 1)]; a row lies on a quad of lanes,
// summed by two shuffles.
template <int NY>
__device__ __forceinline__ void m64_row_stats(const float (&d)[NY][48], int h, float& mean, float& rstd) {
  constexpr int C = 96 * NY;
  float sum = 0.f;
#pragma unroll
  for (int n = 0; n < NY; ++n)
#pragma unroll
    for (int j = 0; j < 12; ++j) sum += d[n][4 * j + 2 * h] + d[n][4 * j + 2 * h + 1];
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  mean = sum / C;
  float sq = 0.f;
#pragma unroll
  for (int n = 0; n < NY; ++n)
#pragma unroll
    for (int j = 0; j < 12; ++j) {
      const float u = d[n][4 * j + 2 * h] - mean, v = d[n][4 * j + 2 * h + 1] - mean;
      sq += u * u + v * v;
    }
  sq += __shfl_xor_sync(0xffffffffu, sq, 1);
  sq += __shfl_xor_sync(0xffffffffu, sq, 2);
  rstd = rsqrtf(sq / C + 1e-5f);
}
// ... of one m64n96 tile.
__device__ __forceinline__ void m64n96_row_stats(const float (&d)[48], int h, float& mean, float& rstd) {
  m64_row_stats<1>(*reinterpret_cast<const float(*)[1][48]>(&d), h, mean, rstd);
}

// fc1's bias halved, FP32 (gelu_tanh_half's form of the GELU).
struct HalvedBias {
  const float* p;
};

// An m64nN accumulator tile (N = 16 NT) plus its bias b (dtype T, or
// HalvedBias; the tile's first column), through GELU and rounded to T, as
// the A fragments of the next product (k-tile t in ha[t]). Lane l holds
// columns 16 t + 8 (q / 2) + c2 (+ 1), c2 = 2 (l % 4), of rows l / 4 (q
// even) and l / 4 + 8 (q odd) in acc[8 t + 2 q (+ 1)].
template <typename T, int NT, typename B>
__device__ __forceinline__ void gelu_frags(const float (&acc)[8 * NT], B b, int c2, uint32_t (&ha)[NT][4]) {
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int c = 0; c < 2; ++c) {  // columns 16 t + 8 c + c2 (+ 1): q = 2 c (row l / 4), 2 c + 1 (row + 8)
      constexpr bool halved = std::is_same_v<B, HalvedBias>;
      float2 bb;  // the columns' bias, or (halved) half of it
      if constexpr (halved) bb = __ldg(reinterpret_cast<const float2*>(b.p + 16 * t + 8 * c + c2));
      else bb = bias2(b + 16 * t + 8 * c + c2);
      auto gelu = [&](float a, float bias) { return halved ? gelu_tanh_half(a, bias) : gelu_tanh(a + bias); };
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int i = 8 * t + 4 * c + 2 * r;
        ha[t][2 * c + r] = pack2<T>(gelu(acc[i], bb.x), gelu(acc[i + 1], bb.y));
      }
    }
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Shared-memory matrix descriptor: start address, leading and stride byte
// offsets (each in 16-byte units), no swizzle.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t addr, uint32_t lead, uint32_t stride) {
  return uint64_t((addr & 0x3FFFF) >> 4) | uint64_t(lead >> 4) << 16 | uint64_t(stride >> 4) << 32;
}

// Makes this thread's generic-proxy shared-memory writes (st.shared,
// cp.async) visible to the async proxy that wgmma reads through; before the
// barrier that publishes them.
__device__ __forceinline__ void fence_proxy_async() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wgmma_fence() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// mbarriers (shared memory, 8 bytes each) and the bulk copy (TMA) that
// completes on one: init, arrive, arrive with an expected byte count, wait
// for the completion of the phase of the given parity.
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
// Makes the initialised mbarriers visible to the async proxy (the bulk copies).
__device__ __forceinline__ void mbar_init_fence() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}
__device__ __forceinline__ void mbar_expect(uint32_t bar, uint32_t bytes) {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#ifdef SWINRT_WGMMA_CODE
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
#endif
}
// bytes (a multiple of 16) global -> shared by the TMA unit; completes them on bar.
__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#endif
}

// Clusters (the pair form of the fused block): this block's rank in its
// cluster; addr (shared, this block's) mapped to the same offset in block
// `rank`'s shared memory; two floats stored there; cluster_sync, a barrier
// of every thread of the cluster, shared-memory writes before it visible
// after it.
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r = 0;
#ifdef SWINRT_WGMMA_CODE
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return r;
}
__device__ __forceinline__ uint32_t cluster_map(uint32_t addr, uint32_t rank) {
  uint32_t r = addr;
#ifdef SWINRT_WGMMA_CODE
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
#endif
  return r;
}
__device__ __forceinline__ void cluster_store2(uint32_t addr, float a, float b) {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("st.shared::cluster.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(a), "f"(b) : "memory");
#endif
}
// The barrier's two halves: arrive (no ordering of memory), then wait.
__device__ __forceinline__ void cluster_arrive() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_sync() {
#ifdef SWINRT_WGMMA_CODE
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}

// Ties the accumulators to this point of the instruction stream (the
// compiler sees wgmma write them at issue, the hardware writes them until
// the wait); the uint32_t form keeps a register-A product's fragments in
// their registers until then (the hardware reads them until the wait).
template <int R>
__device__ __forceinline__ void wgmma_hold(float (&d)[R]) {
#pragma unroll
  for (int i = 0; i < R; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

template <int R>
__device__ __forceinline__ void wgmma_hold(uint32_t (&a)[R]) {
#pragma unroll
  for (int i = 0; i < R; ++i) asm volatile("" : "+r"(a[i])::"memory");
}

#define SWINRT_D4(o) "+f"(d[o]), "+f"(d[o + 1]), "+f"(d[o + 2]), "+f"(d[o + 3])
#define SWINRT_D12(o) SWINRT_D4(o), SWINRT_D4(o + 4), SWINRT_D4(o + 8)

// d[64, N] += A[64, 16] . B[16, N] for the warpgroup; A and B K-major in
// shared memory (descriptors da, db). Lane l of warp w holds rows
// 16 w + l / 4 (+ 8) and columns 8 j + 2 (l % 4) (+ 1): d[4 j .. 4 j + 3] as
// mma.m16n8's accumulators.
template <typename T, int N>
__device__ __forceinline__ void wgmma_m64k16(float (&d)[N / 2], uint64_t da, uint64_t db) {
  static_assert(N == 24 || N == 48, "wgmma width");
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "fp16 or bf16 operands");
#ifdef SWINRT_WGMMA_CODE
  constexpr bool f16 = std::is_same_v<T, __half>;
  if constexpr (N == 24 && f16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %14, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n24k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11}, %12, %13, p, 1, 1, 0, 0;\n}\n"
        : SWINRT_D12(0)
        : "l"(da), "l"(db), "r"(1));
  } else if constexpr (N == 24) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %14, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n24k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11}, %12, %13, p, 1, 1, 0, 0;\n}\n"
        : SWINRT_D12(0)
        : "l"(da), "l"(db), "r"(1));
  } else if constexpr (N == 48 && f16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %26, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n48k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
        "%22, %23}, %24, %25, p, 1, 1, 0, 0;\n}\n"
        : SWINRT_D12(0), SWINRT_D12(12)
        : "l"(da), "l"(db), "r"(1));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %26, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n48k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
        "%22, %23}, %24, %25, p, 1, 1, 0, 0;\n}\n"
        : SWINRT_D12(0), SWINRT_D12(12)
        : "l"(da), "l"(db), "r"(1));
  }
#else
  (void)d, (void)da, (void)db;
  __trap();
#endif
}

// The same for N = 96 (d[48]), A by descriptor ("ss") or from registers
// ("rs": a[0..3] the warp's 16 x 16 A fragment as mma.m16n8k16 takes it,
// rows 16 w + l / 4 (+ 8), k 2 (l % 4) (+ 1) (+ 8), which is also the layout
// of an m64nN accumulator's columns 16 t .. 16 t + 15, d[8 t .. 8 t + 7],
// packed in pairs: a product's output feeds the next one without shared
// memory). accumulate = false: d = A . B, so that no instruction zeroing d
// sits inside an open wgmma pipeline (ptxas would serialise the products).
#define SWINRT_N96_D                                                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
  "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "   \
  "%44, %45, %46, %47}"
template <typename T>
__device__ __forceinline__ void wgmma_m64n96k16_ss(float (&d)[48], uint64_t da, uint64_t db, bool accumulate = true) {
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "fp16 or bf16 operands");
#ifdef SWINRT_WGMMA_CODE
  if constexpr (std::is_same_v<T, __half>)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n96k16.f32.f16.f16 " SWINRT_N96_D ", %48, %49, p, 1, 1, 0, 0;\n}\n"
                 : SWINRT_D12(0), SWINRT_D12(12), SWINRT_D12(24), SWINRT_D12(36)
                 : "l"(da), "l"(db), "r"(int(accumulate)));
  else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n96k16.f32.bf16.bf16 " SWINRT_N96_D ", %48, %49, p, 1, 1, 0, 0;\n}\n"
                 : SWINRT_D12(0), SWINRT_D12(12), SWINRT_D12(24), SWINRT_D12(36)
                 : "l"(da), "l"(db), "r"(int(accumulate)));
#else
  (void)d, (void)da, (void)db, (void)accumulate;
  __trap();
#endif
}
template <typename T>
__device__ __forceinline__ void wgmma_m64n96k16_rs(float (&d)[48], const uint32_t (&a)[4], uint64_t db,
                                                   bool accumulate = true) {
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "fp16 or bf16 operands");
#ifdef SWINRT_WGMMA_CODE
  if constexpr (std::is_same_v<T, __half>)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %53, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n96k16.f32.f16.f16 " SWINRT_N96_D
                 ", {%48, %49, %50, %51}, %52, p, 1, 1, 0;\n}\n"
                 : SWINRT_D12(0), SWINRT_D12(12), SWINRT_D12(24), SWINRT_D12(36)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(int(accumulate)));
  else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %53, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n96k16.f32.bf16.bf16 " SWINRT_N96_D
                 ", {%48, %49, %50, %51}, %52, p, 1, 1, 0;\n}\n"
                 : SWINRT_D12(0), SWINRT_D12(12), SWINRT_D12(24), SWINRT_D12(36)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(int(accumulate)));
#else
  (void)d, (void)a, (void)db, (void)accumulate;
  __trap();
#endif
}
#undef SWINRT_N96_D

#undef SWINRT_D12
#undef SWINRT_D4

// Whether the current device runs this build's sm_90a (wgmma) code: a
// compute capability 9.0 device and a fatbin with sm_90a code loaded for it
// (probed once per device). SWINRT_WGMMA=0 says no.
bool wgmma_supported();

}  // namespace swinrt::cuda
