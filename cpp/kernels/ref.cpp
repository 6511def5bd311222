// The reference convolution: plain loops over the direct definition, no
// packing tricks, no microkernel. Last in the implementation list and always
// applicable; the tests run it against the float64 reference like every
// other entry. Reductions run in the same order as the implicit GEMM's
// (taps, then input channels), one output element per iteration.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv_impls.h"
#include "kernels/indirection.h"

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
    const Window win = Window::of(s);
    const std::vector<float> zero(static_cast<size_t>(s.in_c), 0.0f);
    auto row = [&](size_t r) {  // one output row of one image
      const int64_t n = static_cast<int64_t>(r) / s.out_h, oy = static_cast<int64_t>(r) % s.out_h;
      Indirection ind(win, zero.data());
      ind.set_row(in + n * s.in_h * s.in_w * s.in_c, static_cast<size_t>(oy));
      std::vector<const float*> taps(static_cast<size_t>(ks));
      for (int64_t ox = 0; ox < s.out_w; ++ox) {
        const int64_t o_off = ((n * s.out_h + oy) * s.out_w + ox) * s.out_c;
        ind.taps(static_cast<size_t>(ox), taps.data(), 1);
        for (int64_t oc = 0; oc < s.out_c; ++oc) {
          const int64_t g = oc / npg;
          float acc = bias_[static_cast<size_t>(oc)];
          for (int64_t t = 0; t < ks; ++t) {
            const float* x = taps[static_cast<size_t>(t)] + g * kc;
            const float* w = weight_.data() + oc * kc * ks + t;
            for (int64_t k = 0; k < kc; ++k) acc += x[k] * w[k * ks];
          }
          if (residual != nullptr) acc += residual[o_off + oc];
          out[o_off + oc] = activate(acc, act);
        }
      }
    };
    detail::parallel_for(static_cast<size_t>(s.batch * s.out_h), detail::TaskFn(row));
  }

  std::string describe(const ConvShape& s) const override { return "reference " + geometry(s) + " (scalar loops)"; }
  bool unpacks() const override { return true; }
  void unpack(const ConvShape&, float* weight) const override {
    std::copy(weight_.begin(), weight_.end(), weight);
  }

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
