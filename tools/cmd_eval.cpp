// swinrt eval: the original Swin-Unet Synapse test protocol (test.py,
// utils.test_single_volume) on the swinrt engine; see src/pipeline/evaluate.h
// and docs/EVALUATION.md.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <memory>

#include <unistd.h>

#include "commands.h"
#include "cuda/pipeline.h"
#include "model_source.h"
#include "pipeline/evaluate.h"
#include "pipeline/npy.h"
#include "pipeline/volume_io.h"
#include "swinrt/engine.h"
#include "swinrt/error.h"
#include "swinrt/weights.h"

namespace swinrt::cli {

namespace {

struct EvalArgs {
  ModelArgs model;
  std::string volume_path, list_dir, list, json, csv, save_nifti, save_png, device = "auto", precision = "fp32";
  std::vector<std::string> images, labels;  // NIfTI inputs instead of --volume-path
  std::string intensity = "synapse";
  int num_classes = 0, img_size = 0, batch = 8;
  double z_spacing = 1.0;
  bool no_progress = false;
};

// Progress on stderr: on a terminal one line redrawn in place (a bar of the
// cases, slices done, slices/s), cleared before any other output; otherwise
// a plain line per finished case ("case0001: 40 slices, 0.35 s").
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool enabled) : enabled_(enabled), tty_(enabled && isatty(fileno(stderr))) {}

