// The 14 registry models against torchvision: parameter counts, MACs, output
// and feature shapes, state_dict keys/shapes/dtypes and printed trees; plus
// head removal, input validation, constructor validation and thread safety.
//
// Expected numbers come from torchvision 0.29 (torch 2.x):
//   params   sum(p.numel() for p in m.parameters())
//   macs     forward hooks on Conv2d (out.numel() * in/groups * kh * kw) and
//            Linear (out.numel() * in_features) at the listed resolution
//   sd_hash  FNV-1a 64 of "key:[d0, d1]:dtype\n" over m.state_dict()
//   repr     len(repr(m)) and its FNV-1a 64
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pyflame_vision/error.h"
#include "pyflame_vision/models/registry.h"
#include "test_helpers.h"

namespace pfv = pyflame_vision;
namespace models = pyflame_vision::models;
namespace nn = pyflame_vision::nn;
using pfv::DType;
using pfv::Shape;
using pfv::TensorSpec;
using pfv_test::Contains;
using pfv_test::message_of;

namespace {

struct ModelCase {
  const char* name;
  int64_t params;
  int64_t macs;            // exact, at `res`
  double published_gmacs;  // torchvision's documented GFLOPS (really GMACs)
  int64_t res;             // resolution of the published number
  int64_t features;        // num_features()
  int64_t feature_hw;      // spatial size of the last feature map at `res`
  size_t sd_entries;
  uint64_t sd_hash;
  size_t repr_len;
  uint64_t repr_hash;
};

const ModelCase kCases[] = {
    {"resnet18", 11689512, 1814073344, 1.814, 224, 512, 7, 122, 0xc3dc29b5dd6a2dc8ULL, 4871, 0x23c8bfa01e380650ULL},
    {"resnet34", 21797672, 3663761408, 3.664, 224, 512, 7, 218, 0x138ea2537606f160ULL, 8545, 0x9cedc961c626c9ffULL},
    {"resnet50", 25557032, 4089184256, 4.089, 224, 2048, 7, 320, 0xe674feee7c637ebaULL, 11487, 0x731d300368d43e6cULL},
    {"resnet101", 44549160, 7801405440, 7.801, 224, 2048, 7, 626, 0x19bb61f9b1c5efafULL, 22227,
     0x78439b102c911bb4ULL},
    {"resnet152", 60192808, 11513626624, 11.514, 224, 2048, 7, 932, 0x17a89aeda8861aa8ULL, 32955,
     0xa7d01e657c04dc77ULL},
    {"resnext50_32x4d", 25028904, 4230479872, 4.23, 224, 2048, 7, 320, 0x60efb9e1a3736b37ULL, 11699,
     0x9ae239efc00a317cULL},
    {"resnext101_32x8d", 88791336, 16414015488, 16.414, 224, 2048, 7, 626, 0x9dde903cf24cb2caULL, 22764,
     0xf9f95752a0918b28ULL},
    {"wide_resnet50_2", 68883240, 11398021120, 11.398, 224, 2048, 7, 320, 0x418ffc17a6ede3aeULL, 11523,
     0x478976b0835e619aULL},
    {"wide_resnet101_2", 126886696, 22753050624, 22.753, 224, 2048, 7, 626, 0x0ef1ac30de8ac377ULL, 22263,
     0xfee437adaaa53f2aULL},
    {"efficientnet_b0", 5288548, 385814752, 0.386, 224, 1280, 7, 360, 0x59ee033a12f80cb5ULL, 21103,
     0xfb121e770ccf22f3ULL},
    {"efficientnet_b1", 7794184, 686802832, 0.687, 240, 1280, 8, 508, 0xaa01e24e0063aecbULL, 29984,
     0xc7b595922514bb3dULL},
    {"efficientnet_b2", 9109994, 1087529456, 1.088, 288, 1408, 9, 508, 0xaeea7a454d23c23eULL, 29984,
     0x9fd00d3d641b7c98ULL},
    {"efficientnet_b3", 12233232, 1827141392, 1.827, 300, 1536, 10, 574, 0x016af10a0a12a8b5ULL, 33853,
     0x51e446648f9e455dULL},
    {"efficientnet_b4", 19341616, 4393771024, 4.394, 380, 1792, 12, 706, 0x53bd4de0c77e9f46ULL, 41374,
     0x456d11a1cae9b378ULL},
};

std::string state_dict_text(const nn::Module& m) {
  std::string s;
  for (const auto& p : m.state_dict_spec())
    s += p.name + ":" + pfv::shape_to_string(p.spec.shape()) + ":" + pfv::dtype_name(p.spec.dtype()) + "\n";
  return s;
}

const nn::Parameter* find_entry(const std::vector<nn::Parameter>& v, const std::string& name) {
  for (const auto& p : v)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> names_of(const std::vector<nn::Parameter>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.name);
  return out;
}

/// Follows a dotted path of child names.
nn::Module::Ptr descend(nn::Module::Ptr m, const std::vector<std::string>& path) {
  for (const auto& name : path) {
    if (!m) return nullptr;
    m = m->child(name);
  }
  return m;
}

class RegistryModel : public ::testing::TestWithParam<ModelCase> {};

}  // namespace

