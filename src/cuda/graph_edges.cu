// Programmatic edges in the captured forward graph (programmatic dependent
// launch, sm_90 and later). An ordinary edge A -> B starts B once A has
// finished; a programmatic edge lets B's blocks launch early (once A's have
// all launched, or exited) and wait on the device, in griddepcontrol.wait,
// until A has finished and its writes are visible. What that saves is the
// launch latency between dependent kernels and B's set-up before its wait.
//
// An edge may be programmatic only where B waits before it reads or writes
// anything A's chain touches. That holds for every kernel of swinrt::cuda:
// each begins with wait_for_prior_grids() (common.cuh;
// tests/python/test_sources.py checks that each __global__ waits), and for
// gemm_sm90.cu's CUTLASS GEMMs, whose producer warps wait before their first
// load (their consumers store only what those loads fed; gemm_kernel's
// prefetch before that reads the engine's weights, which no kernel writes). It does not hold
// for cuBLASLt 13's fp16/bf16 and FP32 kernels (nvjet_sm90_*, sm80 SIMT: no
// griddepcontrol.wait in their SASS, session 21), so every other kernel
// keeps its ordinary edges, and so does every edge from or to a node that is
// not a kernel, or a cooperative one.
// Because every such B waits for its own predecessors, which waited for
// theirs, a kernel that reads an older kernel's output through a chain of
// programmatic edges still sees it.
#include <cuda.h>

#include <cstring>
#include <string>
#include <vector>

#include "ops.cuh"

namespace swinrt::cuda {

namespace {

using GetParamsFn = CUresult (*)(CUgraphNode, CUDA_KERNEL_NODE_PARAMS_v2*);
using FuncNameFn = CUresult (*)(const char**, CUfunction);
using KernelNameFn = CUresult (*)(const char**, CUkernel);

struct DriverNames {
  GetParamsFn get_params = nullptr;
  FuncNameFn func_name = nullptr;
  KernelNameFn kernel_name = nullptr;
  DriverNames() {
    cudaDriverEntryPointQueryResult q{};
    void* p = nullptr;
    if (cudaGetDriverEntryPointByVersion("cuGraphKernelNodeGetParams", &p, 12000, cudaEnableDefault, &q) ==
            cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      get_params = reinterpret_cast<GetParamsFn>(p);
    if (cudaGetDriverEntryPointByVersion("cuFuncGetName", &p, 12030, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      func_name = reinterpret_cast<FuncNameFn>(p);
    if (cudaGetDriverEntryPointByVersion("cuKernelGetName", &p, 12030, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      kernel_name = reinterpret_cast<KernelNameFn>(p);
    cudaGetLastError();
  }
};

// The kernel's (mangled) name; empty where the driver cannot tell.
std::string node_kernel_name(cudaGraphNode_t node) {
  static const DriverNames d;
  if (!d.get_params) return {};
  CUDA_KERNEL_NODE_PARAMS_v2 p{};
  if (d.get_params(reinterpret_cast<CUgraphNode>(node), &p) != CUDA_SUCCESS) return {};
  const char* name = nullptr;
  if (p.func && d.func_name && d.func_name(&name, p.func) == CUDA_SUCCESS && name) return name;
  if (p.kern && d.kernel_name && d.kernel_name(&name, p.kern) == CUDA_SUCCESS && name) return name;
  return {};
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Whether a launch of this kernel waits for its predecessors before it touches memory they use.
bool waits_on_device(const std::string& name) {
  return starts_with(name, "_ZN6swinrt4cuda") || is_sm90_gemm_kernel(name);
}

bool is_kernel(cudaGraphNode_t n) {
  cudaGraphNodeType t{};
  return cudaGraphNodeGetType(n, &t) == cudaSuccess && t == cudaGraphNodeTypeKernel;
}

bool cooperative(cudaGraphNode_t n) {
  cudaKernelNodeAttrValue v{};
  if (cudaGraphKernelNodeGetAttribute(n, cudaLaunchAttributeCooperative, &v) != cudaSuccess) {
    cudaGetLastError();
    return true;  // unknown: leave its edges alone
  }
  return v.cooperative != 0;
}

}  // namespace

ProgrammaticEdges make_edges_programmatic(cudaGraph_t graph, int mode) {
  ProgrammaticEdges r;
  if (mode == 0) return r;
  size_t count = 0;
  SWINRT_CUDA_CHECK(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &count));
  std::vector<cudaGraphNode_t> from(count), to(count);
  std::vector<cudaGraphEdgeData> data(count);
  SWINRT_CUDA_CHECK(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &count));
  for (size_t i = 0; i < count; ++i) {
    if (data[i].type != cudaGraphDependencyTypeDefault || !is_kernel(from[i]) || !is_kernel(to[i])) continue;
    ++r.kernel_edges;
    const std::string name = node_kernel_name(to[i]);
    if (!waits_on_device(name) || cooperative(to[i]) || cooperative(from[i])) {
      r.kept.push_back(name.empty() ? "(unnamed)" : name);
      continue;
    }
    cudaGraphEdgeData e{};
    e.type = cudaGraphDependencyTypeProgrammatic;
    e.from_port = mode == 2 ? cudaGraphKernelNodePortLaunchCompletion : cudaGraphKernelNodePortProgrammatic;
    SWINRT_CUDA_CHECK(cudaGraphRemoveDependencies(graph, &from[i], &to[i], &data[i], 1));
    SWINRT_CUDA_CHECK(cudaGraphAddDependencies(graph, &from[i], &to[i], &e, 1));
    ++r.programmatic;
  }
  return r;
}

}  // namespace swinrt::cuda
