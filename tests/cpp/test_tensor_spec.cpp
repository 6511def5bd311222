// TensorSpec, dtypes, shape helpers and overflow-checked arithmetic.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "pyflame_vision/checked.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/tensor_spec.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
using pfv::DType;
using pfv::Shape;
using pfv::TensorSpec;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
}  // namespace

// ------------------------------------------------------------------ errors

TEST(ErrorHierarchy, ClassesDeriveAsDocumented) {
  // ShapeOverflowError is a ShapeError is an Error is a std::runtime_error.
  EXPECT_THROW(throw pfv::ShapeOverflowError("x"), pfv::ShapeError);
  EXPECT_THROW(throw pfv::ShapeOverflowError("x"), pfv::Error);
  EXPECT_THROW(throw pfv::ShapeError("x"), std::runtime_error);
  EXPECT_THROW(throw pfv::InvalidArgument("x"), pfv::Error);
  EXPECT_THROW(throw pfv::TypeError("x"), pfv::Error);
  EXPECT_THROW(throw pfv::Unsupported("x"), pfv::Error);
  EXPECT_EQ(std::string(pfv::ShapeError("the message").what()), "the message");
}

// ------------------------------------------------------------------ TensorSpec

TEST(TensorSpec, DefaultIsFloat32Scalar) {
  TensorSpec t;
  EXPECT_EQ(t.shape(), Shape{});
  EXPECT_EQ(t.dtype(), DType::float32);
  EXPECT_EQ(t.ndim(), 0);
  EXPECT_EQ(t.numel(), 1);
  EXPECT_EQ(t.nbytes(), 4);
  EXPECT_EQ(t.repr(), "TensorSpec(shape=[], dtype=float32)");
}

TEST(TensorSpec, NumelAndNbytes) {
  TensorSpec t({1, 3, 224, 224});
  EXPECT_EQ(t.dtype(), DType::float32);
  EXPECT_EQ(t.ndim(), 4);
  EXPECT_EQ(t.numel(), 150528);
  EXPECT_EQ(t.nbytes(), 602112);

  EXPECT_EQ(TensorSpec({2, 5}, DType::float64).nbytes(), 80);
  EXPECT_EQ(TensorSpec({2, 5}, DType::float16).nbytes(), 20);
  EXPECT_EQ(TensorSpec({2, 5}, DType::bfloat16).nbytes(), 20);
  EXPECT_EQ(TensorSpec({2, 5}, DType::int64).nbytes(), 80);
  EXPECT_EQ(TensorSpec({2, 5}, DType::int32).nbytes(), 40);
  EXPECT_EQ(TensorSpec({2, 5}, DType::uint8).nbytes(), 10);
  EXPECT_EQ(TensorSpec({2, 5}, DType::bool_).nbytes(), 10);
}

TEST(TensorSpec, ZeroSizedDimensions) {
  TensorSpec t({0, 3, 224, 224});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.nbytes(), 0);
  EXPECT_EQ(t.shape(), (Shape{0, 3, 224, 224}));
  // A zero first makes the later factors harmless.
  EXPECT_EQ(TensorSpec({0, int64_t{1} << 40, int64_t{1} << 40}).numel(), 0);
}

TEST(TensorSpec, DimWithNegativeIndex) {
  TensorSpec t({2, 3, 5, 7});
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(3), 7);
  EXPECT_EQ(t.dim(-1), 7);
  EXPECT_EQ(t.dim(-4), 2);
  EXPECT_THROW(t.dim(4), pfv::ShapeError);
  EXPECT_THROW(t.dim(-5), pfv::ShapeError);
  EXPECT_THROW(TensorSpec().dim(0), pfv::ShapeError);
}

TEST(TensorSpec, NegativeDimensionThrowsShapeError) {
  const std::string msg = message_of<pfv::ShapeError>([] { TensorSpec({1, -3, 4}); });
  EXPECT_TRUE(Contains(msg, "-3"));
  EXPECT_TRUE(Contains(msg, "[1, -3, 4]"));
  EXPECT_THROW(pfv::shape_numel({-1}), pfv::ShapeError);
  // Negative is not an overflow.
  try {
    TensorSpec({4, -1});
    ADD_FAILURE() << "no exception";
  } catch (const pfv::ShapeOverflowError&) {
    ADD_FAILURE() << "a negative dimension must not be reported as an overflow";
  } catch (const pfv::ShapeError&) {
  }
}

