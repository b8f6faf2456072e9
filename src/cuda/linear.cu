// linear: nn.Linear as one cuBLASLt matmul with the bias fused in its
// epilogue and the residual add as beta = 1 into the FP32 stream; mirror of
// src/cpu/linear.cpp. Row-major y = x . w^T is column-major y^T = w . x^T,
// so A = w (transposed), B = x. For FP32/TF32 GELU stays a separate exact-erf
// kernel (cuBLASLt's GELU epilogue is the tanh approximation, which would cost
// the FP32 path its 1e-4 match); FP16/BF16 take the epilogue.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "ops.cuh"

namespace swinrt::cuda {

namespace {

cudaDataType_t cuda_type(DT t) {
  switch (t) {
    case DT::F32: return CUDA_R_32F;
    case DT::F16: return CUDA_R_16F;
    case DT::BF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error(fmt::format("cuBLASLt {} failed: {} ({})", what, cublasGetStatusName(st), cublasGetStatusString(st)));
}

// RAII for the per-call descriptors.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Times `algo` on the call (two warm-up runs, then the mean of `runs`), in
// ms; negative if cuBLASLt refuses to run it.
double time_algo(const GemmContext& g, const Descs& d, const cublasLtMatmulAlgo_t& algo, const void* w,
                 const void* x, void* y, float beta, cudaStream_t s, int runs = 20) {
  const float alpha = 1.0f;
  auto once = [&] {
    return cublasLtMatmul(g.handle, d.op, &alpha, w, d.a, x, d.b, &beta, y, d.c, y, d.c, &algo, g.workspace,
                          g.workspace_bytes, s);
  };
  for (int i = 0; i < 2; ++i)
    if (once() != CUBLAS_STATUS_SUCCESS) return -1.0;
  cudaEvent_t e0, e1;
  SWINRT_CUDA_CHECK(cudaEventCreate(&e0));
  SWINRT_CUDA_CHECK(cudaEventCreate(&e1));
  SWINRT_CUDA_CHECK(cudaEventRecord(e0, s));
  for (int i = 0; i < runs; ++i) once();
  SWINRT_CUDA_CHECK(cudaEventRecord(e1, s));
  SWINRT_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0.f;
  SWINRT_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return double(ms) / runs;
}

const char* dt_tag(DT t) { return t == DT::F32 ? "f32" : t == DT::F16 ? "f16" : "bf16"; }

// An algorithm's configuration, for the tuner's log (SWINRT_TUNE_VERBOSE).
std::string algo_config(const cublasLtMatmulAlgo_t& a) {
  auto get = [&](cublasLtMatmulAlgoConfigAttributes_t attr) -> long long {
    for (size_t bytes : {4, 2, 8}) {  // each attribute is read at its own width only
      uint64_t v = 0;
      size_t n = 0;
      if (cublasLtMatmulAlgoConfigGetAttribute(&a, attr, &v, bytes, &n) == CUBLAS_STATUS_SUCCESS)
        return static_cast<long long>(v);
    }
    return -1;
  };
  return fmt::format("id {} tile {} stages {} splitK {} reduction {} swizzle {} cluster {}",
                     get(CUBLASLT_ALGO_CONFIG_ID), get(CUBLASLT_ALGO_CONFIG_TILE_ID),
                     get(CUBLASLT_ALGO_CONFIG_STAGES_ID), get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                     get(CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME), get(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                     get(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
}

template <typename T>
std::vector<T> cap_list(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr) {
  size_t bytes = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, nullptr, 0, &bytes) != CUBLAS_STATUS_SUCCESS || bytes == 0) return {};
  std::vector<T> v(bytes / sizeof(T));
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, v.data(), bytes, &bytes) != CUBLAS_STATUS_SUCCESS) return {};
  v.resize(bytes / sizeof(T));
  return v;
}

// The wide tuner's candidates beyond the heuristic's (swinrt build
// --tune-wide): each heuristic candidate, then each algorithm id cuBLASLt
// lists for the types, with every tile, stages, cluster shape and CTA
// swizzle it accepts for the call, in a fixed shuffled order, at most
// kWidePerBase a base and `cap` in all. On the H100 that is about 330 more a
// GEMM, 14 bases contributing, from some 47,000 configurations checked.
constexpr int kWidePerBase = 24;
void widen(const GemmContext& g, const Descs& d, int cap, cublasComputeType_t compute, DT in, DT out,
           std::vector<cublasLtMatmulAlgo_t>& cands) {
  const size_t heuristic = cands.size();
  // The bases: the heuristic's candidates, then every algorithm id cuBLASLt lists for the types.
  std::vector<cublasLtMatmulAlgo_t> bases(cands.begin(), cands.end());
  {
    int ids[256], nids = 0;
    if (cublasLtMatmulAlgoGetIds(g.handle, compute, CUDA_R_32F, cuda_type(in), cuda_type(in), cuda_type(out),
                                 cuda_type(out), 256, ids, &nids) == CUBLAS_STATUS_SUCCESS)
      for (int k = 0; k < nids; ++k) {
        cublasLtMatmulAlgo_t a{};
        if (cublasLtMatmulAlgoInit(g.handle, compute, CUDA_R_32F, cuda_type(in), cuda_type(in), cuda_type(out),
                                   cuda_type(out), ids[k], &a) == CUBLAS_STATUS_SUCCESS)
          bases.push_back(a);
      }
  }
  auto known = [&](const cublasLtMatmulAlgo_t& a) {
    for (const auto& c : cands)
      if (std::memcmp(&c, &a, sizeof(a)) == 0) return true;
    return false;
  };
  // Cluster shapes: auto, 1x1, 2x1, 1x2, 2x2, 4x1, 1x4 (cublasLtClusterShape_t).
  const uint16_t clusters[] = {0, 2, 3, 5, 6, 4, 8};
  struct Combo {
    uint32_t tile, stages;
    uint16_t cluster;
    uint32_t swizzle;
  };
  auto room = [&] { return int(cands.size() - heuristic) < cap; };
  int checked = 0, added = 0;
  for (size_t h = 0; h < bases.size() && room(); ++h) {
    const cublasLtMatmulAlgo_t& base = bases[h];
    // kKeep where the algorithm lists no tiles (or stages): its own setting stays.
    constexpr uint32_t kKeep = ~0u;
    std::vector<uint32_t> tiles = cap_list<uint32_t>(base, CUBLASLT_ALGO_CAP_TILE_IDS);
    std::vector<uint32_t> stages = cap_list<uint32_t>(base, CUBLASLT_ALGO_CAP_STAGES_IDS);
    if (tiles.empty()) tiles.push_back(kKeep);
    if (stages.empty()) stages.push_back(kKeep);
    // Every combination, in a fixed shuffled order, so that a base's first
    // kWidePerBase accepted ones spread over its tiles and stages.
    std::vector<Combo> combos;
    for (uint32_t t : tiles)
      for (uint32_t st : stages)
        for (uint16_t cl : clusters)
          for (uint32_t sw : {0u, 1u}) combos.push_back(Combo{t, st, cl, sw});
    std::mt19937_64 rng(12345);  // fixed: the same candidates every build
    std::shuffle(combos.begin(), combos.end(), rng);
    int taken = 0;
    for (const Combo& c : combos) {
      if (!room() || taken >= kWidePerBase) break;
      cublasLtMatmulAlgo_t a = base;
      if (c.tile != kKeep) cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_TILE_ID, &c.tile, 4);
      if (c.stages != kKeep) cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &c.stages, 4);
      cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &c.cluster, 2);
      cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &c.swizzle, 4);
      ++checked;
      cublasLtMatmulHeuristicResult_t check{};
      if (cublasLtMatmulAlgoCheck(g.handle, d.op, d.a, d.b, d.c, d.c, &a, &check) != CUBLAS_STATUS_SUCCESS ||
          check.workspaceSize > g.workspace_bytes || known(a))
        continue;
      ++added;
      ++taken;
      cands.push_back(a);
    }
  }
  if (std::getenv("SWINRT_TUNE_VERBOSE"))
    fmt::print(stderr, "swinrt:   widen: {} configurations checked, {} candidates added\n", checked, added);
}

}  // namespace

