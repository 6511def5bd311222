// The pretrained-weights table (models/weights.h): lookups, the categories, and
// the cache directory rules (torch hub's, PYFLAME_VISION_HOME first).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "pyflame_vision/pyflame_vision.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace m = pyflame_vision::models;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

// Sets environment variables for one test and restores them afterwards.
class EnvGuard {
 public:
  explicit EnvGuard(std::initializer_list<const char*> names) {
    for (const char* n : names) {
      const char* v = std::getenv(n);
      saved_.push_back({n, v ? std::string(v) : std::string(), v != nullptr});
    }
  }
  ~EnvGuard() {
    for (const auto& s : saved_) {
      if (s.present)
        ::setenv(s.name, s.value.c_str(), 1);
      else
        ::unsetenv(s.name);
    }
  }

 private:
  struct Saved {
    const char* name;
    std::string value;
    bool present;
  };
  std::vector<Saved> saved_;
};

}  // namespace

TEST(WeightsTable, EveryModelHasADefaultThatBuildsIt) {
  std::set<std::string> enums;
  for (const std::string& name : m::list_models()) {
    const auto entries = m::model_weights(name);
    ASSERT_FALSE(entries.empty()) << name;
    const m::WeightsInfo& def = m::default_weights(name);
    EXPECT_EQ(def.model, name);
    int defaults = 0, legacy = 0;
    for (const m::WeightsInfo* w : entries) {
      defaults += w->is_default;
      legacy += w->is_legacy_pretrained;
      enums.insert(w->enum_name);
      EXPECT_EQ(std::string(w->url).substr(std::string(w->url).rfind('/') + 1), w->file_name);
      EXPECT_NE(std::string(w->file_name).find(std::string("-") + w->sha256_prefix + "."), std::string::npos);
      EXPECT_EQ(m::create_model(name)->num_parameters(), w->num_params) << w->full_name();
      EXPECT_EQ(&m::get_weights(w->full_name()), w);
      EXPECT_EQ(w->categories().size(), 1000u);
    }
    EXPECT_EQ(defaults, 1) << name;
    EXPECT_EQ(legacy, 1) << name;
  }
  EXPECT_EQ(enums.size(), 14u);
}

TEST(WeightsTable, KnownFacts) {
  const m::WeightsInfo& w = m::get_weights("ResNet50_Weights.DEFAULT");
  EXPECT_STREQ(w.member, "IMAGENET1K_V2");
  EXPECT_STREQ(w.url, "https://download.pytorch.org/models/resnet50-11ad3fa6.pth");
  EXPECT_STREQ(w.sha256_prefix, "11ad3fa6");
  EXPECT_EQ(w.preset.resize_size, 232);
  EXPECT_EQ(w.preset.crop_size, 224);
  EXPECT_STREQ(w.preset.interpolation, "bilinear");
  EXPECT_DOUBLE_EQ(w.acc1, 80.858);
  const m::WeightsInfo& b4 = m::get_weights("efficientnet_b4.DEFAULT");
  EXPECT_EQ(b4.preset.crop_size, 380);
  EXPECT_EQ(b4.preset.resize_size, 384);
  EXPECT_STREQ(b4.preset.interpolation, "bicubic");
  EXPECT_EQ(m::imagenet_categories().front(), "tench");
  EXPECT_EQ(m::imagenet_categories()[207], "golden retriever");
  EXPECT_EQ(m::imagenet_categories().back(), "toilet tissue");
}

TEST(WeightsTable, LookupErrorsSayWhatExists) {
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { m::get_weights("ResNet50_Weights.IMAGENET1K_V9"); }), "members: IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { m::get_weights("ResNet9_Weights.DEFAULT"); }), "unknown weights enum 'ResNet9_Weights'"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { m::get_weights("IMAGENET1K_V1"); }), "expected 'EnumName.MEMBER'"));
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { m::model_weights("resnet9"); }), "unknown model"));
}

TEST(WeightsTable, CacheDirectoryFollowsTorchHub) {
  EnvGuard guard({"PYFLAME_VISION_HOME", "TORCH_HOME", "XDG_CACHE_HOME", "HOME"});
  ::unsetenv("PYFLAME_VISION_HOME");
  ::setenv("TORCH_HOME", "/opt/th", 1);
  EXPECT_EQ(m::weights_cache_dir(), "/opt/th/hub/checkpoints");
  ::unsetenv("TORCH_HOME");
  ::setenv("XDG_CACHE_HOME", "/var/cache/x/", 1);
  EXPECT_EQ(m::weights_cache_dir(), "/var/cache/x/torch/hub/checkpoints");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(m::weights_cache_dir(), "/home/u/.cache/torch/hub/checkpoints");
  ::setenv("TORCH_HOME", "~/th", 1);
  EXPECT_EQ(m::weights_cache_dir(), "/home/u/th/hub/checkpoints");
  ::setenv("PYFLAME_VISION_HOME", "/data/pfv", 1);
  EXPECT_EQ(m::weights_cache_dir(), "/data/pfv/checkpoints");
  ::unsetenv("PYFLAME_VISION_HOME");
  ::unsetenv("TORCH_HOME");
  ::unsetenv("HOME");
  EXPECT_TRUE(Contains(message_of<pfv::InvalidArgument>([] { m::weights_cache_dir(); }), "HOME is not set"));
}

TEST(WeightsTable, FindCachedWeights) {
  EnvGuard guard({"PYFLAME_VISION_HOME"});
  const char* tmp = std::getenv("TMPDIR");
  const std::string home = std::string(tmp && *tmp ? tmp : "/tmp") + "/pfv_weights_table_" + std::to_string(::getpid());
  ::setenv("PYFLAME_VISION_HOME", home.c_str(), 1);
  const m::WeightsInfo& w = m::get_weights("ResNet18_Weights.IMAGENET1K_V1");
  EXPECT_EQ(m::find_cached_weights(w), "");
  ::mkdir(home.c_str(), 0755);
  ::mkdir((home + "/checkpoints").c_str(), 0755);
  const std::string path = home + "/checkpoints/" + w.file_name;
  ::mkdir(path.c_str(), 0755);  // a directory is not a checkpoint
  EXPECT_EQ(m::find_cached_weights(w), "");
  ::rmdir(path.c_str());
  std::ofstream(path) << "x";
  EXPECT_EQ(m::find_cached_weights(w), path);
  std::remove(path.c_str());
  ::rmdir((home + "/checkpoints").c_str());
  ::rmdir(home.c_str());
}
