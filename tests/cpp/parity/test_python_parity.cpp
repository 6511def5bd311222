// A whole-model forward through the C++ API agrees with the Python path on the
// same weights and input. make_parity_inputs.py (a ctest fixture, registered
// when PYFLAME_VISION_TEST_PYTHON names a Python with pyflame_vision) writes,
// per model, the weights via pyflame_vision.save_weights and the input with the
// Python outputs; here the C++ side reads them with its own .safetensors
// reader, builds the model with the C++ factory and runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "pyflame_vision/pyflame_vision.h"

namespace pfv = pyflame_vision;

namespace {

std::string dir() {
  const char* d = std::getenv("PYFLAME_VISION_PARITY_DIR");
  return d ? d : "";
}

// max |a - b| <= 1e-5 * max(1, max |b|): the same engine runs on both sides, so
// any real difference (a weight loaded into the wrong slot, a dtype mix-up)
// is orders of magnitude larger.
void expect_close(const pfv::Tensor& a, const pfv::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), pfv::DType::float32) << what;
  double diff = 0, scale = 1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(double(a.data_f32()[i]) - b.data_f32()[i]));
    scale = std::max(scale, std::fabs(double(b.data_f32()[i])));
  }
  EXPECT_LE(diff, 1e-5 * scale) << what << ": max abs difference " << diff << " (scale " << scale << ")";
  std::printf("%s: max abs difference %.3g (output scale %.3g)\n", what.c_str(), diff, scale);
}

void check_model(const std::string& name) {
  ASSERT_FALSE(dir().empty()) << "PYFLAME_VISION_PARITY_DIR is not set (run through ctest)";
  auto model = pfv::models::create_model(name, 37);
  pfv::load_weights(*model, dir() + "/" + name + ".safetensors");
  std::map<std::string, pfv::Tensor> io;
  for (auto& kv : pfv::load_safetensors(dir() + "/" + name + ".io.safetensors")) io[kv.first] = kv.second;
  const pfv::Tensor& x = io.at("x");
  expect_close(model->forward(x), io.at("output"), name + " output");
  const auto feats = model->forward_features(x);
  ASSERT_GE(feats.size(), 1u);
  for (size_t k = 0; k < feats.size(); ++k)
    expect_close(feats[k], io.at("feature." + std::to_string(k)), name + " feature " + std::to_string(k));
  EXPECT_EQ(io.count("feature." + std::to_string(feats.size())), 0u);
}

}  // namespace

TEST(PythonParity, Resnet18) { check_model("resnet18"); }
TEST(PythonParity, Resnext50_32x4d) { check_model("resnext50_32x4d"); }
TEST(PythonParity, EfficientnetB0) { check_model("efficientnet_b0"); }
