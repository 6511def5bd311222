"""Results never depend on which input shapes a model compiled before.

Each input shape runs implementation selection for itself (the ordered list in
cpp/kernels/conv_impls.cpp); packed weights are shared between shapes only
where the same implementation is chosen. So a model that compiled a small
size first gives, at a large size, the same plan and the same output bits as a
fresh model that compiled the large size only. The sizes straddle Winograd's
threshold (outputs of at least 8x8): ResNet's layer3 runs 4x4 (implicit GEMM)
at 64x64 and 8x8 or 14x14 (Winograd) at 128x128 and 224x224; a plain ResNet
that selects the same implementations at both sizes fails the test as
proving nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import MODEL_NAMES


def _plan_algorithms(plan: str) -> dict:
    return dict(line.split(": ", 1) for line in plan.strip().splitlines())


def _check(name: str, small: int, large: int, *, must_differ: bool) -> None:
    used = models.get_model(name)
    used.init_weights(0)
    x_small = np.random.default_rng(1).standard_normal((1, 3, small, small)).astype(np.float32)
    x_large = np.random.default_rng(2).standard_normal((1, 3, large, large)).astype(np.float32)
    used(x_small)
    small_plan = used.execution_plan([1, 3, small, small])
    y_used = used(x_large)
    fresh = models.get_model(name)
    fresh.init_weights(0)
    y_fresh = fresh(x_large)
    assert used.execution_plan([1, 3, large, large]) == fresh.execution_plan([1, 3, large, large])
    assert np.array_equal(y_used.view(np.uint32), y_fresh.view(np.uint32)), f"{name}: {small} then {large}"
    if must_differ:
        a, b = _plan_algorithms(small_plan), _plan_algorithms(fresh.execution_plan([1, 3, large, large]))
        changed = [k for k in a if k in b and a[k].split()[0] != b[k].split()[0]]
        assert changed, f"{name}: no layer changes implementation between {small} and {large}; the test proves nothing"


def test_resnet50_64_then_224_equals_224_alone():
    _check("resnet50", 64, 224, must_differ=True)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_at_two_sizes_across_thresholds(name):
    # ResNeXt's 3x3 convolutions are grouped and EfficientNet's depthwise: no
    # implementation of theirs depends on the size, which the check confirms.
    _check(name, 64, 128, must_differ=name.startswith(("resnet", "wide_resnet")))




def test_resnet18_at_every_tier(isa_tier):
    assert pyflame_vision.active_isa() == isa_tier
    _check("resnet18", 64, 128, must_differ=True)
