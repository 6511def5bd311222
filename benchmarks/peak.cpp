// Runtime dispatch and threading around the ISA-specific peak loops.
#include "peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pfv_bench {
namespace {

namespace pfv = pyflame_vision;
using Clock = std::chrono::steady_clock;

struct Loop {
  float (*fn)(uint64_t);
  double flops_per_iter;
};

Loop loop_for(pfv::Isa tier) {
#if defined(PFV_HAVE_SIMD_PEAK)
  if (tier == pfv::Isa::avx512) return {&pfv_peak_loop_avx512, 24.0 * 16 * 2};
  if (tier == pfv::Isa::avx2) return {&pfv_peak_loop_avx2, 12.0 * 8 * 2};
#endif
  throw std::runtime_error(std::string("no FMA peak loop for tier ") + pfv::isa_name(tier));
}

std::atomic<float> g_sink{0.0f};

/// Seconds for `threads` threads to each run `iters` iterations, started together.
double timed_run(const Loop& loop, int threads, uint64_t iters) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      g_sink.store(loop.fn(iters), std::memory_order_relaxed);
    });
  }
  while (ready.load() != threads) std::this_thread::yield();
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

pfv::Isa peak_tier(pfv::Isa tier) {
  const pfv::Isa best = std::min(tier, pfv::detected_isa());
  if (best == pfv::Isa::scalar && pfv::detected_isa() >= pfv::Isa::avx2) return pfv::Isa::avx2;
  return best;
}

double fma_peak_gflops(pfv::Isa tier, int threads, double seconds, int trials) {
  const pfv::Isa t = peak_tier(tier);
  if (t > pfv::detected_isa()) throw std::runtime_error("CPU lacks the requested tier");
  const Loop loop = loop_for(t);
  // Calibrate: iterations for about `seconds` on one thread.
  uint64_t iters = 1u << 20;
  for (;;) {
    const double s = timed_run(loop, 1, iters);
    if (s > 0.02) {
      iters = static_cast<uint64_t>(static_cast<double>(iters) * seconds / s) + 1;
      break;
    }
    iters *= 4;
  }
  double best = 0.0;
  for (int i = 0; i < trials; ++i) {
    const double s = timed_run(loop, threads, iters);
    best = std::max(best, static_cast<double>(threads) * static_cast<double>(iters) * loop.flops_per_iter / s / 1e9);
  }
  return best;
}

}  // namespace pfv_bench
