// Volume files of the evaluation pipeline:
//  - Synapse test cases, <case>.npy.h5 (HDF5: datasets `image` DxHxW and
//    `label` DxHxW), as the original Synapse_dataset reads them;
//  - NIfTI-1/2 images (.nii, .nii.gz; read with niftilib, written as NIfTI-1
//    through zlib) and .npy label volumes, for `swinrt metrics`.
// Arrays are C-ordered as numpy (and SimpleITK's GetArrayFromImage) see
// them: a NIfTI image of nx, ny, nz voxels is the array [nz, ny, nx].
// Every failure throws swinrt::Error naming the file (and case) and what was
// expected; every write goes to a temporary name renamed at the end.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace swinrt {

struct SynapseCase {
  std::string name;
  std::vector<int64_t> shape;   // D, H, W
  std::vector<float> image;     // any integer or float dataset, as float32
  std::vector<int32_t> label;   // integral values of any integer or float dataset
};

// Reads and checks `path` (rank 3, equal image/label shapes, finite image,
// integral labels); `case_name` goes into error messages.
SynapseCase read_synapse_case(const std::string& path, const std::string& case_name);

// Turns HDF5's own printing of its error stack off for the calling thread
// (read_synapse_case calls it on its own). A program that reads cases on
// other threads calls this on the thread that will exit: HDF5 1.10 prints
// "HDF5: infinite loop closing library" at exit, from that thread's
// settings, after a damaged file failed to open (HDFGroup/hdf5 issue 6677).
void quiet_hdf5_diagnostics();

// A case from NIfTI files: the image (rank 3, read as [z, y, x] like the
// Synapse arrays and swinrt eval's own --save-nifti output) and, when
// `label_path` is not empty, a label volume of the same shape (.nii, .nii.gz
// or .npy). `synapse_window`: the Synapse preprocessing of raw CT in HU,
// clip to [-125, 275] and scale to [0, 1]; otherwise the values are used as
// they are. An empty label vector means "no ground truth".
SynapseCase read_nifti_case(const std::string& image_path, const std::string& label_path, const std::string& case_name,
                            bool synapse_window);

// The case name of a NIfTI file: its file name without .nii / .nii.gz.
std::string nifti_case_name(const std::string& path);

// A label volume with the voxel spacing of its file, per array axis (empty
// when the file has none, as .npy).
struct LabelVolume {
  std::vector<int64_t> shape;
  std::vector<int32_t> labels;
  std::vector<double> spacing;
};

// .npy (any integer or float dtype; float values must be integral) or
// .nii / .nii.gz (any real datatype, scl_slope/scl_inter applied).
LabelVolume read_label_volume(const std::string& path);

struct ImageVolume {
  std::vector<int64_t> shape;
  std::vector<float> data;
  std::vector<double> spacing;  // per array axis
};
ImageVolume read_nifti(const std::string& path);

// Writes the C-ordered float32 array [D, H, W] (or [H, W]) as a NIfTI-1
// image of x = W, y = H, z = D with `spacing_xyz` (x, y, z) and the header
// SimpleITK writes for GetImageFromArray + SetSpacing: origin 0, identity
// direction (qform/sform diag(-sx, -sy, sz) in RAS). ".nii.gz" is gzipped.
void write_nifti(const std::string& path, const std::vector<int64_t>& shape, const float* data,
                 const std::array<double, 3>& spacing_xyz);

bool has_nifti_extension(const std::string& path);

}  // namespace swinrt
