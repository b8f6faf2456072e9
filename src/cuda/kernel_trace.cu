// KernelTrace (kernel_trace.h): CUPTI's activity API, opened with dlopen.
#include "kernel_trace.h"

#include <cupti_activity.h>
#include <cxxabi.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "swinrt/error.h"

namespace swinrt::cuda {

namespace {

// The CUPTI entry points used, resolved once from libcupti.
struct Cupti {
  using BufferRequest = void (*)(uint8_t**, size_t*, size_t*);
  using BufferComplete = void (*)(CUcontext, uint32_t, uint8_t*, size_t, size_t);
  CUptiResult (*register_callbacks)(BufferRequest, BufferComplete) = nullptr;
  CUptiResult (*enable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*disable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*flush_all)(uint32_t) = nullptr;
  CUptiResult (*next_record)(uint8_t*, size_t, CUpti_Activity**) = nullptr;
  CUptiResult (*result_string)(CUptiResult, const char**) = nullptr;
  std::string error;  // why it could not be opened, or empty

  Cupti() {
    void* lib = nullptr;
    for (const char* name : {"libcupti.so.13", "libcupti.so", "/usr/local/cuda/lib64/libcupti.so.13",
                             "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
      error = "--timeline needs CUPTI (libcupti.so.13, part of the CUDA toolkit), which could not be opened";
      return;
    }
    auto get = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      if (!fn && error.empty()) error = fmt::format("libcupti has no {}", symbol);
    };
    get(register_callbacks, "cuptiActivityRegisterCallbacks");
    get(enable, "cuptiActivityEnable");
    get(disable, "cuptiActivityDisable");
    get(flush_all, "cuptiActivityFlushAll");
    get(next_record, "cuptiActivityGetNextRecord");
    get(result_string, "cuptiGetResultString");
  }

  void check(CUptiResult r, const char* what) const {
    if (r == CUPTI_SUCCESS) return;
    const char* s = "unknown error";
    if (result_string) result_string(r, &s);
    throw Error(fmt::format("--timeline: {} failed: {}", what, s));
  }
};

const Cupti& cupti() {
  static const Cupti c;
  if (!c.error.empty()) throw Error(c.error);
  return c;
}

std::mutex g_mu;
std::vector<KernelRecord> g_records;
std::once_flag g_registered;  // CUPTI's buffer callbacks, registered by the first trace (again if that threw)

// The last identifier of an Itanium-mangled nested name (_ZN<len><id>...): what
// is left where the demangler gives up on a long template signature.
std::string last_identifier(const std::string& m) {
  size_t i = m.rfind("_ZN", 0) == 0 ? 3 : m.rfind("_Z", 0) == 0 ? 2 : std::string::npos;
  if (i == std::string::npos) return m;
  std::string last;
  while (i < m.size()) {
    if (m[i] == 'L' || m[i] == 'K') {  // internal linkage, const
      ++i;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(m[i]))) break;
    size_t len = 0;
    while (i < m.size() && std::isdigit(static_cast<unsigned char>(m[i]))) len = 10 * len + (m[i++] - '0');
    if (i + len > m.size()) break;
    last = m.substr(i, len);
    i += len;
  }
  return last.empty() ? m : last;
}

// The kernel's name as a reader knows it: demangled, with neither its
// scopes, template arguments nor parameters ("swin_block_kernel").
std::string short_name(const char* mangled) {
  if (!mangled) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  if (status != 0 || !d) {
    std::free(d);
    return last_identifier(mangled);
  }
  std::string s = d;
  std::free(d);
  for (size_t a; (a = s.find("(anonymous namespace)::")) != std::string::npos;) s.erase(a, 23);
  const size_t cut = s.find_first_of("<(");
  if (cut != std::string::npos) s.resize(cut);
  const size_t space = s.rfind(' ');  // after the return type
  if (space != std::string::npos) s = s.substr(space + 1);
  const size_t scope = s.rfind("::");
  if (scope != std::string::npos) s = s.substr(scope + 2);
  return s;
}

constexpr size_t kBufferBytes = size_t(4) << 20;

void buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  const Cupti& c = cupti();
  CUpti_Activity* rec = nullptr;
  std::lock_guard<std::mutex> lock(g_mu);
  while (c.next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    g_records.push_back(KernelRecord{k->start, k->end, k->correlationId, short_name(k->name)});
  }
  std::free(buffer);
}

}  // namespace

KernelTrace::KernelTrace() {
  const Cupti& c = cupti();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_records.clear();
  }
  std::call_once(g_registered, [&] {
    c.check(c.register_callbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  });
  c.check(c.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
  running_ = true;
}

KernelTrace::~KernelTrace() {
  if (running_) {
    const Cupti& c = cupti();
    c.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    c.flush_all(1);
  }
}

std::vector<KernelRecord> KernelTrace::stop() {
  const Cupti& c = cupti();
  running_ = false;
  c.check(c.flush_all(1), "cuptiActivityFlushAll");
  c.check(c.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityDisable");
  std::vector<KernelRecord> out;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    out.swap(g_records);
  }
  std::sort(out.begin(), out.end(), [](const KernelRecord& a, const KernelRecord& b) { return a.start < b.start; });
  return out;
}

}  // namespace swinrt::cuda
