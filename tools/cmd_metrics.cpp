// swinrt metrics: dice and hd95 per class between two label volumes, with the
// rules of the original calculate_metric_percase (src/pipeline/metrics.h).
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <memory>
#include <set>

#include "commands.h"
#include "pipeline/evaluate.h"
#include "pipeline/metrics.h"
#include "pipeline/npy.h"
#include "pipeline/volume_io.h"
#include "swinrt/error.h"

namespace swinrt::cli {

namespace {

struct MetricsArgs {
  std::string pred, gt, spacing, classes = "1..8", json;
};

std::string join_shape(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

// "1..8" (inclusive) or "1,2,3".
std::vector<int> parse_classes(const std::string& s) {
  auto number = [&](const std::string& t) {
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != t.size() || t.empty() || v < 0 || v > 65535)
      throw Error(fmt::format("--classes {}: 'A..B' or a comma list of class labels 0..65535 expected", s));
    return v;
  };
  std::vector<int> out;
  if (const size_t dots = s.find(".."); dots != std::string::npos) {
    const int a = number(s.substr(0, dots)), b = number(s.substr(dots + 2));
    if (b < a) throw Error(fmt::format("--classes {}: empty range", s));
    for (int c = a; c <= b; ++c) out.push_back(c);
  } else {
    size_t pos = 0;
    for (;;) {
      const size_t comma = s.find(',', pos);
      out.push_back(number(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  if (std::set<int>(out.begin(), out.end()).size() != out.size())
    throw Error(fmt::format("--classes {}: a class is listed twice", s));
  return out;
}

std::vector<double> parse_spacing(const std::string& s, size_t rank) {
  std::vector<double> out;
  size_t pos = 0;
  for (;;) {
    const size_t comma = s.find(',', pos);
    const std::string t = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != t.size() || t.empty() || !std::isfinite(v) || v <= 0)
      throw Error(fmt::format("--spacing {}: positive numbers separated by commas expected", s));
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (out.size() != rank)
    throw Error(fmt::format("--spacing {}: {} values given, the volumes have {} axes", s, out.size(), rank));
  return out;
}

int run(const MetricsArgs& a) {
  const std::vector<int> classes = parse_classes(a.classes);
  const LabelVolume pred = read_label_volume(a.pred);
  const LabelVolume gt = read_label_volume(a.gt);
  if (pred.shape != gt.shape)
    throw Error(fmt::format("{}: shape {}, but {} has shape {}; label volumes of the same shape expected", a.pred,
                            join_shape(pred.shape), a.gt, join_shape(gt.shape)));
  const VolumeShape shape = volume_shape(gt.shape);
  const size_t rank = gt.shape.size();
  const bool nifti = has_nifti_extension(a.pred) || has_nifti_extension(a.gt);

  // Spacing per array axis. --spacing is X,Y,Z: for NIfTI the header's axes
  // (the array's reversed), for .npy the array's own axes.
  std::vector<double> spacing(rank, 1.0);
  std::string source = "unit";
  if (!a.spacing.empty()) {
    spacing = parse_spacing(a.spacing, rank);
    if (nifti) std::reverse(spacing.begin(), spacing.end());
    source = "--spacing";
  } else if (!gt.spacing.empty() || !pred.spacing.empty()) {
    spacing = !gt.spacing.empty() ? gt.spacing : pred.spacing;
    source = !gt.spacing.empty() ? a.gt : a.pred;
    if (!gt.spacing.empty() && !pred.spacing.empty())
      for (size_t i = 0; i < rank; ++i)
        if (std::fabs(gt.spacing[i] - pred.spacing[i]) > 1e-6 * std::fabs(gt.spacing[i]))
          fmt::print(stderr, "swinrt metrics: note: the spacing of {} and {} differ; {}'s is used\n", a.pred, a.gt, a.gt);
  }
  Spacing3 sp{1.0, 1.0, 1.0};
  for (size_t i = 0; i < rank; ++i) sp[3 - rank + i] = spacing[i];

  // Labels present but not evaluated are worth a note.
  std::set<int> listed(classes.begin(), classes.end()), ignored;
  for (const auto* v : {&pred.labels, &gt.labels})
    for (int32_t l : *v)
      if (l > 0 && !listed.count(l)) ignored.insert(l);
  if (!ignored.empty()) {
    std::string list;
    for (int l : ignored) list += (list.empty() ? "" : ",") + std::to_string(l);
    fmt::print(stderr, "swinrt metrics: note: labels {} are present but not in --classes {}\n", list, a.classes);
  }

  const std::vector<ClassMetric> m = evaluate_volume(pred.labels.data(), gt.labels.data(), shape, sp, classes);
  std::string sps;
  for (size_t i = 0; i < rank; ++i) sps += fmt::format("{}{}", i ? ", " : "", spacing[i]);
  fmt::print("swinrt metrics: {} vs {}: shape {}, spacing per array axis ({}) from {}\n", a.pred, a.gt,
             join_shape(gt.shape), sps, source);
  fmt::print("{:>6}  {:>10}  {:>12}\n", "class", "dice", "hd95");
  double sd = 0.0, sh = 0.0;
  for (size_t k = 0; k < classes.size(); ++k) {
    fmt::print("{:>6}  {:>10.6f}  {:>12.6f}\n", classes[k], m[k].dice, m[k].hd95);
    sd += m[k].dice;
    sh += m[k].hd95;
  }
  const double n = static_cast<double>(classes.size());
  fmt::print("{:>6}  {:>10.6f}  {:>12.6f}\n", "mean", sd / n, sh / n);
  if (!a.json.empty()) {
    write_file_atomic(a.json, metrics_json(classes, m));
    fmt::print("wrote {}\n", a.json);
  }
  return 0;
}

}  // namespace

Action add_metrics(CLI::App& app) {
  auto a = std::make_shared<MetricsArgs>();
  CLI::App* c = app.add_subcommand("metrics", "dice and hd95 per class between two label volumes (medpy semantics)");
  c->add_option("--pred", a->pred, "predicted labels (.nii, .nii.gz or .npy)")->required();
  c->add_option("--gt", a->gt, "ground-truth labels, same shape (.nii, .nii.gz or .npy)")->required();
  c->add_option("--spacing", a->spacing,
                "voxel spacing X,Y,Z: NIfTI header axes for NIfTI (default: the header), array axes for .npy "
                "(default 1)");
  c->add_option("--classes", a->classes, "classes to evaluate: A..B or a comma list (default 1..8)");
  c->add_option("--json", a->json, "write {\"classes\": {...}, \"mean_dice\", \"mean_hd95\"} here");
  return [a, c]() { return c->parsed() ? run(*a) : -1; };
}

}  // namespace swinrt::cli
