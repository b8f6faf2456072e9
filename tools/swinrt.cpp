// The swinrt command (../shared/CLI.md is the contract). Exit codes: 0
// success, 1 runtime error (one message on stderr naming the file and what was
// expected), 2 usage error. Each subcommand lives in tools/cmd_<name>.cpp.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <new>
#include <vector>

#include "commands.h"
#include "swinrt/error.h"

int main(int argc, char** argv) {
  CLI::App app{"swinrt: Swin-Unet inference runtime"};
  app.require_subcommand(1);
  const std::vector<swinrt::cli::Action> actions = {swinrt::cli::add_run(app), swinrt::cli::add_info(app),
                                                     swinrt::cli::add_bench(app), swinrt::cli::add_metrics(app),
                                                     swinrt::cli::add_eval(app), swinrt::cli::add_build(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (const auto& act : actions)
      if (int rc = act(); rc >= 0) return rc;
  } catch (const swinrt::Error& e) {
    fmt::print(stderr, "swinrt: error: {}\n", e.what());
    return 1;
  } catch (const CLI::Error& e) {  // a usage error found after parsing
    fmt::print(stderr, "swinrt: usage error: {}\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "swinrt: error: out of host memory\n");
    return 1;
  } catch (const std::exception& e) {  // a defect: every expected failure is a swinrt::Error
    fmt::print(stderr, "swinrt: internal error (please report it): {}\n", swinrt::printable_message(e.what()));
    return 1;
  }
  return 2;
}