TEST(TensorSpec, NumelOverflowThrowsShapeOverflowError) {
  const int64_t big = int64_t{1} << 40;
  EXPECT_THROW(TensorSpec({big, big}), pfv::ShapeOverflowError);
  // ... which is also a ShapeError.
  EXPECT_THROW(TensorSpec({big, big}), pfv::ShapeError);
  EXPECT_THROW(pfv::shape_numel({big, big}), pfv::ShapeOverflowError);
  EXPECT_THROW(pfv::shape_numel({kMax, 2}), pfv::ShapeOverflowError);
  const std::string msg = message_of<pfv::ShapeOverflowError>([&] { TensorSpec({big, big}); });
  EXPECT_TRUE(Contains(msg, "overflow"));
}

TEST(TensorSpec, ByteSizeOverflowThrowsShapeOverflowError) {
  // 2^62 elements fit in int64, 2^62 * 4 bytes do not.
  const int64_t n = int64_t{1} << 62;
  EXPECT_EQ(pfv::shape_numel({n}), n);
  EXPECT_THROW(TensorSpec({n}, DType::float32), pfv::ShapeOverflowError);
  EXPECT_THROW(TensorSpec({n}, DType::float16), pfv::ShapeOverflowError);  // 2^63
  TensorSpec bytes({n}, DType::uint8);
  EXPECT_EQ(bytes.nbytes(), n);
  // Largest float64 tensor: (2^63 - 1) / 8 elements.
  const int64_t most = kMax / 8;
  EXPECT_EQ(TensorSpec({most}, DType::float64).nbytes(), most * 8);
  EXPECT_THROW(TensorSpec({most + 1}, DType::float64), pfv::ShapeOverflowError);
}

TEST(TensorSpec, EqualityComparesShapeAndDtype) {
  EXPECT_EQ(TensorSpec({1, 2}), TensorSpec({1, 2}));
  EXPECT_NE(TensorSpec({1, 2}), TensorSpec({2, 1}));
  EXPECT_NE(TensorSpec({1, 2}, DType::float32), TensorSpec({1, 2}, DType::float64));
  EXPECT_FALSE(TensorSpec({1, 2}) != TensorSpec({1, 2}));
}

TEST(TensorSpec, Repr) {
  EXPECT_EQ(TensorSpec({1, 3, 224, 224}).repr(), "TensorSpec(shape=[1, 3, 224, 224], dtype=float32)");
  EXPECT_EQ(TensorSpec({}, DType::int64).repr(), "TensorSpec(shape=[], dtype=int64)");
}

TEST(ShapeToString, Formats) {
  EXPECT_EQ(pfv::shape_to_string({}), "[]");
  EXPECT_EQ(pfv::shape_to_string({7}), "[7]");
  EXPECT_EQ(pfv::shape_to_string({1, 3, 224, 224}), "[1, 3, 224, 224]");
  EXPECT_EQ(pfv::shape_to_string({-1, 0}), "[-1, 0]");
}

