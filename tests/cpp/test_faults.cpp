// The fault catalogue, C++ side (tests/python/test_faults.py is the Python
// side): what a C++ caller gets for files that change under the reader,
// requests larger than the machine, names that would garble messages, and
// failed loads (the model keeps its weights).
#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/memory.h"
#include "io/byte_source.h"
#include "io/readers.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"
#include "pyflame_vision/models/registry.h"
#include "test_helpers.h"

namespace {

namespace pfv = pyflame_vision;
namespace io = pyflame_vision::io_detail;
using pfv_test::Contains;
using pfv_test::message_of;

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/pfv_test_faults_" + std::to_string(::getpid()) + "_" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string fixture(const std::string& name) { return std::string(PFV_TEST_DATA_DIR) + "/pth/" + name; }

// Every tensor's bytes, in order, for comparing two reads.
std::string contents(const pfv::NamedTensors& ts) {
  std::string s;
  for (const auto& kv : ts) {
    s += kv.first + ":";
    s.append(static_cast<const char*>(kv.second.raw_data()), static_cast<size_t>(kv.second.nbytes()));
  }
  return s;
}

// A file truncated after it was opened: every read past the new end is a
// WeightsError saying so (a memory map would have died of SIGBUS), at every
// cut, for both checkpoint formats and for .safetensors.
TEST(FaultFiles, TruncatedAfterItWasOpened) {
  auto m = pfv::models::resnet18(3);
  m->init_weights(1);
  const std::string st = temp_path("model.safetensors");
  pfv::save_weights(*m, st);
  struct Case {
    std::string name, bytes;
    bool safetensors;
  };
  const std::vector<Case> cases = {{"zip_p2.pth", read_file(fixture("zip_p2.pth")), false},
                                   {"zip_p5.pth", read_file(fixture("zip_p5.pth")), false},
                                   {"legacy_p2.pth", read_file(fixture("legacy_p2.pth")), false},
                                   {"model.safetensors", read_file(st), true}};
  std::remove(st.c_str());
  for (const auto& c : cases) {
    ASSERT_GT(c.bytes.size(), 1000u) << c.name;
    const std::string path = temp_path("cut_" + c.name);
    for (size_t cut : {size_t{0}, size_t{8}, size_t{100}, c.bytes.size() / 2, c.bytes.size() * 3 / 4,
                       c.bytes.size() - 1}) {
      write_file(path, c.bytes);
      const io::FileSource src(path);
      ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(cut)), 0);
      const std::string msg = message_of<pfv::WeightsError>([&] {
        if (c.safetensors) {
          io::read_safetensors(src);
        } else {
          io::read_checkpoint(src, io::detect_weight_format(src), {});
        }
      });
      EXPECT_TRUE(Contains(msg, path + ": the file ends at byte ")) << c.name << " cut at " << cut << ": " << msg;
      EXPECT_TRUE(Contains(msg, "bytes when it was opened (it was truncated or replaced while being read)")) << msg;
    }
    std::remove(path.c_str());
  }
}

// A file replaced by a rename while it is open is still read whole, as it was
// when opened (the reader holds the file, not the name).
TEST(FaultFiles, ReplacedByRenameReadsTheFileThatWasOpened) {
  const std::string original = read_file(fixture("zip_p2.pth"));
  const std::string path = temp_path("replaced.pth"), other = temp_path("other.pth");
  write_file(path, original);
  write_file(other, read_file(fixture("legacy_p2.pth")));
  const pfv::NamedTensors want = pfv::parse_pytorch_checkpoint(original.data(), original.size(), "mem");
  const io::FileSource src(path);
  ASSERT_EQ(std::rename(other.c_str(), path.c_str()), 0);
  EXPECT_EQ(contents(io::read_checkpoint(src, io::detect_weight_format(src), {})), contents(want));
  std::remove(path.c_str());
}

TEST(FaultFiles, UnreadablePathsSayWhy) {
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { io::FileSource s("/nonexistent/w.pth"); }),
                       "cannot open /nonexistent/w.pth: No such file or directory"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { io::FileSource s("/"); }), "cannot read /: it is a directory"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([] { io::FileSource s("/dev/null"); }),
                       "cannot read /dev/null: not a regular file"));
  const std::string path = temp_path("small.bin");
  write_file(path, "0123456789");
  const io::FileSource src(path);
  char buf[16];
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([&] { src.read(4, 7, buf); }),
                       path + ": bytes [4, +7) lie outside its 10 bytes"));
  EXPECT_TRUE(Contains(message_of<pfv::WeightsError>([&] { src.read(UINT64_MAX, 2, buf); }), "lie outside its 10 bytes"));
  std::remove(path.c_str());
}

