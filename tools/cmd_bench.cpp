// swinrt bench: latency and throughput per precision and batch size, median
// and p99 over many timed forwards (CUDA events around graph replays on the
// GPU), peak engine memory; --compare runs the PyTorch reference on the same
// device (bench/torch_peer.py) in the same invocation and prints the ratios.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "commands.h"
#include "model_source.h"
#include "pipeline/metrics.h"
#include "pipeline/npy.h"
#include "swinrt/engine.h"
#include "swinrt/error.h"
#include "swinrt/random.h"
#include "swinrt/weights.h"

#ifndef SWINRT_SOURCE_DIR
#define SWINRT_SOURCE_DIR "."
#endif

namespace swinrt::cli {

namespace {

struct BenchArgs {
  ModelArgs model;
  std::string random, device = "auto", json;
  std::vector<std::string> precisions{"fp16"};
  std::vector<int> batches{1, 8, 128};
  int warmup = 20, iterations = 100;
  std::vector<std::string> compare_modes = {"eager", "graph", "compile"};
  bool compare = false, profile = false, timeline = false;
};

// Runs the PyTorch peer and returns its JSON: {"fp16": {"1": {"eager": ms, ...}}}.
nlohmann::json run_peer(const BenchArgs& a, const Config& c) {
  const char* py = std::getenv("SWINRT_PYTHON");
  const std::string tmp = fmt::format("/tmp/swinrt_peer_{}.json", static_cast<long>(::getpid()));
  const std::string batches = fmt::format("{}", fmt::join(a.batches, ","));
  const std::string precs = fmt::format("{}", fmt::join(a.precisions, ","));
  const std::string modes = fmt::format("{}", fmt::join(a.compare_modes, ","));
  const std::string cmd = fmt::format("{} {}/bench/torch_peer.py --config-json '{}' --batch {} --precision {} "
                                      "--modes {} --warmup {} --iterations {} --json {}",
                                      py ? py : "python3", SWINRT_SOURCE_DIR, c.to_json(), batches, precs,
                                      modes, a.warmup, a.iterations, tmp);
  fmt::print(stderr, "running the PyTorch peer: {}\n", cmd);
  if (std::system(cmd.c_str()) != 0) throw Error("the PyTorch peer (bench/torch_peer.py) failed; see above");
  std::ifstream f(tmp);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  std::remove(tmp.c_str());
  if (j.is_discarded()) throw Error(fmt::format("{}: the PyTorch peer's results are not JSON", tmp));
  return j;
}

// The op a launch's label names (its last part), for the tables' sums by op.
std::string op_of(const std::string& label) {
  std::string op = label;
  // The last key found names the op (norm2+mlp, the fused MLP, over norm2).
  for (const char* key : {"norm1", "norm2", "attn.qkv", "attn.core", "attn.proj", "mlp.fc1", "mlp.act", "mlp.fc2",
                          "downsample.norm", "downsample.reduction", "expand", "up.norm+output", "cast", "x_downsample",
                          "norm2+mlp", "fused", "fused.wgmma", "grid"})
    if (label.find(key) != std::string::npos) op = key;
  if (label.rfind("concat_back_dim", 0) == 0) op = "concat_back_dim";
  if (label.rfind("layers_up", 0) == 0 && label.find(".norm") != std::string::npos && label.find("blocks") == std::string::npos)
    op = "patch_expand.norm";
  return op;
}

// Per-launch table, then the same time summed by op (the label's last part).
void print_profile(const std::vector<std::pair<std::string, double>>& rows, const std::string& prec, int batch) {
  double total = 0;
  std::map<std::string, double> by_op;
  for (const auto& [label, ms] : rows) {
    total += ms;
    by_op[op_of(label)] += ms;
  }
  fmt::print("\nprofile {} batch {} ({} launches, {:.3f} ms without graph, one stream):\n", prec, batch, rows.size(),
             total);
  for (const auto& [label, ms] : rows) fmt::print("  {:<40} {:>9.4f} ms {:>6.1f}%\n", label, ms, 100 * ms / total);
  std::vector<std::pair<double, std::string>> sorted;
  for (const auto& [op, ms] : by_op) sorted.emplace_back(ms, op);
  std::sort(sorted.rbegin(), sorted.rend());
  fmt::print("by op:\n");
  for (const auto& [ms, op] : sorted) fmt::print("  {:<40} {:>9.4f} ms {:>6.1f}%\n", op, ms, 100 * ms / total);
  fmt::print("\n");
}

// The in-graph timeline: each kernel's start, own time and share of the span
// (how far its end lies past all earlier ends), then the shares summed by op.
void print_timeline(const std::vector<Engine::TimelineRow>& rows, const std::string& prec, int batch, int replays) {
  double span = 0;
  std::map<std::string, std::pair<double, int>> by_op;
  for (const auto& r : rows) {
    span += r.adds_us;
    auto& [us, count] = by_op[r.label.empty() ? r.kernel : op_of(r.label)];
    us += r.adds_us, ++count;
  }
  fmt::print("\ntimeline {} batch {} ({} kernels in the graph, span {:.1f} us: medians of {} replays traced by CUPTI)\n",
             prec, batch, rows.size(), span, replays);
  fmt::print("  {:>3} {:<40} {:<34} {:>8} {:>8} {:>8}\n", "#", "launch", "kernel", "start us", "busy us", "adds us");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    fmt::print("  {:>3} {:<40} {:<34} {:>8.1f} {:>8.1f} {:>8.1f}\n", i, r.label, r.kernel.substr(0, 34), r.start_us,
               r.busy_us, r.adds_us);
  }
  std::vector<std::tuple<double, std::string, int>> sorted;
  for (const auto& [op, v] : by_op) sorted.emplace_back(v.first, op, v.second);
  std::sort(sorted.rbegin(), sorted.rend());
  fmt::print("share of the span by op:\n");
  for (const auto& [us, op, count] : sorted)
    fmt::print("  {:<40} {:>3} kernels {:>8.1f} us {:>6.1f}%\n", op, count, us, 100 * us / span);
  fmt::print("\n");
}

int bench(const BenchArgs& a, bool precision_given) {
  if (int(!a.model.weights.empty()) + int(!a.model.onnx.empty()) + int(!a.model.plan.empty()) + int(!a.random.empty()) != 1)
    throw CLI::ValidationError("give exactly one of --weights, --onnx, --plan and --random");
  ModelSource m;
  if (a.random.empty()) {
    m = load_model(a.model);
  } else {
    m.path = "random " + a.random;
    m.weights = random_weights(named_config(a.random), 1);
  }
  const Config& c = m.config();
  const int max_b = *std::max_element(a.batches.begin(), a.batches.end());
  std::vector<std::string> precisions = a.precisions;
  if (m.plan) {
    if (precisions.size() != 1 || precisions[0] != precision_name(m.plan->precision)) {
      if (precision_given)
        throw Error(fmt::format("{}: the plan was built for {}; bench it with --precision {} or build another",
                                m.path, precision_name(m.plan->precision), precision_name(m.plan->precision)));
      precisions = {precision_name(m.plan->precision)};
    }
    if (max_b > m.plan->max_batch)
      throw Error(fmt::format("{}: the plan takes batches up to {}; --batch asks for {}", m.path, m.plan->max_batch,
                              max_b));
    fmt::print("plan {} loaded and checked in {:.1f} ms ({} tuned GEMMs, {})\n", m.path, m.load_ms,
               m.plan->gemms.size(), m.plan->gpu.arch.empty() ? "portable" : m.plan->gpu.arch);
  }
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json peer;
  if (a.compare) peer = run_peer(a, c);
  fmt::print("{:<6} {:>6} {:>10} {:>10} {:>12} {:>10}", "prec", "batch", "median ms", "p99 ms", "slices/s", "mem MiB");
  if (a.compare) fmt::print("  {}", "PyTorch on the same device: ms (swinrt speed-up)");
  fmt::print("\n");
  auto make_engine = [&](const std::string& p) {
    EngineOptions o;
    o.device = parse_device(a.device);
    o.precision = parse_precision(p);
    o.max_batch = max_b;
    return m.engine(o, false);
  };
  for (const auto& p : precisions) {
    auto engine = make_engine(p);
    for (int b : a.batches) {
      std::vector<double> ms = engine->time_forward(b, a.warmup, a.iterations);
      const double med = percentile_linear(ms, 50.0), p99 = percentile_linear(ms, 99.0);
      const double mem = engine->memory_bytes() / 1048576.0;
      // The precision the engine runs (--device auto on a machine without a GPU runs fp32 where fp16 was asked).
      const std::string ran = precision_name(engine->precision());
      fmt::print("{:<6} {:>6} {:>10.3f} {:>10.3f} {:>12.0f} {:>10.0f}", ran, b, med, p99, b * 1000.0 / med, mem);
      nlohmann::json row = {{"median_ms", med},   {"p99_ms", p99},  {"slices_per_s", b * 1000.0 / med},
                            {"memory_mib", mem},  {"precision", ran}, {"device", engine->device_name()}};
      if (a.compare && peer.contains(p) && peer[p].contains(std::to_string(b))) {
        for (auto& [mode, t] : peer[p][std::to_string(b)].items()) {
          if (!t.is_number()) continue;
          fmt::print("  {} {:.3f} ({:.2f}x)", mode, t.get<double>(), t.get<double>() / med);
          row["torch_" + mode + "_ms"] = t;
        }
      }
      fmt::print("\n");
      out[p][std::to_string(b)] = row;
    }
  }
  if (!a.json.empty()) write_file_atomic(a.json, out.dump(2) + "\n");
  // The per-kernel tables after every timing (and after the JSON is written), from engines of their own: in
  // session 31 a tf32 forward timed in the process after an fp32 --timeline read 0.590 ms against 0.547-0.549
  // in processes without a trace, so no timing follows one.
  if (a.profile || a.timeline) {
    for (const auto& p : precisions) {
      auto engine = make_engine(p);
      for (int b : a.batches) {
        if (a.profile) print_profile(engine->profile(b, 5), p, b);
        if (a.timeline) print_timeline(engine->timeline(b, 21), p, b, 21);
      }
    }
  }
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* b = app.add_subcommand("bench", "time the engine per precision and batch size");
  b->add_option("--weights", a->model.weights, "weights (.safetensors; a .onnx or .plan is recognised)");
  b->add_option("--onnx", a->model.onnx, "a Swin-Unet exported to ONNX");
  b->add_option("--plan,--loadEngine", a->model.plan, "a plan built by `swinrt build`");
  b->add_option("--random", a->random, "random weights of a named config (swin-t, tiny, w8, ape, hd48, hd64)");
  b->add_option("--batch", a->batches, "batch sizes")->delimiter(',')->check(CLI::Range(1, 4096));
  auto* prec = b->add_option("--precision", a->precisions, "precisions (fp32,tf32,fp16,bf16)")
      ->delimiter(',')
      ->check(CLI::IsMember(precision_names()));
  add_device_option(b, a->device);
  b->add_option("--warmup", a->warmup, "untimed forwards first")->check(CLI::Range(0, 100000));
  b->add_option("--iterations", a->iterations, "timed forwards")->check(CLI::Range(1, 100000));
  b->add_flag("--compare", a->compare, "also time the PyTorch reference (eager, CUDA graph, torch.compile)");
  b->add_option("--compare-modes", a->compare_modes, "PyTorch modes to time: eager,graph,compile")
      ->delimiter(',')
      ->check(CLI::IsMember({"eager", "graph", "compile"}));
  b->add_flag("--profile", a->profile, "print a per-kernel time table for each precision and batch");
  b->add_flag("--timeline", a->timeline,
              "print each kernel's start, own time and share of the span within the CUDA-graph replay (CUPTI)");
  b->add_option("--json", a->json, "write the results as JSON");
  return [a, b, prec]() { return b->parsed() ? bench(*a, prec->count() > 0) : -1; };
}

}  // namespace swinrt::cli
