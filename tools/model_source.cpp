#include "model_source.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "swinrt/error.h"

namespace swinrt::cli {

bool is_plan_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f && std::memcmp(magic, "SWRTPLAN", 8) == 0;
}

void add_model_options(CLI::App* app, std::string& weights, std::string& plan) {
  auto* w = app->add_option("--weights", weights, "weights (.safetensors from swinrt-convert)");
  auto* p = app->add_option("--plan,--loadEngine", plan, "a plan built by `swinrt build`")->excludes(w);
  app->callback([app, w, p] {
    if (w->count() + p->count() != 1) throw CLI::RequiredError("--weights or --plan");
    (void)app;
  });
}

ModelSource load_model(const std::string& weights, const std::string& plan) {
  ModelSource m;
  m.path = plan.empty() ? weights : plan;
  const auto t0 = std::chrono::steady_clock::now();
  if (!plan.empty() || is_plan_file(weights)) m.plan = PlanFile::load(m.path);
  else m.weights = Weights::load(m.path);
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
