// .safetensors reader and writer: round trips for every dtype, malformed files
// (each must throw WeightsError with a precise message, never crash), and
// load_weights / save_weights on a model.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "pyflame_vision/pyflame_vision.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/pfv_test_io_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" + name;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int k = 0; k < 8; ++k, v >>= 8) s[k] = static_cast<char>(v & 0xFF);
  return s;
}

// A .safetensors image: length prefix + header + data.
std::string image(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

pfv::SafetensorsFile parse(const std::string& bytes) { return pfv::parse_safetensors(bytes.data(), bytes.size(), "t.safetensors"); }

std::string parse_error(const std::string& bytes) {
  return message_of<pfv::WeightsError>([&] { parse(bytes); });
}

const std::string kOneF32 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

pfv::Tensor make(pfv::DType dt, pfv::Shape shape, uint8_t seed) {
  pfv::Tensor t{pfv::TensorSpec(std::move(shape), dt)};
  auto* p = static_cast<uint8_t*>(t.raw_data());
  for (int64_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
  if (dt == pfv::DType::bool_)
    for (int64_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  return t;
}

bool same_bytes(const pfv::Tensor& a, const pfv::Tensor& b) {
  return a.spec() == b.spec() && std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.nbytes())) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtypeKeepsOrderAndMetadata) {
  pfv::NamedTensors in = {
      {"z.f32", make(pfv::DType::float32, {2, 3}, 1)},  {"a.i64", make(pfv::DType::int64, {}, 2)},
      {"f64", make(pfv::DType::float64, {3}, 3)},       {"f16", make(pfv::DType::float16, {5}, 4)},
      {"bf16", make(pfv::DType::bfloat16, {1, 3}, 5)},  {"i32", make(pfv::DType::int32, {4}, 6)},
      {"u8", make(pfv::DType::uint8, {7}, 7)},          {"bool", make(pfv::DType::bool_, {3}, 8)},
      {"empty", make(pfv::DType::float32, {0, 4}, 9)},  {"quote\"\\/\n\u00e9\u6f22", make(pfv::DType::float32, {1}, 10)},
  };
  const pfv::Metadata meta = {{"format", "np"}, {"note", "tab\there \u00fc"}};
  const std::string path = temp_path("roundtrip.safetensors");
  pfv::save_safetensors(path, in, meta);
  const auto bytes = read_file(path);
  // Header padded to 8 bytes, so the data buffer (and each tensor, larger item sizes first) is aligned.
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');

  const auto f = pfv::read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, in[i].first);
    EXPECT_TRUE(same_bytes(f.tensors[i].second, in[i].second)) << in[i].first;
  }
  EXPECT_EQ(f.metadata, meta);
  // The in-memory parser gives the same.
  const auto g = parse(bytes);
  ASSERT_EQ(g.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(same_bytes(g.tensors[i].second, in[i].second));
  std::remove(path.c_str());
}

TEST(Safetensors, EmptyFileAndWhitespace) {
  EXPECT_TRUE(parse(image("{}", "")).tensors.empty());
  // JSON whitespace anywhere, trailing space padding, escaped names.
  const auto f = parse(image(" {\n\t\"\\u0061\\ud83d\\ude00\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 8 ] ,"
                             " \"dtype\" : \"F32\" } , \"__metadata__\" : { } }    ",
                             std::string(8, '\0')));
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].first, "a\xF0\x9F\x98\x80");
  EXPECT_EQ(f.tensors[0].second.shape(), pfv::Shape{2});
}

TEST(Safetensors, TruncatedAndHugeLengths) {
  EXPECT_TRUE(Contains(parse_error(""), "file is 0 bytes, expected at least 8"));
  EXPECT_TRUE(Contains(parse_error(std::string(5, '\0')), "file is 5 bytes"));
  EXPECT_TRUE(Contains(parse_error(le64(0xFFFFFFFFFFFFFFFFull) + "{}"), "exceeds the limit of 100000000 bytes"));
  EXPECT_TRUE(Contains(parse_error(le64(uint64_t(1) << 63) + "{}"), "exceeds the limit"));
  EXPECT_TRUE(Contains(parse_error(le64(1000) + "{}"), "header length 1000 (bytes 0-7) exceeds the 2 bytes that follow it"));
  EXPECT_TRUE(Contains(parse_error(le64(0)), "byte 8: expected '{' (the header is a JSON object), found the end of the header"));
  // Every truncation of a valid file throws.
  const std::string good = image(kOneF32, std::string(8, '\x11'));
  ASSERT_EQ(parse(good).tensors.size(), 1u);
  for (size_t len = 0; len < good.size(); ++len)
    EXPECT_THROW(pfv::parse_safetensors(good.data(), len, "t"), pfv::WeightsError) << "length " << len;
}

