// pyflame_vision._core.bench: the machine's peak and kernel timings
// (pyflame_vision/bench.h) for the benchmark suite (python -m benchmarks).
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings.h"
#include "pyflame_vision/bench.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/models/model.h"

namespace pyflame_vision {
namespace bindings {
namespace {

Isa tier_arg(const py::object& isa) {
  if (isa.is_none()) return active_isa();
  if (!py::isinstance<py::str>(isa))
    throw TypeError("isa: expected None or one of 'scalar', 'avx2', 'avx512', got " +
                    std::string(py::str(py::type::handle_of(isa).attr("__name__"))));
  return parse_isa(isa.cast<std::string>());
}

py::dict timing_dict(const bench::KernelTiming& t) {
  py::dict d;
  d["median_seconds"] = t.median_seconds;
  d["min_seconds"] = t.min_seconds;
  d["samples"] = t.samples;
  d["runs_per_sample"] = t.runs_per_sample;
  d["macs"] = t.macs;
  d["macs_executed"] = t.macs_executed;
  d["algorithm"] = t.algorithm;
  return d;
}

}  // namespace

void init_bench(py::module_& m) {
  py::module_ b = m.def_submodule("bench", "This machine's FP32 peak and kernel timings (pyflame_vision/bench.h).");
  b.def(
      "measure_peak_gflops",
      [](const py::object& isa, int threads, double seconds, int trials) {
        const Isa tier = tier_arg(isa);
        py::gil_scoped_release release;
        return bench::measure_peak_gflops(tier, threads, seconds, trials);
      },
      py::arg("isa") = py::none(), py::arg("threads") = 1, py::arg("seconds") = 0.2, py::arg("trials") = 3,
      "FP32 multiply-add peak in GFLOP/s (1 FMA = 2 flops) of `threads` threads at tier `isa` (default: the\n"
      "active tier), measured now: best of `trials` runs of about `seconds` each. Raises UnsupportedError if\n"
      "this CPU lacks the tier, ValueError for threads < 1, trials < 1 or seconds outside (0, 60].");
  b.def(
      "executed_macs",
      [](const models::Model& model, py::handle input_shape) {
        const TensorSpec spec = spec_from_python(input_shape, "input_shape");
        py::gil_scoped_release release;
        return model.executed_macs(spec);
      },
      py::arg("model"), py::arg("input_shape"),
      "Multiply-adds the model's compiled kernels execute for input_shape: summary()'s MACs, less where an\n"
      "algorithm multiplies less (Winograd). Compiles for the shape if needed (the model needs weights).");
  b.def(
      "time_conv2d",
      [](const std::vector<int64_t>& shape, const py::object& isa, int threads, int repeats, double min_ms,
         const std::string& epilogue) {
        if (shape.size() != 14)
          throw InvalidArgument("time_conv2d: shape: expected 14 integers (N H W C_in C_out KH KW SH SW PH PW DH "
                                "DW G, as in benchmarks/shapes/*.txt), got " + std::to_string(shape.size()));
        bench::ConvCase c;
        c.batch = shape[0];
        c.in_h = shape[1];
        c.in_w = shape[2];
        c.in_c = shape[3];
        c.out_c = shape[4];
        c.kernel_h = shape[5];
        c.kernel_w = shape[6];
        c.stride_h = shape[7];
        c.stride_w = shape[8];
        c.pad_h = shape[9];
        c.pad_w = shape[10];
        c.dilation_h = shape[11];
        c.dilation_w = shape[12];
        c.groups = shape[13];
        const Isa tier = tier_arg(isa);
        bench::KernelTiming t;
        {
          py::gil_scoped_release release;
          t = bench::time_conv2d(c, tier, threads, repeats, min_ms, epilogue);
        }
        return timing_dict(t);
      },
      py::arg("shape"), py::arg("isa") = py::none(), py::arg("threads") = 1, py::arg("repeats") = 7,
      py::arg("min_ms") = 2.0, py::arg("epilogue") = "none",
      "Times the convolution kernel the engine uses for `shape` (N H W C_in C_out KH KW SH SW PH PW DH DW G).\n"
      "Returns a dict: median_seconds, min_seconds, samples, runs_per_sample, macs (the direct convolution's),\n"
      "macs_executed (the implementation's: fewer for Winograd), algorithm.");
  b.def(
      "time_gemm",
      [](int64_t mm, int64_t n, int64_t k, const py::object& isa, int threads, int repeats, double min_ms) {
        const Isa tier = tier_arg(isa);
        bench::KernelTiming t;
        {
          py::gil_scoped_release release;
          t = bench::time_gemm(mm, n, k, tier, threads, repeats, min_ms);
        }
        return timing_dict(t);
      },
      py::arg("m"), py::arg("n"), py::arg("k"), py::arg("isa") = py::none(), py::arg("threads") = 1,
      py::arg("repeats") = 7, py::arg("min_ms") = 2.0,
      "Times the packed GEMM y[m, n] = x[m, k] W[n, k]^T + b (the Linear and 1x1-convolution kernel).\n"
      "Returns a dict like time_conv2d.");
}

}  // namespace bindings
}  // namespace pyflame_vision
