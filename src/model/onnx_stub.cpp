// ONNX import when swinrt is built without protobuf (SWINRT_ONNX=OFF or no
// protoc found): the API exists and says why it cannot work.
#include <fmt/format.h>

#include "swinrt/error.h"
#include "swinrt/onnx.h"

namespace swinrt {

bool onnx_supported() { return false; }

Weights load_onnx_bytes(const void*, size_t, const std::string& name) {
  throw Error(fmt::format("{}: this swinrt was built without ONNX support (protobuf and protoc were not found; "
                          "install libprotobuf-dev and protobuf-compiler and rebuild with -DSWINRT_ONNX=ON)",
                          name));
}

Weights load_onnx(const std::string& path) { return load_onnx_bytes(nullptr, 0, path); }

}  // namespace swinrt
