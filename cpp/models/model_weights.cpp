// Model weights (init, state dict) and running (compile cache, forward).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "graph/executable.h"
#include "graph/weight_store.h"
#include "io/io_util.h"
#include "kernels/conv.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/models/model.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace models {

namespace {

// xoshiro256** seeded through splitmix64: the same stream on every platform
// (std::normal_distribution is implementation-defined, so it is not used).
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  /// Standard normal (Box-Muller; both values of each pair are used).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

template <typename F>
void walk(const nn::Module& m, const std::string& prefix, F&& f) {
  f(m, prefix);
  for (const auto& c : m.children()) walk(*c.second, prefix + c.first + ".", f);
}

Tensor filled(const Shape& shape, float v) {
  Tensor t{TensorSpec(shape, DType::float32)};
  std::fill(t.data_f32(), t.data_f32() + t.numel(), v);
  return t;
}

// Keys as torch lists them, but escaped (a NUL or control character in a key
// must not cut or garble the message) and at most 100 of them.
std::string join_quoted(const std::vector<std::string>& v) {
  constexpr size_t kShown = 100;
  std::string s;
  for (size_t i = 0; i < v.size() && i < kShown; ++i) s += (i ? ", " : "") + io_detail::quoted(v[i]);
  if (v.size() > kShown) s += ", ... (" + std::to_string(v.size() - kShown) + " more)";
  return s;
}

// IEEE binary16 -> float (exact: every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / nan
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // +-0
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while (!(mant & 0x400u));
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Converts `src` to `dtype` (float32 or int64) from any float or integer dtype.
bool convert(const Tensor& src, DType dtype, Tensor& out) {
  const int64_t n = src.numel();
  Tensor t{TensorSpec(src.shape(), dtype)};
  auto fill = [&](auto get) {
    if (dtype == DType::float32) {
      float* d = t.data_f32();
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(get(i));
    } else {
      int64_t* d = t.data_i64();
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<int64_t>(get(i));
    }
  };
  const void* p = src.raw_data();
  switch (src.dtype()) {
    case DType::float32: fill([&](int64_t i) { return static_cast<const float*>(p)[i]; }); break;
    case DType::float64: fill([&](int64_t i) { return static_cast<const double*>(p)[i]; }); break;
    case DType::int64: fill([&](int64_t i) { return static_cast<const int64_t*>(p)[i]; }); break;
    case DType::int32: fill([&](int64_t i) { return static_cast<const int32_t*>(p)[i]; }); break;
    case DType::uint8: fill([&](int64_t i) { return static_cast<const uint8_t*>(p)[i]; }); break;
    case DType::float16: fill([&](int64_t i) { return half_to_float(static_cast<const uint16_t*>(p)[i]); }); break;
    case DType::bfloat16:
      fill([&](int64_t i) { return bfloat16_to_float(static_cast<const uint16_t*>(p)[i]); });
      break;
    default: return false;
  }
  out = std::move(t);
  return true;
}

std::string no_weights_message(const std::string& model, const std::string& first_missing) {
  return model + " has no weights (no value for '" + first_missing +
         "'): call model.init_weights(seed=0) for torchvision's random initialisation, or load trained "
         "weights with model.load_state_dict(state_dict) or pyflame_vision.load_weights(model, path) "
         "(a torchvision state dict works as is: {k: v.numpy() for k, v in tv_model.state_dict().items()})";
}

// Process-wide, so that a version never identifies the weights of two different models.
std::atomic<uint64_t> g_weights_version{0};

}  // namespace

uint64_t Model::weights_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return weights_version_;
}

std::shared_ptr<WeightStore> Model::weights() const {
  std::lock_guard<std::mutex> lock(mu_);
  return weights_;
}

void Model::require_weights() const {
  auto w = weights();
  for (const auto& p : state_dict_spec())
    if (!w || !w->has(p.name)) throw WeightsError(no_weights_message(name().empty() ? type_name() : name(), p.name));
}

bool Model::has_weights() const {
  auto w = weights();
  if (!w) return false;
  for (const auto& p : state_dict_spec())
    if (!w->has(p.name)) return false;
  return true;
}

