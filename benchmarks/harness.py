"""pyflame_vision against PyTorch eager, TorchScript frozen, ONNX Runtime and OpenVINO: one run.

    python -m benchmarks                 # all 14 models, batch 1 and 8, 1 and 2 threads (~40 min here)
    python -m benchmarks --quick         # resnet50 + efficientnet_b0, fewer repeats (< 5 min here)
    python -m benchmarks --models resnet50 --batch 1 --threads 2 --runs 20 --no-memory --no-kernels

For every (model, threads, batch) cell all engines get the same weights
(torchvision's initialisation with BatchNorm statistics calibrated on random
images) and the same float32 NCHW input. Before timing, each peer's logits are
compared with ours; a relative difference above --tolerance (max |peer - ours|
over max |ours|, default 1e-3) fails the run. The check is there to catch an
engine that computes something else (wrong weights, layout or export: errors of
order 1), not to rank accuracy. With BatchNorm calibrated this way the deep
ResNets' logits are ill-conditioned in float32: against a float64 run of the
same torchvision model, resnet101's are off by 1.2e-4 (PyTorch), 9.5e-5 (ours)
and 6.6e-5 (ONNX Runtime) of the largest logit, resnet152's by 4.1e-4, 5.2e-4
and 2.9e-4, so two correct engines differed by up to 6.9e-4 (resnet152, ours
against PyTorch eager) in the run of 2026-11-27. Accuracy against torchvision
is the parity tests' job (tests/python/test_engine_parity.py, 1e-4). Then the engines run in interleaved blocks (the
order rotates every round, with a short pause after each block so that worker
threads that spin after a run go to sleep) until each has --runs timed runs;
median and p90 latency come from those. Slow noise on a shared machine hits all
engines alike, so the ratios within one run hold even when absolute times drift.

GFLOP/s counts 2 x the MACs of convolution and linear layers (torchvision's
convention), the direct convolution's, for every engine, so engines compare
on one scale (pyflame_vision's Winograd layers multiply less, so this rate can
exceed the peak). "% of peak" counts the multiplies each engine really
executes: for pyflame_vision the library's own count (bench.executed_macs:
Winograd's 16 products per 2x2 tile instead of 36), for the peers the direct
count; so no row exceeds 100%. It divides by this machine's FP32 multiply-add
peak for the same thread count and the active instruction-set tier, measured by
pyflame_vision._core.bench.measure_peak_gflops at the start and the end of the
run (the larger of the two is used).

Peers that are not installed are reported as missing; a peer that cannot run a
model (e.g. an export failure) is reported as failed with the reason. Peak
resident memory is measured for each engine and model in a separate process
(python -m benchmarks.memory). Outputs: results.md, results.json and PNG plots
in --out.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time

import numpy as np

from . import kernels as kernel_bench
from . import memory as memory_bench
from . import report
from .engines import ENGINES, PEERS, Engine, EngineUnavailable
from .models import ALL_MODELS, NATIVE_SIZE, QUICK_MODELS, build, weights_file


class OutputMismatch(Exception):
    """A peer's output differs from ours beyond the tolerance."""


def compare(ours: np.ndarray, peer: np.ndarray, tolerance: float, what: str) -> float:
    """Relative difference max|peer - ours| / max|ours|; raises OutputMismatch above `tolerance`,
    on a shape difference, or where the two disagree on which outputs are finite."""
    if ours.shape != peer.shape:
        raise OutputMismatch(f"{what}: output shape {list(peer.shape)} differs from ours {list(ours.shape)}")
    fin_o, fin_p = np.isfinite(ours), np.isfinite(peer)
    if not np.array_equal(fin_o, fin_p):
        raise OutputMismatch(f"{what}: non-finite outputs differ ({int((~fin_p).sum())} in the peer's, "
                             f"{int((~fin_o).sum())} in ours)")
    if not fin_o.any():
        return 0.0
    scale = float(np.abs(ours[fin_o]).max())
    err = float(np.abs(peer[fin_o].astype(np.float64) - ours[fin_o]).max()) / max(scale, 1e-30)
    if not err <= tolerance:
        raise OutputMismatch(f"{what}: max |peer - ours| / max |ours| = {err:.3g} exceeds the tolerance "
                             f"{tolerance:g} (max |ours| = {scale:.4g})")
    return err


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        first = text.split("\n\n")[0]
        fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("model name", "?")
        info["cpu_family_model"] = f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"
        flags = set(fields.get("flags", "").split())
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni") if f in flags]
        info["cache"] = fields.get("cache size", "?")
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return info


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def measure_peaks(threads_list: list[int], isa: str) -> dict[int, float]:
    from pyflame_vision._core import bench

    return {t: bench.measure_peak_gflops(isa=isa, threads=t, seconds=0.3, trials=5) for t in threads_list}


