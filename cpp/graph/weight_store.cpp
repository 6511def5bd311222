#include "graph/weight_store.h"

#include <cstring>

#include "kernels/conv.h"

namespace pyflame_vision {

namespace {

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

float from_bits(uint32_t b) {
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

}  // namespace

// W' unpacked and divided by the scale (multiplied by its reciprocal in
// double, rounded to float: within one float step of W, since W' was
// rounded once from W * scale); then each element moved by its correction
// (-1, 0 or +1 in the float's bit pattern, 2 bits per element; none when
// all are 0). fit() checks the result with the same apply_codes() that
// rebuild() uses.
class WeightStore::Derived {
 public:
  Derived(TensorSpec spec, std::shared_ptr<const kernels::PackedWeights> packed, std::vector<double> scale)
      : spec_(std::move(spec)), packed_(std::move(packed)), inv_scale_(scale.size()) {
    for (size_t o = 0; o < scale.size(); ++o) inv_scale_[o] = 1.0 / scale[o];
  }

  /// Computes the corrections that turn the unscaled weights into `want`;
  /// false if some element is further than one float step away or the
  /// result is not `want` bit for bit.
  bool fit(const Tensor& want) {
    Tensor a = approx();
    float* x = a.data_f32();
    const float* y = want.data_f32();
    const size_t n = static_cast<size_t>(want.numel());
    std::vector<uint8_t> codes((n + 3) / 4, 0);
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      const int64_t d = static_cast<int64_t>(bits_of(y[i])) - static_cast<int64_t>(bits_of(x[i]));
      if (d < -1 || d > 1) return false;
      if (d != 0) {
        codes[i / 4] = static_cast<uint8_t>(codes[i / 4] | ((d > 0 ? 1u : 2u) << (2 * (i % 4))));
        any = true;
      }
    }
    if (any) codes_ = std::move(codes);
    apply_codes(x, n);
    return std::memcmp(x, y, n * sizeof(float)) == 0;
  }

  Tensor rebuild() const {
    Tensor t = approx();
    apply_codes(t.data_f32(), static_cast<size_t>(t.numel()));
    return t;
  }

  int64_t bytes() const { return static_cast<int64_t>(codes_.size()); }
  const void* packed_id() const { return packed_->id(); }

 private:
  Tensor approx() const {
    Tensor t{spec_};
    float* w = t.data_f32();
    packed_->unpack(w);
    if (!inv_scale_.empty()) {
      const size_t n = static_cast<size_t>(t.numel()), per = n / inv_scale_.size();
      for (size_t o = 0; o < inv_scale_.size(); ++o) {
        const double r = inv_scale_[o];
        for (size_t i = o * per; i < (o + 1) * per; ++i) w[i] = static_cast<float>(static_cast<double>(w[i]) * r);
      }
    }
    return t;
  }

  void apply_codes(float* w, size_t n) const {
    if (codes_.empty()) return;
    for (size_t i = 0; i < n; ++i) {
      const unsigned c = (codes_[i / 4] >> (2 * (i % 4))) & 3u;
      if (c != 0) w[i] = from_bits(bits_of(w[i]) + (c == 1 ? 1u : 0xFFFFFFFFu));
    }
  }

  TensorSpec spec_;
  std::shared_ptr<const kernels::PackedWeights> packed_;
  std::vector<double> inv_scale_;
  std::vector<uint8_t> codes_;
};

void WeightStore::set(const std::string& key, Tensor t) {
  std::lock_guard<std::mutex> lock(mu_);
  map_[key] = Entry{std::move(t), nullptr};
}

bool WeightStore::has(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  return it != map_.end() && (it->second.tensor.defined() || it->second.derived);
}

bool WeightStore::resident(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  return it != map_.end() && it->second.tensor.defined();
}

Tensor WeightStore::get(const std::string& key) const {
  std::shared_ptr<const Derived> d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return Tensor();
    if (it->second.tensor.defined()) return it->second.tensor;
    d = it->second.derived;
  }
  return d ? d->rebuild() : Tensor();
}

Tensor WeightStore::get_copy(const std::string& key) const {
  std::shared_ptr<const Derived> d;
  Tensor t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return Tensor();
    t = it->second.tensor;
    d = it->second.derived;
  }
  if (t.defined()) return t.clone();
  return d ? d->rebuild() : Tensor();
}

bool WeightStore::derive(const std::string& key, std::shared_ptr<const kernels::PackedWeights> packed,
                         const std::vector<double>& scale) {
  if (!packed) return false;
  Tensor want;
  std::shared_ptr<const Derived> was;  // the rebuilder it replaces, if derived already
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    if (it->second.tensor.defined()) {
      want = it->second.tensor;
    } else if (it->second.derived) {
      if (it->second.derived->packed_id() == packed->id()) return true;
      was = it->second.derived;
    } else {
      return false;
    }
  }
  if (was) want = was->rebuild();
  if (want.dtype() != DType::float32 || static_cast<size_t>(want.numel()) != packed->size() || want.numel() == 0)
    return false;
  if (!scale.empty() && (want.numel() % static_cast<int64_t>(scale.size())) != 0) return false;
  auto d = std::make_shared<Derived>(want.spec(), std::move(packed), scale);
  if (!d->fit(want)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  // Another thread may have replaced the value meanwhile: derive only what was checked.
  if (it == map_.end()) return false;
  if (was ? it->second.derived != was : it->second.tensor.storage() != want.storage()) return false;
  it->second = Entry{Tensor(), std::move(d)};
  return true;
}

std::shared_ptr<WeightStore> WeightStore::copy() const {
  auto s = std::make_shared<WeightStore>();
  std::lock_guard<std::mutex> lock(mu_);
  s->map_ = map_;
  return s;
}

int64_t WeightStore::resident_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t total = 0;
  for (const auto& kv : map_)
    if (kv.second.tensor.defined()) total += kv.second.tensor.nbytes();
  return total;
}

int64_t WeightStore::derived_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t total = 0;
  for (const auto& kv : map_)
    if (kv.second.derived) total += kv.second.derived->bytes();
  return total;
}

}  // namespace pyflame_vision
