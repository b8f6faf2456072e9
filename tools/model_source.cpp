#include "model_source.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "commands.h"
#include "swinrt/error.h"
#include "swinrt/onnx.h"

namespace swinrt::cli {

bool is_plan_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f && std::memcmp(magic, "SWRTPLAN", 8) == 0;
}

void add_model_options(CLI::App* app, ModelArgs& m) {
  CLI::Option_group* g = app->add_option_group("model", "the model, exactly one of");
  g->add_option("--weights", m.weights, "weights (.safetensors from swinrt-convert; a .onnx or .plan is recognised)");
  g->add_option("--onnx", m.onnx, "a Swin-Unet exported to ONNX (swinrt-export, torch.onnx.export)");
  g->add_option("--plan,--loadEngine", m.plan, "a plan built by `swinrt build`");
  g->require_option(1);
}

ModelSource load_model(const ModelArgs& a) {
  ModelSource m;
  m.path = !a.plan.empty() ? a.plan : !a.onnx.empty() ? a.onnx : a.weights;
  const auto t0 = std::chrono::steady_clock::now();
  if (!a.plan.empty() || (a.onnx.empty() && is_plan_file(a.weights))) {
    m.plan = PlanFile::load(m.path);
    m.format = "plan";
  } else if (!a.onnx.empty() || is_onnx_path(a.weights)) {
    m.weights = load_onnx(m.path);
    m.format = "ONNX";
  } else {
    m.weights = Weights::load(m.path);
    m.format = "safetensors";
  }
  m.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

std::unique_ptr<Engine> ModelSource::engine(EngineOptions o, bool precision_given) const {
  if (!plan) return Engine::create(*weights, o);
  if (precision_given && o.precision != plan->precision)
    throw Error(fmt::format("{}: the plan was built for {}; --precision {} differs (build another plan with "
                            "`swinrt build --precision {}`)", path, precision_name(plan->precision),
                            precision_name(o.precision), precision_name(o.precision)));
  return Engine::create(*plan, o);
}

}  // namespace swinrt::cli
