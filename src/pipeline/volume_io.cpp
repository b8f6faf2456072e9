// Synapse .npy.h5 reading (HDF5 C API), NIfTI reading (niftilib) and NIfTI-1
// writing (header struct from nifti1.h, bytes through zlib), .npy labels.
#include "volume_io.h"

#include <hdf5.h>
#ifdef SWINRT_WITH_NIFTI
#include <nifti2_io.h>
#endif
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <limits>
#include <memory>
#include <mutex>
#include <unistd.h>

#include "npy.h"
#include "swinrt/error.h"

namespace swinrt {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out.empty() ? "scalar" : out;
}

// "z=.., y=.., x=.." of flat index i in a C-ordered array of `shape`.
std::string voxel_text(const std::vector<int64_t>& shape, int64_t i) {
  std::vector<int64_t> c(shape.size());
  for (size_t a = shape.size(); a-- > 0;) {
    c[a] = i % shape[a];
    i /= shape[a];
  }
  std::string out = "(";
  for (size_t a = 0; a < c.size(); ++a) out += (a ? ", " : "") + std::to_string(c[a]);
  return out + ")";
}

// A label value must be an integer that fits int32 (label == i compares
// exactly in the original).
int32_t to_label(double v, const std::string& where, const std::vector<int64_t>& shape, int64_t i) {
  if (!std::isfinite(v) || v != std::floor(v) || v < std::numeric_limits<int32_t>::min() ||
      v > std::numeric_limits<int32_t>::max())
    throw Error(fmt::format("{}: label voxel {} is {}; integral class labels expected", where, voxel_text(shape, i), v));
  return static_cast<int32_t>(v);
}

void check_finite(const std::vector<float>& v, const std::string& where, const std::vector<int64_t>& shape) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw Error(fmt::format("{}: image voxel {} is {}; finite values expected", where,
                              voxel_text(shape, static_cast<int64_t>(i)), v[i]));
}

void require_file(const std::string& path, const std::string& where) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(fmt::format("{}: cannot open (no such file)", where));
  if (std::filesystem::is_directory(path, ec)) throw Error(fmt::format("{}: is a directory, a file expected", where));
}

// ---------------------------------------------------------------- HDF5

// One HDF5 call at a time: a build need not be thread-safe (Debian's 1.10
// is, with its error settings per thread).
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

class H5Id {
 public:
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Id() {
    if (id_ >= 0) close_(id_);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

struct H5Dataset {
  std::vector<int64_t> shape;
  H5T_class_t cls = H5T_NO_CLASS;
};

// Opens dataset `name`, checks it holds numbers, returns its shape.
H5Dataset probe_dataset(hid_t file, const char* name, const std::string& where) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
    throw Error(fmt::format("{}: no dataset '{}' (datasets 'image' and 'label' expected)", where, name));
  H5Id ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw Error(fmt::format("{}: '{}' is not a readable dataset", where, name));
  H5Id type(H5Dget_type(ds.get()), H5Tclose);
  H5Dataset out;
  out.cls = type.ok() ? H5Tget_class(type.get()) : H5T_NO_CLASS;
  if (out.cls != H5T_INTEGER && out.cls != H5T_FLOAT)
    throw Error(fmt::format("{}: dataset '{}' does not hold integers or floats", where, name));
  H5Id space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) throw Error(fmt::format("{}: dataset '{}' has an unreadable shape", where, name));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  for (hsize_t d : dims) out.shape.push_back(static_cast<int64_t>(d));
  return out;
}

// Reads slices [z0, z0 + nz) of a DxHxW dataset, converted to `mem_type`.
void read_slices(hid_t file, const char* name, const std::vector<int64_t>& shape, int64_t z0, int64_t nz,
                 hid_t mem_type, void* out, const std::string& where) {
  H5Id ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  H5Id fspace(H5Dget_space(ds.get()), H5Sclose);
  const hsize_t start[3] = {static_cast<hsize_t>(z0), 0, 0};
  const hsize_t count[3] = {static_cast<hsize_t>(nz), static_cast<hsize_t>(shape[1]), static_cast<hsize_t>(shape[2])};
  H5Id mspace(H5Screate_simple(3, count, nullptr), H5Sclose);
  if (!ds.ok() || !fspace.ok() || !mspace.ok() ||
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
      H5Dread(ds.get(), mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, out) < 0)
    throw Error(fmt::format("{}: reading dataset '{}' failed (truncated or corrupt file?)", where, name));
}

}  // namespace

