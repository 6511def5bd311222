#include "common.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {
namespace nn {

namespace {
std::string size_repr(Size2 v, bool as_int) { return as_int ? std::to_string(v.h) : v.str(); }
}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel_size, Size2 stride, Size2 padding, Size2 dilation, bool ceil_mode)
    : kernel_(kernel_size),
      stride_(stride.h == 0 && stride.w == 0 ? kernel_size : stride),
      padding_(padding),
      dilation_(dilation),
      ceil_mode_(ceil_mode) {
  detail::require_at_least("kernel_size", std::min(kernel_.h, kernel_.w), 1, "MaxPool2d");
  detail::require_at_least("stride", std::min(stride_.h, stride_.w), 1, "MaxPool2d");
  detail::require_at_least("padding", std::min(padding_.h, padding_.w), 0, "MaxPool2d");
  detail::require_at_least("dilation", std::min(dilation_.h, dilation_.w), 1, "MaxPool2d");
  // torch checks both: pad <= kernel / 2, and pad <= half the effective (dilated) kernel.
  if (padding_.h > kernel_.h / 2 || padding_.w > kernel_.w / 2)
    throw InvalidArgument("MaxPool2d: pad should be smaller than or equal to half of kernel size, but got padding=" +
                          padding_.str() + " and kernel_size=" + kernel_.str());
  const int64_t eh = (kernel_.h - 1) * dilation_.h + 1, ew = (kernel_.w - 1) * dilation_.w + 1;
  if (padding_.h > eh / 2 || padding_.w > ew / 2)
    throw InvalidArgument("MaxPool2d: pad should be at most half of effective kernel size, but got padding=" +
                          padding_.str() + ", kernel_size=" + kernel_.str() + " and dilation=" + dilation_.str());
}

std::string MaxPool2d::extra_repr() const {
  // torch prints the values as given; torchvision passes ints.
  auto sq = [](Size2 v) { return v.h == v.w; };
  return "kernel_size=" + size_repr(kernel_, sq(kernel_)) + ", stride=" + size_repr(stride_, sq(stride_)) +
         ", padding=" + size_repr(padding_, sq(padding_)) + ", dilation=" + size_repr(dilation_, sq(dilation_)) +
         ", ceil_mode=" + (ceil_mode_ ? "True" : "False");
}

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  // torch's pooling_output_shape_pad_lr with pad_l == pad_r == pad.
  int64_t num = checked::add(in, checked::mul(2, pad), "the padded input size");
  num = checked::sub(num, checked::add(checked::mul(dilation, kernel - 1), 1));
  if (ceil_mode) num = checked::add(num, stride - 1);
  int64_t out = checked::floor_div(num, stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

TensorSpec MaxPool2d::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& x = inputs.at(0);
  detail::require_nchw(x);
  const Shape& s = x.shape();
  if (s[1] == 0 || s[2] == 0 || s[3] == 0)
    throw ShapeError("expected non-zero channel, height and width, got " + shape_to_string(s));
  const int64_t oh = pool_output_size(s[2], kernel_.h, stride_.h, padding_.h, dilation_.h, ceil_mode_);
  const int64_t ow = pool_output_size(s[3], kernel_.w, stride_.w, padding_.w, dilation_.w, ceil_mode_);
  if (oh < 1 || ow < 1)
    throw ShapeError("output size is too small: input size per channel (" + std::to_string(s[2]) + " x " +
                     std::to_string(s[3]) + ") gives output size (" + std::to_string(oh) + " x " + std::to_string(ow) +
                     ")");
  return TensorSpec({s[0], s[1], oh, ow}, x.dtype());
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size, bool square) : out_(output_size), square_(square) {
  detail::require_at_least("output_size", std::min(out_.h, out_.w), 1, "AdaptiveAvgPool2d");
  if (square_ && out_.h != out_.w)
    throw InvalidArgument("AdaptiveAvgPool2d: a square output size needs equal height and width");
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + size_repr(out_, square_); }

TensorSpec AdaptiveAvgPool2d::infer(const std::vector<TensorSpec>& inputs) const {
  const TensorSpec& x = inputs.at(0);
  detail::require_nchw(x);
  const Shape& s = x.shape();
  if (s[1] == 0 || s[2] == 0 || s[3] == 0)
    throw ShapeError("expected non-zero channel, height and width, got " + shape_to_string(s));
  return TensorSpec({s[0], s[1], out_.h, out_.w}, x.dtype());
}

}  // namespace nn
}  // namespace pyflame_vision
