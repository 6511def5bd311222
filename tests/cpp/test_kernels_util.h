// Shared by the kernel tests (test_kernels*.cpp): a slow float64 reference
// convolution, deterministic data, NaN-prefilled guarded output buffers and
// the comparison with its tolerance.
//
// The kernels are internal (cpp/ is a private include directory of the
// library), so they are included by relative path.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "../../cpp/kernels/conv.h"
#include "pyflame_vision/cpu.h"
#include "test_helpers.h"

namespace pfv_ktest {

namespace pfv = pyflame_vision;
namespace kern = pyflame_vision::kernels;
using kern::ConvShape;
using kern::Epilogue;
using pfv::Isa;

inline const std::vector<Isa>& all_tiers() {
  static const std::vector<Isa> tiers{Isa::scalar, Isa::avx2, Isa::avx512};
  return tiers;
}

/// gtest parameter-name generator for Isa parameters.
struct IsaName {
  std::string operator()(const ::testing::TestParamInfo<Isa>& info) const { return pfv::isa_name(info.param); }
};

inline const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::none: return "none";
    case Epilogue::relu: return "relu";
    case Epilogue::silu: return "silu";
    case Epilogue::sigmoid: return "sigmoid";
  }
  return "?";
}

inline std::string str(const ConvShape& s) {
  std::ostringstream o;
  o << "conv N=" << s.batch << " in=" << s.in_h << "x" << s.in_w << "x" << s.in_c << " out=" << s.out_h << "x"
    << s.out_w << "x" << s.out_c << " k=" << s.kernel_h << "x" << s.kernel_w << " s=" << s.stride_h << ","
    << s.stride_w << " p=" << s.pad_h << "," << s.pad_w << " d=" << s.dilation_h << "," << s.dilation_w
    << " g=" << s.groups;
  return o.str();
}

inline int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/// A consistent ConvShape (out_h/out_w computed as torch does).
inline ConvShape conv_shape(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
                            int64_t sh = 1, int64_t sw = 1, int64_t ph = 0, int64_t pw = 0, int64_t dh = 1,
                            int64_t dw = 1, int64_t g = 1) {
  ConvShape s;
  s.batch = n;
  s.in_h = h;
  s.in_w = w;
  s.in_c = cin;
  s.out_c = cout;
  s.kernel_h = kh;
  s.kernel_w = kw;
  s.stride_h = sh;
  s.stride_w = sw;
  s.pad_h = ph;
  s.pad_w = pw;
  s.dilation_h = dh;
  s.dilation_w = dw;
  s.groups = g;
  s.out_h = out_size(h, kh, sh, ph, dh);
  s.out_w = out_size(w, kw, sw, pw, dw);
  return s;
}

inline int64_t in_elems(const ConvShape& s) { return s.batch * s.in_h * s.in_w * s.in_c; }
inline int64_t out_elems(const ConvShape& s) { return s.batch * s.out_h * s.out_w * s.out_c; }
inline int64_t w_elems(const ConvShape& s) { return s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w; }
/// Products summed into one output element.
inline int64_t reduction_len(const ConvShape& s) { return (s.in_c / s.groups) * s.kernel_h * s.kernel_w; }

// ------------------------------------------------------------------ data

/// splitmix64: the same stream on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi].
  int64_t int_in(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  /// Uniform in [-1, 1).
  float sym() { return static_cast<float>(static_cast<double>(next() >> 40) / static_cast<double>(1ULL << 23) - 1.0); }
  size_t index(size_t n) { return static_cast<size_t>(next() % n); }

 private:
  uint64_t s_;
};

enum class Data {
  /// Small integers: inputs and residual in [-3, 3], weights in [-2, 2], bias
  /// in [-8, 8]. Every partial sum of every summation order is an integer
  /// below 2^24 in magnitude (checked per shape), so float32 arithmetic is
  /// exact and results can be compared for equality.
  integer,
  /// Inputs and residual uniform in [-1, 1), weights uniform in
  /// [-1, 1) / sqrt(K) (outputs of order 1, like a trained network), bias in
  /// [-0.5, 0.5).
  random,
};

inline void fill(std::vector<float>& v, Rng& rng, Data data, int64_t int_lo, int64_t int_hi, float scale) {
  for (auto& x : v)
    x = data == Data::integer ? static_cast<float>(rng.int_in(int_lo, int_hi)) : rng.sym() * scale;
}

/// Largest |partial sum| possible for integer data (must stay below 2^24).
inline double integer_bound(const ConvShape& s) { return static_cast<double>(reduction_len(s)) * 6.0 + 8.0 + 3.0; }

