"""Weights held once (cpp/graph/weight_store.h): compiling drops each convolution and linear weight whose
packed, BatchNorm-folded copy rebuilds it bit for bit; state_dict(), packing for another implementation or
tier, and load_state_dict see exactly the values that were loaded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import ISA_TIERS
from pyflame_vision import WeightsError, load_weights, save_weights

# Grouped (ResNeXt), Winograd-sized 3x3 (ResNet-18 at 64x64 and more), depthwise + squeeze-excitation
# (EfficientNet): every kind of packing.
MODELS = ["resnet18", "resnext50_32x4d", "efficientnet_b0"]
SHAPES = [(1, 3, 64, 64), (8, 3, 32, 32), (2, 3, 96, 80)]
# Bit patterns a conversion or an arithmetic round trip would alter: -0, subnormals, a NaN with a payload,
# infinities, the float just above 1, the largest float.
AWKWARD = np.array([0x80000000, 0x00000001, 0x807FFFFF, 0x7FC01234, 0xFF800000, 0x3F800001, 0x7F7FFFFF],
                   dtype=np.uint32).view(np.float32)


def tiers() -> list[str]:
    detected = pyflame_vision.detected_isa()
    return [t for t in ISA_TIERS if ISA_TIERS.index(t) <= ISA_TIERS.index(detected)]


@pytest.fixture
def restore_isa():
    isa = pyflame_vision.active_isa()
    yield
    pyflame_vision.set_max_isa(isa)


def randomised_state(name: str, seed: int, awkward: bool = False) -> dict:
    """init_weights, then every BatchNorm randomised (scales of both signs, far from 1, a few exactly 0), so that
    folding it into the convolutions changes their weights; `awkward` writes AWKWARD into some convolutions."""
    m = getattr(models, name)(num_classes=10)
    m.init_weights(seed)
    sd = m.state_dict()
    rng = np.random.default_rng(seed)
    zeroed = False
    for k, v in sd.items():
        if v.ndim != 1 or v.dtype != np.float32:
            continue
        if k.endswith("running_var"):
            sd[k] = rng.uniform(0.05, 3.0, v.shape).astype(np.float32)
        elif k.endswith("running_mean") or (k.endswith("bias") and "bn" in k):
            sd[k] = rng.standard_normal(v.shape).astype(np.float32) * 0.1
        elif k.endswith("weight") and ("bn" in k or ".1.weight" in k or "downsample.1" in k):
            g = rng.uniform(-2.0, 2.0, v.shape).astype(np.float32)
            if not zeroed:  # a zero scale cannot be divided back out: that convolution stays resident
                g[::7], zeroed = 0.0, True
            sd[k] = g
    if awkward:
        convs = [k for k, v in sd.items() if v.ndim == 4 and v.size >= 64]
        for k in convs[:: max(1, len(convs) // 6)]:
            flat = sd[k].reshape(-1).copy()
            flat[5: 5 + 7 * len(AWKWARD): 7] = AWKWARD
            sd[k] = flat.reshape(sd[k].shape)
    return sd


def loaded(name: str, sd: dict):
    m = getattr(models, name)(num_classes=10)
    m.load_state_dict(sd)
    return m


def assert_bit_identical(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), f"{k} changed"


def inputs(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_is_bit_identical_after_compiling_at_every_shape_and_tier(name, restore_isa):
    sd = randomised_state(name, 1, awkward=True)
    m = loaded(name, sd)
    total = m.resident_weight_bytes()
    assert total == sum(v.nbytes for v in sd.values())
    assert m.weight_correction_bytes() == 0
    for tier in tiers():
        pyflame_vision.set_max_isa(tier)
        for shape in SHAPES:
            m(inputs(shape))
            assert_bit_identical(m.state_dict(), sd)
    # Winograd layers, the convolution before a zero BatchNorm scale and those holding a value the round trip
    # does not keep (the largest float overflows once scaled) stay resident; the others are dropped, at the
    # cost of at most 2 bits per dropped element for the rounding corrections.
    resident = m.resident_weight_bytes()
    assert resident < total
    assert 0 < m.weight_correction_bytes() <= (total - resident) // 16 + 64


@pytest.mark.parametrize("name", MODELS)
def test_a_model_compiled_from_rebuilt_weights_equals_a_fresh_one(name, restore_isa):
    """Shapes and tiers compiled after the weights were dropped pack from rebuilt values: their outputs equal
    those of a model that compiles that shape and tier first from the loaded arrays."""
    sd = randomised_state(name, 2)
    m = loaded(name, sd)
    ts = tiers()
    pyflame_vision.set_max_isa(ts[-1])
    m(inputs(SHAPES[0]))
    for tier in reversed(ts):
        pyflame_vision.set_max_isa(tier)
        for shape in SHAPES[1:]:
            x = inputs(shape, 3)
            fresh = loaded(name, sd)
            assert np.array_equal(m(x), fresh(x)), (tier, shape)


def test_most_weights_leave_the_resident_set():
    """With torchvision's BatchNorm (non-zero scales), ResNet-50's resident weights shrink to the BatchNorm
    tensors and biases; the corrections cost at most 2 bits per dropped weight."""
    m = models.resnet50(num_classes=10)
    m.init_weights(5)
    sd = m.state_dict()
    total = m.resident_weight_bytes()
    m(inputs((1, 3, 16, 16)))  # 4x4 outputs at most in layer1-4: no Winograd layer
    small = sum(v.nbytes for v in sd.values() if v.ndim <= 1)
    assert m.resident_weight_bytes() == small
    assert m.weight_correction_bytes() <= (total - small) // 16 + 64
    assert_bit_identical(m.state_dict(), sd)


def test_load_state_dict_after_compiling_is_atomic_and_partial_loads_keep_the_rest():
    name = "resnet18"
    sd = randomised_state(name, 3)
    m = loaded(name, sd)
    x = inputs((2, 3, 64, 64))
    out = m(x)
    before = m.resident_weight_bytes()
    bad = {k: v + 1 if v.dtype == np.float32 else v for k, v in randomised_state(name, 4).items()}
    bad["fc.bias"] = np.zeros(9, np.float32)  # the last key is mis-shaped
    for strict in (True, False):
        with pytest.raises(WeightsError, match="size mismatch for fc.bias"):
            m.load_state_dict(bad, strict=strict)
        assert_bit_identical(m.state_dict(), sd)
        assert np.array_equal(m(x), out)
    assert m.resident_weight_bytes() == before
    # strict=False with a subset: the loaded keys change, the others keep their (rebuilt) values.
    part = {k: bad[k] for k in ("layer1.0.conv1.weight", "fc.weight")}
    m.load_state_dict(part, strict=False)
    expected = dict(sd, **part)
    assert_bit_identical(m.state_dict(), expected)
    assert np.array_equal(m(x), loaded(name, expected)(x))
    assert_bit_identical(m.state_dict(), expected)


def test_weight_files_round_trip_after_compiling(tmp_path):
    name = "efficientnet_b0"
    sd = randomised_state(name, 6, awkward=True)
    m = loaded(name, sd)
    m(inputs((1, 3, 64, 64)))
    path = str(tmp_path / "w.safetensors")
    save_weights(m, path)
    other = getattr(models, name)(num_classes=10)
    load_weights(other, path)
    assert_bit_identical(other.state_dict(), sd)
    # A failed load_weights after compiling leaves the weights as they were.
    bad = {k: v for k, v in sd.items() if k != "features.0.0.weight"}
    np.savez(str(tmp_path / "bad.npz"), **bad)
    with pytest.raises(WeightsError, match="features.0.0.weight"):
        load_weights(m, str(tmp_path / "bad.npz"))
    assert_bit_identical(m.state_dict(), sd)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_removing_the_head_after_compiling_keeps_the_other_weights(name):
    sd = randomised_state(name, 7)
    m = loaded(name, sd)
    x = inputs((1, 3, 64, 64))
    m(x)
    feats = m.forward_features(x)
    feats = feats[-1] if isinstance(feats, list) else feats  # ResNets return every stage's features
    (m.remove_fc if name.startswith("resnet") else m.remove_classifier)()
    head = ("fc.",) if name.startswith("resnet") else ("classifier.",)
    assert_bit_identical(m.state_dict(), {k: v for k, v in sd.items() if not k.startswith(head)})
    assert np.array_equal(m(x), feats)


def test_state_dict_while_other_threads_compile():
    """state_dict() from several threads while others compile new shapes (and drop weights meanwhile)."""
    name = "resnext50_32x4d"
    sd = randomised_state(name, 8)
    m = loaded(name, sd)
    errors: list[str] = []

    def reader():
        for _ in range(3):
            got = m.state_dict()
            for k in sd:
                if got[k].tobytes() != sd[k].tobytes():
                    errors.append(k)

    def compiler(shape):
        try:
            m(inputs(shape))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=compiler, args=(s,)) for s in SHAPES] + [
        threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_bit_identical(m.state_dict(), sd)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_pickling_after_compiling_carries_the_loaded_values(name):
    """A pickle (inline .safetensors bytes: the weights came from load_state_dict) is written from the rebuilt
    values: the copy holds the same bits and computes the same outputs."""
    import pickle

    sd = randomised_state(name, 9, awkward=True)
    m = loaded(name, sd)
    x = inputs((2, 3, 64, 64))
    out = m(x)
    assert m.resident_weight_bytes() < sum(v.nbytes for v in sd.values())
    copy = pickle.loads(pickle.dumps(m))
    assert_bit_identical(copy.state_dict(), sd)
    np.testing.assert_array_equal(copy(x), out)