// ================================================================== parity with torchvision, per model

TEST_P(RegistryModel, ParameterCountMatchesTorchvision) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name);
  EXPECT_EQ(m->num_parameters(), c.params);
  EXPECT_EQ(m->name(), c.name);
  EXPECT_EQ(m->num_features(), c.features);
}

TEST_P(RegistryModel, OutputShapeAt224) {
  auto m = models::create_model(GetParam().name);
  EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (Shape{1, 1000}));
  EXPECT_EQ(m->get_output_shape({2, 3, 160, 200}), (Shape{2, 1000}));
  const TensorSpec out = m->get_output_spec(TensorSpec({4, 3, 224, 224}));
  EXPECT_EQ(out, TensorSpec({4, 1000}, DType::float32));
}

TEST_P(RegistryModel, MacsMatchTorchvision) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name);
  const models::Summary s = m->summary(TensorSpec({1, 3, c.res, c.res}));
  EXPECT_EQ(s.total_macs, c.macs);
  const double gmacs = static_cast<double>(s.total_macs) / 1e9;
  EXPECT_LT(std::fabs(gmacs - c.published_gmacs) / c.published_gmacs, 0.005)
      << c.name << ": " << gmacs << " GMACs vs published " << c.published_gmacs;
  EXPECT_EQ(s.total_params, c.params);
  EXPECT_EQ(s.output_shape, (Shape{1, 1000}));
  EXPECT_EQ(s.model, c.name);
  // Every parameter belongs to exactly one graph node.
  int64_t row_params = 0, row_macs = 0;
  for (const auto& r : s.rows) {
    row_params += r.params;
    row_macs += r.macs;
  }
  EXPECT_EQ(row_params, c.params);
  EXPECT_EQ(row_macs, s.total_macs);
}

TEST_P(RegistryModel, FeatureMapAtPublishedResolution) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name);
  const auto feats = m->forward_features(TensorSpec({1, 3, c.res, c.res}));
  ASSERT_FALSE(feats.empty());
  EXPECT_EQ(feats.back().shape(), (Shape{1, c.features, c.feature_hw, c.feature_hw}));
}

TEST_P(RegistryModel, StateDictMatchesTorchvision) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name);
  const auto sd = m->state_dict_spec();
  EXPECT_EQ(sd.size(), c.sd_entries);
  EXPECT_EQ(pfv_test::fnv1a64(state_dict_text(*m)), c.sd_hash)
      << "state_dict keys, shapes or dtypes differ from torchvision's " << c.name;
  // named_parameters + named_buffers partition the state dict.
  EXPECT_EQ(m->named_parameters().size() + m->named_buffers().size(), sd.size());
}

TEST_P(RegistryModel, ReprMatchesTorchvision) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name);
  const std::string r = m->repr();
  EXPECT_EQ(r.size(), c.repr_len);
  EXPECT_EQ(pfv_test::fnv1a64(r), c.repr_hash) << "print(torchvision.models." << c.name << "()) differs";
}

TEST_P(RegistryModel, NumClassesZeroBuildsHeadless) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name, 0);
  EXPECT_EQ(m->get_output_shape({1, 3, c.res, c.res}), (Shape{1, c.features, c.feature_hw, c.feature_hw}));
  EXPECT_EQ(m->num_parameters(), c.params - (c.features * 1000 + 1000));
}

TEST_P(RegistryModel, CustomNumClasses) {
  const ModelCase& c = GetParam();
  auto m = models::create_model(c.name, 10);
  EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (Shape{1, 10}));
  EXPECT_EQ(m->num_parameters(), c.params - c.features * 990 - 990);
  EXPECT_THROW(models::create_model(c.name, -1), pfv::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Torchvision, RegistryModel, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return std::string(info.param.name); });

