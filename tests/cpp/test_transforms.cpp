// torchvision-style transforms: output shapes and reprs checked against
// torchvision.transforms on zero tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyflame_vision/error.h"
#include "pyflame_vision/transforms.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace T = pyflame_vision::transforms;
using pfv::Shape;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {
const std::vector<double> kMean = {0.485, 0.456, 0.406};
const std::vector<double> kStd = {0.229, 0.224, 0.225};
}  // namespace

// ================================================================== Resize

TEST(Resize, SmallerEdgeKeepsAspectRatio) {
  T::Resize r({256});
  EXPECT_EQ(r.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 256, 341}));  // int(256 * 640 / 480) = 341
  EXPECT_EQ(r.get_output_shape({1, 3, 640, 480}), (Shape{1, 3, 341, 256}));  // portrait
  EXPECT_EQ(r.get_output_shape({3, 100, 100}), (Shape{3, 256, 256}));
  EXPECT_EQ(r.get_output_shape({3, 1080, 1920}), (Shape{3, 256, 455}));  // int(455.11)
  EXPECT_EQ(r.get_output_shape({480, 640}), (Shape{256, 341}));
  EXPECT_EQ(r.get_output_shape({3, 300, 500}), (Shape{3, 256, 426}));  // int(426.67): truncation, not rounding
  EXPECT_EQ(r.get_output_shape({3, 500, 300}), (Shape{3, 426, 256}));
  EXPECT_EQ(r.get_output_shape({2, 5, 3, 480, 640}), (Shape{2, 5, 3, 256, 341}));  // leading dims kept
  T::Resize small({7});
  EXPECT_EQ(small.get_output_shape({3, 3, 1000}), (Shape{3, 7, 2333}));  // torchvision: [3, 7, 2333]
  EXPECT_EQ(r.size(), (std::vector<int64_t>{256}));
  EXPECT_EQ(r.max_size(), -1);
}

TEST(Resize, ExplicitHeightAndWidth) {
  T::Resize r({224, 200});
  EXPECT_EQ(r.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 224, 200}));
  EXPECT_EQ(r.get_output_shape({3, 10, 10}), (Shape{3, 224, 200}));
}

TEST(Resize, MaxSizeCapsTheLongerEdge) {
  // torchvision Resize(256, max_size=300): 480x640 -> 225x300 (int(300 * 256 / 341) = 225)
  T::Resize r({256}, 300);
  EXPECT_EQ(r.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 225, 300}));
  EXPECT_EQ(r.get_output_shape({1, 3, 640, 480}), (Shape{1, 3, 300, 225}));
  EXPECT_EQ(r.get_output_shape({1, 3, 100, 100}), (Shape{1, 3, 256, 256}));  // not triggered
  T::Resize loose({256}, 400);
  EXPECT_EQ(loose.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 256, 341}));
  EXPECT_EQ(r.max_size(), 300);
}

TEST(Resize, Validation) {
  EXPECT_THROW(T::Resize(std::vector<int64_t>{}), pfv::InvalidArgument);
  EXPECT_THROW(T::Resize({1, 2, 3}), pfv::InvalidArgument);
  EXPECT_THROW(T::Resize({0}), pfv::InvalidArgument);
  EXPECT_THROW(T::Resize({224, -1}), pfv::InvalidArgument);
  EXPECT_THROW(T::Resize({224, 200}, 300), pfv::InvalidArgument);  // max_size needs a single size
  EXPECT_THROW(T::Resize({256}, 256), pfv::InvalidArgument);       // max_size must exceed size
  EXPECT_THROW(T::Resize({256}, 100), pfv::InvalidArgument);
  EXPECT_NO_THROW(T::Resize({256}, 257));
}

TEST(Resize, BadInputs) {
  T::Resize r({256});
  EXPECT_THROW(r.get_output_shape({640}), pfv::ShapeError);
  EXPECT_THROW(r.get_output_shape({}), pfv::ShapeError);
  EXPECT_THROW(r.get_output_shape({3, 0, 640}), pfv::ShapeError);
  EXPECT_THROW(r.get_output_shape({3, 480, 0}), pfv::ShapeError);
  EXPECT_THROW(r.get_output_shape({3, -480, 640}), pfv::ShapeError);
}

TEST(Resize, Repr) {
  EXPECT_EQ(T::Resize({256}, -1, "bilinear", true, true).repr(),
            "Resize(size=256, interpolation=bilinear, max_size=None, antialias=True)");
  EXPECT_EQ(T::Resize({224, 200}).repr(),
            "Resize(size=[224, 200], interpolation=bilinear, max_size=None, antialias=True)");
  EXPECT_EQ(T::Resize({256}, 300, "bicubic", false, true).repr(),
            "Resize(size=256, interpolation=bicubic, max_size=300, antialias=False)");
}

// ================================================================== CenterCrop

