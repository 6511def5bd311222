#include "pyflame_vision/bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kernels/conv.h"
#include "kernels/microkernels.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

struct PeakLoop {
  float (*fn)(size_t);
  double flops_per_iter;
};

void require_tier(Isa tier, const char* where) {
  if (static_cast<int>(tier) > static_cast<int>(detected_isa()))
    throw Unsupported(std::string("[bench] ") + where + ": this CPU lacks the " + isa_name(tier) +
                      " tier (detected: " + isa_name(detected_isa()) + ")");
}

PeakLoop peak_loop(Isa tier) {
  switch (tier) {
    case Isa::avx512:
      return {&kernels::peak_fma_f32__avx512, 24.0 * 16 * 2};
    case Isa::avx2:
      return {&kernels::peak_fma_f32__avx2, 12.0 * 8 * 2};
    default:
      return {&kernels::peak_muladd_f32__scalar, static_cast<double>(kernels::peak_muladd_f32__scalar_flops())};
  }
}

std::atomic<float> g_sink{0.0f};

/// Seconds for `threads` threads, started together, to each run `iters` iterations.
double timed_peak_run(const PeakLoop& loop, int threads, size_t iters) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
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

/// Deterministic values in [-scale, scale) (no denormals, no NaN).
void fill_random(std::vector<float>& v, uint64_t seed, float scale) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = (static_cast<float>(s >> 40) / static_cast<float>(1u << 24) * 2.0f - 1.0f) * scale;
  }
}

kernels::Epilogue parse_epilogue(const std::string& s) {
  if (s == "none") return kernels::Epilogue::none;
  if (s == "relu") return kernels::Epilogue::relu;
  if (s == "silu") return kernels::Epilogue::silu;
  if (s == "sigmoid") return kernels::Epilogue::sigmoid;
  throw InvalidArgument("[bench] epilogue: expected none, relu, silu or sigmoid, got \"" + s + "\"");
}

void check_counts(int threads, int repeats, double min_ms) {
  if (threads < 1) throw InvalidArgument("[bench] threads: expected >= 1, got " + std::to_string(threads));
  if (repeats < 1) throw InvalidArgument("[bench] repeats: expected >= 1, got " + std::to_string(repeats));
  if (!(min_ms >= 0.0 && min_ms <= 60000.0))
    throw InvalidArgument("[bench] min_ms: expected a value in [0, 60000], got " + std::to_string(min_ms));
}

/// Restores the library's thread count on scope exit.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : saved_(get_num_threads()) { set_num_threads(threads); }
  ~ThreadScope() { set_num_threads(saved_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_;
};

template <class Run>
void time_runs(Run&& run, int repeats, double min_ms, KernelTiming& out) {
  auto t0 = Clock::now();
  run();  // first touch of buffers, pool wake-up
  double single = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  run();
  single = std::min(single, std::chrono::duration<double>(Clock::now() - t0).count());
  const int k = std::max(1, static_cast<int>(std::ceil(min_ms * 1e-3 / std::max(single, 1e-9))));
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(repeats));
  for (int r = 0; r < repeats; ++r) {
    const auto s0 = Clock::now();
    for (int i = 0; i < k; ++i) run();
    samples.push_back(std::chrono::duration<double>(Clock::now() - s0).count() / k);
  }
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  out.median_seconds = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  out.min_seconds = samples.front();
  out.samples = repeats;
  out.runs_per_sample = k;
}

int64_t out_size(int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride, const char* what) {
  if (in < 1 || k < 1 || stride < 1 || dil < 1 || pad < 0)
    throw InvalidArgument(std::string("[bench] conv case: ") + what +
                          ": expected size, kernel, stride, dilation >= 1 and padding >= 0");
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  if (span < 0)
    throw ShapeError(std::string("[bench] conv case: ") + what + ": the kernel (with dilation) is larger than the " +
                     "padded input (" + std::to_string(in + 2 * pad) + ")");
  return span / stride + 1;
}

}  // namespace

