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

#include "pyflame_vision/bench.h"
#include "pyflame_vision/cpu.h"
#include "shape_list.h"

#ifndef PFV_SHAPES_DIR
#define PFV_SHAPES_DIR "benchmarks/shapes"
#endif

namespace pfv = pyflame_vision;

namespace {

struct Options {
  std::string shapes_dir = PFV_SHAPES_DIR;
  std::vector<std::string> families = pfv_shapes::family_names();
  std::vector<std::string> models;  // empty: every model in the loaded files
  std::string filter;
  std::vector<int> threads;
  pfv::Isa isa = pfv::active_isa();
  std::string epilogue = "none";
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
      o.epilogue = value();
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

/// Times one shape through the library's benchmark API (pyflame_vision/bench.h).
pfv::bench::KernelTiming time_case(const pfv_shapes::LayerCase& c, pfv::Isa isa, int threads, int repeats,
                                   double min_ms, const std::string& epilogue) {
  if (c.kind == pfv_shapes::LayerCase::Kind::linear)
    return pfv::bench::time_gemm(c.rows, c.out_features, c.in_features, isa, threads, repeats, min_ms);
  const auto& s = c.conv;
  pfv::bench::ConvCase k;
  k.batch = s.batch;
  k.in_h = s.in_h;
  k.in_w = s.in_w;
  k.in_c = s.in_c;
  k.out_c = s.out_c;
  k.kernel_h = s.kernel_h;
  k.kernel_w = s.kernel_w;
  k.stride_h = s.stride_h;
  k.stride_w = s.stride_w;
  k.pad_h = s.pad_h;
  k.pad_w = s.pad_w;
  k.dilation_h = s.dilation_h;
  k.dilation_w = s.dilation_w;
  k.groups = s.groups;
  return pfv::bench::time_conv2d(k, isa, threads, repeats, min_ms, epilogue);
}

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
                o.epilogue.c_str(), selected.size(), o.repeats);

    for (int threads : o.threads) {
      pfv::set_num_threads(threads);
      // Peak: best of several trials before and after the layers, so that a
      // moment of contention from other processes does not lower the denominator.
      double peak = pfv::bench::measure_peak_gflops(o.isa, threads, 0.2, 5);
      std::printf("\n== threads %d: measured %s FMA peak %.1f GFLOP/s (load average %s)\n", threads,
                  pfv::isa_name(o.isa), peak, load_average().c_str());
      if (o.layers)
        std::printf("%-18s %-46s %-44s %9s %10s %8s %6s\n", "file:line", "shape", "algorithm", "MMAC", "median_us",
                    "GFLOP/s", "%peak");
      // GFLOP/s: the direct convolution's count (one scale for every algorithm);
      // % of peak: the multiplies the implementation executes (Winograd's fewer).
      std::map<const pfv_shapes::LayerCase*, double> seconds, executed;
      for (const auto* c : selected) {
        const pfv::bench::KernelTiming timing = time_case(*c, o.isa, threads, o.repeats, o.min_ms, o.epilogue);
        const double t = timing.median_seconds;
        seconds[c] = t;
        executed[c] = static_cast<double>(timing.macs_executed);
        const double gflops = 2.0 * static_cast<double>(c->macs()) / t / 1e9;
        const double pct = 100.0 * (2.0 * executed[c] / t / 1e9) / peak;
        if (o.layers)
          std::printf("%-18s %-46s %-44s %9.2f %10.1f %8.1f %5.1f%%\n", family_line(*c).c_str(), c->text.c_str(),
                      timing.algorithm.c_str(), static_cast<double>(c->macs()) / 1e6, t * 1e6, gflops, pct);
        if (csv)
          std::fprintf(csv, "%d,%s,%s,%s,\"%s\",%lld,%.3f,%.3f,%.2f\n", threads, pfv::isa_name(o.isa),
                       family_line(*c).c_str(), c->text.c_str(), timing.algorithm.c_str(),
                       static_cast<long long>(c->macs()), t * 1e6, gflops, pct);
        std::fflush(stdout);
      }
      const double peak_after = pfv::bench::measure_peak_gflops(o.isa, threads, 0.2, 5);
      if (peak_after > peak * 1.05 || peak_after < peak * 0.95)
        std::printf("WARNING: the FMA peak changed during the run (%.1f GFLOP/s before the layers, %.1f after): "
                    "other processes compete for the cores and these timings are not reliable\n",
                    peak, peak_after);
      peak = std::max(peak, peak_after);
      std::printf("\n%-20s %7s %9s %10s %9s %7s   (threads %d, conv + linear layers, peak %.1f GFLOP/s)\n", "model",
                  "layers", "GMAC", "time_ms", "GFLOP/s", "%peak", threads, peak);
      for (const auto& m : models) {
        double macs = 0, exec_macs = 0, secs = 0;
        int64_t layers = 0;
        for (const auto* c : selected) {
          const int64_t n = c->count_in(m);
          if (n == 0) continue;
          layers += n;
          macs += static_cast<double>(n) * static_cast<double>(c->macs());
          exec_macs += static_cast<double>(n) * executed[c];
          secs += static_cast<double>(n) * seconds[c];
        }
        if (layers == 0) continue;
        const double gflops = 2.0 * macs / secs / 1e9;
        std::printf("%-20s %7lld %9.3f %10.2f %9.1f %6.1f%%\n", m.c_str(), static_cast<long long>(layers), macs / 1e9,
                    secs * 1e3, gflops, 100.0 * (2.0 * exec_macs / secs / 1e9) / peak);
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
