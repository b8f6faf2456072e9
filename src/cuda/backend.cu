// The CUDA backend: executes the layer plan (include/swinrt/plan.h) with the
// kernels of src/cuda, op by op as src/cpu/backend.cpp does.
//
// Memory: the weights are uploaded once into one arena, already converted for
// the precision (GEMM weights in the activation dtype, LayerNorm and the FP32
// stream's biases in FP32, relative position bias pre-gathered to [heads, N, N]).
// Each execution context owns a stream, a cuBLASLt workspace and every
// activation buffer for max_batch slices, allocated at creation; the forward
// of each batch size is captured once as a CUDA graph and replayed.
// Several host threads may call run() at once: each takes a free context
// from the pool (a new one is made when none is free).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "kernel_trace.h"
#include "model/safetensors.h"
#include "pipeline/metrics.h"
#include "ops.cuh"
#include "swinrt/engine.h"
#include "swinrt/plan.h"
#include "swinrt/plan_file.h"

namespace swinrt {

namespace {

using namespace cuda;

DT activation_dtype(Precision p) {
  switch (p) {
    case Precision::FP16: return DT::F16;
    case Precision::BF16: return DT::BF16;
    default: return DT::F32;
  }
}

std::string mib(size_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

void* device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 256));
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error(fmt::format("out of GPU memory: {} needs {} ({} free of {}); lower --max-batch", what, mib(bytes),
                            mib(free_b), mib(total_b)));
  }
  return p;
}

struct DeviceMemory {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceMemory() = default;
  DeviceMemory(size_t n, const char* what) : ptr(device_alloc(n, what)), bytes(n) {}
  DeviceMemory(DeviceMemory&& o) noexcept : ptr(std::exchange(o.ptr, nullptr)), bytes(o.bytes) {}
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    std::swap(ptr, o.ptr);
    std::swap(bytes, o.bytes);
    return *this;
  }
  ~DeviceMemory() {
    if (ptr) cudaFree(ptr);
  }
};

// The weight image (include/swinrt/plan_file.h) uploaded once; pointers by name.
class DeviceWeights {
 public:
  explicit DeviceWeights(const WeightImage& img) : mem_(img.bytes.size(), "the weights") {
    for (const auto& [name, t] : img.tensors) offsets_[name] = t.offset;
    SWINRT_CUDA_CHECK(cudaMemcpy(mem_.ptr, img.bytes.data(), img.bytes.size(), cudaMemcpyHostToDevice));
  }

  const void* get(const std::string& key) const {
    auto it = offsets_.find(key);
    if (it == offsets_.end()) throw Error(fmt::format("CUDA backend: weight '{}' was not uploaded", key));
    return static_cast<const char*>(mem_.ptr) + it->second;
  }
  const float* f32(const std::string& key) const { return static_cast<const float*>(get(key)); }
  const void* opt(const std::string& key) const { return offsets_.count(key) ? get(key) : nullptr; }
  size_t bytes() const { return mem_.bytes; }

  // TF32: the GEMM weight matrices (the 2-D FP32 ".weight" tensors but the
  // 1x1 head's, which an FP32 kernel reads) rounded to tf32 in place, once.
  void round_gemm_weights_tf32(const WeightImage& img) {
    for (const auto& [name, t] : img.tensors) {
      const bool matrix = t.dtype == DType::F32 && t.shape.size() == 2 && name.size() > 7 &&
                          name.compare(name.size() - 7, 7, ".weight") == 0 && name != "output.weight";
      if (matrix)
        round_tf32(static_cast<float*>(static_cast<void*>(static_cast<char*>(mem_.ptr) + t.offset)),
                   static_cast<int64_t>(t.bytes / 4), nullptr);
    }
    SWINRT_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }

 private:
  DeviceMemory mem_;
  std::map<std::string, size_t> offsets_;
};

// A stream of a Context with its own cuBLASLt handle and workspace (two
// GEMMs in flight at once must not share a workspace).
struct StreamGemm {
  cudaStream_t stream = nullptr;
  GemmContext gemm;
  DeviceMemory workspace;
  cudaEvent_t done = nullptr;  // a side lane's end, for the main stream to wait on (side streams only)

  StreamGemm() = default;
  StreamGemm(const StreamGemm&) = delete;
  StreamGemm& operator=(const StreamGemm&) = delete;
  ~StreamGemm() {
    if (done) cudaEventDestroy(done);
    if (gemm.handle) cublasLtDestroy(gemm.handle);
    if (stream) cudaStreamDestroy(stream);
  }
};

// Per-thread execution state: streams, cuBLASLt, activations, graphs. Every
// activation buffer holds max_batch slices at the largest per-slice extent
// any step needs, so the slices from b0 on start at b0 x (bytes / max_batch):
// a large batch can run as several lanes (disjoint runs of slices, each on
// its own stream, concurrently) in the same buffers.
struct Context {
  StreamGemm main;
  std::vector<std::unique_ptr<StreamGemm>> side;  // the lanes after the first
  cudaEvent_t fork = nullptr;
  DeviceMemory x, xt, t, qkv, att, hid, tmp, fin, input, logits, labels;
  std::vector<DeviceMemory> skips;
  int64_t fin_rows = 0;  // per lane (fin holds one chunk a lane)
  std::map<int64_t, cudaGraphExec_t> graphs;
  size_t bytes = 0;

  ~Context() {
    for (auto& [b, g] : graphs) cudaGraphExecDestroy(g);
    if (fork) cudaEventDestroy(fork);
  }
};

// One forward's view of a Context: slices b0 .. b0 + n - 1 of its buffers,
// and the stream and cuBLASLt context they run on.
struct Lane {
  cudaStream_t stream;
  GemmContext* gemm;
  float* x;
  void *xt, *t, *qkv, *att, *hid, *tmp, *fin;
  size_t qkv_bytes;
  int64_t fin_rows;
  std::vector<void*> skips;
  const float* input;
  float* logits;
  int lanes = 1;  // lanes of the forward this one belongs to (they share L2's set-aside part)
};

// Event marks between launches, for profile() and timeline(); null in normal runs.
struct Marks {
  Marks() = default;
  Marks(const Marks&) = delete;  // owns its events
  Marks& operator=(const Marks&) = delete;
  std::vector<std::string> labels;
  std::vector<cudaEvent_t> events;
  void mark(const std::string& label, cudaStream_t s) {
    cudaEvent_t e;
    SWINRT_CUDA_CHECK(cudaEventCreate(&e));
    SWINRT_CUDA_CHECK(cudaEventRecord(e, s));
    labels.push_back(label);
    events.push_back(e);
  }
  ~Marks() {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }
};

// Where the engine fuses a Swin block: the fewest windows (thread blocks) in
// the launch, by the block's channel count. On the H100 (docs/PERFORMANCE_LOG.md,
// "Fused Swin blocks") the 96-channel blocks gain at every batch size
// (6% at batch 1, 9% at 128); the 192-channel kernel (one block per SM) gains
// about 1% at batch 8 and loses elsewhere, so it stays op by op. Channel
// counts not listed are never fused.
std::map<int, int64_t> default_fused_policy() { return {{96, 1}}; }

// SWINRT_FUSED_BLOCK, for A/B comparisons and tests: "0" never fuses, "1"
// fuses every block the kernel takes at every batch size, "96:1024,192:64"
// sets the policy (channels : fewest windows).
std::map<int, int64_t> fused_policy(const Config& c) {
  const char* env = std::getenv("SWINRT_FUSED_BLOCK");
  if (!env) return default_fused_policy();
  const std::string v = env;
  std::map<int, int64_t> policy;
  if (v == "0") return policy;
  if (v == "1") {
    for (int s = 0; s < c.num_layers(); ++s) policy[c.embed_dim << s] = 1;
    return policy;
  }
  const auto bad = [&] { return Error(fmt::format("SWINRT_FUSED_BLOCK='{}': expected 0, 1 or C:windows,...", v)); };
  size_t pos = 0;
  while (pos < v.size()) {
    const size_t end = std::min(v.find(',', pos), v.size()), colon = v.find(':', pos);
    if (colon >= end) throw bad();
    char* stop = nullptr;
    const std::string c = v.substr(pos, colon - pos), w = v.substr(colon + 1, end - colon - 1);
    const long channels = std::strtol(c.c_str(), &stop, 10);
    if (c.empty() || *stop || channels <= 0) throw bad();
    const long long windows = std::strtoll(w.c_str(), &stop, 10);
    if (w.empty() || *stop || windows <= 0) throw bad();
    policy[static_cast<int>(channels)] = windows;
    pos = end + 1;
  }
  return policy;
}

// A developer switch that takes 0, 1 or a row count (SWINRT_GRID_BLOCK,
// SWINRT_FUSED_MLP): its value, or none where unset; anything else is an error.
std::optional<int64_t> row_switch(const char* name) {
  const char* env = std::getenv(name);
  if (!env) return std::nullopt;
  char* stop = nullptr;
  const long long v = std::strtoll(env, &stop, 10);
  if (!*env || *stop || v < 0) throw Error(fmt::format("{}='{}': expected 0, 1 or a row count", name, env));
  return v;
}

