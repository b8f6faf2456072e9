// Subcommands of the swinrt command. Each registers its options on the app
// and returns the action to run when that subcommand was parsed; an action
// returns the exit code or throws swinrt::Error (exit 1).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace swinrt::cli {

using Action = std::function<int()>;

Action add_run(CLI::App& app);
Action add_info(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_metrics(CLI::App& app);
Action add_eval(CLI::App& app);

}  // namespace swinrt::cli
