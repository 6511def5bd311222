// Conv2dKernel: validation, selection from the ordered implementation list
// (conv_impls.h), packed-weight sharing, description.
#include "kernels/conv.h"

#include <sstream>
#include <utility>

#include "kernels/conv_impls.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace kernels {

// ---------------------------------------------------------------- PackCache
std::shared_ptr<const void> PackCache::find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : it->second;
}

std::shared_ptr<const void> PackCache::put(const std::string& key, std::shared_ptr<const void> value) {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.emplace(key, std::move(value)).first->second;
}

size_t PackCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

// ---------------------------------------------------------------- Conv2dKernel
struct Conv2dKernel::Impl {
  ConvShape shape;
  Epilogue epilogue = Epilogue::none;
  Isa isa = Isa::scalar;
  size_t entry = 0;  // index into conv_impls()
  std::string why;
  std::shared_ptr<const ConvImpl> impl;
};

namespace {

void validate(const ConvShape& s) {
  auto fail = [&](const std::string& what) {
    std::ostringstream os;
    os << "[conv2d] " << what << " (shape: batch " << s.batch << ", in " << s.in_h << "x" << s.in_w << "x"
       << s.in_c << ", out " << s.out_h << "x" << s.out_w << "x" << s.out_c << ", kernel " << s.kernel_h << "x"
       << s.kernel_w << ", stride " << s.stride_h << "x" << s.stride_w << ", padding " << s.pad_h << "x"
       << s.pad_w << ", dilation " << s.dilation_h << "x" << s.dilation_w << ", groups " << s.groups << ")";
    throw InvalidArgument(os.str());
  };
  if (s.batch < 0) fail("expected batch >= 0, got " + std::to_string(s.batch));
  if (s.in_h < 1 || s.in_w < 1 || s.in_c < 1) fail("expected positive input height, width and channels");
  if (s.out_c < 1) fail("expected out_c >= 1, got " + std::to_string(s.out_c));
  if (s.kernel_h < 1 || s.kernel_w < 1) fail("expected a kernel of at least 1x1");
  if (s.stride_h < 1 || s.stride_w < 1) fail("expected strides >= 1");
  if (s.dilation_h < 1 || s.dilation_w < 1) fail("expected dilations >= 1");
  if (s.pad_h < 0 || s.pad_w < 0) fail("expected paddings >= 0");
  if (s.groups < 1) fail("expected groups >= 1, got " + std::to_string(s.groups));
  if (s.in_c % s.groups != 0 || s.out_c % s.groups != 0) fail("expected in_c and out_c divisible by groups");
  const int64_t eff_h = s.dilation_h * (s.kernel_h - 1) + 1;
  const int64_t eff_w = s.dilation_w * (s.kernel_w - 1) + 1;
  if (s.in_h + 2 * s.pad_h < eff_h || s.in_w + 2 * s.pad_w < eff_w)
    fail("padded input is smaller than the (dilated) kernel");
  const int64_t oh = (s.in_h + 2 * s.pad_h - eff_h) / s.stride_h + 1;
  const int64_t ow = (s.in_w + 2 * s.pad_w - eff_w) / s.stride_w + 1;
  if (s.out_h != oh || s.out_w != ow)
    fail("expected output " + std::to_string(oh) + "x" + std::to_string(ow) + ", got " + std::to_string(s.out_h) +
         "x" + std::to_string(s.out_w));
}

// The first entry that applies; `why` gets one line per entry tried.
size_t select(const ConvShape& s, const UkernelSet& uk, std::string& why) {
  const auto& list = conv_impls();
  why.clear();
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string reason = list[i].skip(s, uk);
    if (reason.empty()) {
      why += std::string("chose ") + list[i].name + ": " + list[i].about;
      return i;
    }
    why += std::string("skipped ") + list[i].name + ": " + reason + "\n";
  }
  throw std::logic_error("the reference convolution must always apply");
}

std::string pack_key(const std::string& layer, size_t entry, Isa isa) {
  return layer + "|" + conv_impls()[entry].name + "|" + isa_name(isa);
}

}  // namespace

Conv2dKernel::Conv2dKernel(const ConvShape& shape, const float* weight, const float* bias, Epilogue epilogue, Isa isa)
    : impl_(new Impl) {
  validate(shape);
  if (weight == nullptr) throw InvalidArgument("[conv2d] weight is null");
  check_isa(isa, "conv2d");
  Impl& m = *impl_;
  m.shape = shape, m.epilogue = epilogue, m.isa = isa;
  const UkernelSet& uk = ukernels_for(isa);
  m.entry = select(shape, uk, m.why);
  m.impl = conv_impls()[m.entry].create(shape, weight, bias, uk);
}

