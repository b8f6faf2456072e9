// The Synapse test protocol (see evaluate.h).
#include "evaluate.h"
#include "overlay.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <future>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>

#include "cuda/pipeline.h"
#include "swinrt/error.h"
#include "zoom.h"

namespace swinrt {

std::vector<std::string> read_case_list(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(fmt::format("{}: cannot open the case list (one case name per line expected)", path));
  std::vector<std::string> cases;
  for (std::string line; std::getline(f, line);) {
    const size_t a = line.find_first_not_of(" \t\r\n");
    if (a == std::string::npos) continue;
    const size_t b = line.find_last_not_of(" \t\r\n");
    cases.push_back(line.substr(a, b - a + 1));
  }
  if (cases.empty()) throw Error(fmt::format("{}: the case list is empty", path));
  return cases;
}

std::vector<int32_t> predict_volume(Engine& engine, const SynapseCase& c, int batch, bool gpu,
                                    const std::function<void(int64_t)>& on_batch) {
  const int64_t S = engine.config().img_size;
  const int64_t D = c.shape[0], H = c.shape[1], W = c.shape[2], HW = H * W, SS = S * S;
  const bool resize = H != S || W != S;
  const int64_t B = std::max(1, batch);
  // The two resizes, on the CPU or (same bits) on the GPU, B slices at a time.
  std::optional<Zoom2D> up, down;
  std::unique_ptr<CudaZoom2D> gpu_up, gpu_down;
  if (resize) {
    // The shapes scipy gives zoom(slice, (S/x, S/y)) and, back, zoom(out,
    // (x/S, y/S)); where they are not S and x, y the original fails too.
    const int64_t uh = zoom_output_size(H, double(S) / double(H)), uw = zoom_output_size(W, double(S) / double(W));
    const int64_t dh = zoom_output_size(S, double(H) / double(S)), dw = zoom_output_size(S, double(W) / double(S));
    if (uh != S || uw != S || dh != H || dw != W)
      throw Error(fmt::format("case {}: slices of {}x{} do not resize to {}x{} and back exactly (scipy gives {}x{}, {}x{})",
                              c.name, H, W, S, S, uh, uw, dh, dw));
    if (gpu) {
      gpu_up = std::make_unique<CudaZoom2D>(H, W, S, S, 3, std::min(B, D));
      gpu_down = std::make_unique<CudaZoom2D>(S, S, H, W, 0, std::min(B, D));
    } else {
      up.emplace(H, W, S, S, 3);
      down.emplace(S, S, H, W, 0);
    }
  }
  std::vector<float> input(resize ? static_cast<size_t>(std::min(B, D) * SS) : 0);
  std::vector<int32_t> labels(static_cast<size_t>(std::min(B, D) * SS));
  std::vector<int32_t> pred(static_cast<size_t>(D * HW));
  for (int64_t z0 = 0; z0 < D; z0 += B) {
    const int64_t nb = std::min(B, D - z0);
    const float* x = c.image.data() + z0 * HW;
    if (resize) {
      if (gpu) gpu_up->apply_many(nb, x, input.data());
      else up->apply_many(nb, x, input.data());
      x = input.data();
    }
    engine.run_labels(x, nb, labels.data());
    if (!resize) std::memcpy(pred.data() + z0 * HW, labels.data(), static_cast<size_t>(nb * HW) * sizeof(int32_t));
    else if (gpu) gpu_down->apply_many(nb, labels.data(), pred.data() + z0 * HW);
    else down->apply_many(nb, labels.data(), pred.data() + z0 * HW);
    if (on_batch) on_batch(nb);
  }
  return pred;
}

namespace {

// Case metrics and (optionally) the NIfTI files; runs on the second thread.
void finish_case(CaseResult& r, const SynapseCase& c, const std::vector<int32_t>& pred, int num_classes,
                 const EvalOptions& o) {
  // Without ground truth (c.label empty) the case is predicted and written, not scored.
  if (c.label.empty()) {
    r.unlabelled = true;
  } else {
    std::vector<int> classes;
    for (int k = 1; k < num_classes; ++k) classes.push_back(k);
    // The original passes no voxel spacing to medpy: distances in voxels.
    const auto evaluate = o.gpu_pipeline ? cuda_evaluate_volume : evaluate_volume;
    r.metrics = evaluate(pred.data(), c.label.data(), volume_shape(c.shape), {1.0, 1.0, 1.0}, classes);
    double sd = 0.0, sh = 0.0;
    for (const ClassMetric& m : r.metrics) {
      sd += m.dice;
      sh += m.hd95;
    }
    const double n = static_cast<double>(r.metrics.size());
    r.mean_dice = sd / n;
    r.mean_hd95 = sh / n;
    r.evaluated = true;
  }
  if (!o.save_nifti_dir.empty()) {
    const std::filesystem::path dir(o.save_nifti_dir);
    const std::array<double, 3> spacing{1.0, 1.0, o.z_spacing};
    std::vector<float> f(pred.begin(), pred.end());
    write_nifti((dir / (c.name + "_pred.nii.gz")).string(), c.shape, f.data(), spacing);
    write_nifti((dir / (c.name + "_img.nii.gz")).string(), c.shape, c.image.data(), spacing);
    if (!c.label.empty()) {
      f.assign(c.label.begin(), c.label.end());
      write_nifti((dir / (c.name + "_gt.nii.gz")).string(), c.shape, f.data(), spacing);
    }
  }
  if (!o.save_png_dir.empty()) write_overlays(o.save_png_dir, c, pred, num_classes);
}

}  // namespace

EvalSummary evaluate_cases(Engine& engine, const EvalOptions& o, const std::function<void(const std::string&)>& log,
                           const std::function<void(const std::string&)>& error,
                           const std::function<void(const EvalProgress&)>& progress) {
  using Clock = std::chrono::steady_clock;
  const auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  const Clock::time_point start = Clock::now();
  const int num_classes = engine.config().num_classes;
  EvalSummary s;
  EvalProgress p;
  p.cases_total = o.cases.size();
  auto tell = [&](const CaseResult* finished) {
    if (!progress) return;
    p.seconds = since(start);
    p.finished = finished;
    progress(p);
  };
  s.cases.resize(o.cases.size());
  log(fmt::format("{} test iterations per epoch", o.cases.size()));

  // The case whose metrics run on the second thread, reported when done.
  std::future<void> pending;
  size_t pending_index = 0;
  auto report = [&](size_t i) {
    const CaseResult& r = s.cases[i];
    if (r.evaluated)
      log(fmt::format("idx {} case {} mean_dice {:.6f} mean_hd95 {:.6f}", i, r.name, r.mean_dice, r.mean_hd95));
    if (!r.error.empty()) error(r.error);
    ++p.cases_done;
    tell(&r);
  };
  auto wait_pending = [&] {
    if (!pending.valid()) return;
    pending.get();
    report(pending_index);
  };

  // The next case is read on a third thread while this one is inferred.
  auto start_reading = [&o](size_t i) {
    return std::async(std::launch::async, [&o, i] {
      if (o.read_case) return o.read_case(i);
      const std::string path = (std::filesystem::path(o.volume_path) / (o.cases[i] + ".npy.h5")).string();
      return read_synapse_case(path, o.cases[i]);
    });
  };
  std::future<SynapseCase> reading = start_reading(0);

  for (size_t i = 0; i < o.cases.size(); ++i) {
    CaseResult& r = s.cases[i];
    r.name = o.cases[i];
    std::future<SynapseCase> current = std::move(reading);
    if (i + 1 < o.cases.size()) reading = start_reading(i + 1);
    try {
      auto c = std::make_shared<SynapseCase>(current.get());
      const Clock::time_point case_start = Clock::now();
      r.slices = c->shape[0];
      auto pred = std::make_shared<std::vector<int32_t>>(
          predict_volume(engine, *c, o.batch, o.gpu_pipeline, [&](int64_t n) {
            p.slices_done += n;
            tell(nullptr);
          }));
      wait_pending();
      pending_index = i;
      pending = std::async(std::launch::async, [&r, c, pred, num_classes, &o, case_start, since] {
        try {
          finish_case(r, *c, *pred, num_classes, o);
          r.seconds = since(case_start);
        } catch (const std::bad_alloc&) {
          r.error = fmt::format("case {}: out of host memory", r.name);
        } catch (const std::exception& e) {
          r.error = fmt::format("case {}: {}", r.name, e.what());
        }
      });
    } catch (const std::bad_alloc&) {
      wait_pending();
      r.error = fmt::format("case {}: out of host memory", r.name);
      report(i);
    } catch (const std::exception& e) {
      wait_pending();
      const std::string msg = e.what();
      const bool named = msg.find(printable_message(r.name)) != std::string::npos;
      r.error = named ? msg : fmt::format("case {}: {}", r.name, msg);
      report(i);
    }
  }
  wait_pending();

  std::vector<ClassMetric> sum(static_cast<size_t>(std::max(0, num_classes - 1)));
  for (const CaseResult& r : s.cases) {
    if (!r.error.empty()) ++s.failed;
    if (r.unlabelled && r.error.empty()) ++s.unlabelled;
    if (!r.evaluated) continue;
    ++s.evaluated;
    for (size_t k = 0; k < sum.size(); ++k) {
      sum[k].dice += r.metrics[k].dice;
      sum[k].hd95 += r.metrics[k].hd95;
    }
  }
  if (s.evaluated == 0) return s;
  s.class_mean = sum;
  double sd = 0.0, sh = 0.0;
  for (size_t k = 0; k < sum.size(); ++k) {
    ClassMetric& m = s.class_mean[k];
    m.dice /= s.evaluated;
    m.hd95 /= s.evaluated;
    log(fmt::format("Mean class {} mean_dice {:.6f} mean_hd95 {:.6f}", k + 1, m.dice, m.hd95));
    sd += m.dice;
    sh += m.hd95;
  }
  s.mean_dice = sd / static_cast<double>(sum.size());
  s.mean_hd95 = sh / static_cast<double>(sum.size());
  log(fmt::format("Testing performance in best val model: mean_dice : {:.6f} mean_hd95 : {:.6f}", s.mean_dice,
                  s.mean_hd95));
  return s;
}

namespace {

nlohmann::ordered_json classes_json(const std::vector<ClassMetric>& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t k = 0; k < m.size(); ++k) j[std::to_string(k + 1)] = {{"dice", m[k].dice}, {"hd95", m[k].hd95}};
  return j;
}

}  // namespace