struct ConvCase {
  ConvShape shape;
  Epilogue epilogue = Epilogue::none;
  Data data = Data::integer;
  std::vector<float> in, weight, bias, residual;  // bias/residual empty when absent
  const float* bias_ptr() const { return bias.empty() ? nullptr : bias.data(); }
  const float* residual_ptr() const { return residual.empty() ? nullptr : residual.data(); }
  std::string str() const {
    return pfv_ktest::str(shape) + " act=" + epilogue_name(epilogue) + (bias.empty() ? "" : " +bias") +
           (residual.empty() ? "" : " +residual") + (data == Data::integer ? " data=int" : " data=random");
  }
};

inline ConvCase make_case(const ConvShape& s, Epilogue e, bool bias, bool residual, Data data, uint64_t seed) {
  ConvCase c;
  c.shape = s;
  c.epilogue = e;
  c.data = data;
  Rng rng(seed);
  c.in.resize(static_cast<size_t>(in_elems(s)));
  c.weight.resize(static_cast<size_t>(w_elems(s)));
  fill(c.in, rng, data, -3, 3, 1.0f);
  fill(c.weight, rng, data, -2, 2, 1.0f / std::sqrt(static_cast<float>(reduction_len(s))));
  if (bias) {
    c.bias.resize(static_cast<size_t>(s.out_c));
    fill(c.bias, rng, data, -8, 8, 0.5f);
  }
  if (residual) {
    c.residual.resize(static_cast<size_t>(out_elems(s)));
    fill(c.residual, rng, data, -3, 3, 1.0f);
  }
  return c;
}

// ------------------------------------------------------------------ buffers

/// A float buffer with 64-byte aligned data (plus `misalign` floats) and 16
/// guard floats on either side holding a sentinel, to catch writes outside
/// the tensor. The data is prefilled with NaN so unwritten elements fail.
class Guarded {
 public:
  static constexpr size_t kGuard = 16;
  explicit Guarded(size_t n, size_t misalign = 0, float init = std::numeric_limits<float>::quiet_NaN())
      : n_(n), storage_(n + 2 * kGuard + 16 + misalign) {
    const auto addr = reinterpret_cast<uintptr_t>(storage_.data() + kGuard);
    begin_ = kGuard + ((64 - addr % 64) % 64) / sizeof(float) + misalign;
    for (auto& x : storage_) x = sentinel();
    std::fill(data(), data() + n_, init);
  }
  explicit Guarded(const std::vector<float>& v, size_t misalign = 0) : Guarded(v.size(), misalign) {
    std::copy(v.begin(), v.end(), data());
  }
  float* data() { return storage_.data() + begin_; }
  const float* data() const { return storage_.data() + begin_; }
  size_t size() const { return n_; }
  float operator[](size_t i) const { return data()[i]; }
  /// True if nothing outside [data, data + n) changed.
  bool guards_intact() const {
    for (size_t i = 0; i < storage_.size(); ++i) {
      if (i >= begin_ && i < begin_ + n_) continue;
      if (std::memcmp(&storage_[i], &kSentinelBits, sizeof(float)) != 0) return false;
    }
    return true;
  }
  std::vector<float> to_vector() const { return std::vector<float>(data(), data() + n_); }

 private:
  static constexpr uint32_t kSentinelBits = 0xC2F6E979u;  // -123.456f
  static float sentinel() {
    float f;
    std::memcpy(&f, &kSentinelBits, sizeof f);
    return f;
  }
  size_t n_;
  std::vector<float> storage_;
  size_t begin_ = 0;
};

inline bool bitwise_equal(const std::vector<float>& a, const float* b) {
  return std::memcmp(a.data(), b, a.size() * sizeof(float)) == 0;
}

// ------------------------------------------------------------------ reference

inline double act_ref(Epilogue e, double x) {
  switch (e) {
    case Epilogue::none: return x;
    case Epilogue::relu: return std::isnan(x) ? x : (x > 0 ? x : 0.0);
    case Epilogue::silu: return x / (1.0 + std::exp(-x));
    case Epilogue::sigmoid: return 1.0 / (1.0 + std::exp(-x));
  }
  return x;
}

/// Largest |act(y) - act(p)| over |y - p| <= delta: how far an error of at
/// most delta in the pre-activation can move the result. Exact for these
/// activations: they are monotone except silu, whose single minimum
/// (x = -1.2784645) is included when it lies in the interval. (A global
/// Lipschitz constant would allow 1e-5 where silu(-85) is 1e-35.)
inline double act_spread(Epilogue e, double p, double delta) {
  if (e == Epilogue::none || e == Epilogue::relu) return delta;
  const double fp = act_ref(e, p);
  double spread = std::max(std::fabs(act_ref(e, p - delta) - fp), std::fabs(act_ref(e, p + delta) - fp));
  constexpr double kSiluArgMin = -1.2784645427610738;
  if (e == Epilogue::silu && std::fabs(kSiluArgMin - p) <= delta)
    spread = std::max(spread, std::fabs(act_ref(e, kSiluArgMin) - fp));
  return spread;
}