std::string gemm_key(int64_t M, int K, int N, int ldw, DT in, DT out, bool bias, bool accumulate, bool tanh_gelu,
                     bool tf32, int ldx) {
  return fmt::format("{}x{}x{} ldw{}{} {}{}->{}{}{}{}", M, N, K, ldw, ldx && ldx != K ? fmt::format(" ldx{}", ldx) : "",
                     dt_tag(in), tf32 && in == DT::F32 ? "(tf32)" : "", dt_tag(out), bias ? " bias" : "",
                     tanh_gelu ? " gelu" : "", accumulate ? " +=" : "");
}

void linear(const GemmContext& g, const void* x, const void* w, int ldw, DT in, int64_t M, int K, int N,
            const void* bias, void* y, DT out, bool accumulate, cudaStream_t s, bool tanh_gelu, int ldx) {
  if (M == 0) return;
  if (ldx == 0) ldx = K;
  if (g.own && linear_sm90(x, ldx, w, ldw, in, M, K, N, bias, y, out, accumulate, tanh_gelu, g.tf32, s)) return;
  const cublasComputeType_t compute =
      in == DT::F32 ? (g.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_32F;
  Descs d;
  lt_check(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F), "MatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
  lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
  if (bias || tanh_gelu) {
    const cublasLtEpilogue_t ep = tanh_gelu ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                            : CUBLASLT_EPILOGUE_BIAS;
    lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)), "EPILOGUE");
    if (bias)
      lt_check(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "BIAS");
  }
  lt_check(cublasLtMatrixLayoutCreate(&d.a, cuda_type(in), K, N, ldw), "layout A");
  lt_check(cublasLtMatrixLayoutCreate(&d.b, cuda_type(in), K, M, ldx), "layout B");
  lt_check(cublasLtMatrixLayoutCreate(&d.c, cuda_type(out), N, M, N), "layout C");
  lt_check(cublasLtMatmulPreferenceCreate(&d.pref), "PreferenceCreate");
  lt_check(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &g.workspace_bytes,
                                                sizeof(g.workspace_bytes)),
           "workspace");
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const std::string key = (g.chosen || g.tuning) ? gemm_key(M, K, N, ldw, in, out, bias != nullptr, accumulate,
                                                            tanh_gelu, g.tf32, ldx)
                                                 : std::string();
  const cublasLtMatmulAlgo_t* algo = nullptr;
  if (g.tuning) {
    if (auto it = g.tuning->find(key); it != g.tuning->end()) algo = &it->second.algo;
  }
  if (!algo && g.chosen) {
    if (auto it = g.chosen->find(key); it != g.chosen->end()) {
      cublasLtMatmulHeuristicResult_t check{};
      if (cublasLtMatmulAlgoCheck(g.handle, d.op, d.a, d.b, d.c, d.c, &it->second.algo, &check) ==
              CUBLAS_STATUS_SUCCESS && check.workspaceSize <= g.workspace_bytes)
        algo = &it->second.algo;
    }
  }
  cublasLtMatmulHeuristicResult_t heur[8]{};
  std::vector<cublasLtMatmulAlgo_t> cands;
  if (!algo) {
    int found = 0;
    const int want = g.tuning ? 8 : 1;
    lt_check(cublasLtMatmulAlgoGetHeuristic(g.handle, d.op, d.a, d.b, d.c, d.c, d.pref, want, heur, &found),
             "heuristic");
    if (found == 0) throw Error(fmt::format("cuBLASLt has no algorithm for a {}x{}x{} matmul", M, N, K));
    for (int i = 0; i < found; ++i) cands.push_back(heur[i].algo);
    int best = 0;
    if (g.tuning) {
      const int heuristic = found;
      if (g.tune_wide > 0) widen(g, d, g.tune_wide, compute, in, out, cands);
      // y is restored after timing so the forward's values stay right.
      const size_t ybytes = size_t(M) * N * dt_size(out);
      void* saved = nullptr;
      SWINRT_CUDA_CHECK(cudaMallocAsync(&saved, ybytes, s));
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(saved, y, ybytes, cudaMemcpyDeviceToDevice, s));
      // The heuristic's first choice stays unless another candidate is
      // clearly faster: a GEMM timed alone, back to back, is a noisy proxy
      // for the same GEMM inside the forward's graph (build run: without
      // the margin, tuning lost 1-2% at batch 1).
      constexpr double kMargin = 0.95;
      double best_ms = -1.0, first_ms = -1.0, best_heur_ms = -1.0;
      for (size_t i = 0; i < cands.size(); ++i) {
        // A wide candidate is screened on 3 runs first: most are far slower.
        if (int(i) >= heuristic && best_ms > 0) {
          const double quick = time_algo(g, d, cands[i], w, x, y, beta, s, 3);
          if (quick < 0 || quick > 1.2 * best_ms) continue;
        }
        const double ms = time_algo(g, d, cands[i], w, x, y, beta, s);
        if (ms < 0) continue;
        if (i == 0) first_ms = ms;
        if (int(i) < heuristic && (best_heur_ms < 0 || ms < best_heur_ms)) best_heur_ms = ms;
        if (best_ms < 0 || ms < (best == 0 ? kMargin : 1.0) * best_ms) best_ms = ms, best = int(i);
      }
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(y, saved, ybytes, cudaMemcpyDeviceToDevice, s));
      SWINRT_CUDA_CHECK(cudaFreeAsync(saved, s));
      if (best_ms < 0) throw Error(fmt::format("cuBLASLt could run no algorithm for a {}x{}x{} matmul", M, N, K));
      if (std::getenv("SWINRT_TUNE_VERBOSE"))
        fmt::print(stderr, "swinrt: tune {}: first {:.2f} us [{}] | best of {} heuristic {:.2f} us | {} candidates: "
                           "chose #{} {:.2f} us [{}]\n",
                   key, first_ms * 1e3, algo_config(cands[0]), heuristic, best_heur_ms * 1e3, cands.size(), best,
                   best_ms * 1e3, algo_config(cands[best]));
      (*g.tuning)[key] = GemmAlgo{cands[best], best_ms};
    }
    algo = &cands[best];
  }
  lt_check(cublasLtMatmul(g.handle, d.op, &alpha, w, d.a, x, d.b, &beta, y, d.c, y, d.c, algo, g.workspace,
                          g.workspace_bytes, s),
           "Matmul");
}

