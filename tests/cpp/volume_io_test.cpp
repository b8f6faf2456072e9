// Volume I/O: Synapse .npy.h5 cases and NIfTI files round-trip, and every
// malformed file is refused with a message naming the file (and case) and
// what was expected.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "pipeline/npy.h"
#include "pipeline/volume_io.h"
#include "swinrt/error.h"
#include "test_util.h"

namespace swinrt {
namespace {

// Writes datasets into a new HDF5 file: name -> (shape, values, file type).
struct H5Data {
  std::string name;
  std::vector<hsize_t> shape;
  std::vector<double> values;
  hid_t file_type;
};

void write_h5(const std::string& path, const std::vector<H5Data>& sets) {
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const H5Data& d : sets) {
    const hid_t space = H5Screate_simple(static_cast<int>(d.shape.size()), d.shape.data(), nullptr);
    const hid_t ds = H5Dcreate2(f, d.name.c_str(), d.file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.values.data()), 0);
    H5Dclose(ds);
    H5Sclose(space);
  }
  H5Fclose(f);
}

std::vector<double> ramp(size_t n, double scale = 1.0) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = double(i % 17) * scale;
  return v;
}

void expect_case_error(const std::string& path, std::vector<std::string> parts) {
  try {
    read_synapse_case(path, "case0042");
    FAIL() << path << ": expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("case0042"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(SynapseCase, ReadsAnyNumericTypes) {
  const std::string path = test::temp_path("good.npy.h5");
  std::vector<double> img = ramp(2 * 3 * 4, 0.25), lab = ramp(24);
  for (double& l : lab) l = std::fmod(l, 9.0);
  write_h5(path, {{"image", {2, 3, 4}, img, H5T_IEEE_F64LE}, {"label", {2, 3, 4}, lab, H5T_STD_U8LE}});
  const SynapseCase c = read_synapse_case(path, "case0001");
  EXPECT_EQ(c.name, "case0001");
  EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 3, 4}));
  for (size_t i = 0; i < 24; ++i) {
    EXPECT_EQ(c.image[i], static_cast<float>(img[i]));
    EXPECT_EQ(c.label[i], static_cast<int32_t>(lab[i]));
  }
  // Synapse's own types: float32 image, float32 label.
  write_h5(path, {{"image", {2, 3, 4}, img, H5T_IEEE_F32LE}, {"label", {2, 3, 4}, lab, H5T_IEEE_F32LE}});
  EXPECT_EQ(read_synapse_case(path, "c").label[5], 5);
}

TEST(SynapseCase, RefusesMalformedFiles) {
  const std::string dir = test::temp_path("");
  const std::vector<double> img = ramp(24), lab(24, 1.0);
  expect_case_error(dir + "/missing.npy.h5", {"no such file"});

  const std::string junk = dir + "/junk.npy.h5";
  test::write_bytes(junk, "this is not an HDF5 file at all");
  expect_case_error(junk, {"not a readable HDF5 file"});

  const std::string nolabel = dir + "/nolabel.npy.h5";
  write_h5(nolabel, {{"image", {2, 3, 4}, img, H5T_IEEE_F32LE}});
  expect_case_error(nolabel, {"no dataset 'label'"});

  const std::string rank2 = dir + "/rank2.npy.h5";
  write_h5(rank2, {{"image", {6, 4}, img, H5T_IEEE_F32LE}, {"label", {6, 4}, lab, H5T_IEEE_F32LE}});
  expect_case_error(rank2, {"rank 3", "6x4"});

  const std::string mismatch = dir + "/mismatch.npy.h5";
  write_h5(mismatch, {{"image", {2, 3, 4}, img, H5T_IEEE_F32LE}, {"label", {2, 4, 3}, lab, H5T_IEEE_F32LE}});
  expect_case_error(mismatch, {"2x4x3", "2x3x4", "equal shapes"});

  const std::string nan = dir + "/nan.npy.h5";
  std::vector<double> bad = img;
  bad[13] = std::numeric_limits<double>::quiet_NaN();
  write_h5(nan, {{"image", {2, 3, 4}, bad, H5T_IEEE_F32LE}, {"label", {2, 3, 4}, lab, H5T_IEEE_F32LE}});
  expect_case_error(nan, {"(1, 0, 1)", "finite"});

  const std::string inf = dir + "/inf.npy.h5";
  bad = img;
  bad[0] = 1e300;  // overflows float32
  write_h5(inf, {{"image", {2, 3, 4}, bad, H5T_IEEE_F64LE}, {"label", {2, 3, 4}, lab, H5T_IEEE_F32LE}});
  expect_case_error(inf, {"finite"});

  const std::string frac = dir + "/frac.npy.h5";
  std::vector<double> flab = lab;
  flab[23] = 1.5;
  write_h5(frac, {{"image", {2, 3, 4}, img, H5T_IEEE_F32LE}, {"label", {2, 3, 4}, flab, H5T_IEEE_F32LE}});
  expect_case_error(frac, {"(1, 2, 3)", "1.5", "integral"});

  // A valid file cut short: the data are gone.
  const std::string good = dir + "/tocut.npy.h5";
  write_h5(good, {{"image", {8, 32, 32}, ramp(8 * 32 * 32), H5T_IEEE_F32LE},
                  {"label", {8, 32, 32}, std::vector<double>(8 * 32 * 32, 2.0), H5T_IEEE_F32LE}});
  const auto size = std::filesystem::file_size(good);
  std::filesystem::resize_file(good, size / 2);
  expect_case_error(good, {});
}