// Names taken from a file are escaped in messages: a NUL cannot cut the
// message short, and control characters cannot garble it.
TEST(FaultFiles, NamesFromTheFileAreEscapedInMessages) {
  // A legacy-format pickle whose first opcode is a GLOBAL with a NUL and a control byte.
  const std::string pkl = std::string("\x80\x02" "co\x01s\nsys", 10) + std::string("\0tem\n.", 6);
  const std::string msg =
      message_of<pfv::WeightsError>([&] { pfv::parse_pytorch_checkpoint(pkl.data(), pkl.size(), "evil.pth"); });
  EXPECT_TRUE(Contains(msg, "global o\\u0001s.sys\\u0000tem is not allowed")) << msg;
  EXPECT_EQ(std::strlen(msg.c_str()), msg.size());

  // A .safetensors tensor name with a NUL escape, and a state-dict key with a NUL.
  const std::string header = R"({"a\u0000b":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})";
  std::string image(8, '\0');
  for (int k = 0; k < 8; ++k) image[static_cast<size_t>(k)] = static_cast<char>((header.size() >> (8 * k)) & 0xFF);
  image += header + std::string(4, '\0');
  const std::string st = message_of<pfv::WeightsError>([&] { pfv::parse_safetensors(image.data(), image.size(), "n"); });
  EXPECT_TRUE(Contains(st, "tensor \"a\\u0000b\"")) << st;
  EXPECT_EQ(std::strlen(st.c_str()), st.size());

  auto m = pfv::models::resnet18(3);
  m->init_weights(0);
  pfv::NamedTensors sd = m->state_dict();
  sd.emplace_back(std::string("extra\0key", 9), pfv::Tensor(pfv::TensorSpec({1})));
  const std::string ld = message_of<pfv::WeightsError>([&] { m->load_state_dict(sd); });
  EXPECT_TRUE(Contains(ld, "Unexpected key(s) in state_dict: \"extra\\u0000key\"")) << ld;
  EXPECT_EQ(std::strlen(ld.c_str()), ld.size());
}

// Every failed load leaves the model exactly as it was.
TEST(FaultFiles, FailedLoadsKeepTheModelsWeights) {
  auto m = pfv::models::resnet18(3);
  m->init_weights(7);
  const std::string before = contents(m->state_dict());
  auto other = pfv::models::resnet18(5);  // fc has 5 outputs: a size mismatch
  other->init_weights(1);
  const std::string mismatched = temp_path("mismatch.safetensors"), cut = temp_path("cut.safetensors"),
                    evil = temp_path("evil.pth"), trunc = temp_path("trunc.pth");
  pfv::save_weights(*other, mismatched);
  pfv::save_weights(*m, cut);
  const std::string full = read_file(cut);
  write_file(cut, full.substr(0, full.size() - 10));
  write_file(evil, std::string("\x80\x02" "cposix\nsystem\n.", 17));
  const std::string zip = read_file(fixture("zip_p2.pth"));
  write_file(trunc, zip.substr(0, zip.size() / 2));
  for (const auto& path : {mismatched, cut, evil, trunc}) {
    const std::string msg = message_of<pfv::WeightsError>([&] { pfv::load_weights(*m, path); });
    EXPECT_TRUE(Contains(msg, path)) << msg;
    EXPECT_EQ(contents(m->state_dict()), before) << path;
    std::remove(path.c_str());
  }
}

// A request larger than the machine is OutOfMemory before anything is
// allocated, saying what and how much.
TEST(FaultMemory, HugeTensorIsOutOfMemoryBeforeAllocating) {
  try {
    pfv::Tensor t(pfv::TensorSpec({int64_t{1} << 40}));  // 4 TiB of float32
    FAIL() << "a 4 TiB tensor was allocated";
  } catch (const pfv::OutOfMemory& e) {
    EXPECT_GE(e.bytes(), uint64_t{4} << 40);
    EXPECT_TRUE(Contains(e.what(), "cannot allocate 4.00 TiB")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "for a float32 tensor of shape [1099511627776]")) << e.what();
  }
  EXPECT_GT(pfv::detail::available_memory(), uint64_t{1} << 20);
}

TEST(FaultMemory, TheLimitVariableCapsRequests) {
  ::setenv("PYFLAME_VISION_MEMORY_LIMIT", "100000000", 1);
  EXPECT_LE(pfv::detail::available_memory(), uint64_t{100000000});
  const std::string msg = message_of<pfv::OutOfMemory>([] { pfv::Tensor t(pfv::TensorSpec({64, 1024, 1024})); });
  ::unsetenv("PYFLAME_VISION_MEMORY_LIMIT");
  EXPECT_TRUE(Contains(msg, "cannot allocate 256.00 MiB (268435520 bytes) for a float32 tensor of shape [64, 1024, 1024]"))
      << msg;
  EXPECT_TRUE(Contains(msg, "only 95.37 MiB (100000000 bytes) are available")) << msg;
  pfv::Tensor ok(pfv::TensorSpec({64, 1024, 1024}));  // without the limit it fits
  EXPECT_EQ(ok.numel(), 64 * 1024 * 1024);
}

}  // namespace
