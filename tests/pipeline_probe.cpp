// swinrt_pipeline_probe: exposes the evaluation pipeline's building blocks to
// tests/python/test_pipeline.py, which compares them with scipy and medpy.
//
//   swinrt_pipeline_probe zoom IN.npy OUT.npy --order 3|0 --shape H,W [--repeat N]
//       IN: HxW or BxHxW; order 3 takes floats (OUT float32), order 0
//       integers (OUT int32). With --repeat, prints the median milliseconds
//       of N runs over all slices.
//   swinrt_pipeline_probe hd95 A.npy B.npy [--spacing s0,s1,s2] [--repeat N]
//       prints dc and hd95 of the masks (nonzero = object) and the median
//       milliseconds of hd95.
//   swinrt_pipeline_probe evaluate PRED.npy GT.npy --classes N [--repeat N]
//       evaluate_volume for classes 1..N-1 with unit spacing (the protocol's
//       metrics of one case): prints "class dice hd95" lines and the median
//       milliseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <string>
#include <vector>

#include "pipeline/metrics.h"
#include "pipeline/npy.h"
#include "pipeline/zoom.h"
#include "swinrt/error.h"

namespace {

using swinrt::Error;

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    out.push_back(std::stod(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string option(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

template <typename F>
double median_ms(int repeat, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int zoom(int argc, char** argv) {
  const swinrt::NpyArray in = swinrt::read_npy(argv[2]);
  const int order = std::stoi(option(argc, argv, "--order", "3"));
  const std::vector<double> shape = parse_list(option(argc, argv, "--shape", ""));
  const int repeat = std::stoi(option(argc, argv, "--repeat", "1"));
  if (shape.size() != 2 || (in.shape.size() != 2 && in.shape.size() != 3)) throw Error("zoom: HxW or BxHxW and --shape H,W expected");
  const int64_t B = in.shape.size() == 3 ? in.shape[0] : 1;
  const int64_t H = in.shape[in.shape.size() - 2], W = in.shape.back();
  const int64_t OH = static_cast<int64_t>(shape[0]), OW = static_cast<int64_t>(shape[1]);
  const swinrt::Zoom2D z(H, W, OH, OW, order);
  std::vector<int64_t> out_shape = in.shape;
  out_shape[out_shape.size() - 2] = OH;
  out_shape.back() = OW;
  double ms = 0;
  if (order == 3) {
    if (in.integer) throw Error("zoom --order 3 takes float slices");
    std::vector<float> out(static_cast<size_t>(B * OH * OW));
    ms = median_ms(repeat, [&] { z.apply_many(B, in.data.data(), out.data()); });
    swinrt::write_npy_f32(argv[3], out_shape, out.data());
  } else {
    if (!in.integer) throw Error("zoom --order 0 takes integer labels");
    std::vector<int32_t> lab(in.ints.begin(), in.ints.end()), out(static_cast<size_t>(B * OH * OW));
    ms = median_ms(repeat, [&] { z.apply_many(B, lab.data(), out.data()); });
    swinrt::write_npy_i32(argv[3], out_shape, out.data());
  }
  if (repeat > 1) fmt::print("median_ms {:.4f}\n", ms);
  return 0;
}

int hd95(int argc, char** argv) {
  const swinrt::NpyArray a = swinrt::read_npy(argv[2]), b = swinrt::read_npy(argv[3]);
  if (a.shape != b.shape) throw Error("hd95: masks of equal shape expected");
  const int repeat = std::stoi(option(argc, argv, "--repeat", "1"));
  const swinrt::VolumeShape vs = swinrt::volume_shape(a.shape);
  swinrt::Spacing3 sp{1.0, 1.0, 1.0};
  const std::string s = option(argc, argv, "--spacing", "");
  if (!s.empty()) {
    const std::vector<double> v = parse_list(s);
    if (static_cast<int>(v.size()) != vs.rank) throw Error("hd95: one spacing per axis expected");
    for (int i = 0; i < vs.rank; ++i) sp[3 - vs.rank + i] = v[i];
  }
  auto mask = [](const swinrt::NpyArray& x) {
    std::vector<uint8_t> m(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < m.size(); ++i) m[i] = x.integer ? x.ints[i] != 0 : x.data[i] != 0.f;
    return m;
  };
  const std::vector<uint8_t> ma = mask(a), mb = mask(b);
  double h = 0;
  const double ms = median_ms(repeat, [&] { h = swinrt::hd95(ma.data(), mb.data(), vs, sp); });
  fmt::print("dc {:.17g}\nhd95 {:.17g}\nmedian_ms {:.4f}\n", swinrt::dice_coefficient(ma.data(), mb.data(), vs.voxels()), h,
             ms);
  return 0;
}

int evaluate(int argc, char** argv) {
  const swinrt::NpyArray a = swinrt::read_npy(argv[2]), b = swinrt::read_npy(argv[3]);
  if (a.shape != b.shape || !a.integer || !b.integer) throw Error("evaluate: integer label volumes of equal shape expected");
  const int classes = std::stoi(option(argc, argv, "--classes", "9"));
  const int repeat = std::stoi(option(argc, argv, "--repeat", "1"));
  const std::vector<int32_t> p(a.ints.begin(), a.ints.end()), g(b.ints.begin(), b.ints.end());
  std::vector<int> cl;
  for (int c = 1; c < classes; ++c) cl.push_back(c);
  std::vector<swinrt::ClassMetric> m;
  const double ms = median_ms(repeat, [&] {
    m = swinrt::evaluate_volume(p.data(), g.data(), swinrt::volume_shape(a.shape), {1.0, 1.0, 1.0}, cl);
  });
  for (size_t k = 0; k < m.size(); ++k) fmt::print("{} {:.17g} {:.17g}\n", cl[k], m[k].dice, m[k].hd95);
  fmt::print("median_ms {:.4f}\n", ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: swinrt_pipeline_probe zoom|hd95 ...\n");
    return 2;
  }
  try {
    const std::string cmd = argv[1];
    if (cmd == "zoom") return zoom(argc, argv);
    if (cmd == "hd95") return hd95(argc, argv);
    if (cmd == "evaluate") return evaluate(argc, argv);
    std::fprintf(stderr, "unknown command %s\n", argv[1]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "swinrt_pipeline_probe: error: %s\n", e.what());
    return 1;
  }
}
