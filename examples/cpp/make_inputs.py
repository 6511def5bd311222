"""Inputs for the C++ example, and the Python path's answer to check it against.

    python examples/cpp/make_inputs.py DIR [--model resnet18] [--seed 0]
        writes DIR/MODEL.safetensors (random weights: init_weights(seed)), DIR/image.ppm
        (a 320x240 synthetic picture) and DIR/expected.txt (the top-5 the Python path gives)
    python examples/cpp/make_inputs.py DIR --check OUTPUT.txt
        compares classify's output with the Python path; exits 1 on a mismatch

The preprocessing is the same preset classify.cpp applies (the model's default
torchvision weights' ImageClassification), here through the Python API; the model
runs through the Python bindings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import pyflame_vision
import pyflame_vision.models as models


def write_ppm(path: Path, rgb: np.ndarray) -> None:
    h, w, _ = rgb.shape
    path.write_bytes(b"P6\n# synthetic test image\n%d %d\n255\n" % (w, h) + rgb.astype(np.uint8).tobytes())


def read_ppm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    lines = [ln for ln in data.split(b"\n", 4)[:4] if not ln.startswith(b"#")]
    w, h = (int(v) for v in lines[1].split())
    assert lines[0] == b"P6" and lines[2] == b"255", "only the images write_ppm makes"
    return np.frombuffer(data[-w * h * 3:], dtype=np.uint8).reshape(h, w, 3)


def synthetic_image(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    img = np.stack([128 + 100 * np.sin(x / 17.0), 128 + 100 * np.cos(y / 11.0), (x + y) % 256], axis=-1)
    img = img + rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def preprocess(rgb: np.ndarray, model_name: str) -> np.ndarray:
    """classify.cpp's preprocessing: [H, W, 3] uint8 -> float32 [1, 3, crop, crop] through the default weights'
    preset (resize, center crop, / 255, normalize)."""
    preset = models.get_model_weights(model_name).DEFAULT.transforms()
    return preset(rgb.transpose(2, 0, 1))[None]


def python_probabilities(model_name: str, weights: Path, image: Path) -> np.ndarray:
    model = models.get_model(model_name)
    pyflame_vision.load_weights(model, weights)
    x = preprocess(read_ppm(image), model_name)
    logits = model(x)[0].astype(np.float64)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def top5(p: np.ndarray) -> list[tuple[int, float]]:
    order = sorted(range(len(p)), key=lambda k: (-p[k], k))[:5]
    return [(k, float(p[k])) for k in order]


def parse_output(text: str) -> list[tuple[int, float]]:
    lines = text.splitlines()
    start = lines.index("rank class score") + 1
    return [(int(cls), float(score)) for _, cls, score in (ln.split() for ln in lines[start:start + 5])]


def check(printed: list[tuple[int, float]], p: np.ndarray, tol: float = 2e-6) -> list[str]:
    """Problems with classify's top-5 given the Python path's probabilities (empty if it agrees).

    Scores must match to `tol` (classify prints 6 decimals); the classes must be the Python top-5,
    except that classes whose probabilities tie within `tol` may swap.
    """
    problems = []
    expected = top5(p)
    if len(printed) != 5:
        return [f"expected 5 lines, got {len(printed)}"]
    fifth = expected[-1][1]
    for rank, (cls, score) in enumerate(printed, 1):
        if not 0 <= cls < len(p):
            problems.append(f"rank {rank}: class {cls} out of range")
            continue
        if abs(score - p[cls]) > tol:
            problems.append(f"rank {rank}: class {cls} score {score:.6f}, Python path {p[cls]:.6f}")
        if p[cls] < fifth - tol:
            problems.append(f"rank {rank}: class {cls} ({p[cls]:.6f}) is not in the Python top-5 {expected}")
    if [c for c, _ in printed] != [c for c, _ in expected] and not problems:
        spread = min(abs(a[1] - b[1]) for a, b in zip(expected, expected[1:]))
        if spread > tol:
            problems.append(f"order differs: printed {printed}, Python path {expected}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=Path, metavar="OUTPUT.txt", help="classify's output to compare")
    args = ap.parse_args(argv)
    weights, image = args.dir / f"{args.model}.safetensors", args.dir / "image.ppm"
    if args.check is None:
        args.dir.mkdir(parents=True, exist_ok=True)
        model = models.get_model(args.model)
        model.init_weights(seed=args.seed)
        pyflame_vision.save_weights(model, weights)
        write_ppm(image, synthetic_image(seed=args.seed))
        best = top5(python_probabilities(args.model, weights, image))
        lines = [f"{r} {c} {s:.6f}" for r, (c, s) in enumerate(best, 1)]
        (args.dir / "expected.txt").write_text("rank class score\n" + "\n".join(lines) + "\n")
        print(f"wrote {weights}, {image}, {args.dir / 'expected.txt'}")
        return 0
    problems = check(parse_output(args.check.read_text()), python_probabilities(args.model, weights, image))
    for msg in problems:
        print(f"MISMATCH: {msg}", file=sys.stderr)
    if not problems:
        print(f"classify agrees with the Python path ({args.model}, top-5 classes and scores)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