struct RefValue {
  double pre = 0;  ///< conv + bias + residual, exact in float64 for our data
  double abs = 0;  ///< sum of |terms| (for the rounding-error bound)
  int64_t terms = 0;
};

/// One output element (n, oy, ox, oc) by the definition of
/// torch.nn.functional.conv2d (zero padding, groups, dilation), in float64.
inline RefValue ref_point(const ConvCase& c, int64_t n, int64_t oy, int64_t ox, int64_t oc) {
  const ConvShape& s = c.shape;
  const int64_t cin_g = s.in_c / s.groups, cout_g = s.out_c / s.groups;
  const int64_t g = oc / cout_g;
  RefValue r;
  for (int64_t ky = 0; ky < s.kernel_h; ++ky) {
    const int64_t iy = oy * s.stride_h - s.pad_h + ky * s.dilation_h;
    if (iy < 0 || iy >= s.in_h) continue;
    for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
      const int64_t ix = ox * s.stride_w - s.pad_w + kx * s.dilation_w;
      if (ix < 0 || ix >= s.in_w) continue;
      const float* px = c.in.data() + ((n * s.in_h + iy) * s.in_w + ix) * s.in_c + g * cin_g;
      for (int64_t ci = 0; ci < cin_g; ++ci) {
        const double t = static_cast<double>(px[ci]) *
                         static_cast<double>(c.weight[static_cast<size_t>(((oc * cin_g + ci) * s.kernel_h + ky) *
                                                                              s.kernel_w +
                                                                          kx)]);
        r.pre += t;
        r.abs += std::fabs(t);
      }
    }
  }
  r.terms = reduction_len(s);
  if (!c.bias.empty()) {
    r.pre += c.bias[static_cast<size_t>(oc)];
    r.abs += std::fabs(c.bias[static_cast<size_t>(oc)]);
    r.terms += 1;
  }
  if (!c.residual.empty()) {
    const double v = c.residual[static_cast<size_t>(((n * s.out_h + oy) * s.out_w + ox) * s.out_c + oc)];
    r.pre += v;
    r.abs += std::fabs(v);
    r.terms += 1;
  }
  return r;
}

/// Allowed |got - expected| for one element.
///
/// Exact (0) for integer data with none/relu: every partial sum is an integer
/// below 2^24, so float32 sums are exact in any order.
///
/// Otherwise: float32 summation of n products in any order (blocked, tree,
/// FMA or not) has |error| <= gamma_n * sum|terms| with gamma_n = n*u/(1-n*u),
/// u = 2^-24 (Higham, "Accuracy and Stability of Numerical Algorithms",
/// 2nd ed., eq. 3.5 and section 4.2), plus at most 2^-150 per operation whose
/// result underflows; the inputs themselves are exact float32 values. This is
/// a bound, not an estimate, so it holds for every summation order a kernel
/// may choose, and it grows with the reduction length as it must.
///
/// The activation moves that error by at most act_spread() and adds its own:
/// 1e-6 relative (about 8 ulp; the kernels' exp is ~1 ulp) plus 1e-36
/// absolute, because below x = -88.72 exp(-x) overflows float32 and torch's
/// own x / (1 + exp(-x)) returns 0 where the exact |silu(x)| <= 2.7e-37 and
/// sigmoid(x) <= 3.1e-39. Anything coarser (e.g. clamping exp's argument at
/// 80) fails. Plus the final rounding to float32.
inline double tolerance(const ConvCase& c, const RefValue& r, double expected) {
  const bool exact_act = c.epilogue == Epilogue::none || c.epilogue == Epilogue::relu;
  if (c.data == Data::integer && exact_act) return 0.0;
  constexpr double u = 1.0 / 16777216.0;
  const double n = static_cast<double>(r.terms + 1);
  const double gamma = n * u / (1.0 - n * u);
  // Each operation may also add an absolute error of half the smallest
  // subnormal (2^-150) when its result underflows.
  const double eta = n * std::ldexp(1.0, -150);
  double tol = act_spread(c.epilogue, r.pre, gamma * r.abs + eta) + u * std::fabs(expected) + std::ldexp(1.0, -150);
  if (!exact_act) tol += 1e-6 * std::fabs(expected) + 1e-36;
  return tol;
}

