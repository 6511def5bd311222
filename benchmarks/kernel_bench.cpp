// pyflame_vision_kernel_bench: times Conv2dKernel / LinearKernel on every
// real layer shape of the supported models (benchmarks/shapes/*.txt, the
// same list the kernel tests use) and reports GFLOP/s and % of this machine's
// FMA peak, measured in the same process, per layer and per model.
//
//   pyflame_vision_kernel_bench [--shapes DIR] [--family resnet,efficientnet]
//       [--model resnet50,efficientnet_b0] [--filter TEXT] [--threads 1,2]
//       [--isa scalar|avx2|avx512] [--epilogue none|relu|silu|sigmoid]
//       [--repeats 7] [--min-ms 2] [--no-layers] [--csv FILE]
//
// Timing: one warm-up run, then `repeats` samples; each sample times k
// back-to-back runs (k chosen so a sample lasts >= min-ms) and the reported
// time is the median sample / k. GFLOP/s = 2 * MACs / time. A model's total is
// sum(count * MACs) / sum(count * time) over its conv and linear layers (count
// = how many of its layers have that shape), i.e. the convolution part of a
// forward pass, without pooling or other glue.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "peak.h"
#include "pyflame_vision/cpu.h"
#include "shape_list.h"

#ifndef PFV_SHAPES_DIR
#define PFV_SHAPES_DIR "benchmarks/shapes"
#endif

namespace pfv = pyflame_vision;
namespace kern = pyflame_vision::kernels;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string shapes_dir = PFV_SHAPES_DIR;
  std::vector<std::string> families = pfv_shapes::family_names();
  std::vector<std::string> models;  // empty: every model in the loaded files
  std::string filter;
  std::vector<int> threads;
  pfv::Isa isa = pfv::active_isa();
  kern::Epilogue epilogue = kern::Epilogue::none;
  int repeats = 7;
  double min_ms = 2.0;
  bool layers = true;
  std::string csv;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

kern::Epilogue parse_epilogue(const std::string& s) {
  if (s == "none") return kern::Epilogue::none;
  if (s == "relu") return kern::Epilogue::relu;
  if (s == "silu") return kern::Epilogue::silu;
  if (s == "sigmoid") return kern::Epilogue::sigmoid;
  throw std::runtime_error("--epilogue: expected none, relu, silu or sigmoid, got " + s);
}

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--shapes DIR] [--family resnet,...] [--model resnet50,...] [--filter TEXT]\n"
      "          [--threads 1,2] [--isa scalar|avx2|avx512] [--epilogue none|relu|silu|sigmoid]\n"
      "          [--repeats 7] [--min-ms 2] [--no-layers] [--csv FILE]\n"
      "Families: resnet resnext wide_resnet efficientnet dilated (default: all).\n"
      "--filter keeps the shapes whose line contains TEXT (e.g. \"conv 1 56 56\" or \"3 3 2 2\").\n",
      argv0);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--shapes") {
      o.shapes_dir = value();
    } else if (a == "--family") {
      o.families = split_list(value());
    } else if (a == "--model") {
      o.models = split_list(value());
    } else if (a == "--filter") {
      o.filter = value();
    } else if (a == "--threads") {
      for (const auto& t : split_list(value())) o.threads.push_back(std::stoi(t));
    } else if (a == "--isa") {
      o.isa = pfv::parse_isa(value());
    } else if (a == "--epilogue") {
      o.epilogue = parse_epilogue(value());
    } else if (a == "--repeats") {
      o.repeats = std::max(1, std::stoi(value()));
    } else if (a == "--min-ms") {
      o.min_ms = std::stod(value());
    } else if (a == "--no-layers") {
      o.layers = false;
    } else if (a == "--csv") {
      o.csv = value();
    } else if (a == "--help" || a == "-h") {
      usage(argv[0]);
      std::exit(0);
    } else {
      throw std::runtime_error("unknown argument " + a + " (--help lists them)");
    }
  }
  if (o.threads.empty()) {
    o.threads.push_back(1);
    if (pfv::get_num_threads() > 1) o.threads.push_back(pfv::get_num_threads());
  }
  return o;
}

/// Deterministic values in [-1, 1) (no denormals, no NaN).
void fill_random(std::vector<float>& v, uint64_t seed, float scale) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = (static_cast<float>(s >> 40) / static_cast<float>(1u << 24) * 2.0f - 1.0f) * scale;
  }
}

