"""End-to-end latency: pyflame_vision against PyTorch eager, in one process.

For every (threads, model, batch) row both engines run the same weights (a
torchvision model with randomised BatchNorm statistics, loaded into ours through
its state dict) on the same input; short blocks of runs alternate between the
two engines so that machine noise hits both alike, and the medians are compared. The ratio
column is torch's median over ours (> 1: we are faster). Absolute times drift on
shared machines; ratios from one run hold.

    python benchmarks/bench_models.py                       # the issue's table
    python benchmarks/bench_models.py --models resnet50 --batches 1 --threads 1 --runs 30

GFLOP/s counts 2 x MACs of convolution and linear layers (torchvision's
convention). ``--peak`` (GFLOP/s per core, e.g. from the pyflame_vision_peak
benchmark) adds a "% of peak" column: achieved / (peak x threads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def _randomise_bn(model, torch, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def _timed_block(model, x, n: int) -> list[float]:
    """One untimed run, then `n` timed runs, then a pause.

    Each engine runs in short blocks that alternate with the other's, so slow drifts
    of the machine hit both alike; the pause lets the engine's worker threads go to
    sleep (PyTorch's OpenMP workers spin after a parallel region and would
    otherwise steal a core from whatever runs next).
    """
    model(x)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t)
    time.sleep(0.25)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+",
                        default=["resnet18", "resnet50", "resnext50_32x4d", "efficientnet_b0"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per engine and row (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--block", type=int, default=3, help="consecutive timed runs of one engine per block")
    parser.add_argument("--peak", type=float, default=None, help="FP32 FMA peak GFLOP/s per core")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    import torch
    import torchvision

    import pyflame_vision
    from pyflame_vision import models

    print(f"pyflame_vision {pyflame_vision.__version__} (isa {pyflame_vision.active_isa()}), "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    rows = []
    header = (f"{'threads':>7} {'model':<16} {'batch':>5} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} "
              f"{'GFLOP/s':>8}" + (f" {'% peak':>7}" if args.peak else ""))
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        pyflame_vision.set_num_threads(threads)
        for name in args.models:
            tv = getattr(torchvision.models, name)(weights=None).eval()
            _randomise_bn(tv, torch)
            ours = models.get_model(name)
            ours.load_state_dict({k: v.detach().numpy() for k, v in tv.state_dict().items()})
            for batch in args.batches:
                shape = [batch, 3, args.size, args.size]
                x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
                xt = torch.from_numpy(x)
                with torch.inference_mode():
                    for _ in range(args.warmup):
                        ours(x)
                        tv(xt)
                    t_ours, t_torch = [], []
                    while len(t_ours) < args.runs:
                        t_ours += _timed_block(ours, x, args.block)
                        t_torch += _timed_block(tv, xt, args.block)
                mo, mt = statistics.median(t_ours), statistics.median(t_torch)
                macs = ours.summary(shape).total_macs
                gflops = 2 * macs / mo / 1e9
                row = {"threads": threads, "model": name, "batch": batch, "size": args.size,
                       "ours_ms": mo * 1e3, "torch_ms": mt * 1e3, "ratio": mt / mo, "gflops": gflops,
                       "isa": pyflame_vision.active_isa()}
                line = (f"{threads:>7} {name:<16} {batch:>5} {mo * 1e3:>9.2f} {mt * 1e3:>9.2f} {mt / mo:>6.2f} "
                        f"{gflops:>8.1f}")
                if args.peak:
                    row["pct_peak"] = 100 * gflops / (args.peak * threads)
                    line += f" {row['pct_peak']:>6.1f}%"
                print(line, flush=True)
                rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
