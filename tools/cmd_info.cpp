// swinrt info: a weights file's config, parameter count, dtype, layer plan.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>

#include "commands.h"
#include "model_source.h"
#include "swinrt/plan.h"
#include "swinrt/weights.h"

namespace swinrt::cli {

namespace {

int info(const std::string& path, bool layers) {
  const ModelSource m = load_model(ModelArgs{path, "", ""});
  const Config& c = m.config();
  fmt::print("file        {}\n", path);
  fmt::print("format      {}\n", m.format == "ONNX" ? "ONNX (config and weights recognised from the graph)" : m.format);
  if (m.plan) {
    const PlanFile& p = *m.plan;
    fmt::print("plan        format {}, loaded and checked in {:.1f} ms\n", PlanFile::kFormatVersion, m.load_ms);
    fmt::print("built from  {}\n", p.built_from);
    fmt::print("precision   {}   max batch {}   weights {:.1f} MiB\n", precision_name(p.precision), p.max_batch,
               p.image.bytes.size() / 1048576.0);
    if (p.gpu.arch.empty())
      fmt::print("gpu         none (portable: GEMM algorithms chosen by heuristic when loaded)\n");
    else
      fmt::print("gpu         {} ({}, cuBLASLt {}), {} tuned GEMM shapes\n", p.gpu.name, p.gpu.arch,
                 p.gpu.cublaslt_version, p.gemms.size());
  } else {
    const Weights& w = *m.weights;
    fmt::print("dtype       {}\n", dtype_name(w.stored_dtype()));
    fmt::print("parameters  {} ({:.2f} M)\n", w.parameter_count(), w.parameter_count() / 1e6);
  }
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

Action add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto layers = std::make_shared<bool>(false);
  CLI::App* in = app.add_subcommand("info", "print a model file's config and parameter count, or a plan's build");
  in->add_option("file", *path, "MODEL.safetensors, MODEL.onnx or MODEL.plan")->required();
  in->add_flag("--layers", *layers, "also print the layer plan");
  return [=]() { return in->parsed() ? info(*path, *layers) : -1; };
}

}  // namespace swinrt::cli