Conv2dKernel::Conv2dKernel(const ConvShape& shape, Epilogue epilogue, Isa isa, PackCache& cache,
                           const std::string& layer_key, const ConvWeightSource& source)
    : impl_(new Impl) {
  validate(shape);
  check_isa(isa, "conv2d");
  Impl& m = *impl_;
  m.shape = shape, m.epilogue = epilogue, m.isa = isa;
  const UkernelSet& uk = ukernels_for(isa);
  m.entry = select(shape, uk, m.why);
  const std::string key = pack_key(layer_key, m.entry, isa);
  auto found = std::static_pointer_cast<const ConvImpl>(cache.find(key));
  if (!found) {
    const ConvWeights w = source();
    const size_t expect = static_cast<size_t>(shape.out_c * (shape.in_c / shape.groups) * shape.kernel_h *
                                              shape.kernel_w);
    if (w.weight.size() != expect || (!w.bias.empty() && w.bias.size() != static_cast<size_t>(shape.out_c)))
      throw InvalidArgument("[conv2d] " + layer_key + ": expected " + std::to_string(expect) + " weights and " +
                            std::to_string(shape.out_c) + " or no biases, got " + std::to_string(w.weight.size()) +
                            " and " + std::to_string(w.bias.size()));
    found = std::static_pointer_cast<const ConvImpl>(
        cache.put(key, conv_impls()[m.entry].create(shape, w.weight.data(), w.bias.empty() ? nullptr : w.bias.data(),
                                                    uk)));
  }
  m.impl = std::move(found);
}

Conv2dKernel::Conv2dKernel(const ConvShape& shape, const Conv2dKernel& donor) : impl_(new Impl(*donor.impl_)) {
  validate(shape);
  const ConvShape& d = donor.impl_->shape;
  if (shape.in_c != d.in_c || shape.out_c != d.out_c || shape.kernel_h != d.kernel_h || shape.kernel_w != d.kernel_w ||
      shape.stride_h != d.stride_h || shape.stride_w != d.stride_w || shape.pad_h != d.pad_h ||
      shape.pad_w != d.pad_w || shape.dilation_h != d.dilation_h || shape.dilation_w != d.dilation_w ||
      shape.groups != d.groups)
    throw InvalidArgument("[conv2d] a kernel can share packed weights only with the same layer at another input size");
  Impl& m = *impl_;
  m.entry = select(shape, ukernels_for(m.isa), m.why);
  if (m.entry != donor.impl_->entry)
    throw InvalidArgument(std::string("[conv2d] this input size selects ") + conv_impls()[m.entry].name +
                          ", the donor runs " + conv_impls()[donor.impl_->entry].name +
                          ": their packed weights differ, so they must be packed again");
  m.shape = shape;
}

Conv2dKernel Conv2dKernel::with_impl(const std::string& impl, const ConvShape& shape, const float* weight,
                                     const float* bias, Epilogue epilogue, Isa isa) {
  validate(shape);
  if (weight == nullptr) throw InvalidArgument("[conv2d] weight is null");
  check_isa(isa, "conv2d");
  const auto& list = conv_impls();
  const UkernelSet& uk = ukernels_for(isa);
  for (size_t i = 0; i < list.size(); ++i) {
    if (impl != list[i].name) continue;
    const std::string reason = list[i].skip(shape, uk);
    if (!reason.empty())
      throw InvalidArgument("[conv2d] implementation " + impl + " does not apply on " + isa_name(isa) + ": " + reason);
    Conv2dKernel k;
    k.impl_.reset(new Impl);
    Impl& m = *k.impl_;
    m.shape = shape, m.epilogue = epilogue, m.isa = isa, m.entry = i;
    m.why = std::string("forced ") + list[i].name;
    m.impl = list[i].create(shape, weight, bias, uk);
    return k;
  }
  std::string names;
  for (const auto& e : list) names += (names.empty() ? "" : ", ") + std::string(e.name);
  throw InvalidArgument("[conv2d] no implementation called '" + impl + "'; the list is: " + names);
}

Conv2dKernel::~Conv2dKernel() = default;
Conv2dKernel::Conv2dKernel(Conv2dKernel&&) noexcept = default;

const ConvShape& Conv2dKernel::shape() const { return impl_->shape; }
const char* Conv2dKernel::impl_name() const { return conv_impls()[impl_->entry].name; }
std::string Conv2dKernel::why() const { return impl_->why; }
int64_t Conv2dKernel::macs_executed() const { return impl_->impl->macs_executed(impl_->shape); }

std::string Conv2dKernel::description() const {
  return impl_->impl->describe(impl_->shape) + epilogue_suffix(impl_->epilogue);
}

void Conv2dKernel::run(const float* in, float* out, const float* residual) const {
  if (impl_->shape.batch == 0) return;
  impl_->impl->run(impl_->shape, in, out, residual, ukernel_act(impl_->epilogue));
}

namespace {
class ConvPacked final : public PackedWeights {
 public:
  ConvPacked(std::shared_ptr<const ConvImpl> impl, const ConvShape& s) : impl_(std::move(impl)), s_(s) {}
  size_t size() const override {
    return static_cast<size_t>(s_.out_c * (s_.in_c / s_.groups) * s_.kernel_h * s_.kernel_w);
  }
  void unpack(float* weight) const override { impl_->unpack(s_, weight); }
  const void* id() const override { return impl_.get(); }

 private:
  std::shared_ptr<const ConvImpl> impl_;
  ConvShape s_;
};
}  // namespace

std::shared_ptr<const PackedWeights> Conv2dKernel::packed_weights() const {
  if (!impl_->impl->unpacks()) return nullptr;
  return std::make_shared<ConvPacked>(impl_->impl, impl_->shape);
}

std::vector<std::string> conv_impl_names() {
  std::vector<std::string> names;
  for (const auto& e : conv_impls()) names.emplace_back(e.name);
  return names;
}

}  // namespace kernels
}  // namespace pyflame_vision