// ================================================================== registry

TEST(Registry, ListModels) {
  const auto names = models::list_models();
  const std::vector<std::string> expected = {
      "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
      "resnet101",       "resnet152",       "resnet18",        "resnet34",        "resnet50",
      "resnext101_32x8d", "resnext50_32x4d", "wide_resnet101_2", "wide_resnet50_2"};
  EXPECT_EQ(names.size(), 14u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names, expected);
  for (const auto& c : kCases) EXPECT_NE(std::find(names.begin(), names.end(), c.name), names.end()) << c.name;
}

TEST(Registry, UnknownModelIsInvalidArgument) {
  const std::string msg = message_of<pfv::InvalidArgument>([] { models::create_model("resnet51"); });
  EXPECT_TRUE(Contains(msg, "resnet51"));
  EXPECT_TRUE(Contains(msg, "resnet50"));  // lists the valid names
  EXPECT_TRUE(Contains(msg, "efficientnet_b4"));
  EXPECT_THROW(models::create_model(""), pfv::InvalidArgument);
  EXPECT_THROW(models::create_model("ResNet50"), pfv::InvalidArgument);
}

TEST(Registry, FactoriesRejectNegativeNumClasses) {
  EXPECT_THROW(models::resnet18(-1), pfv::InvalidArgument);
  EXPECT_THROW(models::wide_resnet50_2(-5), pfv::InvalidArgument);
  EXPECT_THROW(models::efficientnet_b0(-1), pfv::InvalidArgument);
}

// ================================================================== ResNet specifics

TEST(ResNet, ForwardFeaturesResNet50) {
  auto m = models::resnet50();
  const auto f = m->forward_features(TensorSpec({1, 3, 224, 224}));
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0].shape(), (Shape{1, 64, 56, 56}));
  EXPECT_EQ(f[1].shape(), (Shape{1, 256, 56, 56}));
  EXPECT_EQ(f[2].shape(), (Shape{1, 512, 28, 28}));
  EXPECT_EQ(f[3].shape(), (Shape{1, 1024, 14, 14}));
  EXPECT_EQ(f[4].shape(), (Shape{1, 2048, 7, 7}));
  for (const auto& t : f) EXPECT_EQ(t.dtype(), DType::float32);
}

TEST(ResNet, ForwardFeaturesResNet18) {
  auto m = models::resnet18();
  const auto f = m->forward_features(TensorSpec({2, 3, 224, 224}));
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0].shape(), (Shape{2, 64, 56, 56}));
  EXPECT_EQ(f[1].shape(), (Shape{2, 64, 56, 56}));
  EXPECT_EQ(f[2].shape(), (Shape{2, 128, 28, 28}));
  EXPECT_EQ(f[3].shape(), (Shape{2, 256, 14, 14}));
  EXPECT_EQ(f[4].shape(), (Shape{2, 512, 7, 7}));
}

TEST(ResNet, OddResolutionsMatchTorchvision) {
  // torchvision resnet50 layer4 / efficientnet_b0 features at 225, 97, 33: 8, 4, 2.
  auto r = models::resnet50();
  auto e = models::efficientnet_b0();
  const std::pair<int64_t, int64_t> cases[] = {{225, 8}, {97, 4}, {33, 2}};
  for (const auto& c : cases) {
    EXPECT_EQ(r->forward_features(TensorSpec({1, 3, c.first, c.first})).back().shape(),
              (Shape{1, 2048, c.second, c.second}));
    EXPECT_EQ(e->forward_features(TensorSpec({1, 3, c.first, c.first})).back().shape(),
              (Shape{1, 1280, c.second, c.second}));
  }
}

TEST(ResNet, RemoveFc) {
  auto m = models::resnet50();
  ASSERT_TRUE(m->has_fc());
  EXPECT_EQ(m->num_classes(), 1000);
  ASSERT_NE(find_entry(m->named_parameters(), "fc.weight"), nullptr);
  m->remove_fc();
  EXPECT_FALSE(m->has_fc());
  EXPECT_EQ(m->num_classes(), 0);
  EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (Shape{1, 2048, 7, 7}));
  const auto params = m->named_parameters();
  EXPECT_EQ(find_entry(params, "fc.weight"), nullptr);
  EXPECT_EQ(find_entry(params, "fc.bias"), nullptr);
  EXPECT_EQ(m->child("avgpool"), nullptr);
  EXPECT_EQ(m->num_parameters(), 25557032 - 2049000);
  EXPECT_EQ(m->num_features(), 2048);
  EXPECT_FALSE(Contains(m->repr(), "(fc)"));
  EXPECT_EQ(m->graph()->nodes().back().path, "layer4.2.relu");
  // Idempotent.
  m->remove_fc();
  EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (Shape{1, 2048, 7, 7}));
  EXPECT_EQ(m->num_parameters(), 25557032 - 2049000);
  // Features are unchanged.
  EXPECT_EQ(m->forward_features(TensorSpec({1, 3, 224, 224})).size(), 5u);
}

