// Engine: runs the layer plan of one model on one device.
//
//   auto w = swinrt::Weights::load("model.safetensors");
//   auto e = swinrt::Engine::create(w, {.device = swinrt::Device::Auto});
//   e->run(slices, batch, logits);   // [B, S, S] float -> [B, classes, S, S]
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "swinrt/config.h"
#include "swinrt/weights.h"

namespace swinrt {

enum class Device { Cpu, Cuda, Auto };
enum class Precision { FP32, TF32, FP16, BF16 };

Device parse_device(const std::string& s);        // "cpu" | "cuda" | "auto"
Precision parse_precision(const std::string& s);  // "fp32" | "tf32" | "fp16" | "bf16"
const char* precision_name(Precision p);

// A cuBLASLt algorithm chosen for one GEMM shape (src/cuda/linear.cu names the
// key), kept as the library's opaque 64-byte cublasLtMatmulAlgo_t.
struct GemmChoice {
  std::string key;
  std::array<uint64_t, 8> algo{};
  double ms = 0.0;  // its measured time when it was chosen
};

// The GPU an engine runs on (or a plan was tuned on); arch is empty for none.
struct GpuTarget {
  std::string arch;  // "sm_90"
  std::string name;  // "NVIDIA H100 80GB HBM3"
  int cublaslt_version = 0;
};

class PlanFile;

struct EngineOptions {
  Device device = Device::Auto;
  Precision precision = Precision::FP32;
  int max_batch = 8;  // largest batch one run() takes; larger inputs are chunked
};

class Engine {
 public:
  // Auto picks CUDA when a usable GPU is present, else the CPU; a CUDA engine
  // that cannot be made (no GPU, old architecture, out of memory) throws
  // swinrt::Error, and Auto then falls back to the CPU. `weights` must
  // outlive the engine (the CPU backend reads it in place).
  static std::unique_ptr<Engine> create(const Weights& weights, const EngineOptions& options);
  // From a built plan: its precision, max_batch and tuned GEMM algorithms;
  // options.precision and max_batch are ignored. A CUDA engine refuses a
  // plan tuned for another GPU architecture; the CPU backend runs the plan's
  // weights in FP32. The plan need not outlive the engine.
  static std::unique_ptr<Engine> create(const PlanFile& plan, const EngineOptions& options);
  virtual ~Engine() = default;

  const Config& config() const { return config_; }
  virtual std::string device_name() const = 0;
  virtual Precision precision() const = 0;

  // input: `batch` single-channel slices [batch, img, img]; logits:
  // [batch, num_classes, img, img]. Any batch size; chunked by max_batch.
  virtual void run(const float* input, int64_t batch, float* logits) = 0;
  // As run(), but only the argmax labels [batch, img, img] come back (on the
  // GPU the logits never leave the device).
  virtual void run_labels(const float* input, int64_t batch, int32_t* labels);

  // Benchmark support: times `iterations` forwards of `batch` slices already
  // resident on the device (CUDA: one CUDA-graph replay each, timed with CUDA
  // events), after `warmup` untimed ones; returns milliseconds per forward.
  virtual std::vector<double> time_forward(int64_t batch, int warmup, int iterations) = 0;
  // Per-kernel profile (like trtexec --dumpProfile): the forward of `batch`
  // slices run op by op without a graph, each launch timed with CUDA events;
  // rows are (label, mean ms) in execution order, labels as the checkpoint
  // names them ("layers.0.blocks.1.attn.qkv"). CUDA only.
  virtual std::vector<std::pair<std::string, double>> profile(int64_t batch, int iterations);
  // In-graph timeline: `iterations` CUDA-graph replays of the forward of
  // `batch` slices traced by CUPTI (the kernels run as in time_forward, with
  // their programmatic overlap), one row per kernel in launch order, each
  // figure the median over the replays. CUDA only; needs libcupti.
  struct TimelineRow {
    std::string label;   // as profile() names the launch ("" where the graph's kernels do not match its launches)
    std::string kernel;  // the kernel's name, without template arguments
    double start_us;     // from the first kernel's start
    double busy_us;      // its own start to end
    double adds_us;      // how far its end lies past every earlier kernel's end (0 if not): its share of the span
  };
  virtual std::vector<TimelineRow> timeline(int64_t batch, int iterations);
  // Bytes of device (or host, for the CPU) memory the engine holds now.
  virtual size_t memory_bytes() const = 0;

  // Times every cuBLASLt candidate of each GEMM of the forward at these batch
  // sizes and keeps the fastest (used from then on, and stored in plans by
  // `swinrt build`). The candidates are the heuristic's 8; with `wide`, also
  // the other configurations of every algorithm cuBLASLt accepts for the
  // GEMM (tile, stages, cluster shape; a few hundred a GEMM, minutes of
  // tuning). CUDA only.
  virtual void autotune(const std::vector<int64_t>& batches, bool wide = false);
  // The GEMM algorithms the engine was given or tuned; the GPU it runs on.
  virtual std::vector<GemmChoice> gemm_choices() const { return {}; }
  virtual GpuTarget gpu_target() const { return {}; }

 protected:
  explicit Engine(Config c) : config_(std::move(c)) {}
  Config config_;

 private:
  std::shared_ptr<const Weights> owned_weights_;  // weights made from a plan, for the CPU backend
};

// labels[b, p] = argmax over classes of logits[b, :, p] (first max on ties).
void argmax_labels(const float* logits, int64_t batch, int classes, int64_t pixels, int32_t* labels);

// Backends, created through Engine::create.
std::unique_ptr<Engine> make_cpu_engine(const Weights& weights, const EngineOptions& options);
std::unique_ptr<Engine> make_cuda_engine(const Weights& weights, const EngineOptions& options);
std::unique_ptr<Engine> make_cuda_engine(const PlanFile& plan, const EngineOptions& options);
bool cuda_available(std::string* why);

}  // namespace swinrt