int64_t Model::resident_weight_bytes() const {
  auto w = weights();
  return w ? w->resident_bytes() : 0;
}

int64_t Model::weight_correction_bytes() const {
  auto w = weights();
  return w ? w->derived_bytes() : 0;
}

void Model::init_weights(uint64_t seed) {
  Rng rng(seed);
  auto map = std::make_shared<std::unordered_map<std::string, Tensor>>();
  const bool eff_linear = efficientnet_linear_init();
  walk(*this, "", [&](const nn::Module& m, const std::string& prefix) {
    if (auto* conv = dynamic_cast<const nn::Conv2d*>(&m)) {
      const auto& o = conv->options();
      // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out),
      // fan_out = out_channels * kh * kw (torch's _calculate_fan_in_and_fan_out).
      const double fan_out = static_cast<double>(o.out_channels_ * o.kernel_size_.h * o.kernel_size_.w);
      const double std_dev = std::sqrt(2.0 / fan_out);
      for (const auto& p : m.local_parameters()) {
        Tensor t{p.spec};
        if (p.name == "weight") {
          float* d = t.data_f32();
          for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(rng.normal() * std_dev);
        }  // bias: zeros (torchvision's EfficientNet init; ResNet convs have none)
        (*map)[prefix + p.name] = std::move(t);
      }
    } else if (dynamic_cast<const nn::BatchNorm2d*>(&m)) {
      for (const auto& p : m.local_parameters())
        (*map)[prefix + p.name] = filled(p.spec.shape(), p.name == "weight" ? 1.0f : 0.0f);
      for (const auto& b : m.local_buffers()) {
        if (b.spec.dtype() == DType::int64) {
          (*map)[prefix + b.name] = Tensor(b.spec);
        } else {
          (*map)[prefix + b.name] = filled(b.spec.shape(), b.name == "running_var" ? 1.0f : 0.0f);
        }
      }
    } else if (auto* lin = dynamic_cast<const nn::Linear*>(&m)) {
      // torch's default (kaiming_uniform_(a=sqrt(5))): U(+-1/sqrt(in)) for weight and bias;
      // torchvision's EfficientNet: weight U(+-1/sqrt(out)), bias zeros.
      const double bound = eff_linear ? 1.0 / std::sqrt(static_cast<double>(lin->out_features()))
                                      : 1.0 / std::sqrt(static_cast<double>(lin->in_features()));
      for (const auto& p : m.local_parameters()) {
        Tensor t{p.spec};
        if (p.name == "weight" || !eff_linear) {
          float* d = t.data_f32();
          for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>((rng.uniform() * 2.0 - 1.0) * bound);
        }
        (*map)[prefix + p.name] = std::move(t);
      }
    } else {
      for (const auto& p : m.local_parameters()) (*map)[prefix + p.name] = Tensor(p.spec);
      for (const auto& b : m.local_buffers()) (*map)[prefix + b.name] = Tensor(b.spec);
    }
  });
  for (const auto& name : zero_init_names()) {
    auto it = map->find(name);
    if (it != map->end()) std::fill(it->second.data_f32(), it->second.data_f32() + it->second.numel(), 0.0f);
  }
  auto store = std::make_shared<WeightStore>();
  for (auto& kv : *map) store->set(kv.first, std::move(kv.second));
  std::lock_guard<std::mutex> lock(mu_);
  weights_ = std::move(store);
  weights_version_ = ++g_weights_version;
  cache_.clear();
  packs_.reset();
}

std::vector<std::pair<std::string, Tensor>> Model::state_dict() const {
  auto w = weights();
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& p : state_dict_spec()) {
    Tensor t = w ? w->get_copy(p.name) : Tensor();
    if (!t.defined()) throw WeightsError(no_weights_message(name().empty() ? type_name() : name(), p.name));
    out.emplace_back(p.name, std::move(t));
  }
  return out;
}

LoadResult Model::load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state, bool strict) {
  // The caller keeps its tensors (and may write into them later): every value is copied.
  return load_state_dict_impl(state, strict, nullptr);
}

LoadResult Model::load_state_dict(std::vector<std::pair<std::string, Tensor>>&& state, bool strict) {
  return load_state_dict_impl(state, strict, &state);
}