TEST(ResNet, NumClassesZeroEqualsRemoveFc) {
  auto a = models::resnet50(0);
  auto b = models::resnet50();
  b->remove_fc();
  EXPECT_FALSE(a->has_fc());
  EXPECT_EQ(a->num_classes(), 0);
  EXPECT_EQ(names_of(a->state_dict_spec()), names_of(b->state_dict_spec()));
  EXPECT_EQ(a->repr(), b->repr());
  EXPECT_EQ(a->get_output_shape({2, 3, 224, 224}), b->get_output_shape({2, 3, 224, 224}));
  EXPECT_EQ(a->get_output_shape({2, 3, 224, 224}), (Shape{2, 2048, 7, 7}));
  EXPECT_EQ(a->graph()->nodes().size(), b->graph()->nodes().size());
}

TEST(ResNet, StateDictKeys) {
  auto m = models::resnet18();
  const auto sd = m->state_dict_spec();
  const std::vector<std::string> head = {"conv1.weight",         "bn1.weight",
                                         "bn1.bias",             "bn1.running_mean",
                                         "bn1.running_var",      "bn1.num_batches_tracked",
                                         "layer1.0.conv1.weight", "layer1.0.bn1.weight"};
  ASSERT_GE(sd.size(), head.size());
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(sd[i].name, head[i]);
  EXPECT_EQ(sd.back().name, "fc.bias");

  const auto* nbt = find_entry(sd, "bn1.num_batches_tracked");
  ASSERT_NE(nbt, nullptr);
  EXPECT_EQ(nbt->spec.dtype(), DType::int64);
  EXPECT_EQ(nbt->spec.shape(), Shape{});
  const auto* c = find_entry(sd, "layer1.0.conv1.weight");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->spec, TensorSpec({64, 64, 3, 3}));
  const auto* ds = find_entry(sd, "layer2.0.downsample.0.weight");
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->spec.shape(), (Shape{128, 64, 1, 1}));
  const auto* fc = find_entry(sd, "fc.weight");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->spec.shape(), (Shape{1000, 512}));
  EXPECT_EQ(find_entry(sd, "layer1.0.downsample.0.weight"), nullptr);  // resnet18 layer1 has no downsample

  // Buffers are not parameters.
  EXPECT_EQ(find_entry(m->named_parameters(), "bn1.running_mean"), nullptr);
  ASSERT_FALSE(m->named_buffers().empty());
  EXPECT_EQ(m->named_buffers().front().name, "bn1.running_mean");
}

TEST(ResNet, SummaryRows) {
  auto m = models::resnet18();
  const models::Summary s = m->summary(TensorSpec({1, 3, 224, 224}));
  // stem 4 + 8 basic blocks * 7 + 3 downsamples * 2 + head 3
  ASSERT_EQ(s.rows.size(), 69u);
  EXPECT_EQ(s.rows[0].path, "conv1");
  EXPECT_EQ(s.rows[0].type, "Conv2d");
  EXPECT_EQ(s.rows[0].output_shape, (Shape{1, 64, 112, 112}));
  EXPECT_EQ(s.rows[0].params, 9408);
  EXPECT_EQ(s.rows[0].macs, 118013952);
  EXPECT_EQ(s.rows[3].path, "maxpool");
  EXPECT_EQ(s.rows[3].output_shape, (Shape{1, 64, 56, 56}));
  EXPECT_EQ(s.rows[9].path, "layer1.0");
  EXPECT_EQ(s.rows[9].type, "Add");
  EXPECT_EQ(s.rows[9].params, 0);
  EXPECT_EQ(s.rows[10].path, "layer1.0.relu");
  EXPECT_EQ(s.rows[66].path, "avgpool");
  EXPECT_EQ(s.rows[66].output_shape, (Shape{1, 512, 1, 1}));
  EXPECT_EQ(s.rows[67].path, "flatten");
  EXPECT_EQ(s.rows[67].type, "Flatten");
  EXPECT_EQ(s.rows[67].output_shape, (Shape{1, 512}));
  EXPECT_EQ(s.rows[68].path, "fc");
  EXPECT_EQ(s.rows[68].type, "Linear");
  EXPECT_EQ(s.rows[68].params, 513000);
  EXPECT_EQ(s.rows[68].macs, 512000);
  EXPECT_EQ(s.input, TensorSpec({1, 3, 224, 224}));
  // sum(v.numel() * v.element_size() for v in resnet18().state_dict().values())
  EXPECT_EQ(s.param_bytes, 46796608);
  int64_t act = 0;
  for (const auto& r : s.rows) act += pfv::shape_numel(r.output_shape) * 4;
  EXPECT_EQ(s.activation_bytes, act);

  const std::string table = s.to_string();
  EXPECT_TRUE(Contains(table, "Total params: 11,689,512 (11.69 M)"));
  EXPECT_TRUE(Contains(table, "Total MACs: 1,814,073,344 (1.814 G"));
  EXPECT_TRUE(Contains(table, "Output shape: [1, 1000]"));
  EXPECT_TRUE(Contains(table, "layer1.0.relu"));
}