TEST(Nifti, RoundTripsWithSpacing) {
#ifndef SWINRT_WITH_NIFTI
  GTEST_SKIP() << "built without NIfTI support";
#endif
  for (const char* ext : {".nii", ".nii.gz"}) {
    const std::string path = test::temp_path(std::string("vol") + ext);
    std::vector<float> v(3 * 4 * 5);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 7);
    write_nifti(path, {3, 4, 5}, v.data(), {0.5, 0.75, 2.5});
    const ImageVolume img = read_nifti(path);
    EXPECT_EQ(img.shape, (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(img.data, v);
    EXPECT_EQ(img.spacing, (std::vector<double>{2.5, 0.75, 0.5}));  // per array axis (z, y, x)
    const LabelVolume lab = read_label_volume(path);
    EXPECT_EQ(lab.labels[8], 1);
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
      EXPECT_EQ(e.path().string().find(path + ".tmp"), std::string::npos) << "temporary left behind: " << e.path();
  }
}

// eval --image: a NIfTI case, the Synapse window on HU values, labels of
// the same shape, and the refusals.
TEST(Nifti, CasesForEval) {
#ifndef SWINRT_WITH_NIFTI
  GTEST_SKIP() << "built without NIfTI support";
#endif
  const std::string img = test::temp_path("ct.nii.gz"), lab = test::temp_path("ct_gt.nii.gz");
  const std::vector<float> hu = {-1000.f, -125.f, 75.f, 275.f, 3000.f, 0.f, 175.f, -25.f};
  write_nifti(img, {2, 2, 2}, hu.data(), {1.0, 1.0, 1.0});
  const std::vector<float> labels = {0, 1, 2, 3, 0, 1, 2, 8};
  write_nifti(lab, {2, 2, 2}, labels.data(), {1.0, 1.0, 1.0});
  EXPECT_EQ(nifti_case_name(img), "ct");
  EXPECT_EQ(nifti_case_name("/a/b/case0001.nii"), "case0001");

  const SynapseCase c = read_nifti_case(img, lab, "ct", true);
  EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 2, 2}));
  // clip to [-125, 275], then (v + 125) / 400, in float.
  const std::vector<float> want = {0.f, 0.f, 0.5f, 1.f, 1.f, 125.f / 400.f, 300.f / 400.f, 100.f / 400.f};
  EXPECT_EQ(c.image, want);
  EXPECT_EQ(c.label, (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 8}));
  const SynapseCase raw = read_nifti_case(img, "", "ct", false);
  EXPECT_EQ(raw.image, hu);
  EXPECT_TRUE(raw.label.empty());

  auto refused = [](const std::function<void()>& f, const std::string& file, const std::string& what) {
    try {
      f();
      FAIL() << "expected an error about " << what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  const std::string small = test::temp_path("small_gt.nii.gz"), flat = test::temp_path("flat.nii.gz");
  write_nifti(small, {2, 2}, labels.data(), {1.0, 1.0, 1.0});
  refused([&] { read_nifti_case(img, small, "ct", true); }, small, "equal shapes");
  write_nifti(flat, {2, 4}, hu.data(), {1.0, 1.0, 1.0});
  refused([&] { read_nifti_case(flat, "", "flat", true); }, flat, "3 dimensions");
  refused([&] { read_nifti_case(test::temp_path("missing.nii.gz"), "", "m", true); }, "missing.nii.gz", "cannot open");
}

TEST(Nifti, RefusesMalformedFiles) {
#ifndef SWINRT_WITH_NIFTI
  GTEST_SKIP() << "built without NIfTI support";
#endif
  auto expect_error = [](const std::string& path, const std::string& part) {
    try {
      read_label_volume(path);
      FAIL() << path << ": expected an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
    }
  };
  expect_error(test::temp_path("absent.nii.gz"), "no such file");
  const std::string junk = test::temp_path("junk.nii");
  test::write_bytes(junk, std::string(400, 'x'));
  expect_error(junk, "not a readable NIfTI");

  const std::string cut = test::temp_path("cut.nii.gz");
  std::vector<float> v(16 * 16 * 16, 1.0f);
  write_nifti(cut, {16, 16, 16}, v.data(), {1, 1, 1});
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  expect_error(cut, "not a readable NIfTI");

  const std::string frac = test::temp_path("frac.nii");
  v[7] = 0.5f;
  write_nifti(frac, {16, 16, 16}, v.data(), {1, 1, 1});
  expect_error(frac, "integral");

  const std::string npy = test::temp_path("frac.npy");
  write_npy_f32(npy, {2, 2}, std::vector<float>{0, 1, 2.25f, 3}.data());
  expect_error(npy, "integral");
  expect_error(test::temp_path("labels.txt"), "unknown label volume format");
}

TEST(Nifti, WriteFailureLeavesNothing) {
#ifndef SWINRT_WITH_NIFTI
  GTEST_SKIP() << "built without NIfTI support";
#endif
  std::vector<float> v(8, 0.f);
  EXPECT_THROW(write_nifti("/nonexistent-dir/x.nii.gz", {2, 2, 2}, v.data(), {1, 1, 1}), Error);
  EXPECT_THROW(write_nifti(test::temp_path("x.nii"), {2, 2, 2, 1}, v.data(), {1, 1, 1}), Error);
}

}  // namespace
}  // namespace swinrt
