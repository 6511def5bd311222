"""Writes what tests/cpp/parity/test_python_parity.cpp compares against (run by ctest).

    python tests/cpp/parity/make_parity_inputs.py DIR

For each model: DIR/MODEL.safetensors (weights from init_weights(seed), written by
pyflame_vision.save_weights) and DIR/MODEL.io.safetensors holding the input `x`
(float32 [N, C, H, W]), the Python path's `output` and its `feature.K` maps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

import pyflame_vision
import pyflame_vision.models as models

CASES = [
    ("resnet18", [2, 3, 64, 80], 1),
    ("resnext50_32x4d", [1, 3, 64, 64], 2),
    ("efficientnet_b0", [2, 3, 72, 64], 3),
]


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name, shape, seed in CASES:
        model = models.get_model(name, num_classes=37)
        model.init_weights(seed=seed)
        pyflame_vision.save_weights(model, out / f"{name}.safetensors")
        x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        feats = model.forward_features(x)
        feats = feats if isinstance(feats, list) else [feats]
        tensors = {"x": x, "output": model(x)}
        tensors.update({f"feature.{k}": np.ascontiguousarray(f) for k, f in enumerate(feats)})
        save_file(tensors, str(out / f"{name}.io.safetensors"))
    print(f"wrote {len(CASES)} models to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
