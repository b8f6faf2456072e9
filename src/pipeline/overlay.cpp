// PNG overlays (see overlay.h). libpng writes into memory; the bytes reach the
// file through write_file_atomic, so a failed run leaves no partial PNG.
#include "overlay.h"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <filesystem>
#include <fmt/format.h>
#include <png.h>

#include "npy.h"
#include "swinrt/error.h"

namespace swinrt {

namespace {

constexpr int kGap = 4, kLegend = 20, kSwatch = 12;

// 3x5 digit glyphs, one row per 3 bits (MSB left).
constexpr uint8_t kDigits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                    {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1},
                                    {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

struct Canvas {
  int w, h;
  std::vector<uint8_t> rgb;
  Canvas(int w_, int h_) : w(w_), h(h_), rgb(size_t(w_) * h_ * 3, 0) {}
  void put(int x, int y, std::array<uint8_t, 3> c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    std::copy(c.begin(), c.end(), rgb.begin() + (size_t(y) * w + x) * 3);
  }
  void digit(int x, int y, int d, int scale) {
    for (int r = 0; r < 5; ++r)
      for (int col = 0; col < 3; ++col)
        if (kDigits[d][r] >> (2 - col) & 1)
          for (int dy = 0; dy < scale; ++dy)
            for (int dx = 0; dx < scale; ++dx) put(x + col * scale + dx, y + r * scale + dy, {255, 255, 255});
  }
};

void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}

}  // namespace

std::array<uint8_t, 3> organ_colour(int k) {
  // 1 aorta, 2 gallbladder, 3 left kidney, 4 right kidney, 5 liver, 6 pancreas, 7 spleen, 8 stomach.
  static constexpr std::array<std::array<uint8_t, 3>, 8> kOrgans = {{{230, 25, 75},
                                                                      {60, 180, 75},
                                                                      {0, 130, 200},
                                                                      {255, 225, 25},
                                                                      {145, 30, 180},
                                                                      {70, 240, 240},
                                                                      {245, 130, 48},
                                                                      {240, 50, 230}}};
  if (k >= 1 && k <= 8) return kOrgans[k - 1];
  return {static_cast<uint8_t>(37 * k % 256), static_cast<uint8_t>(101 * k % 256), static_cast<uint8_t>(173 * k % 256)};
}

std::vector<int64_t> overlay_slices(const SynapseCase& c, const std::vector<int32_t>& pred, int count) {
  const int64_t D = c.shape[0], HW = c.shape[1] * c.shape[2];
  std::vector<int64_t> with_organs;
  for (int64_t z = 0; z < D; ++z) {
    bool any = false;
    for (int64_t p = z * HW; p < (z + 1) * HW && !any; ++p) any = (!c.label.empty() && c.label[p] > 0) || pred[p] > 0;
    if (any) with_organs.push_back(z);
  }
  if (with_organs.empty())
    for (int64_t z = 0; z < D; ++z) with_organs.push_back(z);
  std::vector<int64_t> out;
  const int64_t n = std::min<int64_t>(count, static_cast<int64_t>(with_organs.size()));
  for (int64_t i = 0; i < n; ++i) out.push_back(with_organs[(2 * i + 1) * with_organs.size() / (2 * n)]);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void write_png_rgb(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw Error(fmt::format("{}: libpng could not start", path));
  }
  std::string bytes;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error(fmt::format("{}: libpng failed to encode the image", path));
  }
  png_set_write_fn(png, &bytes, png_append, nullptr);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_filter(png, 0, PNG_FILTER_NONE);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y)
    png_write_row(png, const_cast<png_bytep>(rgb.data() + size_t(y) * width * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  write_file_atomic(path, bytes);
}

std::vector<std::string> write_overlays(const std::string& dir, const SynapseCase& c, const std::vector<int32_t>& pred,
                                        int num_classes, int count) {
  const int H = static_cast<int>(c.shape[1]), W = static_cast<int>(c.shape[2]);
  const int64_t HW = int64_t(H) * W;
  std::vector<std::string> paths;
  for (int64_t z : overlay_slices(c, pred, count)) {
    Canvas cv(2 * W + kGap, H + kLegend);
    for (int panel = 0; panel < 2; ++panel) {
      // No ground truth (an unlabelled case): the left panel is the CT alone.
      const int32_t* lab = panel == 0 ? (c.label.empty() ? nullptr : c.label.data() + z * HW) : pred.data() + z * HW;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const float v = c.image[z * HW + int64_t(y) * W + x];
          const int grey = static_cast<int>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
          std::array<uint8_t, 3> px{uint8_t(grey), uint8_t(grey), uint8_t(grey)};
          if (const int k = lab ? lab[int64_t(y) * W + x] : 0; k > 0) {
            const auto col = organ_colour(k);
            for (int i = 0; i < 3; ++i) px[i] = static_cast<uint8_t>((grey + col[i] + 1) / 2);  // 50% blend
          }
          cv.put(panel * (W + kGap) + x, y, px);
        }
    }
    // Legend: a swatch and the class number for each organ class.
    int x = 2;
    for (int k = 1; k < num_classes && x + kSwatch < cv.w; ++k) {
      for (int dy = 0; dy < kSwatch; ++dy)
        for (int dx = 0; dx < kSwatch; ++dx) cv.put(x + dx, H + 4 + dy, organ_colour(k));
      x += kSwatch + 2;
      const std::string num = std::to_string(k);
      for (char ch : num) {
        cv.digit(x, H + 5, ch - '0', 2);
        x += 8;
      }
      x += 4;
    }
    const std::string path =
        (std::filesystem::path(dir) / fmt::format("{}_slice{:03d}.png", c.name, z)).string();
    write_png_rgb(path, cv.w, cv.h, cv.rgb);
    paths.push_back(path);
  }
  return paths;
}

}  // namespace swinrt
