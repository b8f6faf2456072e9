// The swinrt command (../shared/CLI.md is the contract): run, info.
// Exit codes: 0 success, 1 runtime error (one message on stderr naming the
// file and what was expected), 2 usage error.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../src/pipeline/npy.h"
#include "swinrt/engine.h"
#include "swinrt/error.h"
#include "swinrt/plan.h"
#include "swinrt/weights.h"

namespace {

using namespace swinrt;

struct RunArgs {
  std::string weights, input, output, device = "auto", precision = "fp32";
  bool labels = false;
  int max_batch = 8;
};

int cmd_run(const RunArgs& a) {
  Weights w = Weights::load(a.weights);
  const Config& c = w.config();
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
  auto engine = Engine::create(w, o);
  const int64_t HW = S * S;
  std::vector<float> logits(static_cast<size_t>(batch * c.num_classes * HW));
  const auto t0 = std::chrono::steady_clock::now();
  engine->run(x.data.data(), batch, logits.data());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::vector<int32_t> labels(static_cast<size_t>(batch * HW));
  argmax_labels(logits.data(), batch, c.num_classes, HW, labels.data());
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

int cmd_info(const std::string& path, bool layers) {
  Weights w = Weights::load(path);
  const Config& c = w.config();
  fmt::print("file        {}\n", path);
  fmt::print("dtype       {}\n", dtype_name(w.stored_dtype()));
  fmt::print("parameters  {} ({:.2f} M)\n", w.parameter_count(), w.parameter_count() / 1e6);
  fmt::print("img_size {}  patch_size {}  in_chans {}  num_classes {}\n", c.img_size, c.patch_size, c.in_chans,
             c.num_classes);
  fmt::print("embed_dim {}  depths {}  num_heads {}  window_size {}\n", c.embed_dim, c.depths, c.num_heads,
             c.window_size);
  fmt::print("mlp_ratio {}  qkv_bias {}  qk_scale {}  ape {}  patch_norm {}\n", c.mlp_ratio, c.qkv_bias,
             c.qk_scale ? fmt::format("{}", *c.qk_scale) : "None", c.ape, c.patch_norm);
  if (layers) {
    fmt::print("\nlayer plan:\n");
    for (const Step& s : build_plan(c)) {
      fmt::print("  {:<22} {:<28} {:>3}x{:<3} dim {:>4}", op_name(s.op), s.name, s.res, s.res, s.dim);
      if (s.op == OpKind::SwinBlock)
        fmt::print("  heads {:>2} window {} shift {} mlp {}", s.heads, s.window, s.shift, s.hidden);
      if (s.skip >= 0) fmt::print("  skip {}", s.skip);
      fmt::print("\n");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"swinrt: Swin-Unet inference runtime"};
  app.require_subcommand(1);

  RunArgs run;
  CLI::App* r = app.add_subcommand("run", "run the model on slices from a .npy file");
  r->add_option("--weights", run.weights, "weights (.safetensors from swinrt-convert)")->required();
  r->add_option("--input", run.input, "float32 slices, HxW, 1xHxW or BxHxW (.npy)")->required();
  r->add_option("--output", run.output, "logits BxCxHxW float32, or labels BxHxW with --labels (.npy)")->required();
  r->add_flag("--labels", run.labels, "write argmax labels instead of logits");
  r->add_option("--device", run.device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "gpu", "auto"}));
  r->add_option("--precision", run.precision, "fp32, tf32, fp16 or bf16")
      ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16"}));
  r->add_option("--max-batch", run.max_batch, "slices per engine call")->check(CLI::Range(1, 4096));

  std::string info_path;
  bool info_layers = false;
  CLI::App* in = app.add_subcommand("info", "print a weights file's config and parameter count");
  in->add_option("file", info_path, "MODEL.safetensors")->required();
  in->add_flag("--layers", info_layers, "also print the layer plan");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (r->parsed()) return cmd_run(run);
    if (in->parsed()) return cmd_info(info_path, info_layers);
  } catch (const swinrt::Error& e) {
    fmt::print(stderr, "swinrt: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "swinrt: error: out of host memory\n");
    return 1;
  }
  return 2;
}
