// Model::weights_version(): 0 until weights are set, a new process-unique value after every
// init_weights / successful load_state_dict / load_weights, unchanged by failed loads and by
// structural calls. Python's weights record (where a model's weights came from) relies on it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "pyflame_vision/pyflame_vision.h"

namespace pfv = pyflame_vision;

TEST(WeightsVersion, StartsAtZeroAndChangesWithEveryWeightsChange) {
  auto a = pfv::models::resnet18(10);
  auto b = pfv::models::resnet18(10);
  EXPECT_EQ(a->weights_version(), 0u);
  EXPECT_EQ(b->weights_version(), 0u);

  std::set<uint64_t> seen;
  a->init_weights(0);
  seen.insert(a->weights_version());
  a->init_weights(0);  // the same values again: still a new version (nobody compares values)
  seen.insert(a->weights_version());
  b->init_weights(0);  // another model never shares a version
  seen.insert(b->weights_version());
  b->load_state_dict(a->state_dict());
  seen.insert(b->weights_version());
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.count(0u), 0u);
}

TEST(WeightsVersion, FailedLoadAndStructuralChangesKeepIt) {
  auto m = pfv::models::resnet18(10);
  m->init_weights(1);
  const uint64_t v = m->weights_version();
  auto other = pfv::models::resnet18(5);  // fc has another shape: the load must fail
  other->init_weights(0);
  EXPECT_THROW(m->load_state_dict(other->state_dict()), pfv::WeightsError);
  EXPECT_EQ(m->weights_version(), v);
  m->set_name("renamed");
  m->remove_head();
  EXPECT_EQ(m->weights_version(), v);
  // A non-strict partial load changes some weights: a new version.
  auto sd = other->state_dict();
  sd.erase(sd.begin() + 1, sd.end());  // conv1.weight only
  m->load_state_dict(sd, /*strict=*/false);
  EXPECT_NE(m->weights_version(), v);
}

TEST(WeightsVersion, LoadWeightsFromAFileChangesIt) {
  auto a = pfv::models::resnet18(3);
  a->init_weights(2);
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/pfv_test_weights_version_" +
                           std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".safetensors";
  pfv::save_weights(*a, path);
  auto b = pfv::models::resnet18(3);
  pfv::load_weights(*b, path);
  std::remove(path.c_str());
  EXPECT_NE(b->weights_version(), 0u);
  EXPECT_NE(b->weights_version(), a->weights_version());
}
