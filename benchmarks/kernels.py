"""Kernel-level benchmarks: GEMM and every convolution layer shape of chosen models.

The shapes come from ``benchmarks/shapes/*.txt``, the same files the C++ kernel
tests read (tests/cpp/test_kernels_shapes.cpp); timings come from the library
itself (``pyflame_vision._core.bench``, i.e. pyflame_vision/bench.h), so these are
the kernels the engine runs, with weights packed once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

SHAPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shapes")
FAMILIES = ["resnet", "resnext", "wide_resnet", "efficientnet", "dilated"]

# Square GEMMs, then the classifier heads (batch 1 and 8) of resnet50 and efficientnet_b0.
GEMMS = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
         (1, 1000, 2048), (8, 1000, 2048), (1, 1000, 1280), (8, 1000, 1280)]


@dataclass
class LayerCase:
    family: str
    line: int
    kind: str                  # "conv" or "linear"
    dims: list[int]            # conv: N H W C_in C_out KH KW SH SW PH PW DH DW G; linear: ROWS IN OUT
    users: dict[str, list[str]] = field(default_factory=dict)   # model -> module names with this shape

    @property
    def text(self) -> str:
        return self.kind + " " + " ".join(map(str, self.dims))


def load_cases(families: list[str] = FAMILIES) -> list[LayerCase]:
    cases = []
    for fam in families:
        path = os.path.join(SHAPES_DIR, fam + ".txt")
        with open(path) as f:
            for lineno, raw in enumerate(f, 1):
                body, _, comment = raw.partition("#")
                parts = body.split()
                if not parts:
                    continue
                kind, dims = parts[0], [int(p) for p in parts[1:]]
                if (kind, len(dims)) not in (("conv", 14), ("linear", 3)):
                    raise ValueError(f"{path}:{lineno}: expected 'conv' + 14 integers or 'linear' + 3, got {raw!r}")
                users: dict[str, list[str]] = {}
                comment = comment.strip()
                if comment.startswith("models:"):
                    for item in comment[len("models:"):].split():
                        model, _, names = item.partition(":")
                        users.setdefault(model, []).extend(n for n in names.split(",") if n)
                cases.append(LayerCase(fam, lineno, kind, dims, users))
    return cases


def run(models: list[str], threads_list: list[int], peaks: dict[int, float], isa: str, repeats: int,
        log=print) -> dict:
    """Times every conv/linear shape used by `models` and the GEMM list at each thread count."""
    from pyflame_vision._core import bench

    cases = [c for c in load_cases() if any(m in c.users for m in models)]
    out: dict = {"models": models, "isa": isa, "repeats": repeats, "layers": [], "gemm": [], "totals": []}
    for t in threads_list:
        peak = peaks[t]
        log(f"  kernels, {t} thread(s): {len(GEMMS)} GEMMs, {len(cases)} layer shapes")
        for m, n, k in GEMMS:
            r = bench.time_gemm(m, n, k, isa=isa, threads=t, repeats=repeats)
            g = 2 * r["macs"] / r["median_seconds"] / 1e9
            out["gemm"].append({"threads": t, "m": m, "n": n, "k": k, "median_us": r["median_seconds"] * 1e6,
                                "gflops": g, "pct_peak": 100 * g / peak, "algorithm": r["algorithm"]})
        # Per case: the library's time, direct MACs and executed MACs (fewer for Winograd). GFLOP/s uses the
        # direct count (one scale for every algorithm); % of peak the executed one (never above 100%).
        seconds, macs_of, executed_of = {}, {}, {}
        for c in cases:
            if c.kind == "conv":
                r = bench.time_conv2d(c.dims, isa=isa, threads=t, repeats=repeats)
            else:
                rows, fin, fout = c.dims
                r = bench.time_gemm(rows, fout, fin, isa=isa, threads=t, repeats=repeats)
            seconds[id(c)] = r["median_seconds"]
            macs_of[id(c)] = r["macs"]
            executed_of[id(c)] = r["macs_executed"]
            g = 2 * r["macs"] / r["median_seconds"] / 1e9
            g_exec = 2 * r["macs_executed"] / r["median_seconds"] / 1e9
            out["layers"].append({"threads": t, "shape": c.text, "where": f"{c.family}.txt:{c.line}",
                                  "used_by": {m: c.users[m] for m in models if m in c.users},
                                  "macs": r["macs"], "macs_executed": r["macs_executed"],
                                  "median_us": r["median_seconds"] * 1e6, "gflops": g,
                                  "pct_peak": 100 * g_exec / peak, "algorithm": r["algorithm"]})
        for m in models:
            macs = executed = secs = layers = 0
            for c in cases:
                cnt = len(c.users.get(m, []))
                if cnt:
                    layers += cnt
                    macs += cnt * macs_of[id(c)]
                    executed += cnt * executed_of[id(c)]
                    secs += cnt * seconds[id(c)]
            if layers:
                g = 2 * macs / secs / 1e9
                out["totals"].append({"threads": t, "model": m, "layers": layers, "gmacs": macs / 1e9,
                                      "gmacs_executed": executed / 1e9, "ms": secs * 1e3, "gflops": g,
                                      "pct_peak": 100 * (2 * executed / secs / 1e9) / peak})
    return out