TEST(Safetensors, MalformedJsonSaysWhereAndWhat) {
  const std::string d8(8, '\0');
  struct Case {
    std::string header, message;
  };
  const std::vector<Case> cases = {
      {"[]", "byte 8: expected '{' (the header is a JSON object), found '['"},
      {R"({"a" {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "byte 13: expected ':' after \"a\", found '{'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},})", "byte 62: expected a tensor name (a JSON string), found '}'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", "expected ',' or '}' after an entry of the header object, found the end of the header"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}x)", "byte 62: expected the end of the header after its JSON object, found 'x'"},
      {"{\"a\x01\":{}}", "found control byte 0x01 (must be escaped)"},
      {R"({"a\q":{}})", "expected an escape"},
      {R"({"a\u12G4":{}})", "expected a hexadecimal digit in a \\u escape, found 'G'"},
      {R"({"\udc00":{}})", "unpaired low surrogate"},
      {R"({"\ud800x":{}})", "expected a \\u low surrogate after a high surrogate"},
      {"{\"\xC3\x28\":{}}", "invalid UTF-8 in a string"},
      {"{\"\xC0\xAF\":{}}", "invalid UTF-8"},  // overlong '/'
      {R"({"a)", "unterminated string"},
      {R"({"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", "leading zero in an entry of the shape"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "expected an entry of the shape of tensor \"a\" (a non-negative integer), found '-'"},
      {R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", "to be an integer, found '.'"},
      {R"({"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}})", "to be an integer, found 'e'"},
      {R"({"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", "does not fit in a signed 64-bit integer"},
      {R"({"a":{"dtype":"F32","shape":[2,],"data_offsets":[0,8]}})", "(a non-negative integer), found ']'"},
      {R"({"a":{"dtype":"F32","shape":[2] "data_offsets":[0,8]}})", "expected ',' or '}' in the entry of tensor \"a\", found '\"'"},
      {R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", "expected '[' starting the shape of tensor \"a\", found '2'"},
      {R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", "expected the dtype of tensor \"a\" (a string such as \"F32\"), found '3'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", "unexpected field \"extra\" of tensor \"a\""},
      {R"({"a":{"dtype":"F32","shape":[2]}})", "missing \"data_offsets\""},
      {R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "duplicate \"dtype\" of tensor \"a\""},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", "expected 2 data_offsets [begin, end] of tensor \"a\", found 3"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})", "byte 62: duplicate tensor name \"a\""},
      {R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "expected a string value for metadata key \"k\", found '1'"},
      {R"({"__metadata__":{"k":"v","k":"w"}})", "duplicate metadata key \"k\""},
      {R"({"a":{"dtype":"I16","shape":[4],"data_offsets":[0,8]}})", "unsupported dtype \"I16\" of tensor \"a\" (supported: F64, F32, F16, BF16, I64, I32, U8, BOOL)"},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(image(c.header, d8));
    EXPECT_TRUE(Contains(msg, c.message)) << "header: " << c.header;
    EXPECT_TRUE(Contains(msg, "t.safetensors")) << msg;
  }
}

