// swinrt run: slices from a .npy through the engine to logits or labels.
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <memory>

#include "commands.h"
#include "model_source.h"
#include "pipeline/npy.h"
#include "swinrt/engine.h"
#include "swinrt/error.h"
#include "swinrt/weights.h"

namespace swinrt::cli {

namespace {

struct RunArgs {
  ModelArgs model;
  std::string input, output, device = "auto", precision = "fp32";
  bool labels = false;
  int max_batch = 8;
};

int run(const RunArgs& a, bool precision_given) {
  const ModelSource m = load_model(a.model);
  const Config& c = m.config();
  NpyArray x = read_npy(a.input);
  if (x.integer) throw Error(fmt::format("{}: dtype {} holds integers; float32 slices expected", a.input, x.dtype));
  const int64_t S = c.img_size;
  int64_t batch = 0;
  if (x.shape.size() == 2) batch = 1;
  else if (x.shape.size() == 3) batch = x.shape[0];
  if (batch <= 0 || x.shape[x.shape.size() - 1] != S || x.shape[x.shape.size() - 2] != S)
    throw Error(fmt::format("{}: shape {} does not fit the model: expected {}x{}, 1x{}x{} or Bx{}x{} float32 slices",
                            a.input, shape_str(x.shape), S, S, S, S, S, S));
  for (int64_t i = 0; i < x.numel(); ++i)
    if (!std::isfinite(x.data[i]))
      throw Error(fmt::format("{}: element {} is {}; finite values expected", a.input, i, x.data[i]));

  EngineOptions o;
  o.device = parse_device(a.device);
  o.precision = parse_precision(a.precision);
  o.max_batch = a.max_batch;
  auto engine = m.engine(o, precision_given);
  const int64_t HW = S * S;
  // --labels: only the labels leave the engine (on the GPU the logits stay there).
  std::vector<float> logits(a.labels ? 0 : static_cast<size_t>(batch * c.num_classes * HW));
  std::vector<int32_t> labels(static_cast<size_t>(batch * HW));
  const auto t0 = std::chrono::steady_clock::now();
  if (a.labels) engine->run_labels(x.data.data(), batch, labels.data());
  else engine->run(x.data.data(), batch, logits.data());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!a.labels) argmax_labels(logits.data(), batch, c.num_classes, HW, labels.data());
  if (a.labels) {
    if (c.num_classes <= 256) {
      std::vector<uint8_t> u8(labels.begin(), labels.end());
      write_npy_u8(a.output, {batch, S, S}, u8.data());
    } else {
      write_npy_i32(a.output, {batch, S, S}, labels.data());
    }
  } else {
    write_npy_f32(a.output, {batch, c.num_classes, S, S}, logits.data());
  }
  std::vector<int64_t> hist(c.num_classes, 0);
  for (int32_t l : labels) ++hist[l];
  fmt::print("swinrt run: {} slice(s) of {}x{} on {} ({}): {:.2f} ms total, {:.2f} ms/slice\n", batch, S, S,
             engine->device_name(), precision_name(engine->precision()), ms, ms / batch);
  fmt::print("class histogram (pixels):");
  for (int k = 0; k < c.num_classes; ++k) fmt::print(" {}:{}", k, hist[k]);
  fmt::print("\nwrote {} {}\n", a.labels ? "labels" : "logits", a.output);
  return 0;
}

}  // namespace

Action add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* r = app.add_subcommand("run", "run the model on slices from a .npy file");
  add_model_options(r, a->model);
  r->add_option("--input", a->input, "float32 slices, HxW, 1xHxW or BxHxW (.npy)")->required();
  r->add_option("--output", a->output, "logits BxCxHxW float32, or labels BxHxW with --labels (.npy)")->required();
  r->add_flag("--labels", a->labels, "write argmax labels instead of logits");
  add_device_option(r, a->device);
  auto* prec = add_precision_option(r, a->precision);
  r->add_option("--max-batch", a->max_batch, "slices per engine call")->check(CLI::Range(1, 4096));
  return [a, r, prec]() { return r->parsed() ? run(*a, prec->count() > 0) : -1; };
}

}  // namespace swinrt::cli
