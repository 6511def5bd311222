"""Numerical parity of the CPU engine with torchvision: logits and forward_features of all 14
models, with torchvision's weights (BatchNorm randomised so nothing vanishes) loaded through
load_state_dict, at every ISA tier this CPU has, over several batch and input sizes, plus the
custom configurations (dilation, num_classes, zero_init_residual)."""

from __future__ import annotations

import numpy as np
import pytest

import pyflame_vision.models as models
from conftest import MODEL_NAMES, numpy_state_dict, require_torchvision, tv_model_random_bn

pytestmark = pytest.mark.parity

RTOL = 1e-4  # max abs error <= RTOL * max abs reference
MIN_REF = 1e-3  # a reference this small would make the comparison meaningless

SMALL = {"resnet18", "resnet50", "efficientnet_b0"}
BIG = {"resnet101", "resnet152", "resnext101_32x8d", "wide_resnet101_2", "efficientnet_b3", "efficientnet_b4"}
NATIVE = 224  # resnet18, resnet50 and efficientnet_b0 all use 224x224 crops
TINY = [(1, 1, 1), (3, 7, 5), (1, 2, 9)]  # padding everywhere: every window overlaps a border


def cases_for(name: str, tier: str) -> list[tuple[int, int, int]]:
    """(batch, height, width) cases: the scalar tier and the big models on small inputs only."""
    if tier == "scalar" and name in BIG:
        return [(1, 64, 64)]
    cases = [(1, 64, 64), (2, 33, 47)]
    if name in SMALL:
        cases += TINY
    if tier == "scalar" or name in BIG:
        return cases
    cases += [(2, 97, 97), (1, 71, 97)]
    if name in SMALL:
        cases.append((1, NATIVE, NATIVE))
    return cases


def make_input(n: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(1000 * n + 7 * h + w)
    return rng.standard_normal((n, 3, h, w)).astype(np.float32)


def torch_reference(tv, x: np.ndarray):
    """(logits, features) from torchvision: logits are tv(x); features are ResNet's stem (after
    maxpool) and layer1..layer4, or EfficientNet's tv.features(x)."""
    torch, _ = require_torchvision()
    with torch.no_grad():
        t = torch.from_numpy(x)
        logits = tv(t).numpy()
        if hasattr(tv, "features"):
            features = tv.features(t).numpy()
        else:
            y = tv.maxpool(tv.relu(tv.bn1(tv.conv1(t))))
            features = [y.numpy()]
            for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
                y = layer(y)
                features.append(y.numpy())
    return logits, features


def assert_close(ours, ref, what: str) -> None:
    assert isinstance(ours, np.ndarray), (what, type(ours))
    assert ours.dtype == np.float32, (what, ours.dtype)
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    ref_max = float(np.abs(ref).max())
    assert ref_max > MIN_REF, f"{what}: reference max abs {ref_max:.3g} is too small to prove anything"
    assert np.isfinite(ours).all(), f"{what}: non-finite values in our output"
    err = float(np.abs(ours.astype(np.float64) - ref).max())
    assert err <= RTOL * ref_max, f"{what}: max abs err {err:.3g} > {RTOL} * max abs ref {ref_max:.3g}"


def check_model(m, tv, ref_cache: dict, cases, label: str) -> None:
    for n, h, w in cases:
        x = make_input(n, h, w)
        if (n, h, w) not in ref_cache:
            ref_cache[(n, h, w)] = torch_reference(tv, x)
        ref_logits, ref_features = ref_cache[(n, h, w)]
        what = f"{label} x[{n},3,{h},{w}]"
        assert_close(m(x), ref_logits, f"{what} logits")
        assert_close(m.forward(x), ref_logits, f"{what} forward()")
        feats = m.forward_features(x)
        if isinstance(ref_features, list):
            assert isinstance(feats, list) and len(feats) == 5, (what, type(feats))
            for i, (ours, ref) in enumerate(zip(feats, ref_features)):
                assert_close(ours, ref, f"{what} forward_features()[{i}]")
        else:
            assert_close(feats, ref_features, f"{what} forward_features()")


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    torch, _ = require_torchvision()
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module", params=MODEL_NAMES)
def pair(request):
    """(name, torchvision model, our model with its weights, reference cache), one model at a time."""
    name = request.param
    tv = tv_model_random_bn(name)
    m = getattr(models, name)()
    result = m.load_state_dict(numpy_state_dict(tv))
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    return name, tv, m, {}


def test_logits_and_features_match_torchvision(pair, isa_tier):
    name, tv, m, ref_cache = pair
    check_model(m, tv, ref_cache, cases_for(name, isa_tier), f"{name} @ {isa_tier}")


CONFIGS = [
    ("resnet50", {"replace_stride_with_dilation": [False, True, True]}),
    ("resnet101", {"replace_stride_with_dilation": [True, False, False]}),
    ("resnet18", {"num_classes": 10}),
    ("efficientnet_b0", {"num_classes": 10}),
    ("resnet50", {"zero_init_residual": True}),
    ("resnet18", {"zero_init_residual": True}),
]


@pytest.fixture(scope="module", params=CONFIGS, ids=[f"{n}-{'-'.join(map(str, k.items()))}" for n, k in CONFIGS])
def config_pair(request):
    name, kwargs = request.param
    torch, _ = require_torchvision()
    tv_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    tv = tv_model_random_bn(name, seed=3, **tv_kwargs)
    if kwargs.get("zero_init_residual"):
        # Keep torchvision's zero-initialised last BN of each block (randomising all others).
        with torch.no_grad():
            for key, value in tv.state_dict().items():
                if key.endswith(("bn3.weight", "bn2.weight")) and key.startswith("layer"):
                    if name == "resnet50" and key.endswith("bn2.weight"):
                        continue
                    value.zero_()
    m = getattr(models, name)(**kwargs)
    m.load_state_dict(numpy_state_dict(tv))
    return name, kwargs, tv, m, {}


def test_configurations_match_torchvision(config_pair, isa_tier):
    name, kwargs, tv, m, ref_cache = config_pair
    if kwargs.get("zero_init_residual"):
        sd = m.state_dict()
        zeroed = [k for k in sd if k.endswith("bn3.weight" if name == "resnet50" else "bn2.weight")
                  and k.startswith("layer")]
        assert zeroed and all(not sd[k].any() for k in zeroed)
    if "num_classes" in kwargs:
        assert m.get_output_shape([2, 3, 64, 64]) == [2, kwargs["num_classes"]]
    cases = [(1, 64, 64), (2, 33, 47)] if isa_tier == "scalar" else [(1, 64, 64), (2, 33, 47), (2, 97, 97)]
    check_model(m, tv, ref_cache, cases, f"{name}{kwargs} @ {isa_tier}")
