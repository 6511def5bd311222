// classify: runs a pyflame_vision model on one image and prints the top-5 classes.
//
//   classify MODEL WEIGHTS.safetensors IMAGE.ppm [--threads N]
//
// MODEL is a model name (resnet50, efficientnet_b0, ...; `pyflame-vision list`).
// The image is a binary PPM (P6, maxval 1-255): no image library needed; convert
// any image with e.g. `convert photo.jpg photo.ppm` (ImageMagick) or Pillow's
// Image.open(path).convert("RGB").save("photo.ppm").
//
// Preprocessing: the preset of the model's default torchvision weights (from
// the library's weights table, pyflame_vision/models/weights.h), applied by
// pyflame_vision::transforms::ImageClassification exactly as torchvision's
// preset does on a uint8 tensor: resize the shorter side to resize_size
// (antialiased bilinear or bicubic), center-crop crop_size, divide by 255,
// normalise with ImageNet's mean and std; a float32 [1, 3, crop, crop] tensor
// (224 for ResNets and EfficientNet-B0). Samples of a PPM with maxval below 255
// are scaled to 0..255 first. The output is the top-5 softmax probabilities over
// the model's classes, one "rank class score" line each.
#include <pyflame_vision/pyflame_vision.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace pfv = pyflame_vision;

namespace {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [H, W, 3], 0..255 (interleaved, as decoded)
};

// Binary PPM ("P6"): magic, width, height, maxval separated by whitespace
// (comments from '#' to the end of a line allowed), one whitespace byte, then
// width * height RGB triples of one byte each.
Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t i = 0;
  auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error(path + ": byte " + std::to_string(i) + ": " + what);
  };
  if (bytes.size() < 2 || bytes[0] != 'P' || bytes[1] != '6')
    throw std::runtime_error(path + ": expected a binary PPM starting with \"P6\", found \"" +
                             bytes.substr(0, std::min<size_t>(2, bytes.size())) + "\"");
  i = 2;
  auto header_number = [&](const char* name, int64_t max) {
    bool space = false;
    for (;;) {
      if (i < bytes.size() && bytes[i] == '#') {
        while (i < bytes.size() && bytes[i] != '\n') ++i;
        space = true;
      } else if (i < bytes.size() && std::isspace(static_cast<unsigned char>(bytes[i]))) {
        ++i;
        space = true;
      } else {
        break;
      }
    }
    if (!space) throw fail(std::string("expected whitespace before the ") + name);
    if (i >= bytes.size() || !std::isdigit(static_cast<unsigned char>(bytes[i])))
      throw fail(std::string("expected the ") + name + " (a decimal number), found " +
                 (i >= bytes.size() ? "the end of the file" : "'" + std::string(1, bytes[i]) + "'"));
    int64_t v = 0;
    while (i < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[i]))) {
      v = v * 10 + (bytes[i] - '0');
      if (v > max) throw fail(std::string("the ") + name + " exceeds " + std::to_string(max));
      ++i;
    }
    if (v < 1) throw fail(std::string("the ") + name + " must be at least 1");
    return v;
  };
  Image img;
  img.width = header_number("width", 1 << 16);
  img.height = header_number("height", 1 << 16);
  const int64_t maxval = header_number("maxval", 65535);
  if (maxval > 255)
    throw fail("maxval " + std::to_string(maxval) + " means 16-bit samples; only 8-bit PPM (maxval <= 255) is supported");
  if (i >= bytes.size() || !std::isspace(static_cast<unsigned char>(bytes[i])))
    throw fail("expected one whitespace byte after the maxval");
  ++i;
  const size_t need = static_cast<size_t>(img.width * img.height * 3);
  if (bytes.size() - i < need)
    throw std::runtime_error(path + ": expected " + std::to_string(need) + " bytes of pixel data for " +
                             std::to_string(img.width) + "x" + std::to_string(img.height) + ", found " +
                             std::to_string(bytes.size() - i));
  img.rgb.resize(need);
  for (size_t k = 0; k < need; ++k)
    img.rgb[k] = static_cast<uint8_t>((static_cast<unsigned char>(bytes[i + k]) * 255 + maxval / 2) / maxval);
  return img;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s MODEL WEIGHTS.safetensors IMAGE.ppm [--threads N]\nmodels:", argv0);
  for (const auto& name : pfv::models::list_models()) std::fprintf(stderr, " %s", name.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  int threads = 0;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--threads" && a + 1 < argc) {
      threads = std::atoi(argv[++a]);
      if (threads < 1) return usage(argv[0]);
    } else if (arg == "-h" || arg == "--help") {
      return usage(argv[0]);
    } else {
      pos.push_back(arg);
    }
  }
  if (pos.size() != 3) return usage(argv[0]);
  try {
    if (threads) pfv::set_num_threads(threads);
    auto model = pfv::models::create_model(pos[0]);  // 1000 ImageNet classes
    pfv::load_weights(*model, pos[1]);
    const Image img = read_ppm(pos[2]);
    const pfv::models::WeightsPreset& wp = pfv::models::default_weights(pos[0]).preset;
    const pfv::transforms::ImageClassification preset(
        wp.crop_size, wp.resize_size, {wp.mean.begin(), wp.mean.end()}, {wp.std.begin(), wp.std.end()},
        pfv::transforms::parse_interpolation(wp.interpolation), wp.antialias);
    const pfv::Tensor x = preset(img.rgb.data(), img.height, img.width);  // float32 [1, 3, crop, crop]
    const int64_t size = x.shape()[2];
    const pfv::Tensor logits = model->forward(x);  // [1, 1000]

    // Softmax in double, shifted by the maximum for stability.
    const float* l = logits.data_f32();
    const int64_t n = logits.shape()[1];
    const double top = *std::max_element(l, l + n);
    std::vector<double> p(static_cast<size_t>(n));
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += (p[static_cast<size_t>(k)] = std::exp(static_cast<double>(l[k]) - top));
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k5 = std::min<size_t>(5, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k5), idx.end(), [&](int64_t a, int64_t b) {
      return p[static_cast<size_t>(a)] != p[static_cast<size_t>(b)] ? p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)]
                                                                    : a < b;
    });
    std::printf("%s on %s (%lldx%lld -> [1, 3, %lld, %lld]), %d threads, %s\n", pos[0].c_str(), pos[2].c_str(),
                static_cast<long long>(img.width), static_cast<long long>(img.height), static_cast<long long>(size),
                static_cast<long long>(size), pfv::get_num_threads(), pfv::isa_name(pfv::active_isa()));
    std::printf("rank class score\n");
    for (size_t r = 0; r < k5; ++r)
      std::printf("%zu %lld %.6f\n", r + 1, static_cast<long long>(idx[r]), p[static_cast<size_t>(idx[r])] / sum);
    return 0;
  } catch (const pfv::Error& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
}
