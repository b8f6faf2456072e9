// ONNX import: a Swin-Unet exported to ONNX (swinrt-export, or torch.onnx.export
// of the original model) -> the same Weights a .safetensors file gives.
//
//   swinrt::Weights w = swinrt::load_onnx("model.onnx");
//
// The graph is recognised by its structure, not by initializer names: the
// patch-embedding Conv, each LayerNorm (LayerNormalization or its ReduceMean /
// Sub / Pow / Sqrt / Div decomposition), each Linear (MatMul or Gemm with a
// constant weight), the window attention (relative position bias, shift mask,
// scale), PatchMerging, PatchExpand and the 1x1 output Conv are followed along
// the data flow from the graph input, and the config (embed dim, depths,
// heads, window, classes, image size, ape, qkv bias, qk scale) is read off
// them. docs/FORMATS.md ("ONNX") lists what is accepted.
#pragma once

#include <cstddef>
#include <string>

#include "swinrt/weights.h"

namespace swinrt {

// Throws swinrt::Error naming the file: unreadable, not ONNX (corrupt or
// truncated protobuf), or not a Swin-Unet graph (naming the node that did not
// match and what was expected there). Tensors stored as external data are read
// from the files next to `path`.
Weights load_onnx(const std::string& path);
// The same for a serialized ModelProto in memory; `name` stands for the file
// in messages. External data cannot be resolved here.
Weights load_onnx_bytes(const void* data, size_t size, const std::string& name);
// False when swinrt was built without protobuf (SWINRT_ONNX=OFF): then both
// functions above throw swinrt::Error saying so.
bool onnx_supported();

}  // namespace swinrt