TEST(ShapeNumel, Values) {
  EXPECT_EQ(pfv::shape_numel({}), 1);
  EXPECT_EQ(pfv::shape_numel({5}), 5);
  EXPECT_EQ(pfv::shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(pfv::shape_numel({2, 0, 4}), 0);
  EXPECT_EQ(pfv::shape_numel({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
}

// ------------------------------------------------------------------ dtypes

TEST(DType, NamesRoundTrip) {
  const DType all[] = {DType::float32, DType::float64, DType::float16, DType::bfloat16,
                       DType::int64,   DType::int32,   DType::uint8,   DType::bool_};
  const char* names[] = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"};
  const int64_t sizes[] = {4, 8, 2, 2, 8, 4, 1, 1};
  for (size_t i = 0; i < 8; ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_EQ(std::string(pfv::dtype_name(all[i])), names[i]);
    EXPECT_EQ(pfv::dtype_from_name(names[i]), all[i]);
    EXPECT_EQ(pfv::dtype_from_name(pfv::dtype_name(all[i])), all[i]);
    EXPECT_EQ(pfv::dtype_itemsize(all[i]), sizes[i]);
  }
}

TEST(DType, TorchAliases) {
  EXPECT_EQ(pfv::dtype_from_name("float"), DType::float32);
  EXPECT_EQ(pfv::dtype_from_name("double"), DType::float64);
  EXPECT_EQ(pfv::dtype_from_name("half"), DType::float16);
  EXPECT_EQ(pfv::dtype_from_name("long"), DType::int64);
  EXPECT_EQ(pfv::dtype_from_name("int"), DType::int32);
}

TEST(DType, UnknownNameThrowsTypeError) {
  const std::string msg = message_of<pfv::TypeError>([] { pfv::dtype_from_name("complex64"); });
  EXPECT_TRUE(Contains(msg, "complex64"));
  EXPECT_THROW(pfv::dtype_from_name(""), pfv::TypeError);
  EXPECT_THROW(pfv::dtype_from_name("Float32"), pfv::TypeError);  // names are case-sensitive, like torch
  EXPECT_THROW(pfv::dtype_from_name("torch.float32"), pfv::TypeError);
}

// ------------------------------------------------------------------ checked arithmetic

TEST(Checked, AddSubMulResults) {
  namespace c = pfv::checked;
  EXPECT_EQ(c::add(2, 3), 5);
  EXPECT_EQ(c::add(kMax - 1, 1), kMax);
  EXPECT_EQ(c::sub(2, 5), -3);
  EXPECT_EQ(c::sub(kMin + 1, 1), kMin);
  EXPECT_EQ(c::mul(-4, 6), -24);
  EXPECT_EQ(c::mul(int64_t{1} << 31, int64_t{1} << 31), int64_t{1} << 62);
  EXPECT_EQ(c::mul(0, kMax), 0);
}

TEST(Checked, OverflowThrowsShapeOverflowError) {
  namespace c = pfv::checked;
  EXPECT_THROW(c::add(kMax, 1), pfv::ShapeOverflowError);
  EXPECT_THROW(c::add(kMin, -1), pfv::ShapeOverflowError);
  EXPECT_THROW(c::sub(kMin, 1), pfv::ShapeOverflowError);
  EXPECT_THROW(c::sub(0, kMin), pfv::ShapeOverflowError);
  EXPECT_THROW(c::mul(int64_t{1} << 32, int64_t{1} << 32), pfv::ShapeOverflowError);
  EXPECT_THROW(c::mul(-1, kMin), pfv::ShapeOverflowError);
  EXPECT_THROW(c::mul(kMax, 2), pfv::ShapeError);  // catchable as the base class
}

TEST(Checked, OverflowMessageNamesWhat) {
  const std::string msg =
      message_of<pfv::ShapeOverflowError>([] { pfv::checked::mul(kMax, 3, "the widget count"); });
  EXPECT_TRUE(Contains(msg, "the widget count"));
  EXPECT_TRUE(Contains(msg, std::to_string(kMax)));
  EXPECT_TRUE(Contains(msg, " * 3"));
}

TEST(Checked, FloorDivRoundsTowardNegativeInfinity) {
  namespace c = pfv::checked;
  EXPECT_EQ(c::floor_div(7, 2), 3);
  EXPECT_EQ(c::floor_div(6, 3), 2);
  EXPECT_EQ(c::floor_div(0, 5), 0);
  // Python: -1 // 2 == -1, -5 // 2 == -3, -4 // 2 == -2, -6 // 3 == -2, -7 // 3 == -3
  EXPECT_EQ(c::floor_div(-1, 2), -1);
  EXPECT_EQ(c::floor_div(-5, 2), -3);
  EXPECT_EQ(c::floor_div(-4, 2), -2);
  EXPECT_EQ(c::floor_div(-6, 3), -2);
  EXPECT_EQ(c::floor_div(-7, 3), -3);
  EXPECT_EQ(c::floor_div(-1, 1), -1);
}