std::string eval_json(const EvalSummary& s) {
  nlohmann::ordered_json j;
  j["cases"] = nlohmann::ordered_json::object();
  for (const CaseResult& r : s.cases)
    if (r.evaluated) j["cases"][printable_message(r.name)] = classes_json(r.metrics);
  j["classes"] = classes_json(s.class_mean);
  if (s.evaluated > 0) {
    j["mean_dice"] = s.mean_dice;
    j["mean_hd95"] = s.mean_hd95;
  } else {
    j["mean_dice"] = nullptr;
    j["mean_hd95"] = nullptr;
  }
  if (s.failed > 0) {
    j["failed"] = nlohmann::ordered_json::object();
    for (const CaseResult& r : s.cases)
      if (!r.error.empty()) j["failed"][printable_message(r.name)] = printable_message(r.error);
  }
  return j.dump(2) + "\n";
}

std::string metrics_json(const std::vector<int>& classes, const std::vector<ClassMetric>& m) {
  nlohmann::ordered_json j;
  j["classes"] = nlohmann::ordered_json::object();
  double sd = 0.0, sh = 0.0;
  for (size_t k = 0; k < m.size(); ++k) {
    j["classes"][std::to_string(classes[k])] = {{"dice", m[k].dice}, {"hd95", m[k].hd95}};
    sd += m[k].dice;
    sh += m[k].hd95;
  }
  j["mean_dice"] = sd / static_cast<double>(m.size());
  j["mean_hd95"] = sh / static_cast<double>(m.size());
  return j.dump(2) + "\n";
}

namespace {

// RFC 4180: a field holding a comma, a quote or a line break goes in quotes,
// its quotes doubled.
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char ch : v) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

}  // namespace

std::string eval_csv(const EvalSummary& s) {
  std::string out = "case,class,dice,hd95\n";
  for (const CaseResult& r : s.cases) {
    if (!r.evaluated) continue;
    for (size_t k = 0; k < r.metrics.size(); ++k)
      out += fmt::format("{},{},{},{}\n", csv_field(printable_message(r.name)), k + 1, r.metrics[k].dice,
                         r.metrics[k].hd95);
  }
  return out;
}

}  // namespace swinrt