// Where the engine runs a Swin block as one grid-synchronised kernel
// (swin_block_grid.cu): the FP16/BF16 blocks it takes that the per-window
// fused kernel does not run, when the batch has at most this many token rows
// (batch x res^2). Off by default: on the H100 it measured slower than the
// op-by-op kernels at every batch size (docs/PERFORMANCE_LOG.md, "Small
// batches (session 5)"). SWINRT_GRID_BLOCK: "0" never, "1" at every batch
// size, a larger number sets the row limit.
constexpr int64_t kDefaultGridRows = 0;
int64_t grid_block_rows() {
  const std::optional<int64_t> v = row_switch("SWINRT_GRID_BLOCK");
  if (!v) return kDefaultGridRows;
  return *v == 1 ? std::numeric_limits<int64_t>::max() : *v;
}

// Where the engine runs a block's LN2 + fc1 + GELU + fc2 as one kernel
// (mlp.cu; FP16/BF16 on sm_90a, the C it is built for): blocks of at least
// this many token rows (batch x res^2), by default mlp_fused_min_rows() (two
// of its 128-row tiles for three SMs). SWINRT_FUSED_MLP: "0" never, "1" at every
// batch size, a larger number sets the row limit.
int64_t fused_mlp_rows() {
  const std::optional<int64_t> v = row_switch("SWINRT_FUSED_MLP");
  if (!v) return mlp_fused_min_rows();
  return *v == 0 ? std::numeric_limits<int64_t>::max() : *v;
}

// Batches of at least kLanesFrom slices run as kLanes lanes: runs of
// slices forked onto streams of their own inside the graph, so that one
// lane's kernels fill the SMs where the other's leave them idle (a launch's
// last wave, the gaps between dependent launches). On the H100 two lanes
// measured 1-7% faster at fp16 batch 24 to 64 (7% at 48), 0.4-1.5% at 128
// and 256, 8-10% slower at 16 and 20; three or four slower everywhere
// (docs/PERFORMANCE_LOG.md, "Session 16").
constexpr int kLanes = 2;
constexpr int64_t kLanesFrom = 24;

