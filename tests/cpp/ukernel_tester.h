// Microkernel testers in XNNPACK's style: every microkernel of a table is
// called directly (no driver) on tiles around every edge (rows 1..MR, columns
// around the vector width and NR, reduction lengths around the vector width,
// several taps), with output strides wider than the tile, with and without a
// residual (also aliasing the output), and with every epilogue. Outputs start
// as NaN inside guard zones: an element written that should not be, or not
// written that should be, fails. Linear epilogues use small integers, so the
// float32 result must equal the double reference exactly; silu and sigmoid
// use a relative tolerance of 4 ulp-ish (2e-6) plus 1e-6 absolute.
//
// Used twice: test_ukernels.cpp runs the library's tables at every tier this
// CPU has; test_ukernels_emulated.cpp runs the AVX-512 instance compiled
// against SIMDe's portable AVX-512 (so CI machines without AVX-512 execute
// its logic too). Header-only, depends on kernels/microkernels.h only.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../../cpp/kernels/microkernels.h"

namespace pfv_uktest {

namespace kern = pyflame_vision::kernels;

constexpr int kActs[] = {kern::kActNone, kern::kActRelu, kern::kActSilu, kern::kActSigmoid};

inline const char* act_name(int act) {
  switch (act) {
    case kern::kActRelu: return "relu";
    case kern::kActSilu: return "silu";
    case kern::kActSigmoid: return "sigmoid";
    default: return "none";
  }
}

inline double act_ref(int act, double v) {
  switch (act) {
    case kern::kActRelu: return std::isnan(v) ? v : (v < 0 ? 0.0 : v);
    case kern::kActSilu: return v / (1.0 + std::exp(-v));
    case kern::kActSigmoid: return 1.0 / (1.0 + std::exp(-v));
    default: return v;
  }
}

/// Deterministic small integers in [lo, hi].
class Ints {
 public:
  explicit Ints(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  float next(int lo, int hi) {
    s_ ^= s_ << 13, s_ ^= s_ >> 7, s_ ^= s_ << 17;
    return static_cast<float>(lo + static_cast<int>(s_ % static_cast<uint64_t>(hi - lo + 1)));
  }

 private:
  uint64_t s_;
};

/// Compares got (float) with want (double): exact for linear epilogues.
inline bool close(int act, double want, float got) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return static_cast<double>(got) == want;
  if (act == kern::kActNone || act == kern::kActRelu) return static_cast<double>(got) == want;
  return std::fabs(static_cast<double>(got) - want) <= 2e-6 * std::fabs(want) + 1e-6;
}

/// A row-major buffer with NaN guards of `guard` floats on both sides.
struct Buf {
  std::vector<float> v;
  size_t guard;
  Buf(size_t n, size_t g = 64) : v(n + 2 * g, std::numeric_limits<float>::quiet_NaN()), guard(g) {}
  float* data() { return v.data() + guard; }
  bool guards_intact() const {
    for (size_t i = 0; i < guard; ++i)
      if (!std::isnan(v[i]) || !std::isnan(v[v.size() - 1 - i])) return false;
    return true;
  }
};

/// An igemm-style microkernel (plain: c = 0 means "plain"; grouped: c output
/// channels per group, any_kc as in microkernels.h).
struct IgemmUnderTest {
  std::string name;
  size_t mr, nr, vw;
  size_t c = 0;
  bool any_kc = true;
  kern::igemm_ukernel_fn fn;
};

// Input-channel offset of column j's A values (see microkernels.h).
inline size_t a_offset(const IgemmUnderTest& k, size_t j, size_t kc, size_t a_off) {
  if (k.c == 0) return 0;
  return (j / k.vw) * a_off + ((j % k.vw) / k.c) * kc;
}

/// One call: returns false (after recording a failure) on the first mismatch.
inline bool check_igemm_case(const IgemmUnderTest& k, size_t mr, size_t nc, size_t kc, size_t ks, int act,
                             int residual_mode, uint64_t seed) {
  const size_t MR = k.mr, NR = k.nr;
  const size_t a_off = k.c == 0 ? 0 : (k.c == k.vw ? kc : k.vw);
  const size_t row_len = (k.c == 0 ? kc : (NR / k.vw) * a_off + kc + k.vw) + 3;  // covers every group's channels
  Ints rng(seed);
  // A rows: ks taps x MR rows, each its own buffer (rows >= mr repeat row 0).
  std::vector<std::vector<float>> rows(ks * MR, std::vector<float>(row_len));
  for (auto& r : rows)
    for (auto& x : r) x = rng.next(-3, 3);
  std::vector<const float*> a(ks * MR);
  for (size_t t = 0; t < ks; ++t)
    for (size_t i = 0; i < MR; ++i) a[t * MR + i] = rows[t * MR + (i < mr ? i : 0)].data();
  // Packed weights: [bias NR][ks][kc][NR], zero beyond nc.
  std::vector<float> w(NR * (1 + ks * kc), 0.0f);
  for (size_t j = 0; j < nc; ++j) w[j] = rng.next(-8, 8);
  for (size_t t = 0; t < ks; ++t)
    for (size_t q = 0; q < kc; ++q)
      for (size_t j = 0; j < nc; ++j) w[NR + (t * kc + q) * NR + j] = rng.next(-2, 2);
  const size_t ldc = NR + 5, ldr = NR + 3;
  Buf c(MR * ldc), res(MR * ldr);
  for (size_t i = 0; i < mr; ++i)
    for (size_t j = 0; j < nc; ++j) res.data()[i * ldr + j] = rng.next(-3, 3);
  const float* rp = nullptr;
  size_t ldr_used = 0;
  if (residual_mode == 1) rp = res.data(), ldr_used = ldr;
  if (residual_mode == 2) {  // aliasing the output
    for (size_t i = 0; i < mr; ++i)
      for (size_t j = 0; j < nc; ++j) c.data()[i * ldc + j] = res.data()[i * ldr + j];
    rp = c.data(), ldr_used = ldc;
  }
  k.fn(mr, nc, kc, ks, a.data(), a_off, w.data(), c.data(), ldc, rp, ldr_used, act);
  for (size_t i = 0; i < MR; ++i) {
    for (size_t j = 0; j < ldc; ++j) {
      const float got = c.data()[i * ldc + j];
      if (i >= mr || j >= nc) {
        if (!std::isnan(got)) {
          ADD_FAILURE() << k.name << " wrote outside the tile at (" << i << ", " << j << ") mr=" << mr
                        << " nc=" << nc << " kc=" << kc << " ks=" << ks;
          return false;
        }
        continue;
      }
      double acc = w[j];
      for (size_t t = 0; t < ks; ++t)
        for (size_t q = 0; q < kc; ++q)
          acc += static_cast<double>(a[t * MR + i][a_offset(k, j, kc, a_off) + q]) * w[NR + (t * kc + q) * NR + j];
      if (residual_mode != 0) acc += res.data()[i * ldr + j];
      const double want = act_ref(act, acc);
      if (!close(act, want, got)) {
        ADD_FAILURE() << k.name << " (" << i << ", " << j << ") mr=" << mr << " nc=" << nc << " kc=" << kc
                      << " ks=" << ks << " act=" << act_name(act) << " residual=" << residual_mode << ": got "
                      << got << ", want " << want;
        return false;
      }
    }
  }
  if (!c.guards_intact()) {
    ADD_FAILURE() << k.name << " wrote outside the output buffer";
    return false;
  }
  return true;
}

inline void test_igemm(const IgemmUnderTest& k) {
  const size_t vw = k.vw, NR = k.nr;
  std::vector<size_t> ncs = {1, vw - 1 > 0 ? vw - 1 : 1, vw, vw + 1, NR - 1, NR};
  std::vector<size_t> kcs = {1, 2, 3, vw - 1, vw, vw + 1, 2 * vw + 1, 37};
  if (k.c != 0 && !k.any_kc) kcs = {k.c};
  if (k.c != 0) ncs = {NR, NR - 1, k.c, k.c + 1, 1};  // groups fill the tile; partial tiles too
  uint64_t seed = 1;
  for (size_t mr = 1; mr <= k.mr; ++mr)
    for (size_t nc : ncs) {
      if (nc == 0 || nc > NR) continue;
      for (size_t kc : kcs)
        for (size_t ks : {size_t{1}, size_t{3}})
          for (int act : kActs)
            for (int rm : {0, 1, 2}) {
              if ((rm != 0 || act != kern::kActNone) && (mr != k.mr && mr != 1 && mr != k.mr / 2)) continue;
              if (!check_igemm_case(k, mr, nc, kc, ks, act, rm, seed++)) return;
            }
    }
}

/// gemv against the same tier's igemm on one row (bit-identical: the same
/// operations in the same order), for 1 to 4 panels, partial last panels,
/// reductions around the vector width, every epilogue.
inline void test_gemv(const char* name, size_t nr, size_t vw, kern::gemv_ukernel_fn gemv, size_t mr,
                      kern::igemm_ukernel_fn igemm) {
  uint64_t seed = 3;
  for (size_t panels = 1; panels <= 4; ++panels)
    for (size_t nc_last : {size_t{1}, vw - 1, vw, vw + 1, nr - 1, nr})
      for (size_t kc : {size_t{1}, size_t{2}, vw - 1, vw, vw + 1, size_t{37}, size_t{130}})
        for (int act : kActs) {
          if (nc_last == 0 || kc == 0 || nc_last > nr) continue;
          Ints rng(seed++);
          const size_t stride = nr * (1 + kc) + 7;  // panels need not be adjacent
          std::vector<float> w(panels * stride, 0.0f), x(kc);
          for (size_t p = 0; p < panels; ++p) {
            const size_t ncols = p + 1 == panels ? nc_last : nr;
            for (size_t j = 0; j < ncols; ++j) w[p * stride + j] = rng.next(-8, 8);
            for (size_t q = 0; q < kc; ++q)
              for (size_t j = 0; j < ncols; ++j) w[p * stride + nr + q * nr + j] = rng.next(-2, 2) / 2.0f;
          }
          for (auto& v : x) v = rng.next(-3, 3) / 4.0f;
          Buf y(panels * nr), ref(panels * nr);
          gemv(panels, nc_last, kc, x.data(), w.data(), stride, y.data(), act);
          std::vector<const float*> rows(mr, x.data());
          for (size_t p = 0; p < panels; ++p) {
            const size_t ncols = p + 1 == panels ? nc_last : nr;
            igemm(1, ncols, kc, 1, rows.data(), 0, w.data() + p * stride, ref.data() + p * nr, nr, nullptr, 0, act);
          }
          for (size_t i = 0; i < panels * nr; ++i) {
            const float a = y.data()[i], b = ref.data()[i];
            if (std::memcmp(&a, &b, sizeof(float)) != 0 && !(std::isnan(a) && std::isnan(b))) {
              ADD_FAILURE() << name << " panels=" << panels << " nc_last=" << nc_last << " kc=" << kc
                            << " act=" << act_name(act) << " at " << i << ": " << a << " vs igemm " << b;
              return;
            }
          }
          if (!y.guards_intact()) {
            ADD_FAILURE() << name << " wrote outside its panels";
            return;
          }
        }
}

/// dwconv: channels around CB and 4*CB, 1..5 pixels, 1/9/25 taps.
inline void test_dwconv(const char* name, size_t cb, kern::dwconv_ukernel_fn fn) {
  uint64_t seed = 7;
  for (size_t channels : {size_t{1}, cb - 1 > 0 ? cb - 1 : 1, cb, cb + 1, 3 * cb + 2, 4 * cb, 4 * cb + 1, 9 * cb + 3})
    for (size_t npix : {1, 2, 3, 4, 5, 7})
      for (size_t ks : {1, 9, 25})
        for (int act : kActs)
          for (int rm : {0, 1}) {
            Ints rng(seed++);
            const size_t blocks = (channels + cb - 1) / cb;
            std::vector<float> w(blocks * cb * (ks + 1), 0.0f);
            for (size_t c = 0; c < channels; ++c) {
              w[(c / cb) * cb * (ks + 1) + c % cb] = rng.next(-8, 8);
              for (size_t t = 0; t < ks; ++t) w[(c / cb) * cb * (ks + 1) + cb * (t + 1) + c % cb] = rng.next(-2, 2);
            }
            std::vector<std::vector<float>> px(npix * ks, std::vector<float>(channels));
            for (auto& p : px)
              for (auto& x : p) x = rng.next(-3, 3);
            std::vector<const float*> in(npix * ks);
            for (size_t i = 0; i < in.size(); ++i) in[i] = px[i].data();
            const size_t stride = channels + 3;
            Buf out(npix * stride), res(npix * stride);
            for (size_t i = 0; i < npix * stride; ++i) res.data()[i] = rng.next(-3, 3);
            fn(channels, npix, ks, in.data(), w.data(), out.data(), stride, rm ? res.data() : nullptr, act);
            for (size_t p = 0; p < npix; ++p)
              for (size_t c = 0; c < stride; ++c) {
                const float got = out.data()[p * stride + c];
                if (c >= channels) {
                  if (!std::isnan(got)) {
                    ADD_FAILURE() << name << " wrote past the channels";
                    return;
                  }
                  continue;
                }
                const float* wb = w.data() + (c / cb) * cb * (ks + 1) + c % cb;
                double acc = wb[0];
                for (size_t t = 0; t < ks; ++t) acc += static_cast<double>(in[p * ks + t][c]) * wb[cb * (t + 1)];
                if (rm) acc += res.data()[p * stride + c];
                if (!close(act, act_ref(act, acc), got)) {
                  ADD_FAILURE() << name << " channels=" << channels << " npix=" << npix << " ks=" << ks
                                << " act=" << act_name(act) << " res=" << rm << " at (" << p << ", " << c
                                << "): got " << got << ", want " << act_ref(act, acc);
                  return;
                }
              }
            if (!out.guards_intact()) {
              ADD_FAILURE() << name << " wrote outside the output buffer";
              return;
            }
          }
}

/// Winograd transforms against the scalar tier's (same operations: bit-exact
/// for linear epilogues).
inline void test_winograd(const char* name, size_t vw, kern::wino_in_ukernel_fn in_fn,
                          kern::wino_out_ukernel_fn out_fn) {
  uint64_t seed = 11;
  for (size_t channels : {size_t{1}, vw - 1, vw, vw + 1, 2 * vw + 3, 5 * vw}) {
    if (channels == 0) continue;
    Ints rng(seed++);
    std::vector<std::vector<float>> px(16, std::vector<float>(channels));
    for (auto& p : px)
      for (auto& x : p) x = rng.next(-4, 4);
    const float* d[16];
    for (int i = 0; i < 16; ++i) d[i] = px[static_cast<size_t>(i)].data();
    const size_t vs = channels + 5;
    Buf v1(16 * vs), v2(16 * vs);
    in_fn(channels, d, v1.data(), vs);
    kern::wino_in_f32_2x2_3x3__scalar(channels, d, v2.data(), vs);
    for (size_t i = 0; i < 16 * vs; ++i) {
      const float a = v1.data()[i], b = v2.data()[i];
      if (!(a == b || (std::isnan(a) && std::isnan(b)))) {
        ADD_FAILURE() << name << " input transform differs at " << i << " (channels " << channels << ")";
        return;
      }
    }
    for (int act : kActs)
      for (int rm : {0, 1}) {
        const size_t ms = channels + 2;
        std::vector<float> m(16 * ms), bias(channels);
        for (auto& x : m) x = rng.next(-5, 5);
        for (auto& x : bias) x = rng.next(-3, 3);
        Buf o1(4 * channels), o2(4 * channels), r(4 * channels);
        for (size_t i = 0; i < 4 * channels; ++i) r.data()[i] = rng.next(-3, 3);
        float* oa[4] = {o1.data(), o1.data() + channels, nullptr, o1.data() + 3 * channels};  // one tile output outside
        float* ob[4] = {o2.data(), o2.data() + channels, nullptr, o2.data() + 3 * channels};
        const float* rr[4] = {rm ? r.data() : nullptr, rm ? r.data() + channels : nullptr, nullptr,
                              rm ? r.data() + 3 * channels : nullptr};
        out_fn(channels, m.data(), ms, bias.data(), oa, rr, act);
        kern::wino_out_f32_2x2_3x3__scalar(channels, m.data(), ms, bias.data(), ob, rr, act);
        for (size_t i = 0; i < 4 * channels; ++i) {
          const float a = o1.data()[i], b = o2.data()[i];
          const bool ok = (std::isnan(a) && std::isnan(b)) || close(act, b, a);
          if (!ok) {
            ADD_FAILURE() << name << " output transform act=" << act_name(act) << " res=" << rm << " at " << i
                          << ": got " << a << ", scalar " << b;
            return;
          }
        }
        if (!o1.guards_intact()) {
          ADD_FAILURE() << name << " output transform wrote outside its tile";
          return;
        }
      }
  }
}

struct EltwiseUnderTest {
  std::string isa;
  size_t vw;
  kern::vact_ukernel_fn vact;
  kern::vadd_ukernel_fn vadd;
  kern::vbinary_ukernel_fn vmul;
  kern::vmax_ukernel_fn vmax;
  kern::vmulc_ukernel_fn vmulc;
  kern::gavgpool_ukernel_fn gavgpool;
};

/// Elementwise and pooling kernels: lengths around 1, 4 vectors, with NaN,
/// +-inf and large magnitudes among the values.
inline void test_eltwise(const EltwiseUnderTest& e) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.0f, -88.0f, 100.0f, -100.0f, inf, -inf, nan, 3.5f};
  for (size_t n : {size_t{1}, e.vw - 1, e.vw, e.vw + 1, 4 * e.vw - 1, 4 * e.vw, 4 * e.vw + 1, 9 * e.vw + 5}) {
    if (n == 0) continue;
    Ints rng(n);
    std::vector<float> a(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = i % 5 == 4 ? specials[(i / 5) % 12] : rng.next(-20, 20) / 4.0f;
      b[i] = i % 7 == 6 ? specials[(i / 7 + 3) % 12] : rng.next(-20, 20) / 4.0f;
    }
    for (int act : kActs) {
      Buf y(n);
      e.vact(n, a.data(), y.data(), act);
      Buf z(n);
      e.vadd(n, a.data(), b.data(), z.data(), act);
      for (size_t i = 0; i < n; ++i) {
        const float sum = a[i] + b[i];  // vadd adds in float, then activates
        const double w1 = act_ref(act, a[i]), w2 = act_ref(act, sum);
        const bool ok1 = close(act, w1, y.data()[i]);
        const bool ok2 = close(act, w2, z.data()[i]);
        if (!ok1 || !ok2) {
          ADD_FAILURE() << e.isa << " vact/vadd act=" << act_name(act) << " n=" << n << " i=" << i << " x=" << a[i]
                        << " got " << y.data()[i] << " / " << z.data()[i] << " want " << w1 << " / " << w2;
          return;
        }
      }
      if (!y.guards_intact() || !z.guards_intact()) {
        ADD_FAILURE() << e.isa << " vact/vadd wrote outside n=" << n;
        return;
      }
    }
    Buf y(n);
    e.vmul(n, a.data(), b.data(), y.data());
    std::vector<float> m(b);
    e.vmax(n, a.data(), m.data());
    for (size_t i = 0; i < n; ++i) {
      const float wm = a[i] * b[i];
      const float wx = (a[i] > b[i] || a[i] != a[i]) ? a[i] : b[i];  // torch's max pooling step
      const bool ok_mul = wm == y.data()[i] || (std::isnan(wm) && std::isnan(y.data()[i]));
      const bool ok_max = std::memcmp(&wx, &m[i], sizeof(float)) == 0 || (std::isnan(wx) && std::isnan(m[i]));
      if (!ok_mul || !ok_max) {
        ADD_FAILURE() << e.isa << " vmul/vmax n=" << n << " i=" << i << ": " << a[i] << ", " << b[i] << " -> "
                      << y.data()[i] << ", " << m[i];
        return;
      }
    }
    for (size_t rows : {1, 3}) {  // channel scaling: rows of n floats times one row of scales
      Buf ys(rows * n);
      std::vector<float> xs(rows * n);
      for (auto& v : xs) v = rng.next(-9, 9) / 8.0f;
      e.vmulc(rows, n, xs.data(), b.data(), ys.data());
      for (size_t i = 0; i < rows * n; ++i) {
        const float want = xs[i] * b[i % n];
        if (!(want == ys.data()[i] || (std::isnan(want) && std::isnan(ys.data()[i])))) {
          ADD_FAILURE() << e.isa << " vmulc rows=" << rows << " n=" << n << " i=" << i;
          return;
        }
      }
      if (!ys.guards_intact()) {
        ADD_FAILURE() << e.isa << " vmulc wrote outside";
        return;
      }
    }
    for (size_t rows : {1, 2, 7, 49}) {
      const size_t stride = n + 3;
      std::vector<float> x(rows * stride);
      for (auto& v : x) v = rng.next(-9, 9);
      Buf out(n);
      e.gavgpool(rows, n, x.data(), stride, out.data());
      for (size_t c = 0; c < n; ++c) {
        float s = 0.0f;
        for (size_t r = 0; r < rows; ++r) s += x[r * stride + c];
        if (s / static_cast<float>(rows) != out.data()[c]) {
          ADD_FAILURE() << e.isa << " gavgpool rows=" << rows << " n=" << n << " c=" << c;
          return;
        }
      }
      if (!out.guards_intact()) {
        ADD_FAILURE() << e.isa << " gavgpool wrote outside";
        return;
      }
    }
  }
}

}  // namespace pfv_uktest
