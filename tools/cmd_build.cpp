// swinrt build: weights or an ONNX export -> a plan file (include/swinrt/plan_file.h), with the
// GEMM algorithms autotuned on the GPU when one is present. trtexec's flag
// names are accepted as aliases (--saveEngine, --fp16, --bf16, --noTF32).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <memory>

#include "commands.h"
#include "model_source.h"
#include "pipeline/metrics.h"
#include "swinrt/error.h"
#include "swinrt/plan_file.h"

namespace swinrt::cli {

namespace {

struct BuildArgs {
  ModelArgs model;
  std::string output, device = "auto", precision = "fp32";
  bool fp16 = false, bf16 = false, no_tf32 = false, no_tune = false, tune_wide = false;
  int max_batch = 32;
  std::vector<int> tune_batches;
};

double median_ms(Engine& e, int64_t batch) {
  std::vector<double> ms = e.time_forward(batch, 10, 50);
  return percentile_linear(ms, 50.0);
}

int build(const BuildArgs& a, bool precision_given) {
  namespace fs = std::filesystem;
  using clock = std::chrono::steady_clock;
  auto since = [](clock::time_point t) { return std::chrono::duration<double, std::milli>(clock::now() - t).count(); };
  if (int(a.fp16) + int(a.bf16) + int(a.no_tf32) + int(precision_given) > 1)
    throw CLI::ValidationError("give one of --precision, --fp16, --bf16, --noTF32");
  Precision p = parse_precision(a.precision);
  if (a.fp16) p = Precision::FP16;
  if (a.bf16) p = Precision::BF16;
  if (a.no_tf32) p = Precision::FP32;
  for (int b : a.tune_batches)
    if (b > a.max_batch) throw CLI::ValidationError(fmt::format("--tune-batch {} exceeds --max-batch {}", b, a.max_batch));
  const fs::path out(a.output);
  if (out.has_parent_path() && !fs::is_directory(out.parent_path()))
    throw Error(fmt::format("-o {}: the directory {} does not exist", a.output, out.parent_path().string()));

  const auto t0 = clock::now();
  const ModelSource m = load_model(a.model);
  if (m.plan) throw Error(fmt::format("{}: is already a plan; build takes weights or an ONNX file", m.path));
  PlanFile plan = PlanFile::from_weights(*m.weights, p, a.max_batch);
  fmt::print("model       {} ({}, {:.1f} M parameters, read in {:.0f} ms)\n", m.path, m.format,
             m.weights->parameter_count() / 1e6, m.load_ms);
  fmt::print("precision   {}   max batch {}   weights {:.1f} MiB\n", precision_name(p), a.max_batch,
             plan.image.bytes.size() / 1048576.0);

  const Device dev = parse_device(a.device);
  std::string why;
  const bool gpu = dev != Device::Cpu && cuda_available(&why);
  if (dev == Device::Cuda && !gpu) throw Error(why);
  if (gpu) {
    EngineOptions o;
    o.device = Device::Cuda;
    auto engine = Engine::create(plan, o);
    plan.gpu = engine->gpu_target();
    fmt::print("gpu         {} ({}, cuBLASLt {})\n", plan.gpu.name, plan.gpu.arch, plan.gpu.cublaslt_version);
    if (!a.no_tune) {
      std::vector<int64_t> batches(a.tune_batches.begin(), a.tune_batches.end());
      // Default: batch 8 and up. Below that the GEMMs are a few microseconds,
      // and algorithms timed alone picked slower ones for the graph (H100:
      // +1.7% at batch 1 when batches 1..4 were tuned; docs/PERFORMANCE.md),
      // so small batches keep cuBLASLt's heuristic.
      if (batches.empty()) {
        for (int64_t b = 8; b < a.max_batch; b *= 2) batches.push_back(b);
        batches.push_back(a.max_batch);
      }
      std::sort(batches.begin(), batches.end());
      batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
      const int64_t lo = 1, hi = batches.back();
      const double before_lo = median_ms(*engine, lo), before_hi = median_ms(*engine, hi);
      const auto tt = clock::now();
      engine->autotune(batches, a.tune_wide);
      plan.gemms = engine->gemm_choices();
      const double tune_s = since(tt) / 1000;
      const double after_lo = median_ms(*engine, lo), after_hi = median_ms(*engine, hi);
      fmt::print("autotune    {} GEMM shapes over batch sizes {} in {:.1f} s{}\n", plan.gemms.size(),
                 fmt::join(batches, ","), tune_s, a.tune_wide ? " (wide)" : "");
      fmt::print("forward     batch {}: {:.3f} ms heuristic -> {:.3f} ms tuned; batch {}: {:.3f} -> {:.3f} ms\n", lo,
                 before_lo, after_lo, hi, before_hi, after_hi);
    }
  } else {
    fmt::print("gpu         none ({}): a portable plan, GEMM algorithms chosen when it is loaded\n",
               dev == Device::Cpu ? "--device cpu" : why);
  }
  plan.save(a.output);
  const auto tl = clock::now();
  const PlanFile check = PlanFile::load(a.output);
  const double load_ms = since(tl);
  fmt::print("wrote       {} ({:.1f} MiB) in {:.1f} s; loading it back and checking: {:.1f} ms\n", a.output,
             fs::file_size(a.output) / 1048576.0, since(t0) / 1000, load_ms);
  return 0;
}

}  // namespace

Action add_build(CLI::App& app) {
  auto a = std::make_shared<BuildArgs>();
  CLI::App* b = app.add_subcommand("build", "build a plan file: weights arranged for one precision, GEMMs tuned");
  CLI::Option_group* g = b->add_option_group("model", "the model, exactly one of");
  g->add_option("--weights", a->model.weights, "weights (.safetensors; a .onnx is recognised by its name)");
  g->add_option("--onnx", a->model.onnx, "a Swin-Unet exported to ONNX (trtexec's --onnx)");
  g->require_option(1);
  b->add_option("-o,--output,--saveEngine", a->output, "the plan file to write")->required();
  auto* prec = add_precision_option(b, a->precision);
  b->add_flag("--fp16", a->fp16, "= --precision fp16 (trtexec)");
  b->add_flag("--bf16", a->bf16, "= --precision bf16 (trtexec)");
  b->add_flag("--noTF32", a->no_tf32, "= --precision fp32, strict FP32 (trtexec)");
  b->add_option("--max-batch,--maxBatch", a->max_batch, "largest batch the plan's engines take")
      ->check(CLI::Range(1, 4096));
  add_device_option(b, a->device);
  auto* no_tune = b->add_flag("--no-tune", a->no_tune, "skip GEMM autotuning (heuristic algorithms)");
  b->add_flag("--tune-wide", a->tune_wide,
              "tune over every tile / stages / cluster configuration cuBLASLt accepts, not only its heuristic's 8 "
              "candidates (minutes, not seconds)")
      ->excludes(no_tune);
  b->add_option("--tune-batch", a->tune_batches, "batch sizes to tune (default 8,16,32,..,max batch)")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  return [a, b, prec]() { return b->parsed() ? build(*a, prec->count() > 0) : -1; };
}

}  // namespace swinrt::cli
