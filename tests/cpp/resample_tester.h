// Testers for the image resampling microkernels (cpp/kernels/resample.h), shared by
// test_resample.cpp (every tier the CPU has) and the SIMDe-emulated AVX-512 tests
// (tests/cpp/emulated/): lengths around every vector and block edge, outputs
// guarded with NaN, results against float64 within a bound scaled by the taps.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../cpp/kernels/resample.h"

namespace pfv_resample_test {

namespace K = pyflame_vision::kernels;

// Deterministic values in [0, 1).
inline float value(uint64_t i) {
  i = i * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>((i >> 40) & 0xFFFFFF) / 16777216.0f;
}

inline uint8_t byte(uint64_t i) { return static_cast<uint8_t>(value(i) * 256.0f); }

constexpr size_t kLengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 130, 200, 257};
constexpr size_t kTaps[] = {1, 2, 3, 4, 5, 9, 24, 37};


/// Vertical passes (float and uint8 rows) against float64.
inline void check_vertical(const K::ResampleUkernels& uk) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();

  for (size_t taps : kTaps) {
    for (size_t n : kLengths) {
      std::vector<std::vector<float>> rf(taps, std::vector<float>(n));
      std::vector<std::vector<uint8_t>> rb(taps, std::vector<uint8_t>(n));
      std::vector<const float*> pf(taps);
      std::vector<const uint8_t*> pb(taps);
      std::vector<float> w(taps);
      for (size_t k = 0; k < taps; ++k) {
        w[k] = value(1000 + k) - 0.3f;
        for (size_t i = 0; i < n; ++i) {
          rf[k][i] = value(k * 1000 + i) * 4.0f - 2.0f;
          rb[k][i] = byte(k * 7777 + i);
        }
        pf[k] = rf[k].data();
        pb[k] = rb[k].data();
      }
      std::vector<float> of(n + 16, kNaN), ob(n + 16, kNaN);
      uk.v_f32(n, taps, pf.data(), w.data(), of.data());
      uk.v_u8(n, taps, pb.data(), w.data(), ob.data());
      for (size_t i = 0; i < n; ++i) {
        double ef = 0, eb = 0, mag_f = 0, mag_b = 0;
        for (size_t k = 0; k < taps; ++k) {
          ef += static_cast<double>(w[k]) * rf[k][i];
          eb += static_cast<double>(w[k]) * rb[k][i];
          mag_f += std::fabs(static_cast<double>(w[k]) * rf[k][i]);
          mag_b += std::fabs(static_cast<double>(w[k]) * rb[k][i]);
        }
        ASSERT_NEAR(of[i], ef, 1e-6 * (mag_f + 1) * static_cast<double>(taps)) << "f32 taps=" << taps << " n=" << n;
        ASSERT_NEAR(ob[i], eb, 1e-6 * (mag_b + 1) * static_cast<double>(taps)) << "u8 taps=" << taps << " n=" << n;
      }
      for (size_t i = n; i < n + 16; ++i) {
        ASSERT_TRUE(std::isnan(of[i])) << "f32 wrote past n=" << n;
        ASSERT_TRUE(std::isnan(ob[i])) << "u8 wrote past n=" << n;
      }
    }
  }
}

/// The horizontal pass for 1-5 interleaved channels, planar and interleaved outputs.
inline void check_horizontal(const K::ResampleUkernels& uk) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();

  for (size_t channels : {1, 2, 3, 4, 5}) {
    for (size_t in_w : {1, 2, 5, 17, 64, 301}) {
      for (size_t max_count : {1, 2, 4, 7, 8, 9, 16, 17, 33}) {
        if (max_count > in_w) continue;
        const size_t out_w = 23, stride = (max_count + 15) / 16 * 16;
        std::vector<size_t> start(out_w), count(out_w);
        std::vector<float> w(out_w * stride, 0.0f);
        for (size_t x = 0; x < out_w; ++x) {
          count[x] = 1 + (x * 7) % max_count;
          start[x] = (x * 13) % (in_w - count[x] + 1);
          if (x == out_w - 1) start[x] = in_w - count[x];  // the last pixel's taps end at the row's end
          for (size_t k = 0; k < count[x]; ++k) w[x * stride + k] = value(x * 100 + k) - 0.25f;
        }
        // The input holds exactly in_w pixels: a read past the row would leave the allocation's tail, which
        // AddressSanitizer builds catch; NaN there would show up in the results otherwise.
        std::vector<float> in(in_w * channels);
        for (size_t i = 0; i < in.size(); ++i) in[i] = value(i + 99) * 2.0f - 1.0f;
        // Planar-style output (channel rows out_w apart) and interleaved output, both with guards.
        for (int interleaved = 0; interleaved < 2; ++interleaved) {
          const size_t xs = interleaved ? channels : 1, cs = interleaved ? 1 : out_w + 3;
          std::vector<float> out(channels * (out_w + 3) + out_w * channels + 8, kNaN);
          uk.h_f32(out_w, channels, in.data(), start.data(), count.data(), w.data(), stride, out.data(), xs, cs);
          for (size_t x = 0; x < out_w; ++x) {
            for (size_t ch = 0; ch < channels; ++ch) {
              double e = 0, mag = 0;
              for (size_t k = 0; k < count[x]; ++k) {
                e += static_cast<double>(w[x * stride + k]) * in[(start[x] + k) * channels + ch];
                mag += std::fabs(static_cast<double>(w[x * stride + k]) * in[(start[x] + k) * channels + ch]);
              }
              ASSERT_NEAR(out[ch * cs + x * xs], e, 1e-6 * (mag + 1) * static_cast<double>(count[x]))
                  << "channels=" << channels << " in_w=" << in_w << " x=" << x << " ch=" << ch;
            }
          }
          if (!interleaved) {
            for (size_t ch = 0; ch < channels; ++ch)
              for (size_t x = out_w; x < out_w + 3; ++x) ASSERT_TRUE(std::isnan(out[ch * cs + x])) << "guard";
          }
        }
      }
    }
  }
}

/// uint8 quantisation: round half to even, clamp, NaN -> 0, nothing written past n.
inline void check_quantise(const K::ResampleUkernels& uk) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();

  for (size_t n : kLengths) {
    std::vector<float> in(n);
    const float specials[] = {-1e9f,
                              -3.0f,
                              -0.5f,
                              -0.0f,
                              0.5f,
                              1.5f,
                              2.5f,
                              2.49999f,
                              127.5f,
                              128.5f,
                              254.5f,
                              255.4f,
                              255.5f,
                              256.0f,
                              1e9f,
                              kNaN,
                              std::numeric_limits<float>::infinity()};
    for (size_t i = 0; i < n; ++i) in[i] = i < 17 ? specials[i] : value(i) * 300.0f - 20.0f;
    std::vector<uint8_t> out(n + 32, 77);
    uk.quant_u8(n, in.data(), out.data());
    for (size_t i = 0; i < n; ++i) {
      float v = in[i];
      uint8_t want;
      if (!(v > 0.0f)) {
        want = 0;
      } else if (v >= 255.0f) {
        want = 255;
      } else {
        want = static_cast<uint8_t>(std::nearbyint(v));
      }
      ASSERT_EQ(out[i], want) << "n=" << n << " i=" << i << " v=" << v;
    }
    for (size_t i = n; i < n + 32; ++i) ASSERT_EQ(out[i], 77) << "wrote past n=" << n;
  }
}

}  // namespace pfv_resample_test