TEST(ResNet, SummaryParamBytesResNet50) {
  EXPECT_EQ(models::resnet50()->summary(TensorSpec({1, 3, 224, 224})).param_bytes, 102441032);
}

TEST(ResNet, DilatedResNet50MatchesTorchvision) {
  // torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
  models::ResNet m(models::ResNetBlockType::BOTTLENECK, {3, 4, 6, 3}, 1000, false, 1, 64, {false, true, true});
  const auto f = m.forward_features(TensorSpec({1, 3, 224, 224}));
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[2].shape(), (Shape{1, 512, 28, 28}));
  EXPECT_EQ(f[3].shape(), (Shape{1, 1024, 28, 28}));
  EXPECT_EQ(f[4].shape(), (Shape{1, 2048, 28, 28}));
  EXPECT_EQ(m.get_output_shape({1, 3, 224, 224}), (Shape{1, 1000}));
  EXPECT_EQ(m.repr().size(), 11623u);
  EXPECT_EQ(pfv_test::fnv1a64(m.repr()), 0xf6069dec937de46eULL);
  EXPECT_EQ(pfv_test::fnv1a64(state_dict_text(m)), 0xe674feee7c637ebaULL);  // same as resnet50
  EXPECT_EQ(m.name(), "ResNet");
  EXPECT_EQ(m.summary(TensorSpec({1, 3, 224, 224})).model, "ResNet");
}

TEST(ResNet, Accessors) {
  auto m = models::resnext101_32x8d();
  EXPECT_EQ(m->block_type(), models::ResNetBlockType::BOTTLENECK);
  EXPECT_EQ(m->layer_config(), (std::vector<int64_t>{3, 4, 23, 3}));
  EXPECT_EQ(m->groups(), 32);
  EXPECT_EQ(m->width_per_group(), 8);
  EXPECT_FALSE(m->zero_init_residual());
  EXPECT_EQ(m->replace_stride_with_dilation(), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(m->default_input_shape(), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(models::resnet34()->block_type(), models::ResNetBlockType::BASIC);
}

TEST(ResNet, ConstructorValidation) {
  using models::ResNet;
  using models::ResNetBlockType;
  const auto B = ResNetBlockType::BASIC;
  const auto N = ResNetBlockType::BOTTLENECK;
  EXPECT_THROW(ResNet(B, {2, 2, 2}), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(B, {2, 2, 2, 2, 2}), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(B, {}), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(B, {2, 0, 2, 2}), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(B, {2, 2, 2, -1}), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(B, {2, 2, 2, 2}, -1), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(N, {3, 4, 6, 3}, 1000, false, 0), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(N, {3, 4, 6, 3}, 1000, false, 1, 0), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(N, {3, 4, 6, 3}, 1000, false, 1, 64, {false, true}), pfv::InvalidArgument);
  // torchvision: "BasicBlock only supports groups=1 and base_width=64"
  EXPECT_THROW(ResNet(B, {2, 2, 2, 2}, 1000, false, 2), pfv::InvalidArgument);
  EXPECT_THROW(ResNet(B, {2, 2, 2, 2}, 1000, false, 1, 128), pfv::InvalidArgument);
  // torchvision: NotImplementedError("Dilation > 1 not supported in BasicBlock")
  EXPECT_THROW(ResNet(B, {2, 2, 2, 2}, 1000, false, 1, 64, {false, true, false}), pfv::Unsupported);
  // The same options are fine for a Bottleneck network.
  EXPECT_NO_THROW(ResNet(N, {1, 1, 1, 1}, 1000, false, 1, 64, {false, true, false}));
  // zero_init_residual does not change shapes.
  ResNet z(N, {3, 4, 6, 3}, 1000, true);
  EXPECT_TRUE(z.zero_init_residual());
  EXPECT_EQ(z.num_parameters(), 25557032);
}

// ================================================================== EfficientNet specifics

TEST(EfficientNet, ForwardFeaturesAndRemoveClassifier) {
  auto m = models::efficientnet_b0();
  const auto f = m->forward_features(TensorSpec({1, 3, 224, 224}));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].shape(), (Shape{1, 1280, 7, 7}));
  EXPECT_TRUE(m->has_classifier());
  EXPECT_EQ(m->num_classes(), 1000);
  m->remove_classifier();
  EXPECT_FALSE(m->has_classifier());
  EXPECT_EQ(m->num_classes(), 0);
  EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (Shape{1, 1280, 7, 7}));
  EXPECT_EQ(m->num_parameters(), 5288548 - 1281000);
  EXPECT_EQ(find_entry(m->named_parameters(), "classifier.1.weight"), nullptr);
  m->remove_classifier();  // idempotent
  EXPECT_EQ(m->get_output_shape({1, 3, 224, 224}), (Shape{1, 1280, 7, 7}));

  auto z = models::efficientnet_b0(0);
  EXPECT_EQ(z->repr(), m->repr());
  EXPECT_EQ(names_of(z->state_dict_spec()), names_of(m->state_dict_spec()));
}

