// The Synapse test protocol of the original Swin-Unet (test.py's inference()
// and utils.test_single_volume) on a swinrt Engine:
//
//   for each case of the list: read VOLUME_PATH/<case>.npy.h5;
//     every slice x*y != S*S is resized to S*S (scipy zoom, order 3), run
//     through the network, argmax, and the labels resized back (order 0);
//     per class 1..C-1: calculate_metric_percase(prediction == c, label == c)
//   class means over the cases, then the means over the classes.
//
// Slices go through the engine in batches; the metrics (and NIfTI output) of
// case k run on a second thread while case k+1 is inferred and case k+2 is
// read on a third, so at most three cases are in memory. With gpu_pipeline
// the resampling and the metrics run on the GPU (src/cuda/pipeline.h), with
// the same results; device memory for the slices is bounded by the batch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "metrics.h"
#include "swinrt/engine.h"
#include "volume_io.h"

namespace swinrt {

struct EvalOptions {
  std::string volume_path;          // directory of <case>.npy.h5
  std::vector<std::string> cases;   // in list order
  int batch = 8;                    // slices per engine call
  std::string save_nifti_dir;       // when set: <case>_{pred,img,gt}.nii.gz
  std::string save_png_dir;         // when set: <case>_slice<z>.png overlays (pipeline/overlay.h)
  double z_spacing = 1.0;           // NIfTI spacing (1, 1, z_spacing), as the original
  bool gpu_pipeline = false;        // zoom and metrics on the GPU (needs a CUDA build and device)
  // Reads case i when set (NIfTI inputs: read_nifti_case); else
  // volume_path/<case>.npy.h5. A case without labels is predicted and
  // written (NIfTI, PNG) but not scored.
  std::function<SynapseCase(size_t)> read_case;
};

struct CaseResult {
  std::string name;
  bool evaluated = false;            // metrics computed (counts in the means)
  bool unlabelled = false;           // no ground truth: predicted and written, not scored
  std::string error;                 // what went wrong, naming the case; empty if nothing
  std::vector<ClassMetric> metrics;  // classes 1..C-1
  double mean_dice = 0.0, mean_hd95 = 0.0;
  int64_t slices = 0;                // depth of the volume
  double seconds = 0.0;              // from the start of its inference to its metrics done
};

// Where the evaluation stands, for a progress display: sent on the calling
// thread after every batch of slices (case == nullptr) and every finished case.
struct EvalProgress {
  size_t cases_done = 0, cases_total = 0;
  int64_t slices_done = 0;           // slices through the network so far
  double seconds = 0.0;              // since evaluate_cases began
  const CaseResult* finished = nullptr;
};

struct EvalSummary {
  std::vector<CaseResult> cases;          // list order
  std::vector<ClassMetric> class_mean;    // classes 1..C-1, over the evaluated cases
  double mean_dice = 0.0, mean_hd95 = 0.0;
  int evaluated = 0, failed = 0;          // failed: cases with an error
  int unlabelled = 0;                     // predicted only (no ground truth)
};

// Case names of a list file, one per line (test_vol.txt); blank lines skipped.
std::vector<std::string> read_case_list(const std::string& path);

// test_single_volume's prediction: labels [D, H, W] of the case. `gpu`:
// resample on the GPU. `on_batch` gets the number of slices of each batch done.
std::vector<int32_t> predict_volume(Engine& engine, const SynapseCase& c, int batch, bool gpu = false,
                                    const std::function<void(int64_t)>& on_batch = {});

// Runs the protocol. `log` gets the original test.py log lines as they become
// known (per case, then per class and the final line); `error` gets one line
// per failed case. Cases that fail are reported and skipped.
EvalSummary evaluate_cases(Engine& engine, const EvalOptions& options, const std::function<void(const std::string&)>& log,
                           const std::function<void(const std::string&)>& error,
                           const std::function<void(const EvalProgress&)>& progress = {});

// Output documents (../shared/CLI.md).
std::string eval_json(const EvalSummary& s);
std::string eval_csv(const EvalSummary& s);
// `swinrt metrics`: {"classes": {"1": {"dice", "hd95"}, ...}, "mean_dice", "mean_hd95"}.
std::string metrics_json(const std::vector<int>& classes, const std::vector<ClassMetric>& metrics);

}  // namespace swinrt
