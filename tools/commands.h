// Subcommands of the swinrt command. Each registers its options on the app
// and returns the action to run when that subcommand was parsed; an action
// returns the exit code or throws swinrt::Error (exit 1).
#pragma once

#include <CLI/CLI.hpp>
#include <cctype>
#include <functional>
#include <string>
#include <vector>

#include "swinrt/onnx.h"
#include "swinrt/weights.h"

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

// Model files: a name ending in .onnx (any case) is an ONNX export, anything
// else a swinrt .safetensors.
inline bool is_onnx_path(const std::string& path) {
  if (path.size() < 5) return false;
  std::string ext = path.substr(path.size() - 5);
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".onnx";
}
inline Weights load_model_file(const std::string& path) {
  return is_onnx_path(path) ? load_onnx(path) : Weights::load(path);
}

Action add_run(CLI::App& app);
Action add_info(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_metrics(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_build(CLI::App& app);

}  // namespace swinrt::cli