class CudaEngine final : public Engine {
 public:
  // `image` as make_weight_image(weights, o.precision) makes it; `chosen`:
  // GEMM algorithms from a plan (checked against this GPU by the caller).
  CudaEngine(const Config& config, const WeightImage& image, const std::string& source, const EngineOptions& o,
             const std::vector<GemmChoice>& chosen)
      : Engine(config), plan_(build_plan(config)), precision_(o.precision), act_(activation_dtype(o.precision)),
        max_batch_(std::max(1, o.max_batch)) {
    const Config& c = config_;
    if (size_t(c.num_classes) * c.embed_dim * 4 > 48 * 1024)
      throw Error(fmt::format("{}: {} classes x embed_dim {} exceed the CUDA head kernel", source, c.num_classes,
                              c.embed_dim));
    SWINRT_CUDA_CHECK(cudaGetDevice(&device_));
    target_ = current_gpu(device_);
    name_ = fmt::format("cuda:{} {} ({})", device_, target_.name, target_.arch);
    for (const GemmChoice& g : chosen) {
      GemmAlgo a{};
      static_assert(sizeof(a.algo) == sizeof(g.algo), "cublasLtMatmulAlgo_t is 64 bytes");
      std::memcpy(&a.algo, g.algo.data(), sizeof(a.algo));
      a.ms = g.ms;
      algos_[g.key] = a;
    }
    if (const char* fs = std::getenv("SWINRT_FIN_SLICES")) fin_slices_ = std::max<long>(1, std::strtol(fs, nullptr, 10));
    weights_ = std::make_unique<DeviceWeights>(image);
    if (tf32_round()) weights_->round_gemm_weights_tf32(image);
    pad_attention_biases();
    arrange_fused_blocks();
    arrange_fused_mlps();
    grid_rows_ = grid_block_rows();
    grid_ok_.assign(plan_.size(), false);
    for (size_t i = 0; i < plan_.size(); ++i) {
      const Step& st = plan_[i];
      grid_ok_[i] = grid_rows_ > 0 && st.op == OpKind::SwinBlock &&
                    swin_block_grid_supported(act_, st.dim, st.heads, st.window, st.hidden) && bias64_[i];
    }
    prepare_head();
    // The x4 expand + LayerNorm + head as one kernel (fp16/bf16: needs the
    // tensor-core head's fragments; FP32: FP32 arithmetic; TF32 keeps the
    // pair, whose expand GEMM on TF32 tensor cores measured faster than the
    // FP32 kernel: docs/PERFORMANCE_LOG.md); SWINRT_FUSED_HEAD=0 keeps the expand
    // GEMM + final_norm_head pair (A/B comparisons, tests).
    fused_head_ = !switched_off("SWINRT_FUSED_HEAD") && precision_ != Precision::TF32 &&
                  (act_ == DT::F32 ? final_expand_head_f32_supported(c.embed_dim, c.num_classes)
                                   : head_frags_.ptr && final_expand_head_supported(act_, c.embed_dim, c.num_classes,
                                                                                   c.img_size / c.patch_size));
    embed_pairs_ = !switched_off("SWINRT_EMBED_PAIRS");
    // Programmatic dependent launch at small batches (graph_edges.cu): the
    // graph's edges into swinrt's kernels, which wait on the device, become
    // programmatic, and the fp16/bf16/tf32 GEMMs run as CUTLASS's sm90 kernels
    // (gemm_sm90.cu), which wait too, instead of cuBLASLt's, which do not.
    // SWINRT_PDL: 0 off, 1 (default: the next kernel launches when the last
    // one's blocks have all exited or passed their wait), 2 (when they have
    // all launched); SWINRT_PDL_BATCH: up to this batch (default 2, TF32 6);
    // SWINRT_OWN_GEMM=0/1: the CUTLASS GEMMs never/always at those batches,
    // with or without the edges (A/B runs). sm_90 and later; the CUTLASS
    // kernels are sm_90a's, for compute capability 9.0 only.
    if (const std::optional<int64_t> v = row_switch("SWINRT_PDL")) {
      if (*v > 2) throw Error(fmt::format("SWINRT_PDL={}: expected 0, 1 or 2", *v));
      pdl_mode_ = static_cast<int>(*v);
      pdl_explicit_ = true;
    }
    // TF32 up to batch 6: there CUTLASS's tf32 tiles beat cuBLASLt's TF32 kernels (session 27 run 2, two
    // rounds: batch 3 1.047-1.049 -> 0.885-0.890 ms, 4 1.183-1.184 -> 1.042-1.045, 5 1.336 -> 1.198-1.200,
    // 6 1.463-1.466 -> 1.401-1.406, 8 even; run 1: 16 +7%), where fp16's lose from batch 4 (session 24).
    if (precision_ == Precision::TF32) pdl_batch_ = 6;
    if (const std::optional<int64_t> v = row_switch("SWINRT_PDL_BATCH")) pdl_batch_ = *v;
    {
      int major = 0, minor = 0;
      SWINRT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_));
      SWINRT_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_));
      if (major < 9) pdl_mode_ = 0;  // griddepcontrol: sm_90 and later
      const bool can = sm90_gemm_built() && major == 9 && minor == 0;
      if (const std::optional<int64_t> v = row_switch("SWINRT_OWN_GEMM")) {
        own_gemm_ = *v != 0;
        if (own_gemm_ && !can)
          throw Error(sm90_gemm_built() ? fmt::format("SWINRT_OWN_GEMM=1: the CUTLASS GEMMs are sm_90a code, and "
                                                      "this GPU is compute capability {}.{}", major, minor)
                                        : std::string("SWINRT_OWN_GEMM=1: this build has no CUTLASS GEMMs "
                                                      "(configure with SWINRT_CUTLASS_DIR)"));
      } else {
        own_gemm_ = pdl_mode_ != 0 && can;
      }
    }
    // L2 set aside for persisting lines (see l2_window in enqueue): a sixth of L2, whole MiB (8 MiB
    // on the H100; SWINRT_L2_MIB to choose, SWINRT_L2_PERSIST=0 for none). The limit is the
    // process's: a larger one already set is kept.
    if (!switched_off("SWINRT_L2_PERSIST")) {
      int most = 0, l2 = 0, window = 0;
      SWINRT_CUDA_CHECK(cudaDeviceGetAttribute(&most, cudaDevAttrMaxPersistingL2CacheSize, device_));
      SWINRT_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device_));
      SWINRT_CUDA_CHECK(cudaDeviceGetAttribute(&window, cudaDevAttrMaxAccessPolicyWindowSize, device_));
      size_t want = size_t(l2) / 6 / (1u << 20) * (1u << 20);
      if (const std::optional<int64_t> mib = row_switch("SWINRT_L2_MIB")) want = size_t(*mib) << 20;
      want = std::min(want, size_t(most));
      size_t now = 0;
      // A hint only: where the limit cannot be read or set (an MPS client, say), the engine runs without it.
      if (want > 0 && window > 0 && cudaDeviceGetLimit(&now, cudaLimitPersistingL2CacheSize) == cudaSuccess &&
          (now >= want || cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, want) == cudaSuccess)) {
        l2_setaside_ = want;
        l2_window_max_ = size_t(window);
      }
      cudaGetLastError();  // (clears a refusal above)
    }
    // The fused MLP takes the block's attn.proj too (SWINRT_MLP_PROJ=0: proj by cuBLASLt before it).
    mlp_proj_ = !switched_off("SWINRT_MLP_PROJ");
    // ... and the next block's LayerNorm 1 where that block runs op by op (SWINRT_MLP_NORM1=0: its own launch).
    mlp_norm1_ = !switched_off("SWINRT_MLP_NORM1");
    // The one-warpgroup block and the pair form write the LayerNorm that follows them (norm_up) instead of x
    // (SWINRT_NARROW_NORM=0: not).
    narrow_norm_ = !switched_off("SWINRT_NARROW_NORM");
    // The 16-bit attention takes several heads of a window a thread block at large batches;
    // SWINRT_ATTN_HEADS=0: one head a block always, =1: several wherever it applies (tests).
    attn_heads_ = policy_switch("SWINRT_ATTN_HEADS");
    // PatchExpand's cast + expand + LayerNorm as one wgmma kernel (fp16/bf16, sm_90a, 192 channels) where
    // its 64-token tiles are at least the SMs (batch 11 and up at 224 x 224); SWINRT_EXPAND_FUSED=0: the
    // three launches, =1: the kernel at every batch size on at most 8 thread blocks, so that each walks
    // several tiles (Cuda.FusedPatchExpandMatchesUnfused).
    expand_fused_ = act_ == DT::F32 ? 0 : policy_switch("SWINRT_EXPAND_FUSED");
    // ... by warpgroup where it can (sm_90a, embed_dim 96); SWINRT_HEAD_WG=0 keeps the mma.sync kernel.
    head_wg_ = fused_head_ && act_ != DT::F32 && !switched_off("SWINRT_HEAD_WG") &&
               final_expand_head_wg_supported(act_, c.embed_dim, c.num_classes, c.img_size / c.patch_size);
    // Large batches as several lanes on their own streams (SWINRT_LANES: how many, 0 or 1 for one stream;
    // SWINRT_LANES_FROM: the smallest batch split).
    if (const std::optional<int64_t> v = row_switch("SWINRT_LANES")) lanes_ = static_cast<int>(std::clamp<int64_t>(*v, 1, 8));
    if (const std::optional<int64_t> v = row_switch("SWINRT_LANES_FROM")) lanes_from_ = std::max<int64_t>(*v, 2);
    pool_.push_back(make_context());  // allocate the first context up front: OOM shows at creation
    free_.push_back(pool_.back().get());
  }

  static GpuTarget current_gpu(int device) {
    cudaDeviceProp prop{};
    SWINRT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return {fmt::format("sm_{}{}", prop.major, prop.minor), prop.name, static_cast<int>(cublasLtGetVersion())};
  }

  GpuTarget gpu_target() const override { return target_; }

  std::vector<GemmChoice> gemm_choices() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<GemmChoice> out;
    for (const auto& [key, a] : algos_) {
      GemmChoice g{key, {}, a.ms};
      std::memcpy(g.algo.data(), &a.algo, sizeof(a.algo));
      out.push_back(std::move(g));
    }
    return out;
  }

  void autotune(const std::vector<int64_t>& batches, bool wide) override {
    Lease lease(*this);
    Context& cx = *lease.cx;
    GemmAlgoTable table;
    {
      std::lock_guard<std::mutex> lock(mu_);
      table = algos_;
    }
    for (int64_t b : batches) {
      if (b < 1 || b > max_batch_)
        throw Error(fmt::format("autotune: batch {} is outside 1..max_batch {}", b, max_batch_));
      const std::vector<float> in = benchmark_slices(b, config_.img_size);
      SWINRT_CUDA_CHECK(cudaMemcpy(cx.input.ptr, in.data(), in.size() * 4, cudaMemcpyHostToDevice));
      // Tuned as the graph will run it: the same lanes, so the same GEMM shapes.
      set_tuning(cx, &table, wide);
      try {
        forward(cx, b);
      } catch (...) {
        set_tuning(cx, nullptr);
        throw;
      }
      set_tuning(cx, nullptr);
      SWINRT_CUDA_CHECK(cudaStreamSynchronize(cx.main.stream));
    }
    std::lock_guard<std::mutex> lock(mu_);
    algos_ = std::move(table);
    // Graphs captured before hold the old choices: capture again on next use.
    for (auto& c : pool_) {
      for (auto& [n, g] : c->graphs) cudaGraphExecDestroy(g);
      c->graphs.clear();
    }
  }

  std::string device_name() const override { return name_; }
  Precision precision() const override { return precision_; }

  size_t memory_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = weights_->bytes() + fused_arena_.bytes + mlp_arena_.bytes + bias64_arena_.bytes + head_frags_.bytes;
    for (const auto& c : pool_) n += c->bytes;
    return n;
  }

  void run(const float* input, int64_t batch, float* logits) override {
    Lease lease(*this);
    Context& cx = *lease.cx;
    const int64_t S = config_.img_size, C = config_.num_classes;
    for (int64_t b0 = 0; b0 < batch; b0 += max_batch_) {
      const int64_t n = std::min<int64_t>(max_batch_, batch - b0);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(cx.input.ptr, input + b0 * S * S, n * S * S * 4, cudaMemcpyHostToDevice, cx.main.stream));
      launch(cx, n);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(logits + b0 * C * S * S, cx.logits.ptr, n * C * S * S * 4,
                                        cudaMemcpyDeviceToHost, cx.main.stream));
      SWINRT_CUDA_CHECK(cudaStreamSynchronize(cx.main.stream));
    }
  }

  void run_labels(const float* input, int64_t batch, int32_t* labels) override {
    Lease lease(*this);
    Context& cx = *lease.cx;
    const int64_t S = config_.img_size;
    for (int64_t b0 = 0; b0 < batch; b0 += max_batch_) {
      const int64_t n = std::min<int64_t>(max_batch_, batch - b0);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(cx.input.ptr, input + b0 * S * S, n * S * S * 4, cudaMemcpyHostToDevice, cx.main.stream));
      launch(cx, n);
      argmax_channels(static_cast<float*>(cx.logits.ptr), static_cast<int>(n), config_.num_classes, S * S,
                      static_cast<int32_t*>(cx.labels.ptr), cx.main.stream);
      SWINRT_CUDA_CHECK(cudaMemcpyAsync(labels + b0 * S * S, cx.labels.ptr, n * S * S * 4, cudaMemcpyDeviceToHost,
                                        cx.main.stream));
      SWINRT_CUDA_CHECK(cudaStreamSynchronize(cx.main.stream));
    }
  }

  std::vector<std::pair<std::string, double>> profile(int64_t batch, int iterations) override {
    if (batch > max_batch_)
      throw Error(fmt::format("profile: batch {} exceeds the engine's max_batch {}", batch, max_batch_));
    Lease lease(*this);
    Context& cx = *lease.cx;
    launch(cx, batch);  // warm up (and capture the graph, unused here)
    // The one-stream pass runs GEMM shapes the graph's lanes may not (the
    // whole batch at once): once untimed, so that no kernel's first-use
    // loading lands in the table.
    {
      Marks warm;
      marked_pass(cx, batch, warm);
    }
    std::vector<std::pair<std::string, double>> rows;
    for (int it = 0; it < iterations; ++it) {
      Marks m;
      marked_pass(cx, batch, m);  // one stream: the marks time the launches one after another
      if (rows.empty())
        for (size_t i = 1; i < m.labels.size(); ++i) rows.emplace_back(m.labels[i], 0.0);
      for (size_t i = 1; i < m.events.size(); ++i) {
        float t = 0;
        SWINRT_CUDA_CHECK(cudaEventElapsedTime(&t, m.events[i - 1], m.events[i]));
        rows[i - 1].second += t / iterations;
      }
    }
    return rows;
  }

  std::vector<TimelineRow> timeline(int64_t batch, int iterations) override {
    if (batch > max_batch_)
      throw Error(fmt::format("timeline: batch {} exceeds the engine's max_batch {}", batch, max_batch_));
    Lease lease(*this);
    Context& cx = *lease.cx;
    launch(cx, batch);  // capture (and warm up) the graph
    SWINRT_CUDA_CHECK(cudaStreamSynchronize(cx.main.stream));
    // The launches' labels, from one op-by-op pass as profile() runs it.
    std::vector<std::string> labels;
    {
      Marks m;
      marked_pass(cx, batch, m);
      labels.assign(m.labels.begin() + (m.labels.empty() ? 0 : 1), m.labels.end());
    }
    // The graph captured again while the trace runs: CUPTI then knows its kernel nodes.
    if (auto it = cx.graphs.find(batch); it != cx.graphs.end()) {
      SWINRT_CUDA_CHECK(cudaGraphExecDestroy(it->second));
      cx.graphs.erase(it);
    }
    constexpr int kWarm = 3;  // replays traced but left out (the first after capture uploads the graph)
    std::vector<KernelRecord> recs;
    {
      KernelTrace trace;
      for (int i = 0; i < kWarm + iterations; ++i) {
        launch(cx, batch);
        SWINRT_CUDA_CHECK(cudaStreamSynchronize(cx.main.stream));
      }
      recs = trace.stop();
    }
    // One replay's kernels share its graph launch's correlation id.
    std::map<uint32_t, std::vector<const KernelRecord*>> by_launch;
    for (const KernelRecord& r : recs) by_launch[r.correlation].push_back(&r);
    std::vector<std::vector<const KernelRecord*>> replays;
    for (auto& [id, ks] : by_launch) replays.push_back(ks);
    std::sort(replays.begin(), replays.end(), [](const auto& a, const auto& b) { return a[0]->start < b[0]->start; });
    if (int(replays.size()) != kWarm + iterations)
      throw Error(fmt::format("timeline: CUPTI reported {} graph launches of kernels, {} were made", replays.size(),
                              kWarm + iterations));
    replays.erase(replays.begin(), replays.begin() + kWarm);
    const size_t n = replays[0].size();
    for (const auto& r : replays)
      if (r.size() != n) throw Error(fmt::format("timeline: replays of {} and {} kernels", n, r.size()));
    const bool named = labels.size() == n;
    std::vector<TimelineRow> rows(n);
    std::vector<double> start(replays.size()), busy(replays.size()), adds(replays.size());
    auto median = [](std::vector<double> v) { return percentile_linear(v, 50.0); };
    std::vector<uint64_t> last_end(replays.size(), 0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t r = 0; r < replays.size(); ++r) {
        const KernelRecord& k = *replays[r][i];
        const uint64_t t0 = replays[r][0]->start;
        if (i == 0) last_end[r] = t0;
        start[r] = (k.start - t0) * 1e-3;
        busy[r] = (k.end - k.start) * 1e-3;
        adds[r] = k.end > last_end[r] ? (k.end - last_end[r]) * 1e-3 : 0.0;
        last_end[r] = std::max(last_end[r], k.end);
      }
      rows[i] = TimelineRow{named ? labels[i] : "", replays[0][i]->name, median(start), median(busy), median(adds)};
    }
    return rows;
  }

  std::vector<double> time_forward(int64_t batch, int warmup, int iterations) override {
    if (batch > max_batch_)
      throw Error(fmt::format("time_forward: batch {} exceeds the engine's max_batch {}", batch, max_batch_));
    Lease lease(*this);
    Context& cx = *lease.cx;
    const std::vector<float> in = benchmark_slices(batch, config_.img_size);
    SWINRT_CUDA_CHECK(cudaMemcpy(cx.input.ptr, in.data(), in.size() * 4, cudaMemcpyHostToDevice));
    for (int i = 0; i < warmup; ++i) launch(cx, batch);
    cudaEvent_t e0, e1;
    SWINRT_CUDA_CHECK(cudaEventCreate(&e0));
    SWINRT_CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<double> ms;
    for (int i = 0; i < iterations; ++i) {
      SWINRT_CUDA_CHECK(cudaEventRecord(e0, cx.main.stream));
      launch(cx, batch);
      SWINRT_CUDA_CHECK(cudaEventRecord(e1, cx.main.stream));
      SWINRT_CUDA_CHECK(cudaEventSynchronize(e1));
      float t = 0;
      SWINRT_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
      ms.push_back(t);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms;
  }

 private:
  // FP16/BF16 Swin blocks whose shapes swin_block takes run as one kernel
  // each (src/cuda/swin_block.cu) where the policy (fused_policy) says so for
  // the batch size; their weights are arranged here once.
  void arrange_fused_blocks() {
    fused_policy_ = fused_policy(config_);
    if (fused_policy_.empty()) return;
    fused_.assign(plan_.size(), std::nullopt);
    std::vector<size_t> offset(plan_.size());
    size_t bytes = 0;
    for (size_t i = 0; i < plan_.size(); ++i) {
      const Step& st = plan_[i];
      if (st.op != OpKind::SwinBlock || !fused_policy_.count(st.dim) ||
          !swin_block_supported(act_, st.dim, st.heads, st.window, st.hidden) || !bias64_[i])
        continue;
      offset[i] = bytes;
      bytes += (swin_block_stream_bytes(st.dim) + 255) & ~size_t(255);
      fused_[i] = SwinBlockWeights{};
    }
    if (bytes == 0) return;
    fused_arena_ = DeviceMemory(bytes, "the fused blocks' weights");
    char* base = static_cast<char*>(fused_arena_.ptr);
    const DeviceWeights& W = *weights_;
    const bool wide = !switched_off("SWINRT_WIDE_BLOCK");  // 0: never the 16-warp form
    // 0: never the one-warpgroup form (three windows an SM) where the windows are more than the SMs.
    const bool narrow = !switched_off("SWINRT_NARROW_BLOCK");
    // ... its MLP with fc1 and GELU of the next hidden chunk during fc2 of this one: 0 never (chunk after
    // chunk), 1 wherever the one-warpgroup form runs (tests), unset: at large batches (SwinBlockWeights).
    const int narrow_pipe = policy_switch("SWINRT_NARROW_PIPE");
    const int narrow_compact = policy_switch("SWINRT_NARROW_COMPACT");
    const int pair = policy_switch("SWINRT_PAIR_BLOCK");  // the 16-warp form as two blocks a window
    const bool early = early_constants() && !switched_off("SWINRT_EARLY_BLOCK");
    const bool preload = early_constants() && !switched_off("SWINRT_BLOCK_PRELOAD");
    for (size_t i = 0; i < plan_.size(); ++i) {
      if (!fused_[i]) continue;
      const Step& st = plan_[i];
      const bool wg =
          swin_block_arrange(st.dim, W.get(st.param("attn.qkv.weight")), W.get(st.param("attn.proj.weight")),
                             W.get(st.param("mlp.fc1.weight")), W.get(st.param("mlp.fc2.weight")),
                             wtable_[i] != nullptr, base + offset[i], nullptr);
      half_bias(W.get(st.param("mlp.fc1.bias")), act_, 4 * st.dim, swin_block_half_bias(st.dim, base + offset[i]),
                nullptr);
      *fused_[i] = SwinBlockWeights{W.f32(st.param("norm1.weight")), W.f32(st.param("norm1.bias")),
                                    W.f32(st.param("norm2.weight")), W.f32(st.param("norm2.bias")),
                                    base + offset[i], W.opt(st.param("attn.qkv.bias")),
                                    W.f32(st.param("attn.proj.bias")), W.get(st.param("mlp.fc1.bias")),
                                    W.f32(st.param("mlp.fc2.bias")), static_cast<const __half*>(bias64_[i]),
                                    wtable_[i], wg, wide, narrow, narrow_pipe, narrow_compact, pair, early, preload};
    }
    SWINRT_CUDA_CHECK(cudaDeviceSynchronize());
  }

  // The FP16/BF16 blocks run op by op whose LN2 + MLP mlp_fused takes (at
  // the policy's row count, within max_batch) get their fc1 and fc2 weights
  // arranged for it here once.
  void arrange_fused_mlps() {
    mlp_rows_ = fused_mlp_rows();
    mlp_w_.assign(plan_.size(), nullptr);
    if (act_ == DT::F32 || mlp_rows_ == std::numeric_limits<int64_t>::max()) return;
    std::vector<size_t> offset(plan_.size());
    size_t bytes = 0;
    for (size_t i = 0; i < plan_.size(); ++i) {
      const Step& st = plan_[i];
      if (st.op != OpKind::SwinBlock || max_batch_ * st.tokens() < mlp_rows_ ||
          !mlp_fused_supported(act_, st.dim, st.hidden))
        continue;
      offset[i] = bytes + 1;  // + 1: taken
      bytes += (mlp_fused_weight_bytes(st.dim) + 255) & ~size_t(255);
    }
    if (bytes == 0) return;
    mlp_arena_ = DeviceMemory(bytes, "the fused MLPs' weights");
    const DeviceWeights& W = *weights_;
    for (size_t i = 0; i < plan_.size(); ++i) {
      if (!offset[i]) continue;
      const Step& st = plan_[i];
      char* at = static_cast<char*>(mlp_arena_.ptr) + offset[i] - 1;
      mlp_fused_arrange(st.dim, W.get(st.param("mlp.fc1.weight")), W.get(st.param("mlp.fc2.weight")),
                        W.get(st.param("attn.proj.weight")), at, nullptr);
      mlp_w_[i] = at;
    }
    SWINRT_CUDA_CHECK(cudaDeviceSynchronize());
  }

  // The register-resident attention (op by op, in grid-synchronised and in
  // fused blocks) reads each block's relative position bias padded to
  // [heads, 64, 64]; padded here once. The attention kernel and the fused
  // block also read their windows' token maps and mask bits from a table
  // built here (SWINRT_ATTN_TABLE=0: each thread block builds its own).
  void pad_attention_biases() {
    bias64_.assign(plan_.size(), nullptr);
    wtable_.assign(plan_.size(), nullptr);
    const bool tables = !switched_off("SWINRT_ATTN_TABLE");
    // FP32/TF32: the padded bias selects the register-resident FP32 kernel;
    // SWINRT_ATTN_ROWS=0 keeps the register-tiled one (A/B runs, tests).
    const bool rows_kernel = act_ != DT::F32 || !switched_off("SWINRT_ATTN_ROWS");
    std::vector<size_t> offset(plan_.size());
    size_t bytes = 0;
    for (size_t i = 0; i < plan_.size(); ++i) {
      const Step& st = plan_[i];
      if (!rows_kernel || st.op != OpKind::SwinBlock || !window_attention_padded(act_, st.dim, st.heads, st.window))
        continue;
      offset[i] = bytes;
      bytes += size_t(st.heads) * 64 * 64 * dt_size(act_);  // FP32, or fp16 for the 16-bit kernels
      if (tables) bytes += (window_table_bytes(st.res, st.window) + 255) & ~size_t(255);
    }
    if (bytes == 0) return;
    bias64_arena_ = DeviceMemory(bytes, "the padded attention biases");
    for (size_t i = 0; i < plan_.size(); ++i) {
      const Step& st = plan_[i];
      if (!rows_kernel || st.op != OpKind::SwinBlock || !window_attention_padded(act_, st.dim, st.heads, st.window))
        continue;
      char* padded = static_cast<char*>(bias64_arena_.ptr) + offset[i];
      pad_attention_bias(weights_->f32(st.param("attn.relative_position_bias")), st.heads, st.window, act_, padded,
                         nullptr);
      bias64_[i] = padded;
      if (tables) {
        char* table = padded + size_t(st.heads) * 64 * 64 * dt_size(act_);
        window_table(st.res, st.window, st.shift, table, nullptr);
        wtable_[i] = table;
      }
    }
    SWINRT_CUDA_CHECK(cudaDeviceSynchronize());
  }

  // The tensor-core final head (fp16/bf16) needs its fragments once;
  // SWINRT_HEAD_MMA=0 keeps the FP32 head kernel (A/B comparisons, tests).
  void prepare_head() {
    const char* env = std::getenv("SWINRT_HEAD_MMA");
    if (env && std::string(env) == "0") return;
    const Config& c = config_;
    const size_t bytes = final_head_frags_bytes(act_, c.embed_dim, c.num_classes);
    if (bytes == 0) return;
    head_frags_ = DeviceMemory(bytes, "the head fragments");
    final_head_prepare(act_, c.embed_dim, c.num_classes, weights_->f32("output.weight"), weights_->f32("up.norm.weight"),
                       weights_->f32("up.norm.bias"), head_frags_.ptr, nullptr);
    SWINRT_CUDA_CHECK(cudaDeviceSynchronize());
  }

  // Takes a free context (or makes one) for the duration of a call.
  struct Lease {
    CudaEngine& e;
    Context* cx;
    explicit Lease(CudaEngine& eng) : e(eng) {
      std::unique_lock<std::mutex> lock(e.mu_);
      if (e.free_.empty()) {
        lock.unlock();
        auto fresh = e.make_context();
        lock.lock();
        e.pool_.push_back(std::move(fresh));
        cx = e.pool_.back().get();
      } else {
        cx = e.free_.back();
        e.free_.pop_back();
      }
      SWINRT_CUDA_CHECK(cudaSetDevice(e.device_));
    }
    ~Lease() {
      std::lock_guard<std::mutex> lock(e.mu_);
      e.free_.push_back(cx);
    }
  };

  std::unique_ptr<Context> make_context() {
    SWINRT_CUDA_CHECK(cudaSetDevice(device_));
    auto cx = std::make_unique<Context>();
    const Config& c = config_;
    const int64_t B = max_batch_, P2 = int64_t(c.patches_resolution()) * c.patches_resolution();
    const int64_t E = c.embed_dim, S2 = int64_t(c.img_size) * c.img_size;
    const size_t a = dt_size(act_);
    auto open_stream = [&](StreamGemm& sg, bool side) {
      SWINRT_CUDA_CHECK(cudaStreamCreateWithFlags(&sg.stream, cudaStreamNonBlocking));
      if (cublasLtCreate(&sg.gemm.handle) != CUBLAS_STATUS_SUCCESS) throw Error("cuBLASLt initialisation failed");
      sg.gemm.tf32 = precision_ == Precision::TF32;
      sg.gemm.chosen = &algos_;
      sg.workspace = DeviceMemory(32u << 20, "the cuBLASLt workspace");
      sg.gemm.workspace = sg.workspace.ptr;
      sg.gemm.workspace_bytes = sg.workspace.bytes;
      if (side) SWINRT_CUDA_CHECK(cudaEventCreateWithFlags(&sg.done, cudaEventDisableTiming));
    };
    open_stream(cx->main, false);
    const int lanes = max_lanes();
    for (int i = 1; i < lanes; ++i) {
      cx->side.push_back(std::make_unique<StreamGemm>());
      open_stream(*cx->side.back(), true);
    }
    SWINRT_CUDA_CHECK(cudaEventCreateWithFlags(&cx->fork, cudaEventDisableTiming));
    // Largest per-slice extent of each buffer over the plan.
    int64_t hid = 0;
    for (const Step& st : plan_)
      if (st.op == OpKind::SwinBlock) hid = std::max<int64_t>(hid, int64_t(st.tokens()) * st.hidden);
    cx->x = DeviceMemory(B * P2 * E * 4, "activations (x)");
    cx->xt = DeviceMemory(B * P2 * E * a, "activations (xt)");
    cx->t = DeviceMemory(B * P2 * E * a, "activations (t)");
    cx->qkv = DeviceMemory(B * P2 * E * 3 * a, "activations (qkv)");
    cx->att = DeviceMemory(B * P2 * E * a, "activations (att)");
    cx->hid = DeviceMemory(B * hid * a, "activations (mlp)");
    cx->tmp = DeviceMemory(B * P2 * E * a, "activations (expand)");
    // Skip s holds [rows, 2C] rows: the decoder's PatchExpand output (left)
    // next to the encoder's skip (right), the input of one concat GEMM.
    for (int s = 0; s + 1 < c.num_layers(); ++s)
      cx->skips.emplace_back(2 * B * (P2 * E >> s) * a, "skip connections");
    // The x4 expand runs in chunks of at most fin_slices_ slices' tokens.
    if (!fused_head_) {
      cx->fin_rows = std::min<int64_t>(B, fin_slices_) * P2;
      cx->fin = DeviceMemory(lanes * cx->fin_rows * 16 * E * a, "activations (final expand)");
    }
    cx->input = DeviceMemory(B * S2 * 4, "input slices");
    cx->logits = DeviceMemory(B * S2 * c.num_classes * 4, "logits");
    cx->labels = DeviceMemory(B * S2 * 4, "labels");
    cx->bytes = cx->main.workspace.bytes + cx->x.bytes + cx->xt.bytes + cx->t.bytes + cx->qkv.bytes + cx->att.bytes +
                cx->hid.bytes + cx->tmp.bytes + cx->fin.bytes + cx->input.bytes + cx->logits.bytes + cx->labels.bytes;
    for (const auto& s : cx->skips) cx->bytes += s.bytes;
    for (const auto& sg : cx->side) cx->bytes += sg->workspace.bytes;
    return cx;
  }

  // Replays (capturing on first use) the forward graph for batch n.
  void launch(Context& cx, int64_t n) {
    auto it = cx.graphs.find(n);
    if (it == cx.graphs.end()) {
      const bool own = use_sm90_gemms(cx, n);
      cudaGraph_t graph = nullptr;
      SWINRT_CUDA_CHECK(cudaStreamBeginCapture(cx.main.stream, cudaStreamCaptureModeThreadLocal));
      try {
        forward(cx, n);
      } catch (...) {
        cudaStreamEndCapture(cx.main.stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      SWINRT_CUDA_CHECK(cudaStreamEndCapture(cx.main.stream, &graph));
      cudaGraphExec_t exec = nullptr;
      cudaError_t err = cudaSuccess;
      try {
        // The edges pay only with the CUTLASS GEMMs (session 24: fp32 batch 1 +0.8%, fp16 with cuBLASLt's
        // GEMMs +1.5%); SWINRT_PDL set asks for them at every precision.
        if (n <= pdl_batch_ && pdl_mode_ && (own || pdl_explicit_)) {
          const ProgrammaticEdges pe = make_edges_programmatic(graph, pdl_mode_);
          if (std::getenv("SWINRT_PDL_VERBOSE")) {
            fmt::print(stderr, "swinrt: batch {} graph: {} of {} kernel edges programmatic (mode {})\n", n,
                       pe.programmatic, pe.kernel_edges, pdl_mode_);
            for (const std::string& k : pe.kept) fmt::print(stderr, "swinrt:   kept ordinary: {}\n", k);
          }
        }
        err = cudaGraphInstantiate(&exec, graph, 0);
      } catch (...) {
        cudaGraphDestroy(graph);
        throw;
      }
      cudaGraphDestroy(graph);
      SWINRT_CUDA_CHECK(err);
      it = cx.graphs.emplace(n, exec).first;
    }
    SWINRT_CUDA_CHECK(cudaGraphLaunch(it->second, cx.main.stream));
  }

  // The forward of n slices from cx's input to its logits, on cx's main
  // stream: as one lane, or as lanes() of them, each a run of slices on its
  // own stream, forked from the main stream and joined back into it.
  void forward(Context& cx, int64_t n) {
    const int k = lanes(n);
    if (k == 1) {
      enqueue(lane(cx, 0, 0), n);
      return;
    }
    SWINRT_CUDA_CHECK(cudaEventRecord(cx.fork, cx.main.stream));
    for (int i = 1; i < k; ++i) SWINRT_CUDA_CHECK(cudaStreamWaitEvent(cx.side[i - 1]->stream, cx.fork));
    int64_t b0 = 0;
    for (int i = 0; i < k; ++i) {
      const int64_t ni = n / k + (i < n % k ? 1 : 0);
      Lane l = lane(cx, i, b0);
      l.lanes = k;
      enqueue(l, ni);
      b0 += ni;
    }
    for (int i = 1; i < k; ++i) {
      SWINRT_CUDA_CHECK(cudaEventRecord(cx.side[i - 1]->done, cx.side[i - 1]->stream));
      SWINRT_CUDA_CHECK(cudaStreamWaitEvent(cx.main.stream, cx.side[i - 1]->done));
    }
  }

  // Lane i of cx (0: the main stream) over the slices from b0 on.
  Lane lane(Context& cx, int i, int64_t b0) {
    StreamGemm& sg = i == 0 ? cx.main : *cx.side.at(i - 1);
    auto at = [&](const DeviceMemory& m) -> char* {
      return m.ptr ? static_cast<char*>(m.ptr) + m.bytes / max_batch_ * b0 : nullptr;
    };
    Lane l{sg.stream, &sg.gemm, reinterpret_cast<float*>(at(cx.x)), at(cx.xt), at(cx.t), at(cx.qkv), at(cx.att),
           at(cx.hid), at(cx.tmp), nullptr, cx.qkv.bytes / max_batch_ * (max_batch_ - b0), cx.fin_rows, {},
           reinterpret_cast<const float*>(at(cx.input)), reinterpret_cast<float*>(at(cx.logits))};
    if (cx.fin.ptr) l.fin = static_cast<char*>(cx.fin.ptr) + cx.fin.bytes / (1 + cx.side.size()) * i;
    for (const DeviceMemory& m : cx.skips) l.skips.push_back(at(m));
    return l;
  }

  // Lanes for a forward of n slices: SWINRT_LANES (default kLanes) from
  // SWINRT_LANES_FROM slices (default kLanesFrom) on, at least a slice each
  // (n <= max_batch: never more than the context has streams for).
  int lanes(int64_t n) const { return n >= lanes_from_ ? static_cast<int>(std::min<int64_t>(lanes_, n)) : 1; }
  int max_lanes() const { return max_batch_ >= lanes_from_ ? lanes_ : 1; }
  template <typename F>
  static void each_gemm(Context& cx, F&& f) {
    f(cx.main.gemm);
    for (auto& sg : cx.side) f(sg->gemm);
  }
  static void set_tuning(Context& cx, GemmAlgoTable* t, bool wide = false) {
    // The wide tuner's cap on candidates beyond the heuristic's (linear.cu).
    constexpr int kWideCandidates = 400;
    // What is tuned is cuBLASLt's choice: its GEMMs run while the table is set (each capture sets
    // `own` again).
    each_gemm(cx, [&](GemmContext& g) {
      g.tuning = t;
      g.tune_wide = wide ? kWideCandidates : 0;
      g.own = false;
    });
  }
  // TF32: every activation a GEMM reads is stored rounded to tf32 (round_tf32) by the kernel that writes it
  // (LayerNorm, the attention, GELU, the patch embedding's skip copy, the casts), and the GEMM weights are
  // rounded once (DeviceWeights::round_gemm_weights_tf32): the CUTLASS tf32 GEMMs read the FP32 bits as they
  // are, which truncates (swin-t against the CPU backend 7.4e-3 truncated, against 3.7e-3 for cuBLASLt's
  // TF32; session 26 run 6).
  bool tf32_round() const { return precision_ == Precision::TF32; }

  // Whether a forward of n slices takes gemm_sm90.cu's GEMMs (small
  // batches, fp16/bf16/tf32, where the engine runs them); sets every stream's
  // GemmContext to that before the forward is enqueued. Returns it.
  bool use_sm90_gemms(Context& cx, int64_t n) const {
    const bool own = own_gemm_ && n <= pdl_batch_ && precision_ != Precision::FP32;
    each_gemm(cx, [&](GemmContext& g) { g.own = own; });
    return own;
  }

  // One op-by-op pass of the forward of `batch` slices on lane 0's stream, each launch marked (profile(),
  // timeline()), with the GEMMs the graph of that batch runs; returns once it has run.
  void marked_pass(Context& cx, int64_t batch, Marks& m) {
    use_sm90_gemms(cx, batch);
    enqueue(lane(cx, 0, 0), batch, &m);
    SWINRT_CUDA_CHECK(cudaStreamSynchronize(cx.main.stream));
  }

  // The forward of n slices from cx.input to cx.logits (a lane's), enqueued on cx.stream.
  void enqueue(const Lane& cx, int64_t n, Marks* marks = nullptr) {
    const Config& c = config_;
    auto mark = [&](const std::string& label) {
      if (marks) marks->mark(label, cx.stream);
    };
    mark("start");
    const DeviceWeights& W = *weights_;
    cudaStream_t s = cx.stream;
    float* x = static_cast<float*>(cx.x);
    void* xt = cx.xt;
    bool xt_valid = false;  // does xt hold x in the activation dtype?
    auto ensure_xt = [&](int64_t count) {
      if (!xt_valid) {
        cast(x, count, xt, act_, s, 0, 0, tf32_round());
        mark("cast");
      }
      xt_valid = true;
    };
    // A skip (x in the activation dtype, into the right half of its concat
    // rows) is written by whichever launch reads or writes x next anyway:
    // patch_embed (skip 0), the next block's norm1; a consumer that cannot
    // (the fused and grid-synchronised blocks) casts it first.
    const size_t es = dt_size(act_);
    auto skip_right = [&](int skip, int C) { return static_cast<char*>(cx.skips[skip]) + C * es; };
    char* pending_skip = nullptr;  // a SaveSkip not written yet: x's pending_rows rows of pending_c values go there
    int64_t pending_rows = 0;
    int pending_c = 0;
    auto flush_skip = [&] {
      if (!pending_skip) return;
      cast(x, pending_rows * pending_c, pending_skip, act_, s, pending_c, 2 * pending_c, tf32_round());
      mark("cast");
      pending_skip = nullptr;
    };
    // Whether plan step j is a Swin block that runs op by op at this batch
    // (neither the per-window fused kernel nor the grid-synchronised one).
    auto op_by_op = [&](size_t j) {
      const Step& t = plan_[j];
      if (t.op != OpKind::SwinBlock) return false;
      const int64_t w = n * (t.res / t.window) * (t.res / t.window);
      const bool fused = !fused_.empty() && fused_[j] && w >= fused_policy_.at(t.dim);
      return !fused && !(grid_ok_[j] && n * t.tokens() <= grid_rows_);
    };
    bool norm1_ready = false;  // cx.t holds this block's LayerNorm 1 already (written by the fused MLP before it)
    // The two deepest stages (C >= 4 embed_dim: 384 and 768 channels in Swin-T) read and write their
    // residual stream x in every step. An access policy window on this lane's rows of x, set on the
    // stream before each of their steps (and so captured into its kernel nodes), keeps a share of them
    // in L2's set-aside part (persisting, the share that fits beside the other lanes') and makes the
    // rest of x's lines go first (streaming); the first step after them turns the lines back to normal.
    // H100, fp16: batch 128 -1.9%, 64 -1.3%, 32 -1.8%, batch 1 unchanged (docs/PERFORMANCE_LOG.md, session 22).
    size_t l2_rows_bytes = 0;  // x's bytes under the window now (0: none)
    bool l2_persisting = false;
    auto l2_window = [&](size_t bytes, cudaAccessProperty hit) {
      cudaStreamAttrValue v{};
      v.accessPolicyWindow.base_ptr = bytes ? static_cast<void*>(x) : nullptr;
      v.accessPolicyWindow.num_bytes = std::min(bytes, l2_window_max_);
      v.accessPolicyWindow.hitRatio =
          bytes ? float(std::min(1.0, double(l2_setaside_) / (double(cx.lanes) * v.accessPolicyWindow.num_bytes)))
                : 0.f;
      v.accessPolicyWindow.hitProp = hit;
      v.accessPolicyWindow.missProp = cudaAccessPropertyStreaming;
      SWINRT_CUDA_CHECK(cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &v));
    };
    for (size_t si = 0; si < plan_.size(); ++si) {
      const Step& st = plan_[si];
      const int64_t rows = n * st.tokens();
      const int C = st.dim;
      if (l2_setaside_) {
        if (C >= 4 * c.embed_dim) {
          const size_t bytes = size_t(rows) * C * sizeof(float);
          if (!l2_persisting || bytes != l2_rows_bytes) l2_window(bytes, cudaAccessPropertyPersisting);
          l2_rows_bytes = bytes;
          l2_persisting = true;
        } else if (l2_persisting) {
          l2_window(l2_rows_bytes, cudaAccessPropertyNormal);  // this step's accesses turn the lines back
          l2_persisting = false;
        } else if (l2_rows_bytes || si == 0) {
          l2_window(0, cudaAccessPropertyNormal);  // no window
          l2_rows_bytes = 0;
        }
      }
      if (st.op != OpKind::SwinBlock) flush_skip();
      switch (st.op) {
        case OpKind::PatchEmbed: {
          // Its activation-dtype output goes straight into skip 0 where a SaveSkip follows.
          const bool to_skip = si + 1 < plan_.size() && plan_[si + 1].op == OpKind::SaveSkip;
          patch_embed(static_cast<const float*>(cx.input), static_cast<int>(n), c.img_size, c.patch_size,
                      W.f32("patch_embed.proj.weight_folded"), W.f32("patch_embed.proj.bias"), C,
                      c.patch_norm ? W.f32("patch_embed.norm.weight") : nullptr,
                      c.patch_norm ? W.f32("patch_embed.norm.bias") : nullptr,
                      c.ape ? W.f32("absolute_pos_embed") : nullptr, x,
                      to_skip ? skip_right(plan_[si + 1].skip, C) : xt, act_, s, to_skip ? 2 * C : 0, embed_pairs_,
                      tf32_round());
          mark("patch_embed");
          xt_valid = !to_skip;
          if (to_skip) ++si;  // the SaveSkip is done
          break;
        }
        case OpKind::SaveSkip:
          // Written by the next block's norm1 (or flushed before any other consumer).
          pending_skip = skip_right(st.skip, C);
          pending_rows = rows;
          pending_c = C;
          break;
        case OpKind::SwinBlock: {
          const int64_t windows = n * (st.res / st.window) * (st.res / st.window);
          if (!fused_.empty() && fused_[si] && windows >= fused_policy_.at(C)) {
            flush_skip();
            // A LayerNorm straight after (the decoder's norm_up): the one-warpgroup kernel and the pair form
            // write its output into xt instead of x (SWINRT_NARROW_NORM=0: not), and that step is done.
            const Step* norm = narrow_norm_ && si + 1 < plan_.size() && plan_[si + 1].op == OpKind::LayerNorm &&
                                       plan_[si + 1].dim == C && plan_[si + 1].res == st.res
                                   ? &plan_[si + 1]
                                   : nullptr;
            const std::string label = swin_block(
                x, act_, static_cast<int>(n), st.res, C, st.heads, st.window, st.shift, st.scale, *fused_[si], s,
                norm ? W.f32(norm->param("weight")) : nullptr, norm ? W.f32(norm->param("bias")) : nullptr,
                norm ? xt : nullptr);
            mark(st.param(label.c_str()));
            xt_valid = false;
            if (norm && label.size() > 5 && label.compare(label.size() - 5, 5, "+norm") == 0) {
              xt_valid = true;  // xt holds the LayerNorm's output; x is not needed after it
              ++si;
            }
            break;
          }
          if (grid_ok_[si] && rows <= grid_rows_) {
            flush_skip();
            const SwinBlockGridWeights gw{W.f32(st.param("norm1.weight")),
                                          W.f32(st.param("norm1.bias")),
                                          W.f32(st.param("norm2.weight")),
                                          W.f32(st.param("norm2.bias")),
                                          W.get(st.param("attn.qkv.weight")),
                                          W.get(st.param("attn.proj.weight")),
                                          W.get(st.param("mlp.fc1.weight")),
                                          W.get(st.param("mlp.fc2.weight")),
                                          W.opt(st.param("attn.qkv.bias")),
                                          W.get(st.param("mlp.fc1.bias")),
                                          W.f32(st.param("attn.proj.bias")),
                                          W.f32(st.param("mlp.fc2.bias")),
                                          static_cast<const __half*>(bias64_[si])};
            swin_block_grid(x, act_, static_cast<int>(n), st.res, C, st.heads, st.window, st.shift, st.scale, gw,
                            cx.qkv, cx.qkv_bytes, cx.att, cx.hid, s);
            mark(st.param("grid"));
            xt_valid = false;
            break;
          }
          if (!norm1_ready) {
            layernorm(x, DT::F32, rows, C, Gather::Rows, st.res, 1, W.f32(st.param("norm1.weight")),
                      W.f32(st.param("norm1.bias")), cx.t, act_, pending_skip, s, 0, 2 * C, tf32_round());
            pending_skip = nullptr;
            mark(st.param("norm1"));
          }
          norm1_ready = false;
          linear(*cx.gemm, cx.t, W.get(st.param("attn.qkv.weight")), C, act_, rows, C, 3 * C,
                 W.opt(st.param("attn.qkv.bias")), cx.qkv, act_, false, s);
          mark(st.param("attn.qkv"));
          window_attention(cx.qkv, act_, static_cast<int>(n), st.res, C, st.heads, st.window, st.shift, st.scale,
                           W.f32(st.param("attn.relative_position_bias")), bias64_[si], wtable_[si], cx.att, s,
                           attn_heads_, tf32_round());
          mark(st.param("attn.core"));
          if (mlp_w_[si] && rows >= mlp_rows_ && mlp_proj_) {
            // ... and the next block's LayerNorm 1 where that block follows straight on, op by op.
            const Step* next = mlp_norm1_ && si + 1 < plan_.size() && plan_[si + 1].dim == C && op_by_op(si + 1)
                                   ? &plan_[si + 1]
                                   : nullptr;
            mlp_fused(x, act_, rows, C, W.f32(st.param("norm2.weight")), W.f32(st.param("norm2.bias")), mlp_w_[si],
                      W.get(st.param("mlp.fc1.bias")), W.f32(st.param("mlp.fc2.bias")), s, cx.att,
                      W.f32(st.param("attn.proj.bias")), next ? W.f32(next->param("norm1.weight")) : nullptr,
                      next ? W.f32(next->param("norm1.bias")) : nullptr, next ? cx.t : nullptr);
            mark(st.param(next ? "proj+norm2+mlp+next.norm1" : "proj+norm2+mlp"));
            norm1_ready = next != nullptr;
            xt_valid = false;
            break;
          }
          linear(*cx.gemm, cx.att, W.get(st.param("attn.proj.weight")), C, act_, rows, C, C,
                 W.get(st.param("attn.proj.bias")), x, DT::F32, true, s);
          mark(st.param("attn.proj"));
          if (mlp_w_[si] && rows >= mlp_rows_) {
            mlp_fused(x, act_, rows, C, W.f32(st.param("norm2.weight")), W.f32(st.param("norm2.bias")), mlp_w_[si],
                      W.get(st.param("mlp.fc1.bias")), W.f32(st.param("mlp.fc2.bias")), s);
            mark(st.param("norm2+mlp"));
            xt_valid = false;
            break;
          }
          layernorm(x, DT::F32, rows, C, Gather::Rows, st.res, 1, W.f32(st.param("norm2.weight")),
                    W.f32(st.param("norm2.bias")), cx.t, act_, nullptr, s, 0, 0, tf32_round());
          mark(st.param("norm2"));
          // FP16/BF16: GELU in the GEMM epilogue (tanh form); FP32/TF32: the exact erf kernel.
          const bool fused_gelu = act_ != DT::F32;
          linear(*cx.gemm, cx.t, W.get(st.param("mlp.fc1.weight")), C, act_, rows, C, st.hidden,
                 W.get(st.param("mlp.fc1.bias")), cx.hid, act_, false, s, fused_gelu);
          mark(st.param("mlp.fc1"));
          if (!fused_gelu) {
            gelu(cx.hid, act_, rows * st.hidden, s, tf32_round());
            mark(st.param("mlp.act"));
          }
          linear(*cx.gemm, cx.hid, W.get(st.param("mlp.fc2.weight")), st.hidden, act_, rows, st.hidden, C,
                 W.get(st.param("mlp.fc2.bias")), x, DT::F32, true, s);
          mark(st.param("mlp.fc2"));
          xt_valid = false;
          break;
        }
        case OpKind::PatchMerging:
          layernorm(x, DT::F32, rows / 4, 4 * C, Gather::Merge2x2, st.res / 2, 1, W.f32(st.param("norm.weight")),
                    W.f32(st.param("norm.bias")), cx.t, act_, nullptr, s, 0, 0, tf32_round());
          mark(st.param("norm"));
          linear(*cx.gemm, cx.t, W.get(st.param("reduction.weight")), 4 * C, act_, rows / 4, 4 * C, 2 * C, nullptr,
                 x, DT::F32, false, s);
          mark(st.param("reduction"));
          xt_valid = false;
          break;
        case OpKind::LayerNorm:
          // Only xt: the steps after the encoder's and the decoder's final
          // norms (PatchExpand, FinalExpand) read xt, and x is rewritten after.
          layernorm(x, DT::F32, rows, C, Gather::Rows, st.res, 1, W.f32(st.param("weight")), W.f32(st.param("bias")),
                    xt, act_, nullptr, s, 0, 0, tf32_round());
          mark(st.name);
          xt_valid = true;
          break;
        case OpKind::PatchExpand: {
          // The next step concatenates: the LayerNorm writes straight into the
          // left half of its skip's concat rows (x itself is not needed).
          if (si + 1 >= plan_.size() || plan_[si + 1].op != OpKind::ConcatLinear)
            throw Error(fmt::format("{}: a PatchExpand not followed by a concat", st.name));
          if (expand_fused_ && !xt_valid && (expand_fused_ == 2 || (rows + 63) / 64 >= sm_count()) &&
              patch_expand_fused_supported(act_, C)) {
            // Cast, expand and LayerNorm in one kernel (x newer than xt: after a decoder layer's blocks).
            patch_expand_fused(x, act_, rows, st.res, C, W.get(st.param("expand.weight")),
                               W.f32(st.param("norm.weight")), W.f32(st.param("norm.bias")),
                               cx.skips[plan_[si + 1].skip], s, expand_fused_ == 2 ? 8 : 0);
            mark(st.param("expand+norm"));
            xt_valid = false;
            break;
          }
          ensure_xt(rows * C);
          linear(*cx.gemm, xt, W.get(st.param("expand.weight")), C, act_, rows, C, 2 * C, nullptr, cx.tmp, act_,
                 false, s);
          mark(st.param("expand"));
          layernorm(cx.tmp, act_, rows * 4, C / 2, Gather::Shuffle, st.res * 2, 2, W.f32(st.param("norm.weight")),
                    W.f32(st.param("norm.bias")), cx.skips[plan_[si + 1].skip], act_, nullptr, s, C, 0, tf32_round());
          mark(st.param("norm"));
          xt_valid = false;
          break;
        }
        case OpKind::ConcatLinear:
          // Linear(cat(x, skip)): one GEMM over the concat rows PatchExpand
          // and SaveSkip filled, K = 2C.
          linear(*cx.gemm, cx.skips[st.skip], W.get(st.param("weight")), 2 * C, act_, rows, 2 * C, C,
                 W.get(st.param("bias")), x, DT::F32, false, s);
          mark(st.name);
          xt_valid = false;
          break;
        case OpKind::FinalExpand: {
          ensure_xt(rows * C);
          if (fused_head_) {
            if (act_ == DT::F32)
              final_expand_head_f32(static_cast<const float*>(xt), rows, st.res, C, W.f32("up.expand.weight"),
                                    W.f32("up.norm.weight"), W.f32("up.norm.bias"), W.f32("output.weight"),
                                    c.num_classes, static_cast<float*>(cx.logits), s);
            else
              final_expand_head(xt, act_, rows, st.res, C, W.get("up.expand.weight"), c.num_classes, head_frags_.ptr,
                                static_cast<float*>(cx.logits), s, head_wg_);
            mark(head_wg_ ? "up.expand+norm+output.wgmma" : "up.expand+norm+output");
            break;
          }
          for (int64_t r0 = 0; r0 < rows; r0 += cx.fin_rows) {
            const int64_t r = std::min(cx.fin_rows, rows - r0);
            linear(*cx.gemm, static_cast<const char*>(xt) + r0 * C * dt_size(act_), W.get("up.expand.weight"), C,
                   act_, r, C, 16 * C, nullptr, cx.fin, act_, false, s);
            mark("up.expand");
            final_norm_head(cx.fin, act_, r0, r, st.res, C, W.f32("up.norm.weight"), W.f32("up.norm.bias"),
                            W.f32("output.weight"), c.num_classes, head_frags_.ptr,
                            static_cast<float*>(cx.logits), s);
            mark("up.norm+output");
          }
          break;
        }
      }
    }
    flush_skip();  // (a plan never ends in a SaveSkip)
    if (l2_setaside_) l2_window(0, cudaAccessPropertyNormal);
  }

  std::vector<Step> plan_;
  Precision precision_;
  DT act_;
  bool fused_head_ = false;
  bool head_wg_ = false;  // the fused head by warpgroup (final_expand_head's wgmma kernel)
  int expand_fused_ = 0;  // PatchExpand by patch_expand_fused: 0 never, 1 where the batch fills the SMs, 2 always
                          // (on at most 8 thread blocks)
  bool mlp_proj_ = true;   // mlp_fused takes attn.proj where it runs (SWINRT_MLP_PROJ)
  bool mlp_norm1_ = true;  // ... and the next block's norm1 (SWINRT_MLP_NORM1)
  bool narrow_norm_ = true;  // the one-warpgroup block and the pair form write the LayerNorm after them (SWINRT_NARROW_NORM)
  int attn_heads_ = 1;  // window_attention's heads_mode (SWINRT_ATTN_HEADS)
  size_t l2_setaside_ = 0;    // bytes of L2 for persisting lines (0: no access policy windows)
  size_t l2_window_max_ = 0;  // the device's largest access policy window
  int pdl_mode_ = 1;       // programmatic edges at batches up to pdl_batch_ (SWINRT_PDL; 0: none)
  int64_t pdl_batch_ = 2;   // session 24: batch 1 -10%, 2 -5%, 4 +5% (CUTLASS's 64-row tiles slower there)
  bool pdl_explicit_ = false;  // SWINRT_PDL given: edges at every precision (else only with the CUTLASS GEMMs)
  bool own_gemm_ = true;   // gemm_sm90.cu's CUTLASS GEMMs at those batches (SWINRT_OWN_GEMM)
  bool embed_pairs_ = true;  // patch_embed's two-token kernel where it applies (SWINRT_EMBED_PAIRS=0: not)
  // Slices per x4-expand chunk (SWINRT_FIN_SLICES): on the H100 2 is as fast
  // as 8 and holds 55 MiB less at batch 128; 1 is 3% slower.
  int64_t fin_slices_ = 2;
  int lanes_ = kLanes;
  int64_t lanes_from_ = kLanesFrom;
  int64_t max_batch_;
  int device_ = 0;
  std::string name_;
  std::unique_ptr<DeviceWeights> weights_;
  DeviceMemory fused_arena_;                            // fragment-ordered GEMM weights of fused blocks
  DeviceMemory head_frags_;                             // tensor-core head fragments, or none
  std::vector<std::optional<SwinBlockWeights>> fused_;  // per plan step; empty: none fused
  std::map<int, int64_t> fused_policy_;  // channels -> fewest windows to fuse
  DeviceMemory mlp_arena_;                // fc1 and fc2 weights arranged for mlp_fused
  std::vector<const void*> mlp_w_;        // per plan step: its arranged MLP weights, or null
  int64_t mlp_rows_ = 0;                  // fewest token rows mlp_fused runs at
  DeviceMemory bias64_arena_;
  std::vector<const void*> bias64_;  // per plan step: its padded attention bias (pad_attention_bias), or null
  std::vector<const void*> wtable_;   // per plan step: its attention windows' table (window_table), or null
  std::vector<bool> grid_ok_;  // per plan step: swin_block_grid takes it
  int64_t grid_rows_ = 0;      // most token rows a grid-synchronised block runs at
  GpuTarget target_;
  GemmAlgoTable algos_;  // written only by autotune, with no run in flight
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Context>> pool_;
  std::vector<Context*> free_;
};

}  // namespace