TEST(Safetensors, OffsetsSizesAndCoverage) {
  struct Case {
    std::string header;
    size_t data_bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 16, "data_offsets [0, 16] span 16 bytes, expected 8 for shape [2] of float32"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "data_offsets [0, 8] exceed the data buffer of 4 bytes"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "end before they begin"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, "tensor \"a\" starts at data byte 4 but the buffer starts at 0 (the data buffer must have no gaps)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "tensor \"b\" starts at data byte 4 but the previous tensor \"a\" ends at 8 (tensors must not overlap)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12, "the tensors cover 8 bytes of the data buffer, which has 12"},
      {R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8, "has more than 2^63 elements"},
      {R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8, "is larger than 2^63 bytes"},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(image(c.header, std::string(c.data_bytes, '\0')));
    EXPECT_TRUE(Contains(msg, c.message)) << "header: " << c.header;
  }
  // Tensors listed out of data order are fine as long as they tile the buffer; zero-size tensors anywhere.
  const auto f = parse(image(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                             std::string("\x00\x00\x80\x3f\x05\x06", 6)));
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[0].first, "b");
  EXPECT_EQ(f.tensors[0].second.dtype(), pfv::DType::uint8);
  EXPECT_EQ(static_cast<const uint8_t*>(f.tensors[0].second.raw_data())[1], 6);
  EXPECT_EQ(f.tensors[2].second.data_f32()[0], 1.0f);
}

TEST(Safetensors, CorruptedHeaderBytesNeverCrash) {
  pfv::NamedTensors in = {{"w", make(pfv::DType::float32, {2, 2}, 1)}, {"n", make(pfv::DType::int64, {}, 2)}};
  const std::string path = temp_path("corrupt.safetensors");
  pfv::save_safetensors(path, in, {{"k", "v"}});
  const std::string good = read_file(path);
  std::remove(path.c_str());
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  size_t parsed = 0, rejected = 0;
  for (size_t i = 0; i < 8 + n; ++i)
    for (unsigned char v : {0x00, 0x22, 0x2C, 0x39, 0x5B, 0x7D, 0xFF}) {
      std::string bad = good;
      bad[i] = static_cast<char>(v);
      try {
        parse(bad);
        ++parsed;
      } catch (const pfv::WeightsError&) {
        ++rejected;
      }
    }
  EXPECT_GT(rejected, 3 * (8 + n));  // most of the 7 corruptions of each byte are caught
  EXPECT_GT(parsed, 0u);       // (some are harmless, e.g. a digit inside a name)
}

TEST(Safetensors, FileErrors) {
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { pfv::read_safetensors("/nonexistent/dir/w.safetensors"); }),
                       "cannot open /nonexistent/dir/w.safetensors: No such file or directory"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { pfv::read_safetensors("/"); }), "cannot read /: it is a directory"));
  const std::string path = temp_path("truncated.safetensors");
  write_file(path, image(kOneF32, std::string(4, '\0')));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([&] { pfv::read_safetensors(path); }),
                       path + ": tensor \"a\" (header byte 9): data_offsets [0, 8] exceed the data buffer of 4 bytes"));
  std::remove(path.c_str());
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] {
                         pfv::save_safetensors("/nonexistent/dir/w.safetensors", {});
                       }),
                       "cannot create /nonexistent/dir/w.safetensors.tmp"));
}

TEST(Safetensors, SaveRejectsBadNamesBeforeWriting) {
  const std::string path = temp_path("bad.safetensors");
  const auto t = make(pfv::DType::float32, {1}, 0);
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::save_safetensors(path, {{"a", t}, {"a", t}}); }),
                       "duplicate tensor name \"a\""));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::save_safetensors(path, {{"__metadata__", t}}); }),
                       "not a valid tensor name"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::save_safetensors(path, {{"", t}}); }), "empty name"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::save_safetensors(path, {{"\xFF", t}}); }), "not UTF-8"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::save_safetensors(path, {{"u", pfv::Tensor()}}); }),
                       "tensor \"u\" has no data"));
  EXPECT_FALSE(std::ifstream(path).good());
}

// ---------------------------------------------------------------- models

namespace {
std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 37) % 101) / 101.0f - 0.5f;
  return v;
}
}  // namespace

TEST(Weights, SaveAndLoadWeightsGiveTheSameModel) {
  auto a = pfv::models::resnet18(10);
  a->init_weights(3);
  const std::string path = temp_path("resnet18.safetensors");
  pfv::save_weights(*a, path);
  const auto f = pfv::read_safetensors(path);
  EXPECT_EQ(f.metadata, (pfv::Metadata{{"format", "np"}, {"model", "resnet18"}}));
  EXPECT_EQ(f.tensors.size(), a->state_dict_spec().size());

  auto b = pfv::models::resnet18(10);
  EXPECT_FALSE(b->has_weights());
  const auto r = pfv::load_weights(*b, path);
  EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
  const auto sa = a->state_dict(), sb = b->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(same_bytes(sa[i].second, sb[i].second)) << sa[i].first;
  const auto x = ramp(2 * 3 * 40 * 40);
  const auto ya = a->forward(x.data(), {2, 3, 40, 40}), yb = b->forward(x.data(), {2, 3, 40, 40});
  EXPECT_TRUE(same_bytes(ya, yb));
  std::remove(path.c_str());
}

