// The model table (models/registry.h): one row per model, and everything the
// factories build comes from it.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "pyflame_vision/error.h"
#include "pyflame_vision/models/registry.h"
#include "test_helpers.h"

namespace models = pyflame_vision::models;

TEST(ModelTable, RowsAreUniqueAndListModelsIsTheirSortedNames) {
  const auto& table = models::model_table();
  EXPECT_EQ(table.size(), 14u);
  std::set<std::string> names;
  for (const auto& row : table) EXPECT_TRUE(names.insert(row.name).second) << row.name;
  EXPECT_EQ(models::list_models(), std::vector<std::string>(names.begin(), names.end()));
}

TEST(ModelTable, CreateBuildsTheRowsArchitecture) {
  for (const auto& row : models::model_table()) {
    const auto m = row.create(10);
    EXPECT_EQ(m->name(), row.name);
    EXPECT_EQ(m->default_input_shape(),
              (pyflame_vision::Shape{1, 3, row.default_resolution, row.default_resolution})) << row.name;
    EXPECT_EQ(m->get_output_shape(m->default_input_shape()), (pyflame_vision::Shape{1, 10})) << row.name;
    if (std::string(row.family) == "resnet") {
      const auto r = std::dynamic_pointer_cast<models::ResNet>(m);
      ASSERT_TRUE(r) << row.name;
      EXPECT_EQ(r->layer_config(), row.layers);
      EXPECT_EQ(r->groups(), row.groups);
      EXPECT_EQ(r->width_per_group(), row.width_per_group);
    } else {
      const auto e = std::dynamic_pointer_cast<models::EfficientNet>(m);
      ASSERT_TRUE(e) << row.name;
      EXPECT_EQ(e->width_mult(), row.width_mult);
      EXPECT_EQ(e->depth_mult(), row.depth_mult);
      EXPECT_EQ(e->dropout(), row.dropout);
    }
    // The named factory and create_model build the same architecture.
    EXPECT_EQ(models::create_model(row.name, 10)->repr(), m->repr()) << row.name;
  }
}

TEST(ModelTable, UnknownNamesListTheValidOnes) {
  const std::string m =
      pfv_test::message_of<pyflame_vision::InvalidArgument>([] { models::model_spec("resnet51"); });
  EXPECT_TRUE(pfv_test::Contains(m, "Unknown model 'resnet51'")) << m;
  EXPECT_TRUE(pfv_test::Contains(m, "wide_resnet101_2")) << m;
}