double measure_peak_gflops(Isa tier, int threads, double seconds, int trials) {
  require_tier(tier, "measure_peak_gflops");
  if (threads < 1) throw InvalidArgument("[bench] measure_peak_gflops: threads: expected >= 1, got " +
                                         std::to_string(threads));
  if (trials < 1) throw InvalidArgument("[bench] measure_peak_gflops: trials: expected >= 1, got " +
                                        std::to_string(trials));
  if (!(seconds > 0.0 && seconds <= 60.0))
    throw InvalidArgument("[bench] measure_peak_gflops: seconds: expected a value in (0, 60], got " +
                          std::to_string(seconds));
  const PeakLoop loop = peak_loop(tier);
  // Calibrate on one thread: iterations for about `seconds`.
  size_t iters = size_t{1} << 16;
  for (;;) {
    const double s = timed_peak_run(loop, 1, iters);
    if (s > 0.02 || iters > (size_t{1} << 40)) {
      iters = static_cast<size_t>(static_cast<double>(iters) * seconds / std::max(s, 1e-9)) + 1;
      break;
    }
    iters *= 4;
  }
  double best = 0.0;
  for (int i = 0; i < trials; ++i) {
    const double s = timed_peak_run(loop, threads, iters);
    best = std::max(best, static_cast<double>(threads) * static_cast<double>(iters) * loop.flops_per_iter / s / 1e9);
  }
  return best;
}

KernelTiming time_conv2d(const ConvCase& c, Isa tier, int threads, int repeats, double min_ms,
                         const std::string& epilogue) {
  require_tier(tier, "time_conv2d");
  check_counts(threads, repeats, min_ms);
  const kernels::Epilogue e = parse_epilogue(epilogue);
  if (c.batch < 1 || c.in_c < 1 || c.out_c < 1 || c.groups < 1 || c.in_c % c.groups || c.out_c % c.groups)
    throw InvalidArgument("[bench] conv case: expected batch, channels, groups >= 1 with both channel counts "
                          "divisible by groups, got batch " + std::to_string(c.batch) + ", in_c " +
                          std::to_string(c.in_c) + ", out_c " + std::to_string(c.out_c) + ", groups " +
                          std::to_string(c.groups));
  kernels::ConvShape s;
  s.batch = c.batch;
  s.in_h = c.in_h;
  s.in_w = c.in_w;
  s.in_c = c.in_c;
  s.out_c = c.out_c;
  s.kernel_h = c.kernel_h;
  s.kernel_w = c.kernel_w;
  s.stride_h = c.stride_h;
  s.stride_w = c.stride_w;
  s.pad_h = c.pad_h;
  s.pad_w = c.pad_w;
  s.dilation_h = c.dilation_h;
  s.dilation_w = c.dilation_w;
  s.groups = c.groups;
  s.out_h = out_size(c.in_h, c.pad_h, c.dilation_h, c.kernel_h, c.stride_h, "height");
  s.out_w = out_size(c.in_w, c.pad_w, c.dilation_w, c.kernel_w, c.stride_w, "width");
  const int64_t k = (c.in_c / c.groups) * c.kernel_h * c.kernel_w;
  std::vector<float> w(static_cast<size_t>(c.out_c * k)), b(static_cast<size_t>(c.out_c));
  fill_random(w, 1, 1.0f / std::sqrt(static_cast<float>(k)));
  fill_random(b, 2, 0.1f);
  const kernels::Conv2dKernel kernel(s, w.data(), b.data(), e, tier);
  std::vector<float> in(static_cast<size_t>(s.batch * s.in_h * s.in_w * s.in_c));
  std::vector<float> out(static_cast<size_t>(s.batch * s.out_h * s.out_w * s.out_c));
  fill_random(in, 3, 1.0f);
  KernelTiming t;
  t.macs = s.batch * s.out_h * s.out_w * s.out_c * k;
  t.macs_executed = kernel.macs_executed();
  t.algorithm = kernel.description();
  ThreadScope scope(threads);
  time_runs([&] { kernel.run(in.data(), out.data(), nullptr); }, repeats, min_ms, t);
  return t;
}

KernelTiming time_gemm(int64_t m, int64_t n, int64_t k, Isa tier, int threads, int repeats, double min_ms) {
  require_tier(tier, "time_gemm");
  check_counts(threads, repeats, min_ms);
  if (m < 1 || n < 1 || k < 1)
    throw InvalidArgument("[bench] time_gemm: expected m, n, k >= 1, got " + std::to_string(m) + ", " +
                          std::to_string(n) + ", " + std::to_string(k));
  std::vector<float> w(static_cast<size_t>(n * k)), b(static_cast<size_t>(n));
  fill_random(w, 1, 1.0f / std::sqrt(static_cast<float>(k)));
  fill_random(b, 2, 0.1f);
  const kernels::LinearKernel kernel(k, n, w.data(), b.data(), kernels::Epilogue::none, tier);
  std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n));
  fill_random(x, 3, 1.0f);
  KernelTiming t;
  t.macs = m * n * k;
  t.macs_executed = t.macs;
  t.algorithm = kernel.description();
  ThreadScope scope(threads);
  time_runs([&] { kernel.run(x.data(), m, y.data()); }, repeats, min_ms, t);
  return t;
}

}  // namespace bench
}  // namespace pyflame_vision
