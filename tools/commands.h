// Subcommands of the swinrt command. Each registers its options on the app
// and returns the action to run when that subcommand was parsed; an action
// returns the exit code or throws swinrt::Error (exit 1).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace swinrt::cli {

using Action = std::function<int()>;

// The options every engine-running subcommand shares.
inline CLI::Option* add_device_option(CLI::App* app, std::string& device) {
  return app->add_option("--device", device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "gpu", "auto"}));
}
inline const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> names{"fp32", "tf32", "fp16", "bf16"};
  return names;
}
inline CLI::Option* add_precision_option(CLI::App* app, std::string& precision) {
  return app->add_option("--precision", precision, "fp32, tf32, fp16 or bf16")->check(CLI::IsMember(precision_names()));
}

Action add_run(CLI::App& app);
Action add_info(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_metrics(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_build(CLI::App& app);

}  // namespace swinrt::cli
