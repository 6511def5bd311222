// Depthwise convolution (groups == in_c == out_c): channels vectorised, one
// task per output row (and channel chunk when rows are few), tap pointers from
// the shared indirection (kernels/indirection.h).
#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv_impls.h"
#include "kernels/indirection.h"

namespace pyflame_vision {
namespace kernels {

namespace {

class Dwconv final : public ConvImpl {
 public:
  Dwconv(const UkernelSet& uk, size_t channels, size_t ks) : uk_(uk), cb_(uk.dwconv.cb), channels_(channels), ks_(ks) {}

  // weight: [channels][ks]
  void pack(const float* weight, const float* bias) {
    packed_ = alloc_zeroed(ceil_div(channels_, cb_) * cb_ * (ks_ + 1));
    zero_ = alloc_zeroed(channels_ + 16);
    for (size_t c = 0; c < channels_; ++c) {
      float* dst = packed_.get() + (c / cb_) * cb_ * (ks_ + 1) + c % cb_;
      if (bias != nullptr) dst[0] = bias[c];
      for (size_t t = 0; t < ks_; ++t) dst[cb_ * (t + 1)] = weight[c * ks_ + t];
    }
  }

  void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const override {
    const Window win = Window::of(s);
    const size_t C = win.C, OC = static_cast<size_t>(s.out_c), OH = win.OH, OW = win.OW;
    const size_t rows_total = static_cast<size_t>(s.batch) * OH;
    // Channel chunks (multiples of the vector block) only when there are few
    // output rows, so that small spatial sizes still feed every thread.
    size_t cchunk = round_up(C, cb_);
    if (rows_total < kMinTasks) {
      const size_t want = ceil_div(kMinTasks, rows_total);
      cchunk = std::max(cb_, round_up(ceil_div(C, want), cb_));
    }
    const size_t cchunks = ceil_div(C, cchunk);
    const dwconv_ukernel_fn kernel = uk_.dwconv.fn;
    auto task = [&](size_t idx) {
      const size_t row = idx / cchunks, cc = idx % cchunks;
      const size_t c0 = cc * cchunk, cn = std::min(cchunk, C - c0);
      const size_t n = row / OH, oy = row % OH;
      const float* wpk = packed_.get() + (c0 / cb_) * cb_ * (ks_ + 1);
      constexpr size_t kStackPtrs = 1024;
      const float* stack_ptrs[kStackPtrs];
      std::vector<const float*> heap_ptrs;
      const float** ptrs = stack_ptrs;
      size_t px_per_chunk = std::max<size_t>(1, kStackPtrs / ks_);
      if (ks_ > kStackPtrs) {
        heap_ptrs.resize(ks_);
        ptrs = heap_ptrs.data();
        px_per_chunk = 1;
      }
      Indirection ind(win, zero_.get());
      ind.set_row(in + n * win.H * win.W * C + c0, oy);
      for (size_t ox0 = 0; ox0 < OW; ox0 += px_per_chunk) {
        const size_t np = std::min(px_per_chunk, OW - ox0);
        for (size_t p = 0; p < np; ++p) ind.taps(ox0 + p, ptrs + p * ks_, 1);
        const size_t o_off = ((n * OH + oy) * OW + ox0) * OC + c0;
        kernel(cn, np, ks_, ptrs, wpk, out + o_off, OC, residual != nullptr ? residual + o_off : nullptr, act);
      }
    };
    detail::parallel_for(rows_total * cchunks, detail::TaskFn(task));
  }

  std::string describe(const ConvShape& s) const override { return "dwconv " + geometry(s) + " " + uk_.dwconv.name; }
  bool unpacks() const override { return true; }
  void unpack(const ConvShape&, float* weight) const override {
    for (size_t c = 0; c < channels_; ++c) {
      const float* src = packed_.get() + (c / cb_) * cb_ * (ks_ + 1) + c % cb_;
      for (size_t t = 0; t < ks_; ++t) weight[c * ks_ + t] = src[cb_ * (t + 1)];
    }
  }

 private:
  const UkernelSet& uk_;
  size_t cb_, channels_, ks_;
  AlignedFloats packed_, zero_;
};

}  // namespace

std::string skip_dwconv(const ConvShape& s, const UkernelSet&) {
  if (s.groups > 1 && s.groups == s.in_c && s.groups == s.out_c) return {};
  return "groups " + std::to_string(s.groups) + ", " + std::to_string(s.in_c) + " -> " + std::to_string(s.out_c) +
         " channels: not depthwise (groups == in_c == out_c > 1)";
}

std::shared_ptr<const ConvImpl> create_dwconv(const ConvShape& s, const float* w, const float* b, const UkernelSet& uk) {
  auto impl = std::make_shared<Dwconv>(uk, static_cast<size_t>(s.in_c), static_cast<size_t>(s.kernel_h * s.kernel_w));
  impl->pack(w, b);
  return impl;
}

}  // namespace kernels
}  // namespace pyflame_vision
