// KernelTrace: the start and end of every kernel the device runs while it is
// alive, read through CUPTI's activity API (concurrent-kernel records, which
// cover the kernel nodes of CUDA graphs and do not serialise them), for
// `swinrt bench --timeline`. libcupti is opened at run time (dlopen), so the
// library does not depend on it; where it is missing the constructor throws
// swinrt::Error naming it. CUPTI's activity records are the process's: one
// trace at a time (a second, alive at once, would share the first's records).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swinrt::cuda {

struct KernelRecord {
  uint64_t start = 0, end = 0;  // ns, the device's timestamps
  uint32_t correlation = 0;     // the launch API call's id (a graph launch: one id for all its kernels)
  std::string name;             // demangled, without template arguments and parameters
};

class KernelTrace {
 public:
  KernelTrace();  // starts recording
  ~KernelTrace();
  KernelTrace(const KernelTrace&) = delete;
  KernelTrace& operator=(const KernelTrace&) = delete;
  // Stops recording (after the caller synchronised the device) and returns
  // the records, ordered by start.
  std::vector<KernelRecord> stop();

 private:
  bool running_ = false;
};

}  // namespace swinrt::cuda
