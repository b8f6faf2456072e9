// Engine creation and device selection.
#include "swinrt/engine.h"

#include <fmt/format.h>

#include <functional>

#include "../cpu/ops.h"
#include "swinrt/error.h"
#include "swinrt/plan_file.h"

namespace swinrt {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda" || s == "gpu") return Device::Cuda;
  if (s == "auto") return Device::Auto;
  throw Error(fmt::format("unknown device '{}' (expected cpu, cuda or auto)", s));
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::FP32;
  if (s == "tf32") return Precision::TF32;
  if (s == "fp16") return Precision::FP16;
  if (s == "bf16") return Precision::BF16;
  throw Error(fmt::format("unknown precision '{}' (expected fp32, tf32, fp16 or bf16)", s));
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

namespace {

// --device auto: the CUDA engine where one can be made (a GPU is present and
// creating the engine succeeds), else the CPU's.
std::unique_ptr<Engine> cuda_else_cpu(const std::function<std::unique_ptr<Engine>()>& cuda,
                                      const std::function<std::unique_ptr<Engine>()>& cpu) {
  std::string why;
  if (cuda_available(&why)) {
    try {
      return cuda();
    } catch (const Error& e) {
      fmt::print(stderr, "swinrt: CUDA engine unavailable ({}); using the CPU\n", e.what());
    }
  }
  return cpu();
}

}  // namespace

std::unique_ptr<Engine> Engine::create(const Weights& weights, const EngineOptions& options) {
  switch (options.device) {
    case Device::Cpu: return make_cpu_engine(weights, options);
    case Device::Cuda: return make_cuda_engine(weights, options);
    case Device::Auto:
      return cuda_else_cpu([&] { return make_cuda_engine(weights, options); },
                           [&] {
                             EngineOptions cpu = options;
                             if (cpu.precision != Precision::FP32 && cpu.precision != Precision::TF32) {
                               fmt::print(stderr, "swinrt: the CPU backend runs fp32, not {}\n",
                                          precision_name(cpu.precision));
                               cpu.precision = Precision::FP32;
                             }
                             return make_cpu_engine(weights, cpu);
                           });
  }
  throw Error("unknown device");
}

std::unique_ptr<Engine> Engine::create(const PlanFile& plan, const EngineOptions& options) {
  EngineOptions o = options;
  o.precision = plan.precision;
  o.max_batch = plan.max_batch;
  auto on_cpu = [&]() -> std::unique_ptr<Engine> {
    auto w = std::make_shared<const Weights>(plan.to_weights());
    EngineOptions cpu = o;
    if (cpu.precision == Precision::FP16 || cpu.precision == Precision::BF16)
      fmt::print(stderr, "swinrt: the CPU backend runs the {} plan's weights in fp32\n", precision_name(cpu.precision));
    cpu.precision = Precision::FP32;
    auto e = make_cpu_engine(*w, cpu);
    e->owned_weights_ = std::move(w);
    return e;
  };
  switch (options.device) {
    case Device::Cpu: return on_cpu();
    case Device::Cuda: return make_cuda_engine(plan, o);
    case Device::Auto: return cuda_else_cpu([&] { return make_cuda_engine(plan, o); }, on_cpu);
  }
  throw Error("unknown device");
}

void Engine::autotune(const std::vector<int64_t>&, bool) { throw Error("GEMM autotuning needs the CUDA backend"); }

void Engine::run_labels(const float* input, int64_t batch, int32_t* labels) {
  const int64_t pixels = int64_t(config_.img_size) * config_.img_size;
  std::vector<float> logits(static_cast<size_t>(batch * config_.num_classes * pixels));
  run(input, batch, logits.data());
  argmax_labels(logits.data(), batch, config_.num_classes, pixels, labels);
}

std::vector<std::pair<std::string, double>> Engine::profile(int64_t, int) {
  throw Error("--profile times CUDA kernels; it needs --device cuda");
}

std::vector<Engine::TimelineRow> Engine::timeline(int64_t, int) {
  throw Error("--timeline traces CUDA kernels; it needs --device cuda");
}

void argmax_labels(const float* logits, int64_t batch, int classes, int64_t pixels, int32_t* labels) {
  cpu::argmax_channels(logits, static_cast<int>(batch), classes, pixels, labels);
}

#ifndef SWINRT_WITH_CUDA
bool cuda_available(std::string* why) {
  if (why) *why = "this swinrt was built without CUDA";
  return false;
}
std::unique_ptr<Engine> make_cuda_engine(const Weights&, const EngineOptions&) {
  throw Error("this swinrt was built without CUDA (rebuild where nvcc is found, or use --device cpu)");
}
std::unique_ptr<Engine> make_cuda_engine(const PlanFile&, const EngineOptions&) {
  throw Error("this swinrt was built without CUDA (rebuild where nvcc is found, or use --device cpu)");
}
#endif

}  // namespace swinrt