LoadResult Model::load_state_dict_impl(const std::vector<std::pair<std::string, Tensor>>& state, bool strict,
                                       std::vector<std::pair<std::string, Tensor>>* owned) {
  const auto spec = state_dict_spec();
  std::unordered_map<std::string, size_t> given;  // key -> index of its last value in `state`
  std::vector<std::string> given_order;
  for (size_t i = 0; i < state.size(); ++i) {
    if (!given.count(state[i].first)) given_order.push_back(state[i].first);
    given[state[i].first] = i;
  }
  std::set<std::string> known;
  for (const auto& p : spec) known.insert(p.name);

  LoadResult r;
  std::vector<std::string> errors;
  std::vector<std::pair<std::string, Tensor>> accepted;
  for (const auto& p : spec) {
    auto it = given.find(p.name);
    if (it == given.end()) {
      // torch fills a missing num_batches_tracked when the dict carries no version metadata.
      const bool nbt = p.name.size() >= 19 && p.name.compare(p.name.size() - 19, 19, "num_batches_tracked") == 0;
      if (nbt) {
        accepted.emplace_back(p.name, Tensor(p.spec));
      } else {
        r.missing_keys.push_back(p.name);
      }
      continue;
    }
    const Tensor& t = state[it->second].second;
    if (!t.defined()) {
      errors.push_back("no data for " + p.name);
      continue;
    }
    // torch accepts a one-element 1-D value for a 0-D buffer (older checkpoints).
    const bool scalar_compat = p.spec.shape().empty() && t.shape() == Shape{1};
    if (t.shape() != p.spec.shape() && !scalar_compat) {
      errors.push_back("size mismatch for " + p.name + ": copying a param with shape " + shape_to_string(t.shape()) +
                       " from checkpoint, the shape in current model is " + shape_to_string(p.spec.shape()) + ".");
      continue;
    }
    // Share a value nobody else holds (Tensor storage is immutable by convention, and
    // only this call can reach it): a model loaded from a file holds its weights once.
    if (owned && t.spec() == p.spec && t.storage().use_count() == 1) {
      accepted.emplace_back(p.name, std::move((*owned)[it->second].second));
      continue;
    }
    Tensor conv;
    if (!convert(t, p.spec.dtype(), conv)) {
      errors.push_back(std::string("dtype mismatch for ") + p.name + ": expected a float or integer array, got " +
                       dtype_name(t.dtype()) + ".");
      continue;
    }
    if (scalar_compat) conv = Tensor::from_data(p.spec, conv.raw_data());
    accepted.emplace_back(p.name, std::move(conv));
  }
  for (const auto& k : given_order)
    if (!known.count(k)) r.unexpected_keys.push_back(k);

  std::ostringstream msg;
  bool fail = !errors.empty();
  if (strict && !r.missing_keys.empty()) {
    msg << "\n\tMissing key(s) in state_dict: " << join_quoted(r.missing_keys) << ". ";
    fail = true;
  }
  if (strict && !r.unexpected_keys.empty()) {
    msg << "\n\tUnexpected key(s) in state_dict: " << join_quoted(r.unexpected_keys) << ". ";
    fail = true;
  }
  for (const auto& e : errors) msg << "\n\t" << e;
  if (fail)
    throw WeightsError("Error(s) in loading state_dict for " + type_name() + ":" + msg.str() +
                       "\nThe model's previous weights are unchanged.");

  std::lock_guard<std::mutex> lock(mu_);
  auto map = weights_ ? weights_->copy() : std::make_shared<WeightStore>();
  for (auto& kv : accepted) map->set(kv.first, std::move(kv.second));
  weights_ = std::move(map);
  weights_version_ = ++g_weights_version;
  cache_.clear();
  packs_.reset();
  return r;
}

// ---------------------------------------------------------------- running

namespace {
std::string cache_key(const TensorSpec& input, Isa isa, bool features) {
  return shape_to_string(input.shape()) + '|' + isa_name(isa) + '|' + (features ? "features" : "forward");
}
}  // namespace

