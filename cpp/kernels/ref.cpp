// The reference convolution: plain loops over the direct definition, no
// packing tricks, no microkernel. Last in the implementation list and always
// applicable; the tests run it against the float64 reference like every
// other entry. Reductions run in the same order as the implicit GEMM's
// (taps, then input channels), one output element per iteration.
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv_impls.h"

namespace pyflame_vision {
namespace kernels {

namespace {

float activate(float v, int act) {
  switch (act) {
    case kActRelu: return v < 0.0f ? 0.0f : v;
    case kActSilu: return v * (1.0f / (1.0f + std::exp(-v)));
    case kActSigmoid: return 1.0f / (1.0f + std::exp(-v));
    default: return v;
  }
}

class RefConv final : public ConvImpl {
 public:
  RefConv(const ConvShape& s, const float* w, const float* b)
      : weight_(w, w + s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w),
        bias_(b != nullptr ? std::vector<float>(b, b + s.out_c) : std::vector<float>(static_cast<size_t>(s.out_c))) {}

  void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const override {
    const int64_t kc = s.in_c / s.groups, npg = s.out_c / s.groups, ks = s.kernel_h * s.kernel_w;
    auto row = [&](size_t r) {  // one output row of one image
      const int64_t n = static_cast<int64_t>(r) / s.out_h, oy = static_cast<int64_t>(r) % s.out_h;
      for (int64_t ox = 0; ox < s.out_w; ++ox) {
        const int64_t o_off = ((n * s.out_h + oy) * s.out_w + ox) * s.out_c;
        for (int64_t oc = 0; oc < s.out_c; ++oc) {
          const int64_t g = oc / npg;
          float acc = bias_[static_cast<size_t>(oc)];
          for (int64_t ky = 0; ky < s.kernel_h; ++ky) {
            const int64_t iy = oy * s.stride_h - s.pad_h + ky * s.dilation_h;
            if (iy < 0 || iy >= s.in_h) continue;
            for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
              const int64_t ix = ox * s.stride_w - s.pad_w + kx * s.dilation_w;
              if (ix < 0 || ix >= s.in_w) continue;
              const float* x = in + ((n * s.in_h + iy) * s.in_w + ix) * s.in_c + g * kc;
              const float* w = weight_.data() + oc * kc * ks + ky * s.kernel_w + kx;
              for (int64_t k = 0; k < kc; ++k) acc += x[k] * w[k * ks];
            }
          }
          if (residual != nullptr) acc += residual[o_off + oc];
          out[o_off + oc] = activate(acc, act);
        }
      }
    };
    detail::parallel_for(static_cast<size_t>(s.batch * s.out_h), detail::TaskFn(row));
  }

  std::string describe(const ConvShape& s) const override { return "reference " + geometry(s) + " (scalar loops)"; }

 private:
  std::vector<float> weight_, bias_;
};

}  // namespace

std::string skip_ref(const ConvShape&, const UkernelSet&) { return {}; }

std::shared_ptr<const ConvImpl> create_ref(const ConvShape& s, const float* w, const float* b, const UkernelSet&) {
  return std::make_shared<RefConv>(s, w, b);
}

}  // namespace kernels
}  // namespace pyflame_vision