/// A layer ready to run: kernel plus buffers.
class Bench {
 public:
  Bench(const pfv_shapes::LayerCase& c, pfv::Isa isa, kern::Epilogue e) : case_(c) {
    if (c.kind == pfv_shapes::LayerCase::Kind::linear) {
      std::vector<float> w(static_cast<size_t>(c.in_features * c.out_features)),
          b(static_cast<size_t>(c.out_features));
      fill_random(w, 1, 1.0f / std::sqrt(static_cast<float>(c.in_features)));
      fill_random(b, 2, 0.1f);
      linear_ = std::make_unique<kern::LinearKernel>(c.in_features, c.out_features, w.data(), b.data(), e, isa);
      in_.resize(static_cast<size_t>(c.rows * c.in_features));
      out_.resize(static_cast<size_t>(c.rows * c.out_features));
    } else {
      const auto& s = c.conv;
      const int64_t k = (s.in_c / s.groups) * s.kernel_h * s.kernel_w;
      std::vector<float> w(static_cast<size_t>(s.out_c * k)), b(static_cast<size_t>(s.out_c));
      fill_random(w, 1, 1.0f / std::sqrt(static_cast<float>(k)));
      fill_random(b, 2, 0.1f);
      conv_ = std::make_unique<kern::Conv2dKernel>(s, w.data(), b.data(), e, isa);
      in_.resize(static_cast<size_t>(s.batch * s.in_h * s.in_w * s.in_c));
      out_.resize(static_cast<size_t>(s.batch * s.out_h * s.out_w * s.out_c));
    }
    fill_random(in_, 3, 1.0f);
  }
  void run() {
    if (conv_)
      conv_->run(in_.data(), out_.data(), nullptr);
    else
      linear_->run(in_.data(), case_.rows, out_.data());
  }
  std::string description() const { return conv_ ? conv_->description() : linear_->description(); }

  /// Median seconds per run.
  double time(int repeats, double min_ms) {
    auto t0 = Clock::now();
    run();  // warm-up (first touch of buffers, pool wake-up)
    double single = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    run();
    single = std::min(single, std::chrono::duration<double>(Clock::now() - t0).count());
    const int k = std::max(1, static_cast<int>(std::ceil(min_ms * 1e-3 / std::max(single, 1e-9))));
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
      const auto s0 = Clock::now();
      for (int i = 0; i < k; ++i) run();
      samples.push_back(std::chrono::duration<double>(Clock::now() - s0).count() / k);
    }
    std::sort(samples.begin(), samples.end());
    const size_t n = samples.size();
    return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  }

 private:
  const pfv_shapes::LayerCase& case_;
  std::unique_ptr<kern::Conv2dKernel> conv_;
  std::unique_ptr<kern::LinearKernel> linear_;
  std::vector<float> in_, out_;
};

/// "/proc/loadavg"'s first three fields, or "n/a": a busy machine explains odd numbers.
std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (f >> a >> b >> c) return a + " " + b + " " + c;
  return "n/a";
}