bool cuda_available(std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    if (why) *why = fmt::format("no usable CUDA GPU ({})", err != cudaSuccess ? cudaGetErrorString(err) : "none found");
    return false;
  }
  int dev = 0, major = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (major < 9) {
    if (why) *why = fmt::format("GPU {} has compute capability {}.x; this swinrt is built for sm_90 (Hopper) and newer", dev, major);
    return false;
  }
  return true;
}

std::unique_ptr<Engine> make_cuda_engine(const Weights& weights, const EngineOptions& options) {
  std::string why;
  if (!cuda_available(&why)) throw Error(why);
  return std::make_unique<CudaEngine>(weights.config(), make_weight_image(weights, options.precision),
                                      weights.source(), options, std::vector<GemmChoice>{});
}

std::unique_ptr<Engine> make_cuda_engine(const PlanFile& plan, const EngineOptions& options) {
  std::string why;
  if (!cuda_available(&why)) throw Error(why);
  int device = 0;
  SWINRT_CUDA_CHECK(cudaGetDevice(&device));
  const GpuTarget here = CudaEngine::current_gpu(device);
  std::vector<GemmChoice> chosen = plan.gemms;
  if (!plan.gpu.arch.empty()) {
    if (plan.gpu.arch != here.arch)
      throw Error(fmt::format("{}: the plan was built for {} ({}); this GPU is {} ({}): rebuild it here with "
                              "`swinrt build`", plan.source, plan.gpu.arch, plan.gpu.name, here.arch, here.name));
    if (plan.gpu.cublaslt_version != here.cublaslt_version) {
      fmt::print(stderr, "swinrt: {}: tuned with cuBLASLt {}, running {}: using heuristic GEMM algorithms\n",
                 plan.source, plan.gpu.cublaslt_version, here.cublaslt_version);
      chosen.clear();
    }
  }
  EngineOptions o = options;
  o.precision = plan.precision;
  o.max_batch = plan.max_batch;
  return std::make_unique<CudaEngine>(plan.config, plan.image, plan.source, o, chosen);
}

}  // namespace swinrt
