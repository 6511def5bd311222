"""pyflame_vision._core.bench: the FP32 peak and kernel timings behind the benchmark suite.

Values are timings, so only their structure and the arithmetic that derives
from them are asserted, never a speed.
"""

from __future__ import annotations

import pytest

import pyflame_vision
from pyflame_vision._core import bench

TIERS = ["scalar", "avx2", "avx512"]


def _available() -> list[str]:
    return TIERS[: TIERS.index(pyflame_vision.detected_isa()) + 1]


@pytest.mark.parametrize("isa", TIERS)
def test_peak_per_tier_or_a_clear_error(isa):
    if isa in _available():
        g1 = bench.measure_peak_gflops(isa=isa, threads=1, seconds=0.02, trials=1)
        assert 0 < g1 < 1e5
    else:
        with pytest.raises(pyflame_vision.UnsupportedError, match=f"lacks the {isa} tier"):
            bench.measure_peak_gflops(isa=isa)


def test_peak_default_is_the_active_tier_and_bad_arguments_raise():
    assert bench.measure_peak_gflops(seconds=0.02, trials=1) > 0
    for kwargs, match in (({"threads": 0}, "threads"), ({"trials": 0}, "trials"), ({"seconds": 0.0}, "seconds"),
                          ({"seconds": 61.0}, "seconds")):
        with pytest.raises(ValueError, match=match):
            bench.measure_peak_gflops(**kwargs)
    with pytest.raises(ValueError, match="unknown instruction set"):
        bench.measure_peak_gflops(isa="sse9")
    with pytest.raises(TypeError, match="isa"):
        bench.measure_peak_gflops(isa=2)


def test_time_conv2d_reports_the_engine_kernel_and_its_macs():
    # N H W C_in C_out KH KW SH SW PH PW DH DW G
    r = bench.time_conv2d([1, 16, 16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1], repeats=2, min_ms=0.1)
    assert set(r) == {"median_seconds", "min_seconds", "samples", "runs_per_sample", "macs", "macs_executed",
                      "algorithm"}
    assert r["macs"] == 16 * 16 * 32 * 32 * 9
    assert r["macs_executed"] == 8 * 8 * 16 * 32 * 32  # Winograd: 16 products per 2x2 tile
    assert 0 < r["min_seconds"] <= r["median_seconds"] and r["samples"] == 2 and r["runs_per_sample"] >= 1
    assert r["algorithm"].startswith("winograd")
    r = bench.time_conv2d([2, 9, 9, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 8], repeats=1, min_ms=0.0, epilogue="silu")
    assert r["macs"] == 2 * 5 * 5 * 8 * 9 and r["algorithm"].startswith("dwconv") and "silu" in r["algorithm"]
    assert r["macs_executed"] == r["macs"]
    r = bench.time_gemm(3, 5, 7, repeats=1, min_ms=0.0)
    assert r["macs"] == 3 * 5 * 7 and r["macs_executed"] == r["macs"] and "linear" in r["algorithm"]


def test_executed_macs_counts_winograds_fewer_multiplies():
    import pyflame_vision.models as models

    m = models.resnet18()
    m.init_weights(0)
    direct = m.summary([1, 3, 64, 64]).total_macs
    executed = bench.executed_macs(m, [1, 3, 64, 64])
    assert 0.4 * direct < executed < direct  # the 3x3 stride-1 layers with outputs >= 8x8 run as Winograd
    e0 = models.efficientnet_b0()
    e0.init_weights(0)
    assert bench.executed_macs(e0, [1, 3, 64, 64]) == e0.summary([1, 3, 64, 64]).total_macs  # no Winograd


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bench.time_conv2d([1, 2, 3]), "expected 14 integers"),
        (lambda: bench.time_conv2d([1, 8, 8, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4]), "divisible by groups"),
        (lambda: bench.time_conv2d([1, 2, 2, 4, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1]), "larger than the padded input"),
        (lambda: bench.time_conv2d([1, 8, 8, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1], epilogue="gelu"), "epilogue"),
        (lambda: bench.time_conv2d([1, 8, 8, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1], threads=0), "threads"),
        (lambda: bench.time_gemm(0, 4, 4), "m, n, k >= 1"),
        (lambda: bench.time_gemm(4, 4, 4, repeats=0), "repeats"),
    ],
)
def test_bad_kernel_cases_raise_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_timing_restores_the_thread_count():
    before = pyflame_vision.get_num_threads()
    bench.time_gemm(4, 4, 4, threads=1 if before > 1 else 2, repeats=1, min_ms=0.0)
    assert pyflame_vision.get_num_threads() == before