TEST(CenterCrop, Shapes) {
  T::CenterCrop c(224, 224, true);
  EXPECT_EQ(c.get_output_shape({1, 3, 256, 341}), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(c.get_output_shape({3, 256, 256}), (Shape{3, 224, 224}));
  // Larger than the image: torchvision pads, the result is still the crop size.
  EXPECT_EQ(c.get_output_shape({1, 3, 100, 300}), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(c.get_output_shape({1, 3, 1, 1}), (Shape{1, 3, 224, 224}));
  T::CenterCrop rect(224, 100);
  EXPECT_EQ(rect.get_output_shape({3, 256, 256}), (Shape{3, 224, 100}));
  EXPECT_EQ(rect.height(), 224);
  EXPECT_EQ(rect.width(), 100);
}

TEST(CenterCrop, ValidationAndRepr) {
  EXPECT_THROW(T::CenterCrop(0, 224), pfv::InvalidArgument);
  EXPECT_THROW(T::CenterCrop(224, -1), pfv::InvalidArgument);
  T::CenterCrop c(224, 224, true);
  EXPECT_THROW(c.get_output_shape({224}), pfv::ShapeError);
  EXPECT_EQ(c.repr(), "CenterCrop(size=(224, 224))");
  EXPECT_EQ(T::CenterCrop(224, 100).repr(), "CenterCrop(size=(224, 100))");
}

// ================================================================== Normalize

TEST(Normalize, KeepsShape) {
  T::Normalize n(kMean, kStd);
  EXPECT_EQ(n.get_output_shape({1, 3, 224, 224}), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(n.get_output_shape({3, 17, 5}), (Shape{3, 17, 5}));
  T::Normalize one({0.5}, {0.2});
  EXPECT_EQ(one.get_output_shape({1, 4, 8, 8}), (Shape{1, 4, 8, 8}));  // one value broadcasts
  EXPECT_EQ(n.mean(), kMean);
  EXPECT_EQ(n.std(), kStd);
}

TEST(Normalize, ChannelMismatchIsShapeError) {
  T::Normalize n(kMean, kStd);
  const std::string msg = message_of<pfv::ShapeError>([&] { n.get_output_shape({1, 4, 8, 8}); });
  EXPECT_TRUE(Contains(msg, "expected 3 channels"));
  EXPECT_TRUE(Contains(msg, "got 4"));
  EXPECT_THROW(n.get_output_shape({1, 1, 8, 8}), pfv::ShapeError);
  EXPECT_THROW(n.get_output_shape({8, 8}), pfv::ShapeError);  // needs [..., C, H, W]
}

TEST(Normalize, Validation) {
  const std::string msg = message_of<pfv::InvalidArgument>([] { T::Normalize(kMean, {0.229, 0.0, 0.225}); });
  EXPECT_TRUE(Contains(msg, "zero"));
  EXPECT_THROW(T::Normalize({0.5}, {1e-50}), pfv::InvalidArgument);  // zero after conversion to float32
  EXPECT_THROW(T::Normalize({0.5}, {-0.0}), pfv::InvalidArgument);
  EXPECT_THROW(T::Normalize({}, {}), pfv::InvalidArgument);
  EXPECT_THROW(T::Normalize({0.1, 0.2, 0.3}, {0.1, 0.2}), pfv::InvalidArgument);
  EXPECT_THROW(T::Normalize({std::nan(""), 0.2, 0.3}, kStd), pfv::InvalidArgument);
  EXPECT_NO_THROW(T::Normalize({0.5}, kStd));
  EXPECT_NO_THROW(T::Normalize({0.5}, {-1.0}));  // negative std is allowed by torchvision
}

TEST(Normalize, Repr) {
  EXPECT_EQ(T::Normalize(kMean, kStd).repr(), "Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])");
  EXPECT_EQ(T::Normalize({0.5}, {1.0}).repr(), "Normalize(mean=[0.5], std=[1.0])");
}

// ================================================================== Compose

TEST(Compose, ChainsTransforms) {
  T::Compose c({std::make_shared<T::Resize>(std::vector<int64_t>{256}, -1, "bilinear", true, true),
                std::make_shared<T::CenterCrop>(224, 224, true), std::make_shared<T::Normalize>(kMean, kStd)});
  EXPECT_EQ(c.transforms().size(), 3u);
  EXPECT_EQ(c.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(c.get_output_shape({3, 1080, 1920}), (Shape{3, 224, 224}));
  EXPECT_EQ(c.get_output_shape({3, 10, 10}), (Shape{3, 224, 224}));
  // Errors from a later stage propagate.
  EXPECT_THROW(c.get_output_shape({1, 4, 480, 640}), pfv::ShapeError);
  EXPECT_EQ(c.repr(),
            "Compose(\n"
            "    Resize(size=256, interpolation=bilinear, max_size=None, antialias=True)\n"
            "    CenterCrop(size=(224, 224))\n"
            "    Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])\n"
            ")");
}

TEST(Compose, OrderMatters) {
  // Crop then resize: 480x640 -> 224x224 -> 256x256.
  T::Compose c({std::make_shared<T::CenterCrop>(224, 224), std::make_shared<T::Resize>(std::vector<int64_t>{256})});
  EXPECT_EQ(c.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 256, 256}));
  // Resize then a rectangular crop.
  T::Compose d({std::make_shared<T::Resize>(std::vector<int64_t>{256}), std::make_shared<T::CenterCrop>(200, 300)});
  EXPECT_EQ(d.get_output_shape({1, 3, 480, 640}), (Shape{1, 3, 200, 300}));
}

TEST(Compose, EmptyAndNull) {
  T::Compose empty(std::vector<std::shared_ptr<const T::Transform>>{});
  EXPECT_EQ(empty.get_output_shape({1, 3, 5, 7}), (Shape{1, 3, 5, 7}));
  EXPECT_THROW(T::Compose({nullptr}), pfv::InvalidArgument);
  EXPECT_THROW(T::Compose({std::make_shared<T::CenterCrop>(2, 2), nullptr}), pfv::InvalidArgument);
}