void quiet_hdf5_diagnostics() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

SynapseCase read_synapse_case(const std::string& path, const std::string& case_name) {
  const std::string where = fmt::format("case {} ({})", case_name, path);
  require_file(path, where);
  SynapseCase c;
  c.name = case_name;
  quiet_hdf5_diagnostics();  // on this thread: HDF5's errors become exceptions, not stderr noise
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) throw Error(fmt::format("{}: not a readable HDF5 file", where));
    const H5Dataset img = probe_dataset(file.get(), "image", where);
    const H5Dataset lab = probe_dataset(file.get(), "label", where);
    if (img.shape.size() != 3)
      throw Error(fmt::format("{}: 'image' has shape {}; a volume DxHxW (rank 3) expected", where, shape_text(img.shape)));
    if (lab.shape != img.shape)
      throw Error(fmt::format("{}: 'label' has shape {}, 'image' {}; equal shapes expected", where,
                              shape_text(lab.shape), shape_text(img.shape)));
    for (int64_t d : img.shape)
      if (d <= 0) throw Error(fmt::format("{}: 'image' has an empty shape {}", where, shape_text(img.shape)));
    c.shape = img.shape;
    const int64_t D = c.shape[0], HW = c.shape[1] * c.shape[2];
    c.image.resize(static_cast<size_t>(D * HW));
    c.label.resize(static_cast<size_t>(D * HW));
    read_slices(file.get(), "image", c.shape, 0, D, H5T_NATIVE_FLOAT, c.image.data(), where);
    // Labels through double, a few slices at a time, so that any stored type
    // converts exactly and memory stays bounded.
    const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 22) / HW);
    std::vector<double> buf;
    for (int64_t z0 = 0; z0 < D; z0 += chunk) {
      const int64_t nz = std::min(chunk, D - z0);
      buf.resize(static_cast<size_t>(nz * HW));
      read_slices(file.get(), "label", c.shape, z0, nz, H5T_NATIVE_DOUBLE, buf.data(), where);
      for (int64_t i = 0; i < nz * HW; ++i) c.label[z0 * HW + i] = to_label(buf[i], where, c.shape, z0 * HW + i);
    }
  }
  check_finite(c.image, where, c.shape);
  return c;
}

// ---------------------------------------------------------------- NIfTI

bool has_nifti_extension(const std::string& path) { return ends_with(path, ".nii") || ends_with(path, ".nii.gz"); }