std::shared_ptr<const Executable> Model::cached_executable(const TensorSpec& input, bool features) const {
  auto g = graph();
  const std::string key = cache_key(input, active_isa(), features);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end() || it->second.graph != g || it->second.weights != weights_) return nullptr;
  it->second.last_used = ++clock_;
  return it->second.exe;
}

std::shared_ptr<const Executable> Model::executable(const TensorSpec& input, bool features) const {
  if (auto exe = cached_executable(input, features)) return exe;
  auto g = graph();
  const Isa isa = active_isa();
  require_weights();  // weights never go back to missing once complete
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = cache_key(input, isa, features);
  auto it = cache_.find(key);
  if (it != cache_.end() && it->second.graph == g && it->second.weights == weights_) {
    it->second.last_used = ++clock_;  // compiled by another thread meanwhile
    return it->second.exe;
  }
  // Every shape compiled from this graph and these weights shares one pack
  // cache: a layer that chooses the same implementation at two input sizes
  // packs its weights once (each cached shape then costs its arena), and one
  // that chooses another implementation packs for it, so results never
  // depend on which shapes were compiled before.
  if (!packs_ || packs_graph_ != g || packs_weights_ != weights_) {
    packs_ = std::make_shared<kernels::PackCache>();
    packs_graph_ = g;
    packs_weights_ = weights_;
  }
  auto exe = std::make_shared<const Executable>(*g, *weights_, input, features, isa, *packs_);
  // Keep the 8 most recently used shapes.
  if (cache_.size() >= 8 && cache_.find(key) == cache_.end()) {
    auto oldest = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    cache_.erase(oldest);
  }
  cache_[key] = CacheEntry{exe, g, weights_, ++clock_};
  return exe;
}

namespace {
void check_view(const InputView& in) {
  if (in.strides.size() != in.shape.size())
    throw InvalidArgument("input strides have " + std::to_string(in.strides.size()) + " entries for a " +
                          std::to_string(in.shape.size()) + "-D shape");
  if (!in.data && shape_numel(in.shape) > 0) throw InvalidArgument("input data is null");
}
}  // namespace

Tensor Model::forward(const InputView& input) const {
  check_view(input);
  const TensorSpec spec(input.shape, DType::float32);
  // Fast path: a shape compiled before was checked then.
  if (auto exe = cached_executable(spec, false)) return exe->run(input)[0];
  const TensorSpec out = get_output_spec(spec);
  if (out.numel() == 0 || spec.numel() == 0) {
    require_weights();  // same error as a non-empty batch
    return Tensor(out);
  }
  return executable(spec, false)->run(input)[0];
}

namespace {
const Tensor& require_f32(const Tensor& t, const char* fn) {
  if (!t.defined()) throw InvalidArgument(std::string(fn) + ": the input tensor is undefined");
  if (t.dtype() != DType::float32)
    throw TypeError(std::string("[input] expected a float32 input, got ") + dtype_name(t.dtype()));
  return t;
}
}  // namespace

Tensor Model::forward(const Tensor& input) const { return forward(InputView::of(require_f32(input, "forward"))); }

Tensor Model::forward(const float* data, const Shape& shape) const {
  return forward(InputView::contiguous(data, shape));
}

std::vector<Tensor> Model::forward_features(const Tensor& input) const {
  return forward_features(InputView::of(require_f32(input, "forward_features")));
}

std::vector<Tensor> Model::forward_features(const InputView& input) const {
  check_view(input);
  const TensorSpec spec(input.shape, DType::float32);
  if (auto exe = cached_executable(spec, true)) return exe->run(input);
  const auto specs = forward_features(spec);
  if (spec.numel() == 0) {
    require_weights();
    std::vector<Tensor> out;
    for (const auto& s : specs) out.emplace_back(s);
    return out;
  }
  return executable(spec, true)->run(input);
}

int64_t Model::executed_macs(const TensorSpec& input, bool features) const {
  execution_plan(input, features);  // validates and compiles
  return executable(input, features)->macs_executed();
}

std::string Model::execution_plan(const TensorSpec& input, bool features) const {
  if (features) {
    forward_features(input);
  } else {
    get_output_spec(input);
  }
  return executable(input, features)->plan();
}

}  // namespace models
}  // namespace pyflame_vision