TEST(Weights, FailedLoadLeavesTheModelUnchanged) {
  auto m = pfv::models::resnet18(10);
  m->init_weights(1);
  const auto x = ramp(1 * 3 * 32 * 32);
  const auto before = m->forward(x.data(), {1, 3, 32, 32});

  // Weights of another head size: a size mismatch.
  auto other = pfv::models::resnet18(5);
  other->init_weights(2);
  const std::string path = temp_path("other.safetensors");
  pfv::save_weights(*other, path);
  const std::string msg = message_of<pfv::WeightsError>([&] { pfv::load_weights(*m, path); });
  EXPECT_TRUE(Contains(msg, path + ": Error(s) in loading state_dict for ResNet:"));
  EXPECT_TRUE(Contains(msg, "size mismatch for fc.weight: copying a param with shape [5, 512]"));
  EXPECT_TRUE(same_bytes(m->forward(x.data(), {1, 3, 32, 32}), before));

  // A corrupt file: nothing is loaded either.
  std::string bytes = read_file(path);
  bytes.resize(bytes.size() - 1);
  write_file(path, bytes);
  EXPECT_THROW(pfv::load_weights(*m, path), pfv::WeightsError);
  EXPECT_TRUE(same_bytes(m->forward(x.data(), {1, 3, 32, 32}), before));
  std::remove(path.c_str());

  // PyTorch checkpoints load too (tests in test_pth.cpp); .npz files are the Python package's.
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([&] { pfv::load_weights(*m, "/nonexistent/model.pth"); }),
                       "cannot open /nonexistent/model.pth"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::load_weights(*m, "weights.npz"); }),
                       "weights.npz is a NumPy archive, which only the Python package reads"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([&] { pfv::save_weights(*m, "weights.pth"); }),
                       "expected a name ending in .safetensors (PyTorch checkpoints are read, never written)"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([&] { pfv::load_weights(*m, "/nonexistent.safetensors"); }),
                       "cannot open /nonexistent.safetensors"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { pfv::save_weights(*pfv::models::resnet18(), "x.safetensors"); }),
                       "resnet18 has no weights"));
}

TEST(Weights, HalfPrecisionFilesLoadExactly) {
  auto m = pfv::models::resnet18(2);
  m->init_weights(0);
  auto sd = m->state_dict();
  // fc.bias as float16 and bfloat16: 1.5, -0.25, a subnormal half (2^-24) and 65504 (the largest half).
  pfv::Tensor h{pfv::TensorSpec({2}, pfv::DType::float16)};
  const uint16_t halves[2] = {0x0001, 0x7BFF};
  std::memcpy(h.raw_data(), halves, 4);
  pfv::Tensor bf{pfv::TensorSpec({2, 512}, pfv::DType::bfloat16)};
  std::vector<uint16_t> bfv(1024, 0xBE80);  // -0.25
  bfv[0] = 0x3FC0;                          // 1.5
  std::memcpy(bf.raw_data(), bfv.data(), bfv.size() * 2);
  for (auto& kv : sd) {
    if (kv.first == "fc.bias") kv.second = h;
    if (kv.first == "fc.weight") kv.second = bf;
  }
  const std::string path = temp_path("half.safetensors");
  pfv::save_safetensors(path, sd);
  pfv::load_weights(*m, path);
  for (const auto& kv : m->state_dict()) {
    if (kv.first == "fc.bias") {
      EXPECT_EQ(kv.second.data_f32()[0], 5.9604644775390625e-08f);
      EXPECT_EQ(kv.second.data_f32()[1], 65504.0f);
    }
    if (kv.first == "fc.weight") {
      EXPECT_EQ(kv.second.data_f32()[0], 1.5f);
      EXPECT_EQ(kv.second.data_f32()[1023], -0.25f);
    }
  }
  std::remove(path.c_str());
}