TEST(EfficientNet, StateDictKeys) {
  auto m = models::efficientnet_b0();
  const auto sd = m->state_dict_spec();
  const std::vector<std::string> head = {"features.0.0.weight",         "features.0.1.weight",
                                         "features.0.1.bias",           "features.0.1.running_mean",
                                         "features.0.1.running_var",    "features.0.1.num_batches_tracked",
                                         "features.1.0.block.0.0.weight", "features.1.0.block.0.1.weight"};
  ASSERT_GE(sd.size(), head.size());
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(sd[i].name, head[i]);
  const auto* dw = find_entry(sd, "features.1.0.block.0.0.weight");
  ASSERT_NE(dw, nullptr);
  EXPECT_EQ(dw->spec.shape(), (Shape{32, 1, 3, 3}));  // depthwise
  const auto* fc1 = find_entry(sd, "features.1.0.block.1.fc1.bias");
  ASSERT_NE(fc1, nullptr);
  EXPECT_EQ(fc1->spec.shape(), (Shape{8}));
  const auto* cls = find_entry(sd, "classifier.1.weight");
  ASSERT_NE(cls, nullptr);
  EXPECT_EQ(cls->spec.shape(), (Shape{1000, 1280}));
  EXPECT_EQ(sd.back().name, "classifier.1.bias");
}

TEST(EfficientNet, StochasticDepthSchedule) {
  // torchvision: sd_prob = 0.2 * block_id / total_blocks
  auto b0 = models::efficientnet_b0();
  auto sd = [](const nn::Module::Ptr& m, const std::vector<std::string>& path) {
    auto s = std::dynamic_pointer_cast<nn::StochasticDepth>(descend(m, path));
    if (!s) throw std::logic_error("no StochasticDepth");
    return s->p();
  };
  EXPECT_DOUBLE_EQ(sd(b0, {"features", "1", "0", "stochastic_depth"}), 0.0);
  EXPECT_DOUBLE_EQ(sd(b0, {"features", "2", "0", "stochastic_depth"}), 0.0125);
  EXPECT_DOUBLE_EQ(sd(b0, {"features", "7", "0", "stochastic_depth"}), 0.1875);
  EXPECT_EQ(descend(b0, {"features", "2", "0", "stochastic_depth"})->repr(), "StochasticDepth(p=0.0125, mode=row)");
  auto b4 = models::efficientnet_b4();
  EXPECT_DOUBLE_EQ(sd(b4, {"features", "7", "1", "stochastic_depth"}), 0.19375);
}

