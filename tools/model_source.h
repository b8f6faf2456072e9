// The model a command runs: weights (.safetensors), an ONNX export (.onnx)
// or a built plan (.plan), given as --weights, --onnx or --plan; a plan is
// also recognised by its contents, and an ONNX file by its name, when passed
// as --weights.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "swinrt/engine.h"
#include "swinrt/plan_file.h"
#include "swinrt/weights.h"

namespace swinrt::cli {

struct ModelSource {
  std::string path;
  std::string format;  // "safetensors", "ONNX" or "plan"
  std::optional<Weights> weights;
  std::optional<PlanFile> plan;
  double load_ms = 0.0;

  const Config& config() const { return plan ? plan->config : weights->config(); }
  // An engine of this model. With a plan the precision is the plan's; a
  // --precision the user gave (`precision_given`) must agree with it.
  std::unique_ptr<Engine> engine(EngineOptions o, bool precision_given) const;
};

// The model options of a command; exactly one is given.
struct ModelArgs {
  std::string weights, onnx, plan;
};
// Registers --weights, --onnx and --plan (alias --loadEngine) on `app`.
void add_model_options(CLI::App* app, ModelArgs& m);
ModelSource load_model(const ModelArgs& m);
bool is_plan_file(const std::string& path);

}  // namespace swinrt::cli