std::string family_line(const pfv_shapes::LayerCase& c) { return c.family + ":" + std::to_string(c.line); }

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse_args(argc, argv);
    if (o.isa > pfv::detected_isa())
      throw std::runtime_error(std::string("--isa ") + pfv::isa_name(o.isa) + ": this CPU only has " +
                               pfv::isa_name(pfv::detected_isa()));
    std::vector<pfv_shapes::LayerCase> cases;
    for (const auto& fam : o.families) {
      auto part = pfv_shapes::parse_shape_file(o.shapes_dir + "/" + fam + ".txt", fam);
      for (auto& c : part) cases.push_back(std::move(c));
    }
    // Models to total: the requested ones, or every model in the loaded files.
    std::vector<std::string> models = o.models;
    if (models.empty()) {
      std::set<std::string> seen;
      for (const auto& c : cases)
        for (const auto& u : c.users)
          if (seen.insert(u.first).second) models.push_back(u.first);
    }
    std::vector<const pfv_shapes::LayerCase*> selected;
    for (const auto& c : cases) {
      bool used = o.models.empty();
      for (const auto& m : o.models) used |= c.count_in(m) > 0;
      if (used && (o.filter.empty() || c.text.find(o.filter) != std::string::npos)) selected.push_back(&c);
    }
    if (selected.empty()) throw std::runtime_error("no shapes selected (check --family/--model/--filter)");
    if (!o.filter.empty()) std::printf("note: --filter given; model totals cover the selected layers only\n");

    std::FILE* csv = nullptr;
    if (!o.csv.empty()) {
      csv = std::fopen(o.csv.c_str(), "w");
      if (!csv) throw std::runtime_error("cannot write " + o.csv);
      std::fprintf(csv, "threads,isa,family_line,shape,algorithm,macs,median_us,gflops,pct_peak\n");
    }
    const int saved_threads = pfv::get_num_threads();
    std::printf("pyflame_vision kernel bench: isa %s (detected %s), epilogue %s, %zu shapes, repeats %d\n",
                pfv::isa_name(o.isa), pfv::isa_name(pfv::detected_isa()),
                o.epilogue == kern::Epilogue::none ? "none" : "set", selected.size(), o.repeats);

    for (int threads : o.threads) {
      pfv::set_num_threads(threads);
      // Peak: best of several trials before and after the layers, so that a
      // moment of contention from other processes does not lower the denominator.
      double peak = pfv_bench::fma_peak_gflops(o.isa, threads, 0.2, 5);
      std::printf("\n== threads %d: measured %s FMA peak %.1f GFLOP/s (load average %s)\n", threads,
                  pfv::isa_name(pfv_bench::peak_tier(o.isa)), peak, load_average().c_str());
      if (o.layers)
        std::printf("%-18s %-46s %-44s %9s %10s %8s %6s\n", "file:line", "shape", "algorithm", "MMAC", "median_us",
                    "GFLOP/s", "%peak");
      std::map<const pfv_shapes::LayerCase*, double> seconds;
      for (const auto* c : selected) {
        Bench b(*c, o.isa, o.epilogue);
        const double t = b.time(o.repeats, o.min_ms);
        seconds[c] = t;
        const double gflops = 2.0 * static_cast<double>(c->macs()) / t / 1e9;
        if (o.layers)
          std::printf("%-18s %-46s %-44s %9.2f %10.1f %8.1f %5.1f%%\n", family_line(*c).c_str(), c->text.c_str(),
                      b.description().c_str(), static_cast<double>(c->macs()) / 1e6, t * 1e6, gflops,
                      100.0 * gflops / peak);
        if (csv)
          std::fprintf(csv, "%d,%s,%s,%s,\"%s\",%lld,%.3f,%.3f,%.2f\n", threads, pfv::isa_name(o.isa),
                       family_line(*c).c_str(), c->text.c_str(), b.description().c_str(),
                       static_cast<long long>(c->macs()), t * 1e6, gflops, 100.0 * gflops / peak);
        std::fflush(stdout);
      }
      const double peak_after = pfv_bench::fma_peak_gflops(o.isa, threads, 0.2, 5);
      if (peak_after > peak * 1.05 || peak_after < peak * 0.95)
        std::printf("WARNING: the FMA peak changed during the run (%.1f GFLOP/s before the layers, %.1f after): "
                    "other processes compete for the cores and these timings are not reliable\n",
                    peak, peak_after);
      peak = std::max(peak, peak_after);
      std::printf("\n%-20s %7s %9s %10s %9s %7s   (threads %d, conv + linear layers, peak %.1f GFLOP/s)\n", "model",
                  "layers", "GMAC", "time_ms", "GFLOP/s", "%peak", threads, peak);
      for (const auto& m : models) {
        double macs = 0, secs = 0;
        int64_t layers = 0;
        for (const auto* c : selected) {
          const int64_t n = c->count_in(m);
          if (n == 0) continue;
          layers += n;
          macs += static_cast<double>(n) * static_cast<double>(c->macs());
          secs += static_cast<double>(n) * seconds[c];
        }
        if (layers == 0) continue;
        const double gflops = 2.0 * macs / secs / 1e9;
        std::printf("%-20s %7lld %9.3f %10.2f %9.1f %6.1f%%\n", m.c_str(), static_cast<long long>(layers), macs / 1e9,
                    secs * 1e3, gflops, 100.0 * gflops / peak);
      }
    }
    pfv::set_num_threads(saved_threads);
    if (csv) std::fclose(csv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