  void update(const EvalProgress& p) {
    if (!enabled_) return;
    if (!tty_) {
      if (p.finished && p.finished->evaluated)
        fmt::print(stderr, "{}: {} slices, {:.2f} s\n", printable_message(p.finished->name), p.finished->slices,
                   p.finished->seconds);
      return;
    }
    // Redraw at most every 0.1 s, and at every finished case.
    const auto now = std::chrono::steady_clock::now();
    if (!p.finished && shown_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    constexpr int kWidth = 30;
    const size_t fill = p.cases_total ? p.cases_done * kWidth / p.cases_total : kWidth;
    const double rate = p.seconds > 0 ? static_cast<double>(p.slices_done) / p.seconds : 0.0;
    line_ = fmt::format("[{}{}] {}/{} cases, {} slices, {:.1f} slices/s", std::string(fill, '#'),
                        std::string(kWidth - fill, '.'), p.cases_done, p.cases_total, p.slices_done, rate);
    fmt::print(stderr, "\r\033[K{}", line_);
    std::fflush(stderr);
    shown_ = true;
  }
  // Around other output on the terminal: clear the bar, print, redraw.
  void clear() {
    if (!tty_ || !shown_) return;
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  void redraw() {
    if (!tty_ || !shown_) return;
    fmt::print(stderr, "{}", line_);
    std::fflush(stderr);
  }
  void finish() {
    if (tty_ && shown_) fmt::print(stderr, "\n");
    shown_ = false;
  }

 private:
  bool enabled_, tty_, shown_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::string line_;
};

std::string case_list_path(const EvalArgs& a) {
  namespace fs = std::filesystem;
  if (!a.list.empty()) return a.list;
  if (!a.list_dir.empty()) return (fs::path(a.list_dir) / "test_vol.txt").string();
  // Default: next to the volumes (swinrt-phantom's layout), else the
  // original's ./lists/lists_Synapse.
  const std::string beside = (fs::path(a.volume_path) / "lists_Synapse" / "test_vol.txt").string();
  const std::string original = "lists/lists_Synapse/test_vol.txt";
  std::error_code ec;
  if (fs::exists(beside, ec)) return beside;
  if (fs::exists(original, ec)) return original;
  throw Error(fmt::format("no case list: neither {} nor {} exists (give --list FILE or --list-dir DIR)", beside,
                          original));
}

void check_output_dir(const std::string& path, const char* flag) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw Error(fmt::format("{} {}: directory {} does not exist", flag, path, parent.string()));
}

int run(const EvalArgs& a, bool precision_given) {
  quiet_hdf5_diagnostics();  // cases are read on other threads; this one exits
  namespace fs = std::filesystem;
  std::error_code ec;
  EvalOptions o;
  if (!a.images.empty()) {
    // NIfTI volumes: one case per --image, named by its file, labels by position.
    if (!a.labels.empty() && a.labels.size() != a.images.size())
      throw CLI::ValidationError(fmt::format("{} --label for {} --image: give one label per image, or none",
                                             a.labels.size(), a.images.size()));
    if (a.labels.empty() && a.save_nifti.empty() && a.save_png.empty())
      throw CLI::ValidationError("--image without --label: nothing to score, so give --save-nifti or --save-png");
    for (const std::string& p : a.images) {
      if (!has_nifti_extension(p)) throw Error(fmt::format("--image {}: a .nii or .nii.gz file expected", p));
      o.cases.push_back(nifti_case_name(p));
    }
    const bool window = a.intensity == "synapse";
    const std::vector<std::string> images = a.images, labels = a.labels;
    o.read_case = [images, labels, window, names = o.cases](size_t i) {
      return read_nifti_case(images[i], labels.empty() ? std::string() : labels[i], names[i], window);
    };
  } else {
    if (!fs::is_directory(a.volume_path, ec))
      throw Error(fmt::format("--volume-path {}: not a directory (the <case>.npy.h5 files expected there)",
                              a.volume_path));
    o.volume_path = a.volume_path;
    o.cases = read_case_list(case_list_path(a));
  }
  o.batch = a.batch;
  o.z_spacing = a.z_spacing;
  check_output_dir(a.json, "--json");
  check_output_dir(a.csv, "--csv");
  if (!a.save_nifti.empty()) {
    fs::create_directories(a.save_nifti, ec);
    if (!fs::is_directory(a.save_nifti, ec))
      throw Error(fmt::format("--save-nifti {}: cannot create the directory", a.save_nifti));
    o.save_nifti_dir = a.save_nifti;
  }
  if (!a.save_png.empty()) {
    fs::create_directories(a.save_png, ec);
    if (!fs::is_directory(a.save_png, ec))
      throw Error(fmt::format("--save-png {}: cannot create the directory", a.save_png));
    o.save_png_dir = a.save_png;
  }

  const ModelSource m = load_model(a.model);
  const Config& c = m.config();
  if (a.img_size && a.img_size != c.img_size)
    throw Error(fmt::format("{}: the model takes {}x{} slices; --img-size {} does not match", m.path, c.img_size,
                            c.img_size, a.img_size));
  if (a.num_classes && a.num_classes != c.num_classes)
    throw Error(fmt::format("{}: the model has {} classes; --num-classes {} does not match", m.path, c.num_classes,
                            a.num_classes));
  if (c.num_classes < 2) throw Error(fmt::format("{}: {} class(es): nothing to evaluate", m.path, c.num_classes));
  EngineOptions eo;
  eo.device = parse_device(a.device);
  eo.precision = parse_precision(a.precision);
  eo.max_batch = a.batch;
  auto engine = m.engine(eo, precision_given);
  // Next to a CUDA engine, the resampling and the metrics run on the GPU too.
  o.gpu_pipeline = engine->device_name().rfind("cuda", 0) == 0 && cuda_pipeline_available(nullptr);
  fmt::print(stderr, "swinrt eval: {} case(s) from {} on {} ({}), {}x{} slices, batch {}, zoom and metrics on the {}\n",
             o.cases.size(), a.images.empty() ? a.volume_path : std::string("NIfTI files"), engine->device_name(), precision_name(engine->precision()), c.img_size,
             c.img_size, a.batch, o.gpu_pipeline ? "GPU" : "CPU");

  ProgressDisplay progress(!a.no_progress);
  const EvalSummary s = evaluate_cases(
      *engine, o,
      [&progress](const std::string& line) {
        progress.clear();
        fmt::print("{}\n", printable_message(line));
        std::fflush(stdout);
        progress.redraw();
      },
      [&progress](const std::string& line) {
        progress.clear();
        fmt::print(stderr, "swinrt: error: {}\n", printable_message(line));
        progress.redraw();
      },
      [&progress](const EvalProgress& p) { progress.update(p); });
  progress.finish();

  if (!a.json.empty()) write_file_atomic(a.json, eval_json(s));
  if (!a.csv.empty()) write_file_atomic(a.csv, eval_csv(s));
  if (s.unlabelled > 0)
    fmt::print(stderr, "swinrt eval: {} case(s) without labels predicted and written, not scored\n", s.unlabelled);
  if (s.failed > 0) {
    fmt::print(stderr, "swinrt: error: {} of {} case(s) failed (see above); {} evaluated\n", s.failed, s.cases.size(),
               s.evaluated);
    return 1;
  }
  return 0;
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* e = app.add_subcommand("eval", "the Synapse test protocol of the original Swin-Unet (test.py)");
  add_model_options(e, a->model);
  CLI::Option_group* in = e->add_option_group("input", "the volumes, one of");
  in->add_option("--volume-path", a->volume_path, "directory of the <case>.npy.h5 test volumes");
  in->add_option("--image", a->images, "NIfTI volume(s) (.nii, .nii.gz), one case each, named by the file");
  in->require_option(1);
  e->add_option("--label", a->labels, "NIfTI or .npy label volume(s) for the --image volumes, in the same order");
  e->add_option("--intensity", a->intensity,
                "--image values: synapse (CT in HU: clip to [-125, 275], scale to [0, 1], as the Synapse data) or "
                "none (already prepared, e.g. a swinrt --save-nifti _img file)")
      ->check(CLI::IsMember({"synapse", "none"}));
  auto* ld = e->add_option("--list-dir", a->list_dir, "directory of test_vol.txt");
  e->add_option("--list", a->list, "the case list file itself")->excludes(ld);
  e->add_option("--num-classes", a->num_classes, "must equal the model's (checked)")->check(CLI::Range(2, 65536));
  e->add_option("--img-size", a->img_size, "must equal the model's (checked)")->check(CLI::Range(1, 1 << 16));
  e->add_option("--json", a->json, "write per-case, per-class and mean metrics (JSON)");
  e->add_option("--csv", a->csv, "write case,class,dice,hd95 rows");
  e->add_option("--save-nifti", a->save_nifti, "write <case>_pred/_img/_gt.nii.gz here");
  e->add_option("--save-png", a->save_png, "write overlays <case>_slice<z>.png (CT, ground truth | prediction, legend)");
  e->add_option("--z-spacing", a->z_spacing, "z spacing of the NIfTI outputs (the original's z_spacing, 1)")
      ->check(CLI::PositiveNumber);
  add_device_option(e, a->device);
  auto* prec = add_precision_option(e, a->precision);
  e->add_option("--batch", a->batch, "slices per engine call")->check(CLI::Range(1, 4096));
  e->add_flag("--no-progress", a->no_progress, "no progress on stderr (bar on a terminal, a line per case otherwise)");
  return [a, e, prec]() { return e->parsed() ? run(*a, prec->count() > 0) : -1; };
}

}  // namespace swinrt::cli
