// The model a command runs: weights (.safetensors) or a built plan (.plan),
// given as --weights or --plan; a plan is also recognised by its contents
// when passed as --weights.
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
  std::optional<Weights> weights;
  std::optional<PlanFile> plan;
  double load_ms = 0.0;

  const Config& config() const { return plan ? plan->config : weights->config(); }
  // An engine of this model. With a plan the precision is the plan's; a
  // --precision the user gave (`precision_given`) must agree with it.
  std::unique_ptr<Engine> engine(EngineOptions o, bool precision_given) const;
};

// Registers --weights and --plan on `app`; exactly one is required.
void add_model_options(CLI::App* app, std::string& weights, std::string& plan);
ModelSource load_model(const std::string& weights, const std::string& plan);
bool is_plan_file(const std::string& path);

}  // namespace swinrt::cli