def time_cell(engines: list[Engine], x: np.ndarray, runs: int, warmup: int, pause: float, budget: float,
              min_runs: int) -> dict[str, list[float]]:
    """Interleaved timing of one cell; returns each engine's run times in seconds."""
    est = {}
    for e in engines:
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):
            e.run(x)
        est[e.key] = (time.perf_counter() - t0) / max(1, warmup)
        time.sleep(pause)
    per_round = sum(est.values()) + pause * len(engines)
    if per_round * runs > budget:
        runs = max(min(min_runs, runs), int(budget / per_round))
    # Blocks of consecutive runs of one engine last about 0.3 s (at least one run).
    block = max(1, min(runs, round(0.3 / max(min(est.values()), 1e-6))))
    times: dict[str, list[float]] = {e.key: [] for e in engines}
    rnd = 0
    while any(len(v) < runs for v in times.values()):
        order = engines[rnd % len(engines):] + engines[:rnd % len(engines)]
        for e in order:
            n = min(block, runs - len(times[e.key]))
            for _ in range(n):
                t0 = time.perf_counter()
                e.run(x)
                times[e.key].append(time.perf_counter() - t0)
            if n:
                time.sleep(pause)
        rnd += 1
    return times


def stats(samples: list[float], batch: int, macs: int, peak: float, executed_macs: int | None = None) -> dict:
    """Latency statistics; GFLOP/s from the direct MACs, % of peak from the executed ones (default: the same)."""
    med = statistics.median(samples)
    g = 2 * macs * batch / med / 1e9
    g_exec = 2 * (macs if executed_macs is None else executed_macs) * batch / med / 1e9
    return {"median_ms": med * 1e3, "p90_ms": float(np.percentile(samples, 90)) * 1e3, "runs": len(samples),
            "images_per_s": batch / med, "gflops": g, "gflops_executed": g_exec, "pct_peak": 100 * g_exec / peak,
            "samples_ms": [round(s * 1e3, 4) for s in samples]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"models {', '.join(QUICK_MODELS)}, 5 runs, 1 warm-up, 3 kernel repeats (< 5 min)")
    ap.add_argument("--models", nargs="+", choices=ALL_MODELS, metavar="MODEL", help="default: all 14")
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, help="timed runs per engine and cell (default 10; --quick 5)")
    ap.add_argument("--warmup", type=int, help="untimed runs per engine and cell before timing (default 2; --quick 1)")
    ap.add_argument("--min-runs", type=int, default=5, help="fewest timed runs when --cell-budget shortens a cell")
    ap.add_argument("--cell-budget", type=float, default=150.0,
                    help="seconds of timed runs per cell (all engines) before --runs is reduced, down to --min-runs")
    ap.add_argument("--pause", type=float, default=0.05, help="seconds of sleep after each block of runs")
    ap.add_argument("--engines", nargs="+", default=["ours", *PEERS], choices=list(ENGINES))
    ap.add_argument("--tolerance", type=float, default=1e-3,
                    help="max |peer - ours| / max |ours| allowed before timing (default 1e-3; see the module doc)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "latest"))
    ap.add_argument("--no-memory", action="store_true", help="skip the per-engine peak-memory processes")
    ap.add_argument("--no-kernels", action="store_true", help="skip the kernel-level benchmarks")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--kernel-models", nargs="+", default=["resnet50", "efficientnet_b0"], choices=ALL_MODELS)
    ap.add_argument("--kernel-repeats", type=int, help="samples per kernel shape (default 7; --quick 3)")
    args = ap.parse_args(argv)
    args.models = args.models or (QUICK_MODELS if args.quick else ALL_MODELS)
    args.runs = args.runs if args.runs is not None else (5 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.kernel_repeats = args.kernel_repeats if args.kernel_repeats is not None else (3 if args.quick else 7)
    if "ours" not in args.engines:
        ap.error("--engines must include 'ours' (every peer is compared with it)")
    for v, what in ((args.batch, "--batch"), (args.threads, "--threads")):
        if any(n < 1 for n in v):
            ap.error(f"{what}: expected positive integers, got {v}")
    if args.runs < 1 or args.min_runs < 1 or args.warmup < 0 or args.kernel_repeats < 1:
        ap.error(f"--runs, --min-runs and --kernel-repeats must be >= 1 and --warmup >= 0, got --runs {args.runs}, "
                 f"--min-runs {args.min_runs}, --kernel-repeats {args.kernel_repeats}, --warmup {args.warmup}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import pyflame_vision

    os.makedirs(args.out, exist_ok=True)
    isa = pyflame_vision.active_isa()
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    engines: dict[str, Engine] = {k: ENGINES[k]() for k in args.engines}
    status: dict[str, dict] = {}
    for k, e in engines.items():
        reason = e.missing_reason()
        status[k] = {"label": e.label, "status": "missing" if reason else "ok", "reason": reason}
        if reason:
            log(f"{e.label}: MISSING ({reason})")
    have_torch = _importable("torch") and _importable("torchvision")
    active = [k for k in args.engines if status[k]["status"] == "ok"]
    for k in active:
        status[k]["describe"] = engines[k].describe()

    result: dict = {
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                  else sys.argv[1:])),
        "started_utc": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
        "isa": isa, "detected_isa": pyflame_vision.detected_isa(), "load_average_start": load_average(),
        "settings": {"models": args.models, "batch": args.batch, "threads": args.threads, "runs": args.runs,
                     "warmup": args.warmup, "min_runs": args.min_runs, "cell_budget_s": args.cell_budget,
                     "pause_s": args.pause, "tolerance": args.tolerance, "quick": args.quick},
        "engines": status, "rows": [], "memory": [], "failures": [],
    }
    log(f"pyflame_vision {pyflame_vision.__version__}, isa {isa}; machine {result['machine'].get('cpu', '?')}, "
        f"load average {result['load_average_start']}")
    peaks = measure_peaks(args.threads, isa)
    result["peak_gflops_start"] = {str(t): v for t, v in peaks.items()}
    log("FP32 peak (" + isa + "): " + ", ".join(f"{t} thread(s) {v:.1f} GFLOP/s" for t, v in peaks.items()))

    exit_code = 0
    try:
        for name in args.models:
            _run_model(name, args, engines, active, status, peaks, have_torch, result, log)
    except OutputMismatch as e:
        log(f"FAILED: {e}")
        result["failures"].append(str(e))
        exit_code = 3

    if exit_code == 0:
        end_peaks = measure_peaks(args.threads, isa)
        result["peak_gflops_end"] = {str(t): v for t, v in end_peaks.items()}
        log("FP32 peak at the end: " + ", ".join(f"{t} thread(s) {v:.1f}" for t, v in end_peaks.items()))
        # The denominator: the larger measurement (a busy moment only ever lowers it).
        peak_used = {t: max(peaks[t], end_peaks[t]) for t in args.threads}
        result["peak_gflops"] = {str(t): v for t, v in peak_used.items()}
        for row in result["rows"]:
            for r in row["engines"].values():
                if "gflops" in r:
                    r["pct_peak"] = 100 * r.get("gflops_executed", r["gflops"]) / peak_used[row["threads"]]
        if not args.no_kernels:
            log("kernel benchmarks")
            result["kernels"] = kernel_bench.run(args.kernel_models, args.threads, peak_used, isa,
                                                 args.kernel_repeats, log)
    result["load_average_end"] = load_average()
    result["duration_s"] = round(time.perf_counter() - t_start, 1)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = report.markdown(result)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    if not args.no_plots and result["rows"]:
        for path in report.plots(result, args.out):
            log(f"wrote {path}")
    print(md)
    log(f"wrote {os.path.join(args.out, 'results.md')} and results.json; {result['duration_s']:.0f} s in all")
    return exit_code


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _run_model(name, args, engines, active, status, peaks, have_torch, result, log) -> None:
    log(f"{name} ({NATIVE_SIZE[name]}x{NATIVE_SIZE[name]}): building weights")
    bm = build(name, have_torch)
    loaded: list[Engine] = []
    model_status: dict[str, str] = {}
    for k in active:
        e = engines[k]
        t0 = time.perf_counter()
        try:
            e.load(bm)
            loaded.append(e)
            model_status[k] = "ok"
            log(f"  {e.label}: ready in {time.perf_counter() - t0:.1f} s")
        except EngineUnavailable as ex:
            model_status[k] = f"failed: {ex}"
            log(f"  {e.label}: FAILED ({ex})")
    for k in args.engines:
        if k not in model_status:
            model_status[k] = "missing"
    ours = engines["ours"]
    # The multiplies our kernels execute per image (fewer than the direct count where Winograd runs).
    executed = None
    if model_status.get("ours") == "ok":
        from pyflame_vision._core import bench

        executed = bench.executed_macs(ours.model, [1, 3, bm.size, bm.size])
    for threads in args.threads:
        for e in loaded:
            e.set_threads(threads)
        for batch in args.batch:
            x = bm.input(batch)
            ref = ours.run(x)
            errors = {}
            for e in loaded:
                if e.key != "ours":
                    errors[e.key] = compare(ref, e.run(x), args.tolerance,
                                            f"{name} batch {batch} threads {threads}: {e.label}")
            times = time_cell(loaded, x, args.runs, args.warmup, args.pause, args.cell_budget, args.min_runs)
            row = {"model": name, "size": bm.size, "batch": batch, "threads": threads,
                   "gmacs_per_image": bm.macs_per_image / 1e9,
                   "gmacs_executed_per_image": (executed if executed is not None else bm.macs_per_image) / 1e9,
                   "engines": {}}
            for k in args.engines:
                if k in times:
                    row["engines"][k] = stats(times[k], batch, bm.macs_per_image, peaks[threads],
                                              executed if k == "ours" else None)
                    if k != "ours":
                        row["engines"][k]["rel_err_vs_ours"] = errors[k]
                else:
                    row["engines"][k] = {"status": model_status[k] if model_status[k] != "ok" else "failed"}
            o = row["engines"]["ours"]["median_ms"]
            for k in PEERS:
                if k in times:
                    row["engines"][k]["ours_over_peer_throughput"] = row["engines"][k]["median_ms"] / o
            result["rows"].append(row)
            log(f"  threads {threads} batch {batch}: " + ", ".join(
                f"{k} {row['engines'][k]['median_ms']:.1f} ms" for k in args.engines if k in times))
    if not args.no_memory:
        wfile = weights_file(bm)
        onnx = next((getattr(engines[k], "path", None) for k in ("ort", "ov") if model_status.get(k) == "ok"), None)
        mb, mt = max(args.batch), max(args.threads)
        for k in args.engines:
            if model_status[k] != "ok":
                result["memory"].append({"engine": k, "model": name, "status": model_status[k]})
                continue
            r = memory_bench.measure(k, name, bm.size, mb, mt, wfile, onnx)
            result["memory"].append(r)
            log(f"  memory {k}: " + (f"peak {r['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in r else r["error"]))
    for e in loaded:
        e.unload()
    del bm
    gc.collect()
