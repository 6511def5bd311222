// pyflame_vision_peak: this machine's fp32 FMA peak, 1 thread and N threads.
//
//   pyflame_vision_peak [--threads 1,2] [--seconds 0.5] [--isa scalar|avx2|avx512]
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "pyflame_vision/bench.h"
#include "pyflame_vision/cpu.h"

namespace pfv = pyflame_vision;

int main(int argc, char** argv) {
  std::vector<int> threads{1, pfv::get_num_threads()};
  double seconds = 0.5;
  pfv::Isa tier = pfv::detected_isa();
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--threads") {
        threads.clear();
        std::stringstream ss(value());
        std::string item;
        while (std::getline(ss, item, ',')) threads.push_back(std::stoi(item));
      } else if (a == "--seconds") {
        seconds = std::stod(value());
      } else if (a == "--isa") {
        tier = pfv::parse_isa(value());
      } else if (a == "--help" || a == "-h") {
        std::printf("usage: %s [--threads 1,2] [--seconds 0.5] [--isa scalar|avx2|avx512]\n", argv[0]);
        return 0;
      } else {
        throw std::runtime_error("unknown argument " + a);
      }
    }
    if (threads.size() == 2 && threads[0] == threads[1]) threads.pop_back();
    std::printf("detected %s; peak loop %s\n", pfv::isa_name(pfv::detected_isa()),
                pfv::isa_name(tier));
    double one = 0.0;
    for (int t : threads) {
      const double g = pfv::bench::measure_peak_gflops(tier, t, seconds);
      if (t == 1) one = g;
      std::printf("threads %2d: %8.1f GFLOP/s fp32 multiply-add peak", t, g);
      if (t > 1 && one > 0) std::printf("  (%.2fx one thread)", g / one);
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