TEST(EfficientNet, ScaledStageConfigB4) {
  auto m = models::efficientnet_b4();
  // torchvision _efficientnet_conf("efficientnet_b4", width_mult=1.4, depth_mult=1.8)
  const int64_t expected[7][6] = {{1, 3, 1, 48, 24, 2},   {6, 3, 2, 24, 32, 4},    {6, 5, 2, 32, 56, 4},
                                  {6, 3, 2, 56, 112, 6},  {6, 5, 1, 112, 160, 6},  {6, 5, 2, 160, 272, 8},
                                  {6, 3, 1, 272, 448, 2}};
  const auto& cfg = m->stage_config();
  ASSERT_EQ(cfg.size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    SCOPED_TRACE(i);
    EXPECT_DOUBLE_EQ(cfg[i].expand_ratio, static_cast<double>(expected[i][0]));
    EXPECT_EQ(cfg[i].kernel, expected[i][1]);
    EXPECT_EQ(cfg[i].stride, expected[i][2]);
    EXPECT_EQ(cfg[i].input_channels, expected[i][3]);
    EXPECT_EQ(cfg[i].out_channels, expected[i][4]);
    EXPECT_EQ(cfg[i].num_layers, expected[i][5]);
  }
  EXPECT_EQ(models::EfficientNet::base_config().size(), 7u);
  EXPECT_EQ(models::EfficientNet::base_config()[6].out_channels, 320);
  EXPECT_DOUBLE_EQ(m->width_mult(), 1.4);
  EXPECT_DOUBLE_EQ(m->depth_mult(), 1.8);
  EXPECT_DOUBLE_EQ(m->dropout(), 0.4);
  EXPECT_DOUBLE_EQ(m->stochastic_depth_prob(), 0.2);
}