#ifdef SWINRT_WITH_NIFTI
namespace {

struct NiftiFree {
  void operator()(nifti_image* n) const { nifti_image_free(n); }
};

// Reads a NIfTI file: the C-ordered shape, spacing per array axis and values.
template <typename Out>
void read_nifti_values(const std::string& path, std::vector<int64_t>& shape, std::vector<double>& spacing,
                       std::vector<Out>& out) {
  require_file(path, path);
  static std::once_flag quiet;
  std::call_once(quiet, [] { nifti_set_debug_level(0); });
  std::unique_ptr<nifti_image, NiftiFree> nim(nifti_image_read(path.c_str(), 1));
  if (!nim || !nim->data)
    throw Error(fmt::format("{}: not a readable NIfTI-1/2 image (bad header, or data truncated)", path));
  const int64_t ndim = nim->dim[0];
  if (ndim < 1 || ndim > 7) throw Error(fmt::format("{}: NIfTI dim[0] = {} is invalid", path, ndim));
  for (int64_t a = 4; a <= ndim; ++a)
    if (nim->dim[a] != 1)
      throw Error(fmt::format("{}: a {}-D image (dim[{}] = {}); at most 3 spatial dimensions expected", path, ndim, a,
                              nim->dim[a]));
  const int rank = static_cast<int>(std::min<int64_t>(ndim, 3));
  shape.clear();
  spacing.clear();
  for (int a = rank; a >= 1; --a) {
    if (nim->dim[a] <= 0) throw Error(fmt::format("{}: NIfTI dim[{}] = {} is not positive", path, a, nim->dim[a]));
    shape.push_back(nim->dim[a]);
    spacing.push_back(std::fabs(nim->pixdim[a]) > 0 ? std::fabs(nim->pixdim[a]) : 1.0);
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n != nim->nvox) throw Error(fmt::format("{}: NIfTI voxel count {} does not match its dims", path, nim->nvox));
  const bool scaled = nim->scl_slope != 0.0 && !(nim->scl_slope == 1.0 && nim->scl_inter == 0.0);
  const double slope = nim->scl_slope, inter = nim->scl_inter;
  const void* data = nim->data;
  auto value = [&](int64_t i) -> double {
    switch (nim->datatype) {
      case DT_UINT8: return static_cast<const uint8_t*>(data)[i];
      case DT_INT8: return static_cast<const int8_t*>(data)[i];
      case DT_INT16: return static_cast<const int16_t*>(data)[i];
      case DT_UINT16: return static_cast<const uint16_t*>(data)[i];
      case DT_INT32: return static_cast<const int32_t*>(data)[i];
      case DT_UINT32: return static_cast<const uint32_t*>(data)[i];
      case DT_INT64: return static_cast<double>(static_cast<const int64_t*>(data)[i]);
      case DT_UINT64: return static_cast<double>(static_cast<const uint64_t*>(data)[i]);
      case DT_FLOAT32: return static_cast<const float*>(data)[i];
      case DT_FLOAT64: return static_cast<const double*>(data)[i];
      default: return 0.0;
    }
  };
  switch (nim->datatype) {
    case DT_UINT8: case DT_INT8: case DT_INT16: case DT_UINT16: case DT_INT32: case DT_UINT32:
    case DT_INT64: case DT_UINT64: case DT_FLOAT32: case DT_FLOAT64: break;
    default:
      throw Error(fmt::format("{}: NIfTI datatype {} ({}) is not supported (integer or real voxels expected)", path,
                              nim->datatype, nifti_datatype_string(nim->datatype)));
  }
  out.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double v = value(i);
    if (scaled) v = v * slope + inter;
    if constexpr (std::is_same_v<Out, int32_t>) {
      out[i] = to_label(v, path, shape, i);
    } else {
      out[i] = static_cast<float>(v);
    }
  }
}

}  // namespace
#else
namespace {
template <typename Out>
void read_nifti_values(const std::string& path, std::vector<int64_t>&, std::vector<double>&, std::vector<Out>&) {
  throw Error(fmt::format("{}: this swinrt was built without NIfTI support (install libnifti2-dev and rebuild)", path));
}
}  // namespace
#endif

ImageVolume read_nifti(const std::string& path) {
  ImageVolume v;
  read_nifti_values(path, v.shape, v.spacing, v.data);
  check_finite(v.data, path, v.shape);
  return v;
}

SynapseCase read_nifti_case(const std::string& image_path, const std::string& label_path, const std::string& case_name,
                            bool synapse_window) {
  SynapseCase c;
  c.name = case_name;
  ImageVolume img = read_nifti(image_path);
  if (img.shape.size() != 3)
    throw Error(fmt::format("{}: an image of shape {}; a volume (3 dimensions) expected", image_path,
                            shape_text(img.shape)));
  c.shape = img.shape;
  c.image = std::move(img.data);
  if (synapse_window)
    for (float& v : c.image) v = (std::min(std::max(v, -125.0f), 275.0f) + 125.0f) / 400.0f;
  if (!label_path.empty()) {
    LabelVolume lab = read_label_volume(label_path);
    if (lab.shape != c.shape)
      throw Error(fmt::format("{}: labels of shape {}, the image {} is {}; equal shapes expected", label_path,
                              shape_text(lab.shape), image_path, shape_text(c.shape)));
    c.label = std::move(lab.labels);
  }
  return c;
}

std::string nifti_case_name(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (const char* ext : {".nii.gz", ".nii"})
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::strlen(ext));
  return name;
}