namespace {

__device__ __forceinline__ float gelu_f(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f)); }

// 16 bytes per thread per step (8 halves or 4 floats), scalar tail.
template <typename T>
__global__ void gelu_kernel(T* x, int64_t n, bool tf32) {
  wait_for_prior_grids();
  constexpr int kVec = 16 / sizeof(T);
  const int64_t nvec = n / kVec, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < nvec; i += stride) {
    uint4 raw = reinterpret_cast<uint4*>(x)[i];
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float g = gelu_f(to_f(e[k]));
      e[k] = from_f<T>(tf32_if(tf32, g));
    }
    reinterpret_cast<uint4*>(x)[i] = raw;
  }
  for (int64_t i = nvec * kVec + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const float g = gelu_f(to_f(x[i]));
    x[i] = from_f<T>(tf32_if(tf32, g));
  }
}

__global__ void round_tf32_kernel(float* x, int64_t n) {
  wait_for_prior_grids();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = round_tf32(x[i]);
}

}  // namespace

void round_tf32(float* x, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  round_tf32_kernel<<<std::min<long long>(ceil_div(n, 256), 132 * 16), 256, 0, s>>>(x, n);
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

void gelu(void* x, DT t, int64_t n, cudaStream_t s, bool tf32) {
  if (tf32 && t != DT::F32) throw Error("gelu: TF32 rounding of an output that is not FP32");
  const unsigned blocks = std::min<long long>(ceil_div(n / (16 / dt_size(t)) + 1, 256), 132 * 32);
  switch (t) {
    case DT::F32: gelu_kernel<<<blocks, 256, 0, s>>>(static_cast<float*>(x), n, tf32); break;
    case DT::F16: gelu_kernel<<<blocks, 256, 0, s>>>(static_cast<__half*>(x), n, tf32); break;
    case DT::BF16: gelu_kernel<<<blocks, 256, 0, s>>>(static_cast<__nv_bfloat16*>(x), n, tf32); break;
  }
  SWINRT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace swinrt::cuda
