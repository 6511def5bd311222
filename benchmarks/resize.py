"""Image resize benchmark: a 4000x3000 photograph to 256 (the smaller edge; 256x341), and the classification preset.

    python -m benchmarks --resize            # or: python -m benchmarks.resize
    python -m benchmarks --resize --runs 30 --threads 1 2 --out benchmarks/results/resize.json

Engines, each on the same pixels, interleaved round by round (the order rotating), medians over --runs:

- ours: ``pyflame_vision.transforms.functional.resize`` on NumPy arrays (the C++ resampler), uint8 as the
  ``[3, H, W]`` view of an ``H x W x 3`` decoder buffer (no copy) and as a planar copy, and float32 planar;
- torchvision's tensor path: ``transforms.functional.resize`` (v1: uint8 goes through float32, what
  ``transforms.Resize`` and the presets run) and ``transforms.v2.functional.resize`` (native uint8 kernels), on
  ``torch.from_numpy`` of a planar array (no copy);
- Pillow: ``Image.resize`` of the PIL image (what torchvision runs for PIL input; single-threaded).

All bilinear with antialiasing (the presets' setting) unless ``--mode`` says otherwise. The preset rows time
``ImageClassification(crop_size=224)`` (resize 256, crop 224, normalize) end to end. Ratios are peer median /
ours: above 1 we are faster. The machine is shared: compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np
from PIL import Image

import pyflame_vision
from pyflame_vision.transforms import ImageClassification
from pyflame_vision.transforms import functional as F


def photo(height: int, width: int) -> np.ndarray:
    """An H x W x 3 uint8 photograph: scikit-image's astronaut scaled up by Pillow (a synthetic gradient with
    noise if scikit-image is missing; resize speed does not depend on the content)."""
    try:
        import skimage.data

        base = Image.fromarray(skimage.data.astronaut())
        return np.asarray(base.resize((width, height), Image.BICUBIC))
    except ImportError:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:height, 0:width]
        grad = (x[..., None] * 255 // max(width - 1, 1) + y[..., None] * 255 // max(height - 1, 1)) // 2
        return np.clip(grad + rng.integers(-20, 21, (height, width, 3)), 0, 255).astype(np.uint8)


def time_engines(engines: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    for fn in engines.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in engines}
    names = list(engines)
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t = time.perf_counter()
            engines[name]()
            samples[name].append((time.perf_counter() - t) * 1e3)
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks --resize", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=2, default=[3000, 4000], metavar=("H", "W"), help="input size")
    ap.add_argument("--to", type=int, default=256, help="smaller edge after the resize (default 256)")
    ap.add_argument("--mode", default="bilinear", choices=["bilinear", "bicubic", "nearest", "nearest-exact"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per engine (the median is reported)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="leave torchvision out (it is needed for its rows)")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")

    h, w = args.size
    hwc = photo(h, w)
    chw_view = hwc.transpose(2, 0, 1)
    chw = np.ascontiguousarray(chw_view)
    f32 = chw.astype(np.float32) / np.float32(255)
    pil = Image.fromarray(hwc)
    mode = F.interpolation_mode(args.mode)
    oh, ow = F._resized_size(h, w, args.to, None, mode, True)
    preset = ImageClassification(crop_size=224, resize_size=args.to, interpolation=mode)

    torch = TF = TF2 = tv_preset = None
    if not args.no_torch:
        try:
            import torch
            import torchvision.transforms.functional as TF
            import torchvision.transforms.v2.functional as TF2
            from torchvision.transforms import InterpolationMode as TVMode
            from torchvision.transforms._presets import ImageClassification as TVPreset

            tv_mode = TVMode(args.mode)
            tv_preset = TVPreset(crop_size=224, resize_size=args.to, interpolation=tv_mode)
        except ImportError as exc:
            print(f"torchvision not available ({exc}); its rows are left out", file=sys.stderr)
            torch = None

    pil_mode = F._PIL_MODES[mode]
    engines: dict[str, Callable[[], object]] = {
        "ours uint8 (HWC buffer as CHW view)": lambda: F.resize(chw_view, args.to, mode),
        "ours uint8 (planar CHW)": lambda: F.resize(chw, args.to, mode),
        "ours float32 (planar CHW)": lambda: F.resize(f32, args.to, mode),
        "Pillow Image.resize": lambda: pil.resize((ow, oh), pil_mode),
        "ours preset, uint8 array": lambda: preset(chw_view),
        "ours preset, PIL image (Pillow resize)": lambda: preset(pil),
    }
    if torch is not None:
        t_u8, t_f32 = torch.from_numpy(chw), torch.from_numpy(f32)
        engines.update({
            "torchvision v1 uint8 tensor": lambda: TF.resize(t_u8, [args.to], tv_mode, antialias=True),
            "torchvision v2 uint8 tensor": lambda: TF2.resize(t_u8, [args.to], tv_mode, antialias=True),
            "torchvision v1 float32 tensor": lambda: TF.resize(t_f32, [args.to], tv_mode, antialias=True),
            "torchvision preset, uint8 tensor": lambda: tv_preset(torch.from_numpy(chw)),
            "torchvision preset, PIL image": lambda: tv_preset(pil),
        })

    results = {"settings": {"input": [h, w], "output": [oh, ow], "mode": args.mode, "antialias": True,
                            "runs": args.runs, "warmup": args.warmup, "isa": pyflame_vision.active_isa(),
                            "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
                            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
               "threads": {}}
    threads_before = pyflame_vision.get_num_threads()
    torch_threads_before = torch.get_num_threads() if torch is not None else None
    try:
        for n in args.threads:
            pyflame_vision.set_num_threads(n)
            if torch is not None:
                torch.set_num_threads(n)
            samples = time_engines(engines, args.runs, args.warmup)
            results["threads"][str(n)] = {k: {"median_ms": statistics.median(v), "min_ms": min(v), "samples_ms": v}
                                          for k, v in samples.items()}
    finally:
        pyflame_vision.set_num_threads(threads_before)
        if torch is not None:
            torch.set_num_threads(torch_threads_before)

    print(f"resize {h}x{w} uint8 RGB -> {oh}x{ow} ({args.mode}, antialias), {args.runs} runs, "
          f"isa {pyflame_vision.active_isa()}; ratio = peer median / ours")
    for n, rows in results["threads"].items():
        ours_u8 = rows["ours uint8 (HWC buffer as CHW view)"]["median_ms"]
        ours_f32 = rows["ours float32 (planar CHW)"]["median_ms"]
        ours_preset = rows["ours preset, uint8 array"]["median_ms"]
        print(f"\n{n} thread(s)")
        print(f"  {'engine':44s} {'median ms':>10s} {'min ms':>8s} {'ratio':>7s}")
        for name, r in rows.items():
            ref = ours_f32 if "float32" in name else ours_preset if "preset" in name else ours_u8
            print(f"  {name:44s} {r['median_ms']:10.2f} {r['min_ms']:8.2f} {r['median_ms'] / ref:7.2f}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
