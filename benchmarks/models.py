"""The 14 models at their native resolution, with the same weights for every engine."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

# Native input sizes: the spec's table (docs: ../shared/spec/MODELS.md).
NATIVE_SIZE = {
    "resnet18": 224, "resnet34": 224, "resnet50": 224, "resnet101": 224, "resnet152": 224,
    "resnext50_32x4d": 224, "resnext101_32x8d": 224, "wide_resnet50_2": 224, "wide_resnet101_2": 224,
    "efficientnet_b0": 224, "efficientnet_b1": 240, "efficientnet_b2": 260, "efficientnet_b3": 300,
    "efficientnet_b4": 380,
}
ALL_MODELS = list(NATIVE_SIZE)
QUICK_MODELS = ["resnet50", "efficientnet_b0"]


@dataclass
class BenchModel:
    """One model's weights, shared by every engine."""

    name: str
    size: int
    macs_per_image: int            # convolution + linear multiply-accumulates (torchvision's convention)
    state: dict[str, np.ndarray]   # torchvision state_dict keys -> float32/int64 arrays
    digest: str                    # sha1 of the state dict: cache key for exported files
    torch_model: Any = None        # torchvision module in eval mode (None without torch)

    def input(self, batch: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.standard_normal((batch, 3, self.size, self.size), dtype=np.float32)


def _digest(state: dict[str, np.ndarray]) -> str:
    h = hashlib.sha1()
    for k, v in state.items():
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(str(v.shape).encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def _calibrate_batchnorm(model: Any, torch: Any, size: int, seed: int) -> None:
    """BatchNorm statistics measured on random images, as training would leave them.

    torchvision's untrained BatchNorm (mean 0, variance 1) lets activations of deep
    ResNets grow by orders of magnitude and makes EfficientNet's outputs vanish;
    neither is what a trained network computes, and both weaken the output check.
    One pass in training mode with a cumulative average (momentum=None) sets every
    running mean and variance to the statistics of its actual input.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=g))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def build(name: str, torch_available: bool, seed: int = 0) -> BenchModel:
    """The model's weights: torchvision's initialisation with calibrated BatchNorm
    when torch is installed, else pyflame_vision's own ``init_weights(seed)``."""
    import pyflame_vision

    size = NATIVE_SIZE[name]
    ours = pyflame_vision.models.get_model(name)
    macs = int(ours.summary([1, 3, size, size]).total_macs)
    if torch_available:
        import torch
        import torchvision

        torch.manual_seed(seed)
        tv = getattr(torchvision.models, name)(weights=None)
        _calibrate_batchnorm(tv, torch, size, seed)
        state = {k: v.detach().cpu().numpy().copy() for k, v in tv.state_dict().items()}
        return BenchModel(name, size, macs, state, _digest(state), tv)
    ours.init_weights(seed)
    state = dict(ours.state_dict())
    return BenchModel(name, size, macs, state, _digest(state), None)


def cache_dir() -> str:
    d = os.environ.get("PYFLAME_VISION_BENCH_CACHE") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), ".cache")
    os.makedirs(d, exist_ok=True)
    return d


def weights_file(m: BenchModel) -> str:
    """The model's weights as .safetensors (for the memory workers), written once per digest."""
    path = os.path.join(cache_dir(), f"{m.name}-{m.digest}.safetensors")
    if not os.path.exists(path):
        from safetensors.numpy import save_file

        tmp = path + ".tmp"
        save_file({k: np.ascontiguousarray(v) for k, v in m.state.items()}, tmp)
        os.replace(tmp, path)
    return path