/// Compares `got` with the reference at the given flat output indices (all
/// when `indices` is null). Also fails on any NaN anywhere in `got` whose
/// reference is not NaN (unwritten elements are NaN-prefilled).
inline ::testing::AssertionResult check_conv(const ConvCase& c, const float* got,
                                             const std::vector<int64_t>* indices = nullptr) {
  const ConvShape& s = c.shape;
  const int64_t total = out_elems(s);
  int64_t bad = 0;
  std::ostringstream msg;
  auto report = [&](int64_t idx, const std::string& what) {
    if (++bad > 8) return;
    const int64_t oc = idx % s.out_c, ox = (idx / s.out_c) % s.out_w, oy = (idx / s.out_c / s.out_w) % s.out_h,
                  n = idx / s.out_c / s.out_w / s.out_h;
    msg << "\n  at [n=" << n << ", y=" << oy << ", x=" << ox << ", c=" << oc << "]: " << what;
  };
  auto check_one = [&](int64_t idx) {
    const int64_t oc = idx % s.out_c, ox = (idx / s.out_c) % s.out_w, oy = (idx / s.out_c / s.out_w) % s.out_h,
                  n = idx / s.out_c / s.out_w / s.out_h;
    const RefValue r = ref_point(c, n, oy, ox, oc);
    const double want = act_ref(c.epilogue, r.pre);
    const double g = got[idx];
    std::ostringstream w;
    w.precision(9);
    if (std::isnan(want) || std::isnan(g)) {
      if (std::isnan(want) != std::isnan(g)) {
        w << "got " << g << ", expected " << want;
        report(idx, w.str());
      }
      return;
    }
    if (std::isinf(want) || std::isinf(g)) {
      if (want != g) {
        w << "got " << g << ", expected " << want;
        report(idx, w.str());
      }
      return;
    }
    const double tol = tolerance(c, r, want);
    if (!(std::fabs(g - want) <= tol)) {
      w << "got " << g << ", expected " << want << " (|err| " << std::fabs(g - want) << " > tol " << tol << ")";
      report(idx, w.str());
    }
  };
  if (indices == nullptr) {
    for (int64_t i = 0; i < total; ++i) check_one(i);
  } else {
    for (int64_t i : *indices) check_one(i);
    // Unsampled elements: at least written and not NaN (finite reference data).
    bool any_nan_input = false;
    for (float x : c.in) any_nan_input |= std::isnan(x);
    if (!any_nan_input)
      for (int64_t i = 0; i < total; ++i)
        if (std::isnan(got[i])) report(i, "NaN (unwritten?)");
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " wrong element(s) of " << (indices ? indices->size() : total)
                                       << " checked, " << c.str() << msg.str();
}

/// Sampled output indices for a large shape: every channel of the four
/// corner pixels and the centre pixel of the first and last image, plus
/// `random_points` random (pixel, channel) pairs.
inline std::vector<int64_t> sample_indices(const ConvShape& s, size_t random_points, uint64_t seed) {
  std::vector<int64_t> idx;
  const int64_t pix = s.out_h * s.out_w;
  for (int64_t n : {int64_t{0}, s.batch - 1}) {
    for (int64_t p : {int64_t{0}, s.out_w - 1, (s.out_h - 1) * s.out_w, pix - 1, (s.out_h / 2) * s.out_w + s.out_w / 2})
      for (int64_t oc = 0; oc < s.out_c; ++oc) idx.push_back((n * pix + p) * s.out_c + oc);
  }
  Rng rng(seed);
  const auto total = static_cast<size_t>(out_elems(s));
  for (size_t i = 0; i < random_points; ++i) idx.push_back(static_cast<int64_t>(rng.index(total)));
  std::sort(idx.begin(), idx.end());
  idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
  return idx;
}

/// Runs `k` on `c` into a fresh NaN-prefilled guarded buffer; checks the
/// guards, and that inputs were not modified.
inline Guarded run_kernel(const kern::Conv2dKernel& k, const ConvCase& c, size_t misalign = 0) {
  Guarded in(c.in, misalign), res(c.residual, misalign);
  Guarded out(static_cast<size_t>(out_elems(c.shape)), misalign);
  k.run(in.data(), out.data(), c.residual.empty() ? nullptr : res.data());
  EXPECT_TRUE(out.guards_intact()) << "wrote outside the output tensor: " << c.str();
  EXPECT_TRUE(bitwise_equal(c.in, in.data())) << "modified its input: " << c.str();
  if (!c.residual.empty()) {
    EXPECT_TRUE(bitwise_equal(c.residual, res.data())) << "modified the residual: " << c.str();
  }
  return out;
}

/// Builds the kernel the implementation list selects for `isa` and runs it (run_kernel).
inline Guarded run_conv(const ConvCase& c, Isa isa, size_t misalign = 0) {
  kern::Conv2dKernel k(c.shape, c.weight.data(), c.bias_ptr(), c.epilogue, isa);
  return run_kernel(k, c, misalign);
}

using pfv_test::CpuStateGuard;

}  // namespace pfv_ktest