LabelVolume read_label_volume(const std::string& path) {
  LabelVolume v;
  if (has_nifti_extension(path)) {
    read_nifti_values(path, v.shape, v.spacing, v.labels);
    return v;
  }
  if (!ends_with(path, ".npy"))
    throw Error(fmt::format("{}: unknown label volume format (.nii, .nii.gz or .npy expected)", path));
  NpyArray a = read_npy(path);
  v.shape = a.shape;
  const int64_t n = a.numel();
  v.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v.labels[i] = to_label(a.integer ? static_cast<double>(a.ints[i]) : a.data[i], path, v.shape, i);
  return v;
}

void write_nifti(const std::string& path, const std::vector<int64_t>& shape, const float* data,
                 const std::array<double, 3>& spacing_xyz) {
#ifndef SWINRT_WITH_NIFTI
  (void)shape, (void)data, (void)spacing_xyz;
  throw Error(fmt::format("{}: this swinrt was built without NIfTI support (install libnifti2-dev and rebuild)", path));
#else
  if (shape.size() != 2 && shape.size() != 3)
    throw Error(fmt::format("{}: NIfTI output of shape {}: 2 or 3 dimensions expected", path, shape_text(shape)));
  nifti_1_header h;
  std::memset(&h, 0, sizeof h);
  static_assert(sizeof(nifti_1_header) == 348);
  h.sizeof_hdr = 348;
  h.regular = 'r';
  const int rank = static_cast<int>(shape.size());
  h.dim[0] = static_cast<short>(rank);
  for (int a = 1; a < 8; ++a) h.dim[a] = 1;
  int64_t n = 1;
  for (int a = 0; a < rank; ++a) {
    const int64_t d = shape[rank - 1 - a];  // x = last array axis
    if (d <= 0 || d > 32767) throw Error(fmt::format("{}: axis of {} voxels does not fit NIfTI-1", path, d));
    h.dim[a + 1] = static_cast<short>(d);
    n *= d;
  }
  h.datatype = DT_FLOAT32;
  h.bitpix = 32;
  h.pixdim[0] = 1.0f;  // qfac
  for (int a = 1; a < 8; ++a) h.pixdim[a] = 1.0f;
  for (int a = 0; a < rank; ++a) h.pixdim[a + 1] = static_cast<float>(spacing_xyz[a]);
  h.vox_offset = 352.0f;
  h.scl_slope = 1.0f;
  h.xyzt_units = NIFTI_UNITS_MM | NIFTI_UNITS_SEC;
  // Identity direction in ITK's LPS is diag(-1, -1, 1) in NIfTI's RAS: a
  // rotation of 180 degrees about z, quaternion (0, 0, 0, 1).
  h.qform_code = NIFTI_XFORM_SCANNER_ANAT;
  h.sform_code = NIFTI_XFORM_SCANNER_ANAT;
  h.quatern_d = 1.0f;
  h.srow_x[0] = -h.pixdim[1];
  h.srow_y[1] = -h.pixdim[2];
  h.srow_z[2] = h.pixdim[3];
  std::memcpy(h.magic, "n+1", 4);

  std::string head(reinterpret_cast<const char*>(&h), sizeof h);
  head.append(4, '\0');  // no extensions
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  const std::string tmp = fmt::format("{}.tmp{}", path, static_cast<long>(::getpid()));
  bool ok = true;
  if (ends_with(path, ".gz")) {
    gzFile f = gzopen(tmp.c_str(), "wb1");
    if (!f) throw Error(fmt::format("{}: cannot write ({})", path, std::strerror(errno)));
    ok = gzwrite(f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size());
    const char* p = reinterpret_cast<const char*>(data);
    for (size_t off = 0; ok && off < bytes;) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes - off, size_t{1} << 26));
      ok = gzwrite(f, p + off, chunk) == static_cast<int>(chunk);
      off += chunk;
    }
    ok = (gzclose(f) == Z_OK) && ok;
  } else {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(fmt::format("{}: cannot write ({})", path, std::strerror(errno)));
    ok = std::fwrite(head.data(), 1, head.size(), f) == head.size() && std::fwrite(data, 1, bytes, f) == bytes;
    ok = (std::fclose(f) == 0) && ok;
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno ? std::strerror(errno) : "write error";
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: write failed ({})", path, why));
  }
#endif
}

}  // namespace swinrt
