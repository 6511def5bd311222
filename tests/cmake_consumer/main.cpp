// Uses the installed package: shape inference, a forward on a tiny input, a
// typed error, and (with an argument) writing weights for Python to read back.
//
//   consumer                 checks and prints "consumer: OK"
//   consumer OUT.safetensors also writes resnet18(num_classes=10) weights from init_weights(0)
#include <pyflame_vision/pyflame_vision.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace pfv = pyflame_vision;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "consumer: check failed at line %d: %s\n", __LINE__, #cond); \
      return 1;                                                            \
    }                                                                      \
  } while (0)

int main(int argc, char** argv) {
  try {
    CHECK(std::strcmp(pfv::version(), PACKAGE_VERSION) == 0);
    CHECK(pfv::models::resnet50()->get_output_shape({1, 3, 224, 224}) == (pfv::Shape{1, 1000}));

    auto model = pfv::models::resnet18(10);
    model->init_weights(0);
    std::vector<float> x(2 * 3 * 32 * 32);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) / 17.0f;
    const pfv::Tensor y = model->forward(x.data(), {2, 3, 32, 32});
    CHECK(y.shape() == (pfv::Shape{2, 10}));
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(std::isfinite(y.data_f32()[i]));

    bool threw = false;
    try {
      model->forward(x.data(), {1, 6, 32, 32});
    } catch (const pfv::ShapeError& e) {
      threw = std::strstr(e.what(), "expected 3 input channels, got 6") != nullptr;
    }
    CHECK(threw);

    if (argc > 1) pfv::save_weights(*model, argv[1]);
    std::printf("consumer: OK (pyflame_vision %s, %s, %d threads)\n", pfv::version(), pfv::isa_name(pfv::active_isa()),
                pfv::get_num_threads());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
