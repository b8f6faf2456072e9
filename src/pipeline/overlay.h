// PNG overlays of a case's slices for `swinrt eval --save-png`: the CT slice
// in grey, the ground truth (left panel) and the prediction (right panel)
// blended in the Synapse organ colours, and a legend strip of numbered colour
// swatches. Colours and layout are in docs/EVALUATION.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "volume_io.h"

namespace swinrt {

// RGB of class k (k >= 1): the 8 Synapse organs first, then a fixed cycle.
std::array<uint8_t, 3> organ_colour(int k);

// Slices to draw: up to `count`, spread evenly over those where the ground
// truth or the prediction holds an organ (all slices when none does). A case
// without labels (c.label empty) is drawn with the CT alone on the left.
std::vector<int64_t> overlay_slices(const SynapseCase& c, const std::vector<int32_t>& pred, int count);

// Writes DIR/<case>_slice<z>.png for each chosen slice (atomically); returns the paths.
std::vector<std::string> write_overlays(const std::string& dir, const SynapseCase& c, const std::vector<int32_t>& pred,
                                        int num_classes, int count = 4);

// An 8-bit RGB PNG (no row filters), written through a temporary file.
void write_png_rgb(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb);

}  // namespace swinrt