TEST(EfficientNet, DefaultInputShapes) {
  // torchvision's crop sizes for B0, B1, B3, B4.
  EXPECT_EQ(models::efficientnet_b0()->default_input_shape(), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(models::efficientnet_b1()->default_input_shape(), (Shape{1, 3, 240, 240}));
  EXPECT_EQ(models::efficientnet_b3()->default_input_shape(), (Shape{1, 3, 300, 300}));
  EXPECT_EQ(models::efficientnet_b4()->default_input_shape(), (Shape{1, 3, 380, 380}));
  EXPECT_EQ(models::efficientnet_b4()->resolution(), 380);
}

TEST(EfficientNet, SummaryParamBytes) {
  EXPECT_EQ(models::efficientnet_b0()->summary(TensorSpec({1, 3, 224, 224})).param_bytes, 21322648);
}

TEST(EfficientNet, ConstructorValidation) {
  using models::EfficientNet;
  EXPECT_THROW(EfficientNet(0.0, 1.0, 0.2), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(-1.0, 1.0, 0.2), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(1.0, 0.0, 0.2), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(1.0, 1.0, 1.5), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(1.0, 1.0, -0.1), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(1.0, 1.0, 0.2, -1), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(1.0, 1.0, 0.2, 1000, 2.0), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(1.0, 1.0, 0.2, 1000, 0.2, 0), pfv::InvalidArgument);
  EXPECT_THROW(EfficientNet(std::nan(""), 1.0, 0.2), pfv::InvalidArgument);
  EXPECT_EQ(EfficientNet(1.0, 1.0, 0.2).num_parameters(), 5288548);
}

// ================================================================== input validation (both families)

TEST(ModelInputs, EmptyBatch) {
  EXPECT_EQ(models::resnet18()->get_output_shape({0, 3, 224, 224}), (Shape{0, 1000}));
  EXPECT_EQ(models::resnet50()->get_output_shape({0, 3, 224, 224}), (Shape{0, 1000}));
  EXPECT_EQ(models::efficientnet_b0()->get_output_shape({0, 3, 224, 224}), (Shape{0, 1000}));
}

TEST(ModelInputs, OneByOneInput) {
  EXPECT_EQ(models::resnet18()->get_output_shape({1, 3, 1, 1}), (Shape{1, 1000}));
  EXPECT_EQ(models::resnet50()->get_output_shape({1, 3, 1, 1}), (Shape{1, 1000}));
  EXPECT_EQ(models::efficientnet_b0()->get_output_shape({1, 3, 1, 1}), (Shape{1, 1000}));
  EXPECT_EQ(models::resnet18()->forward_features(TensorSpec({1, 3, 1, 1})).back().shape(), (Shape{1, 512, 1, 1}));
}

TEST(ModelInputs, ZeroHeightThrows) {
  auto r = models::resnet18();
  const std::string msg = message_of<pfv::ShapeError>([&] { r->get_output_shape({1, 3, 0, 224}); });
  EXPECT_TRUE(pfv_test::StartsWith(msg, "[conv2d] conv1: "));
  EXPECT_TRUE(pfv_test::EndsWith(msg, "(input shape [1, 3, 0, 224])"));
  EXPECT_THROW(r->get_output_shape({1, 3, 224, 0}), pfv::ShapeError);
  EXPECT_THROW(models::efficientnet_b0()->get_output_shape({1, 3, 0, 224}), pfv::ShapeError);
}

TEST(ModelInputs, WrongChannelCountNamesConv1) {
  const std::string msg = message_of<pfv::ShapeError>([] { models::resnet18()->get_output_shape({1, 4, 224, 224}); });
  EXPECT_EQ(msg, "[conv2d] conv1: expected 3 input channels, got 4 (input shape [1, 4, 224, 224])");
  const std::string emsg =
      message_of<pfv::ShapeError>([] { models::efficientnet_b0()->get_output_shape({1, 4, 224, 224}); });
  EXPECT_EQ(emsg, "[conv2d] features.0.0: expected 3 input channels, got 4 (input shape [1, 4, 224, 224])");
}

TEST(ModelInputs, WrongRankThrows) {
  auto r = models::resnet50();
  const std::string msg = message_of<pfv::ShapeError>([&] { r->get_output_shape({3, 224, 224}); });
  EXPECT_TRUE(Contains(msg, "4-D"));
  EXPECT_TRUE(Contains(msg, "[3, 224, 224]"));
  EXPECT_THROW(r->get_output_shape({1, 1, 3, 224, 224}), pfv::ShapeError);
  EXPECT_THROW(r->forward_features(TensorSpec({3, 224, 224})), pfv::ShapeError);
  EXPECT_THROW(r->summary(TensorSpec({3, 224, 224})), pfv::ShapeError);
  EXPECT_THROW(r->get_output_shape({1, 3, -224, 224}), pfv::ShapeError);
}

TEST(ModelInputs, NonFloat32IsTypeError) {
  auto r = models::resnet18();
  EXPECT_THROW(r->get_output_spec(TensorSpec({1, 3, 224, 224}, DType::float64)), pfv::TypeError);
  EXPECT_THROW(r->get_output_spec(TensorSpec({1, 3, 224, 224}, DType::uint8)), pfv::TypeError);
}

TEST(ModelInputs, HugeInputOverflowsInsideTheGraph) {
  // The input itself fits (3 * 2^58 floats), conv1's output (64 * 2^56 floats) does not.
  auto r = models::resnet18();
  const int64_t s = int64_t{1} << 29;
  const std::string msg = message_of<pfv::ShapeOverflowError>([&] { r->get_output_shape({1, 3, s, s}); });
  EXPECT_TRUE(pfv_test::StartsWith(msg, "[conv2d] conv1: "));
  // An input that is itself too large fails before the graph.
  EXPECT_THROW(r->get_output_shape({int64_t{1} << 20, 3, int64_t{1} << 20, int64_t{1} << 20}),
               pfv::ShapeOverflowError);
}

// ================================================================== thread safety

TEST(ModelThreads, ConcurrentShapeInferenceOnOneModel) {
  auto m = models::resnet50();
  const std::vector<Shape> inputs = {{1, 3, 224, 224}, {2, 3, 160, 160}, {4, 3, 97, 131}, {0, 3, 224, 224}};
  std::vector<Shape> expected;
  for (const auto& in : inputs) expected.push_back(m->get_output_shape(in));
  const int64_t expected_macs = m->summary(TensorSpec({1, 3, 224, 224})).total_macs;
  ASSERT_EQ(expected[0], (Shape{1, 1000}));
  ASSERT_EQ(expected[3], (Shape{0, 1000}));

  constexpr int kThreads = 8;
  constexpr int kIters = 30;
  std::atomic<int> mismatches{0}, exceptions{0}, checks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kIters; ++i) {
          const size_t k = static_cast<size_t>(t + i) % inputs.size();
          if (m->get_output_shape(inputs[k]) != expected[k]) ++mismatches;
          if (i % 10 == 0 && m->summary(TensorSpec({1, 3, 224, 224})).total_macs != expected_macs) ++mismatches;
          try {
            m->get_output_shape({1, 4, 224, 224});
            ++mismatches;
          } catch (const pfv::ShapeError&) {
          }
          ++checks;
        }
      } catch (...) {
        ++exceptions;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(checks.load(), kThreads * kIters);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(exceptions.load(), 0);
}
