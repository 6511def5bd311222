"""Shared test helpers.

torch/torchvision are the correctness oracle. When they are missing the parity
tests skip, unless PYFLAME_VISION_REQUIRE_TORCH=1 (set by CI), which turns a
missing torch into a failure.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the same examples every time (reproducible); local runs explore new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[2]

def _model_names() -> list:
    from pyflame_vision import _core

    return [row["name"] for row in _core.factories.model_table()]


# The C++ model table (torchvision's order): tests iterate it rather than spelling the names out.
MODEL_NAMES = _model_names()

# torchvision's published figures (weights meta: num_params, _ops in GMACs at the
# weights' crop size). Used when torchvision is absent; the parity tests also
# read them from torchvision itself.
PUBLISHED = {
    "resnet18": (11689512, 1.814, 224),
    "resnet34": (21797672, 3.664, 224),
    "resnet50": (25557032, 4.089, 224),
    "resnet101": (44549160, 7.801, 224),
    "resnet152": (60192808, 11.514, 224),
    "resnext50_32x4d": (25028904, 4.23, 224),
    "resnext101_32x8d": (88791336, 16.414, 224),
    "wide_resnet50_2": (68883240, 11.398, 224),
    "wide_resnet101_2": (126886696, 22.753, 224),
    "efficientnet_b0": (5288548, 0.386, 224),
    "efficientnet_b1": (7794184, 0.687, 240),
    "efficientnet_b2": (9109994, 1.088, 288),
    "efficientnet_b3": (12233232, 1.827, 300),
    "efficientnet_b4": (19341616, 4.394, 380),
}


def require_torchvision():
    """Returns (torch, torchvision), or skips / fails as the environment asks."""
    try:
        import torch
        import torchvision
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if os.environ.get("PYFLAME_VISION_REQUIRE_TORCH") == "1":
            pytest.fail(f"PYFLAME_VISION_REQUIRE_TORCH=1 but torch/torchvision cannot be imported: {exc}")
        pytest.skip("torch/torchvision not installed (set PYFLAME_VISION_REQUIRE_TORCH=1 to require them)")
    return torch, torchvision


@functools.cache
def tv_meta_model(name: str, **kwargs):
    """A torchvision model on the meta device (shapes only, no initialisation cost), in eval mode."""
    torch, torchvision = require_torchvision()
    with torch.device("meta"):
        model = torchvision.models.get_model(name, **kwargs)
    return model.eval()


def tv_output_shape(model, shape):
    """torchvision's output shape for `shape` on the meta device, or the exception type it raises."""
    torch, _ = require_torchvision()
    with torch.no_grad():
        try:
            return list(model(torch.empty(shape, device="meta")).shape)
        except (RuntimeError, ValueError, IndexError) as exc:
            return exc


def tv_model_random_bn(name: str, seed: int = 0, **kwargs):
    """A real torchvision model (weights=None, eval mode) with every BatchNorm's weight, bias and
    running statistics randomised (seeded). With torchvision's default BN init (1/0/0/1) EfficientNet's
    outputs vanish (~1e-14), which would make a parity check meaningless."""
    torch, torchvision = require_torchvision()
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0.0, 0.1, generator=gen)
                module.running_mean.normal_(0.0, 0.1, generator=gen)
                module.running_var.uniform_(0.5, 1.5, generator=gen)
    return model


def numpy_state_dict(tv_model) -> dict:
    """torchvision's state dict as NumPy arrays, in torchvision's order."""
    return {k: v.detach().numpy() for k, v in tv_model.state_dict().items()}


ISA_TIERS = ["scalar", "avx2", "avx512"]


def required_isa() -> str:
    """The tier PYFLAME_VISION_REQUIRE_ISA names (CI sets it to the tier the CPU reports), or "scalar"."""
    tier = os.environ.get("PYFLAME_VISION_REQUIRE_ISA", "").strip().lower() or "scalar"
    if tier not in ISA_TIERS:
        pytest.fail(f"PYFLAME_VISION_REQUIRE_ISA: expected one of {ISA_TIERS}, got {tier!r}")
    return tier


def skip_missing_tier(tier: str, detected: str) -> None:
    """Skips a test of a tier this CPU lacks, or fails it when PYFLAME_VISION_REQUIRE_ISA requires the tier."""
    if ISA_TIERS.index(tier) <= ISA_TIERS.index(required_isa()):
        pytest.fail(f"PYFLAME_VISION_REQUIRE_ISA={required_isa()} but this CPU lacks {tier} "
                    f"(detected_isa() == {detected!r})")
    pytest.skip(f"this CPU lacks {tier} (detected_isa() == {detected!r}): {tier} kernels are not tested here "
                f"(PYFLAME_VISION_REQUIRE_ISA={tier} makes this a failure)")


@pytest.fixture(params=ISA_TIERS)
def isa_tier(request):
    """Runs the test with set_max_isa(tier) for every tier; tiers this CPU lacks are skipped by name.
    The previous cap is restored afterwards."""
    import pyflame_vision

    tier = request.param
    detected = pyflame_vision.detected_isa()
    if ISA_TIERS.index(tier) > ISA_TIERS.index(detected):
        skip_missing_tier(tier, detected)
    previous = pyflame_vision.active_isa()
    pyflame_vision.set_max_isa(tier)
    try:
        assert pyflame_vision.active_isa() == tier
        yield tier
    finally:
        pyflame_vision.set_max_isa(previous)


_NO_TORCH_SITECUSTOMIZE = """
import sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "safetensors"):
            raise ImportError(f"{name} is made unimportable for this test")
        return None


sys.meta_path.insert(0, _NoTorch())
"""


def env_without_torch(tmp_path) -> dict:
    """An environment for a child Python in which `import torch` (and torchvision) fails: a
    sitecustomize on PYTHONPATH installs an import blocker. PYFLAME_VISION_REQUIRE_TORCH is dropped.
    The `safetensors` package (a test dependency only) is blocked too: the library reads and writes
    .safetensors itself."""
    env = dict(os.environ)
    env.pop("PYFLAME_VISION_REQUIRE_TORCH", None)
    site = tmp_path / "no-torch-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_NO_TORCH_SITECUSTOMIZE)
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env
