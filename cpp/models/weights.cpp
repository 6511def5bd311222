#include "pyflame_vision/models/weights.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "pyflame_vision/error.h"
#include "pyflame_vision/models/registry.h"
#include "weights_table.h"

namespace pyflame_vision {
namespace models {

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string join(const std::string& a, const std::string& b) {
  if (a.empty() || a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string expand_user(const std::string& path) {
  if (path.empty() || path[0] != '~' || (path.size() > 1 && path[1] != '/')) return path;
  const std::string home = env("HOME");
  if (home.empty())
    throw InvalidArgument("cannot expand '~' in the weights cache path " + path + ": HOME is not set");
  return home + path.substr(1);
}

void require_model(const std::string& model) {
  for (const auto& name : list_models())
    if (name == model) return;
  std::string names;
  for (const auto& name : list_models()) names += (names.empty() ? "" : ", ") + name;
  throw InvalidArgument("unknown model '" + model + "'; available: " + names);
}
}  // namespace

std::string WeightsInfo::full_name() const { return std::string(enum_name) + "." + member; }

const std::vector<std::string>& WeightsInfo::categories() const { return imagenet_categories(); }

const std::vector<std::string>& imagenet_categories() {
  static const std::vector<std::string> names(detail::kImagenetCategories,
                                              detail::kImagenetCategories + detail::kNumImagenetCategories);
  return names;
}

const std::vector<WeightsInfo>& pretrained_weights() {
  static const std::vector<WeightsInfo> table(detail::kWeightsTable, detail::kWeightsTable + detail::kNumWeights);
  return table;
}

std::vector<const WeightsInfo*> model_weights(const std::string& model) {
  require_model(model);
  std::vector<const WeightsInfo*> out;
  for (const auto& w : pretrained_weights())
    if (model == w.model) out.push_back(&w);
  return out;
}

const WeightsInfo& default_weights(const std::string& model) {
  for (const WeightsInfo* w : model_weights(model))
    if (w->is_default) return *w;
  throw InvalidArgument("model '" + model + "' has no pretrained weights");
}

const WeightsInfo& get_weights(const std::string& name) {
  const size_t dot = name.find('.');
  if (dot == std::string::npos || name.find('.', dot + 1) != std::string::npos)
    throw InvalidArgument("invalid weights name '" + name +
                          "': expected 'EnumName.MEMBER' such as 'ResNet50_Weights.IMAGENET1K_V2'");
  const std::string enum_name = name.substr(0, dot), member = name.substr(dot + 1);
  std::vector<const WeightsInfo*> members;
  for (const auto& w : pretrained_weights())
    if (enum_name == w.enum_name || enum_name == w.model) members.push_back(&w);
  if (members.empty()) {
    std::string names;
    for (const auto& w : pretrained_weights())
      if (w.is_default) names += (names.empty() ? "" : ", ") + std::string(w.enum_name);
    throw InvalidArgument("unknown weights enum '" + enum_name + "' in '" + name + "'; available: " + names);
  }
  std::string known;
  for (const WeightsInfo* w : members) {
    if (member == w->member || (member == "DEFAULT" && w->is_default)) return *w;
    known += std::string(known.empty() ? "" : ", ") + w->member;
  }
  throw InvalidArgument("'" + std::string(members[0]->enum_name) + "' has no member '" + member +
                        "'; members: " + known + ", DEFAULT");
}

std::string weights_cache_dir() {
  const std::string own = env("PYFLAME_VISION_HOME");
  if (!own.empty()) return join(expand_user(own), "checkpoints");
  std::string torch_home = env("TORCH_HOME");
  if (torch_home.empty()) {
    std::string cache = env("XDG_CACHE_HOME");
    if (cache.empty()) cache = "~/.cache";
    torch_home = join(cache, "torch");
  }
  return join(join(expand_user(torch_home), "hub"), "checkpoints");
}

std::string find_cached_weights(const WeightsInfo& w) {
  const std::string path = join(weights_cache_dir(), w.file_name);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return path;
  return std::string();
}

}  // namespace models
}  // namespace pyflame_vision
