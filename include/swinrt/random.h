// Random-weight models for tests and benchmarks: every parameter drawn at a
// scale that keeps activations O(1) through the network (linear weights
// N(0, 1/fan_in), LayerNorm gains 1 + N(0, 0.1), biases N(0, 0.1), position
// bias tables N(0, 0.5)), so all of them matter to the output.
#pragma once

#include <cstdint>
#include <string>

#include "swinrt/weights.h"

namespace swinrt {

Weights random_weights(const Config& c, uint64_t seed);
// Named configs: "swin-t" (Swin-Unet-T, 224, 9 classes), "tiny" (a 64x64,
// embed 24 model for fast tests), "w8" (embed 48, window 8, 256x256, 4 classes),
// "ape" (tiny with ape=True, qkv_bias=False, qk_scale=0.25), "hd48" (tiny
// with embed 48: head dim 48 at every stage), "hd64" (tiny with embed 64:
// head dim 64 at every stage).
Config named_config(const std::string& name);

}  // namespace swinrt
