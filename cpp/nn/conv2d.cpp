#include "common.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

Conv2d::Conv2d(const Conv2dOptions& o) : opt_(o) {
  detail::require_at_least("in_channels", o.in_channels_, 1, "Conv2d");
  detail::require_at_least("out_channels", o.out_channels_, 1, "Conv2d");
  detail::require_at_least("groups", o.groups_, 1, "Conv2d");
  detail::require_at_least("kernel_size", std::min(o.kernel_size_.h, o.kernel_size_.w), 1, "Conv2d");
  detail::require_at_least("stride", std::min(o.stride_.h, o.stride_.w), 1, "Conv2d");
  detail::require_at_least("padding", std::min(o.padding_.h, o.padding_.w), 0, "Conv2d");
  detail::require_at_least("dilation", std::min(o.dilation_.h, o.dilation_.w), 1, "Conv2d");
  if (o.in_channels_ % o.groups_ != 0)
    throw InvalidArgument("Conv2d: in_channels (" + std::to_string(o.in_channels_) + ") must be divisible by groups (" +
                          std::to_string(o.groups_) + ")");
  if (o.out_channels_ % o.groups_ != 0)
    throw InvalidArgument("Conv2d: out_channels (" + std::to_string(o.out_channels_) +
                          ") must be divisible by groups (" + std::to_string(o.groups_) + ")");
  register_parameter("weight", {o.out_channels_, o.in_channels_ / o.groups_, o.kernel_size_.h, o.kernel_size_.w});
  if (o.bias_) register_parameter("bias", {o.out_channels_});
}

std::string Conv2d::extra_repr() const {
  const auto& o = opt_;
  std::string s = std::to_string(o.in_channels_) + ", " + std::to_string(o.out_channels_) +
                  ", kernel_size=" + o.kernel_size_.str() + ", stride=" + o.stride_.str();
  if (o.padding_ != Size2(0)) s += ", padding=" + o.padding_.str();
  if (o.dilation_ != Size2(1)) s += ", dilation=" + o.dilation_.str();
  if (o.groups_ != 1) s += ", groups=" + std::to_string(o.groups_);
  if (!o.bias_) s += ", bias=False";
  return s;
}

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t padded = checked::add(in, checked::mul(2, pad, "padding"), "the padded input size");
  const int64_t eff = checked::add(checked::mul(dilation, kernel - 1, "the dilated kernel size"), 1);
  if (padded < eff)
    throw ShapeError("padded input size " + std::to_string(padded) + " is smaller than the dilated kernel size " +
                     std::to_string(eff));
  return (padded - eff) / stride + 1;
}

TensorSpec Conv2d::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& x = inputs.at(0);
  detail::require_nchw(x);
  const auto& o = opt_;
  const Shape& s = x.shape();
  if (s[1] != o.in_channels_)
    throw ShapeError("expected " + std::to_string(o.in_channels_) + " input channels, got " + std::to_string(s[1]));
  const int64_t ph = checked::add(s[2], checked::mul(2, o.padding_.h), "the padded input height");
  const int64_t pw = checked::add(s[3], checked::mul(2, o.padding_.w), "the padded input width");
  const int64_t kh = checked::add(checked::mul(o.dilation_.h, o.kernel_size_.h - 1), 1);
  const int64_t kw = checked::add(checked::mul(o.dilation_.w, o.kernel_size_.w - 1), 1);
  if (ph < kh || pw < kw)
    throw ShapeError("input too small: padded input size per channel (" + std::to_string(ph) + " x " +
                     std::to_string(pw) + ") is smaller than the dilated kernel size (" + std::to_string(kh) + " x " +
                     std::to_string(kw) + ")");
  const int64_t oh = (ph - kh) / o.stride_.h + 1;
  const int64_t ow = (pw - kw) / o.stride_.w + 1;
  return TensorSpec({s[0], o.out_channels_, oh, ow}, x.dtype());
}

int64_t Conv2d::macs(const std::vector<TensorSpec>&, const TensorSpec& out) const {
  const auto& o = opt_;
  const int64_t per_output = checked::mul(checked::mul(o.in_channels_ / o.groups_, o.kernel_size_.h, "MACs"),
                                          o.kernel_size_.w, "MACs");
  return checked::mul(out.numel(), per_output, "MACs");
}

}  // namespace nn
}  // namespace pyflame_vision
