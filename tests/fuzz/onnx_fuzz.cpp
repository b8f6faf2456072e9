// libFuzzer target: arbitrary bytes -> swinrt::load_onnx_bytes. Any outcome
// other than Weights or a swinrt::Error (a crash, a sanitizer report, another
// exception type, a leak, a timeout) is a bug. Built by -DSWINRT_FUZZ=ON with
// clang; run by scripts/fuzz-onnx.sh (./swinrt.sh test runs it for a fixed
// time) on the seed corpus tests/fuzz/corpus/ (tests/fuzz/make_corpus.py).
#include <cstddef>
#include <cstdint>

#include "swinrt/error.h"
#include "swinrt/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    swinrt::load_onnx_bytes(data, size, "fuzz-input");
  } catch (const swinrt::Error&) {
  }
  return 0;
}
