"""Weights: init_weights (torchvision's schemes, seeded), state_dict, load_state_dict with torch's
semantics, and weight files (.safetensors / .npz, never pickle)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import MODEL_NAMES, numpy_state_dict, require_torchvision, tv_meta_model, tv_model_random_bn
from pyflame_vision import WeightsError, load_weights, save_weights


def make_input(shape=(1, 3, 32, 32), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def initialised(name: str, seed: int = 0, **kwargs):
    m = getattr(models, name)(**kwargs)
    m.init_weights(seed=seed)
    return m


def assert_state_dicts_identical(a, b) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), k


def is_conv(key: str, value) -> bool:
    return key.endswith(".weight") and value.ndim == 4


# ---------------------------------------------------------------------------------------------
# init_weights


@pytest.fixture(scope="module")
def resnet50_sd():
    return initialised("resnet50", num_classes=10).state_dict()


@pytest.fixture(scope="module")
def effnet_sd():
    return initialised("efficientnet_b0", num_classes=10).state_dict()


def test_resnet_conv_init_is_kaiming_normal_fan_out(resnet50_sd):
    w = resnet50_sd["conv1.weight"]
    expected = np.sqrt(2.0 / (64 * 7 * 7))
    assert abs(w.std() / expected - 1) < 0.05, (w.std(), expected)
    assert abs(w.mean()) < 0.05 * expected
    # Normal, not uniform: ~68% within one std (a uniform gives ~58%), and a tail beyond 2.5 std.
    within = np.mean(np.abs(w) < expected)
    assert 0.66 < within < 0.70, within
    assert np.abs(w).max() > 2.5 * expected
    checked = 0
    for key, v in resnet50_sd.items():
        if is_conv(key, v) and v.size >= 4096:
            expected = np.sqrt(2.0 / (v.shape[0] * v.shape[2] * v.shape[3]))
            assert abs(v.std() / expected - 1) < 0.05, (key, v.std(), expected)
            checked += 1
    assert checked == 53


def test_batchnorm_init(resnet50_sd, effnet_sd):
    for sd in (resnet50_sd, effnet_sd):
        bns = [k[: -len(".running_var")] for k in sd if k.endswith(".running_var")]
        assert len(bns) > 40
        for bn in bns:
            assert np.all(sd[bn + ".weight"] == 1), bn
            assert np.all(sd[bn + ".bias"] == 0), bn
            assert np.all(sd[bn + ".running_mean"] == 0), bn
            assert np.all(sd[bn + ".running_var"] == 1), bn
            nbt = sd[bn + ".num_batches_tracked"]
            assert nbt.dtype == np.int64 and nbt.shape == () and nbt == 0, bn


def test_resnet_fc_init_is_uniform_in_fan_in_bound(resnet50_sd):
    bound = 1 / np.sqrt(2048)
    for key in ("fc.weight", "fc.bias"):
        v = resnet50_sd[key]
        assert np.abs(v).max() <= bound, key
    w = resnet50_sd["fc.weight"]
    assert w.shape == (10, 2048)
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.05  # uniform, not normal
    assert np.any(resnet50_sd["fc.bias"] != 0)


def test_efficientnet_init(effnet_sd):
    w, b = effnet_sd["classifier.1.weight"], effnet_sd["classifier.1.bias"]
    bound = 1 / np.sqrt(10)  # U(+-1/sqrt(out_features)), out_features = num_classes
    assert w.shape == (10, 1280)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.05
    assert np.all(b == 0)
    conv_biases = [k for k in effnet_sd if k.endswith(".bias") and ".fc" in k]  # squeeze-excitation convs
    assert len(conv_biases) == 32
    assert all(np.all(effnet_sd[k] == 0) for k in conv_biases)
    stem = effnet_sd["features.0.0.weight"]
    assert abs(stem.std() / np.sqrt(2.0 / (32 * 9)) - 1) < 0.05
    dw = effnet_sd["features.7.0.block.1.0.weight"]  # depthwise 3x3, 1152 channels: fan_out = 1152 * 9
    assert dw.shape == (1152, 1, 3, 3)
    assert abs(dw.std() / np.sqrt(2.0 / (1152 * 9)) - 1) < 0.05


@pytest.mark.parity
@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d", "efficientnet_b0"])
def test_init_statistics_match_torchvision(name):
    torch, torchvision = require_torchvision()
    torch.manual_seed(0)
    theirs = numpy_state_dict(torchvision.models.get_model(name, weights=None))
    ours = initialised(name).state_dict()
    assert list(ours) == list(theirs)
    for key, t in theirs.items():
        o = ours[key]
        if t.size >= 4096:
            assert abs(o.std() / t.std() - 1) < 0.06, (key, o.std(), t.std())
            assert abs(np.abs(o).max() / np.abs(t).max() - 1) < 0.5, key
        elif t.std() == 0:
            assert np.array_equal(o, t), key


@pytest.mark.parametrize("name, zeroed", [("resnet50", "bn3"), ("resnet18", "bn2")])
def test_zero_init_residual(name, zeroed):
    sd = initialised(name, zero_init_residual=True).state_dict()
    plain = initialised(name).state_dict()
    blocks = sorted({k.rsplit(".", 2)[0] for k in sd if k.startswith("layer") and ".bn" in k})
    assert len(blocks) == (16 if name == "resnet50" else 8)
    for block in blocks:
        assert np.all(sd[f"{block}.{zeroed}.weight"] == 0), block
        assert np.all(sd[f"{block}.bn1.weight"] == 1), block
        assert np.all(plain[f"{block}.{zeroed}.weight"] == 1), block
    assert np.all(sd["bn1.weight"] == 1)
    assert np.all(sd["layer2.0.downsample.1.weight"] == 1)


def test_init_is_deterministic_per_seed():
    a = initialised("resnet18", seed=0).state_dict()
    b = initialised("resnet18", seed=0).state_dict()
    assert_state_dicts_identical(a, b)
    m = initialised("resnet18", seed=1)
    c = m.state_dict()
    for key in ("conv1.weight", "layer4.1.conv2.weight", "fc.weight", "fc.bias"):
        assert not np.array_equal(a[key], c[key]), key
    m.init_weights(seed=0)  # re-initialising replaces the weights
    assert_state_dicts_identical(m.state_dict(), a)
    # Different layers do not share one random stream position.
    assert not np.array_equal(a["layer1.0.conv1.weight"].ravel()[:100], a["layer1.1.conv1.weight"].ravel()[:100])


def test_large_seeds_are_not_truncated():
    a = initialised("resnet18", seed=0).state_dict()["conv1.weight"]
    for seed in (2**32, 2**32 + 1):
        m = models.resnet18()
        try:
            m.init_weights(seed=seed)
        except (ValueError, OverflowError):
            continue  # refusing seeds beyond 32 bits is acceptable; silently wrapping is not
        assert not np.array_equal(m.state_dict()["conv1.weight"], a), seed
    assert not np.array_equal(initialised("resnet18", seed=2**31).state_dict()["conv1.weight"], a)


def test_init_weights_accepts_numpy_integers():
    """A seed is any integer (operator.index), as num_classes and set_num_threads accept."""
    expected = initialised("resnet18", seed=3).state_dict()
    for seed in (np.int64(3), np.uint32(3), np.int8(3)):
        m = models.resnet18()
        m.init_weights(seed=seed)
        assert_state_dicts_identical(m.state_dict(), expected)
    with pytest.raises(ValueError):
        models.resnet18().init_weights(seed=np.int64(-1))


@pytest.mark.parametrize("seed, exc", [(-1, ValueError), (True, TypeError), (False, TypeError), (1.0, TypeError),
                                       ("0", TypeError), (None, TypeError)])
def test_init_weights_rejects_bad_seeds(seed, exc):
    m = models.resnet18()
    with pytest.raises(exc):
        m.init_weights(seed=seed)
    assert m.has_weights is False


# ---------------------------------------------------------------------------------------------
# state_dict


@pytest.mark.parity
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_matches_torchvision_keys_order_dtypes(name):
    theirs = tv_meta_model(name).state_dict()
    sd = initialised(name).state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == list(theirs)
    for key, t in theirs.items():
        v = sd[key]
        assert isinstance(v, np.ndarray), key
        assert v.shape == tuple(t.shape), key
        assert str(v.dtype) == str(t.dtype).replace("torch.", ""), key
    nbt = [k for k in sd if k.endswith("num_batches_tracked")]
    assert nbt and all(sd[k].shape == () and sd[k].dtype == np.int64 for k in nbt)


def test_state_dict_returns_copies():
    m = initialised("resnet18")
    x = make_input()
    out = m(x)
    sd = m.state_dict()
    sd["conv1.weight"][...] = 0
    sd["fc.bias"] += 1
    sd["bn1.num_batches_tracked"][...] = 7
    fresh = m.state_dict()
    assert np.any(fresh["conv1.weight"] != 0)
    assert not np.array_equal(fresh["fc.bias"], sd["fc.bias"])
    assert fresh["bn1.num_batches_tracked"] == 0
    assert np.array_equal(m(x), out)


def test_state_dict_without_weights_raises():
    m = models.resnet18()
    with pytest.raises(WeightsError) as info:
        m.state_dict()
    assert isinstance(info.value, RuntimeError)
    assert issubclass(WeightsError, RuntimeError)


# ---------------------------------------------------------------------------------------------
# load_state_dict


@pytest.fixture(scope="module")
def source():
    """A resnet18 with seed-1 weights, its state dict and its output on make_input()."""
    m = initialised("resnet18", seed=1)
    return m, m.state_dict(), m(make_input())


def test_load_state_dict_round_trip(source):
    _, sd, out = source
    m = models.resnet18()
    result = m.load_state_dict(sd)
    assert isinstance(result, pyflame_vision.IncompatibleKeys) and isinstance(result, tuple)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert result == pyflame_vision.IncompatibleKeys([], [])
    assert m.has_weights
    assert_state_dicts_identical(m.state_dict(), sd)
    assert np.array_equal(m(make_input()), out)
    # A plain dict in another order loads the same (matching is by key).
    m2 = initialised("resnet18", seed=5)
    m2.load_state_dict(dict(reversed(list(sd.items()))))
    assert_state_dicts_identical(m2.state_dict(), sd)


def test_load_copies_the_values(source):
    _, sd, out = source
    mine = {k: v.copy() for k, v in sd.items()}
    m = models.resnet18()
    m.load_state_dict(mine)
    for v in mine.values():
        v[...] = 0
    assert np.array_equal(m(make_input()), out)


def test_load_accepts_any_layout(source):
    _, sd, out = source
    odd = {}
    for k, v in sd.items():
        if v.ndim == 4:
            odd[k] = np.asfortranarray(v)
        elif v.ndim == 2:
            odd[k] = np.ascontiguousarray(v.T).T  # transposed view
        elif v.ndim == 1:
            big = np.zeros(2 * v.size, dtype=v.dtype)
            big[::2] = v
            odd[k] = big[::2]  # strided view
        else:
            odd[k] = v
    m = models.resnet18()
    m.load_state_dict(odd)
    assert_state_dicts_identical(m.state_dict(), sd)
    assert np.array_equal(m(make_input()), out)


def test_load_converts_float64_like_torch_copy(source):
    _, sd, _ = source
    rng = np.random.default_rng(0)
    sd64 = {k: (v.astype(np.float64) + rng.uniform(-1e-9, 1e-9, v.shape)) if v.dtype == np.float32 else v
            for k, v in sd.items()}
    m = models.resnet18()
    m.load_state_dict(sd64)
    loaded = m.state_dict()
    for k, v in sd64.items():
        assert loaded[k].dtype == sd[k].dtype, k
        assert np.array_equal(loaded[k], v.astype(sd[k].dtype)), k


@pytest.mark.parity
def test_load_accepts_torch_tensors():
    _, _ = require_torchvision()
    tv = tv_model_random_bn("resnet18", seed=2)
    m = models.resnet18()
    result = m.load_state_dict(tv.state_dict())
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert_state_dicts_identical(m.state_dict(), numpy_state_dict(tv))


def broken(sd):
    bad = dict(sd)
    del bad["layer1.0.conv1.weight"]
    del bad["fc.bias"]
    bad["layer9.weight"] = np.zeros(3, np.float32)
    bad["extra.thing"] = np.zeros((), np.float32)
    bad["conv1.weight"] = np.zeros((64, 3, 5, 5), np.float32)
    bad["bn1.running_mean"] = np.zeros(65, np.float32)
    return bad


def test_failed_load_lists_every_problem_and_changes_nothing(source):
    _, sd, out = source
    m = initialised("resnet18", seed=1)
    before = m.state_dict()
    with pytest.raises(WeightsError) as info:
        m.load_state_dict(broken(sd))
    msg = str(info.value)
    assert "Missing key(s) in state_dict" in msg and "Unexpected key(s)" in msg, msg
    for key in ("layer1.0.conv1.weight", "fc.bias", "layer9.weight", "extra.thing"):
        assert key in msg, (key, msg)
    assert "size mismatch for conv1.weight" in msg and "size mismatch for bn1.running_mean" in msg, msg
    assert_state_dicts_identical(m.state_dict(), before)
    assert np.array_equal(m(make_input()), out)


def test_failed_load_with_only_bad_values_changes_nothing(source):
    """The last key is mis-shaped: a loader that copies as it goes would have changed all the others."""
    _, sd, out = source
    m = initialised("resnet18", seed=1)
    other = {k: v + 1 if v.dtype == np.float32 else v for k, v in initialised("resnet18", seed=3).state_dict().items()}
    other["fc.bias"] = np.zeros(999, np.float32)
    for strict in (True, False):
        with pytest.raises(WeightsError, match="size mismatch for fc.bias"):
            m.load_state_dict(other, strict=strict)
        assert_state_dicts_identical(m.state_dict(), sd)
        assert np.array_equal(m(make_input()), out)


def test_failed_load_into_a_model_without_weights_leaves_it_without(source):
    _, sd, _ = source
    m = models.resnet18()
    with pytest.raises(WeightsError):
        m.load_state_dict(broken(sd))
    assert m.has_weights is False


def test_strict_false_reports_missing_and_unexpected(source):
    _, sd, _ = source
    m = initialised("resnet18", seed=7)
    before = m.state_dict()
    partial = {k: v for k, v in sd.items() if k not in ("fc.weight", "fc.bias", "layer2.0.bn1.running_var")}
    partial["head.weight"] = np.zeros((3, 3), np.float32)
    result = m.load_state_dict(partial, strict=False)
    assert isinstance(result, pyflame_vision.IncompatibleKeys)
    assert list(result.missing_keys) == ["layer2.0.bn1.running_var", "fc.weight", "fc.bias"]
    assert list(result.unexpected_keys) == ["head.weight"]
    after = m.state_dict()
    for k in after:
        expected = before[k] if k in ("fc.weight", "fc.bias", "layer2.0.bn1.running_var") else sd[k]
        assert np.array_equal(after[k], expected), k
    with pytest.raises(WeightsError, match="Missing key"):
        m.load_state_dict(partial)  # strict=True is the default


def test_missing_num_batches_tracked_is_filled_silently(source):
    _, sd, out = source
    m = models.resnet18()
    result = m.load_state_dict({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    loaded = m.state_dict()
    assert list(loaded) == list(sd)
    assert loaded["bn1.num_batches_tracked"].dtype == np.int64 and loaded["bn1.num_batches_tracked"].shape == ()
    assert np.array_equal(m(make_input()), out)


# ---------------------------------------------------------------------------------------------
# Weight files


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_save_load_round_trip(tmp_path, name, ext):
    m = initialised(name, seed=4, num_classes=13)
    x = make_input((2, 3, 40, 40))
    path = tmp_path / f"weights{ext}"
    save_weights(m, path)
    assert path.is_file()
    other = getattr(models, name)(num_classes=13)
    result = load_weights(other, path)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert_state_dicts_identical(other.state_dict(), m.state_dict())
    assert np.array_equal(other(x), m(x))
    load_weights(other, str(path), strict=False)  # str paths too


def test_load_weights_strict_false_and_mismatch(tmp_path):
    m = initialised("resnet18", seed=4)
    sd = m.state_dict()
    path = tmp_path / "partial.npz"
    np.savez(path, **{k: v for k, v in sd.items() if not k.startswith("fc.")})
    other = initialised("resnet18", seed=6)
    before = other.state_dict()
    with pytest.raises(WeightsError, match="fc.weight"):
        load_weights(other, path)
    assert_state_dicts_identical(other.state_dict(), before)
    result = load_weights(other, path, strict=False)
    assert list(result.missing_keys) == ["fc.weight", "fc.bias"] and list(result.unexpected_keys) == []
    assert np.array_equal(other.state_dict()["conv1.weight"], sd["conv1.weight"])
    ten = initialised("resnet18", num_classes=10)
    save_weights(ten, tmp_path / "ten.safetensors")
    with pytest.raises(WeightsError, match="size mismatch for fc.weight"):
        load_weights(other, tmp_path / "ten.safetensors", strict=False)


@pytest.mark.parametrize("ext", [".pt", ".pth"])
def test_pickle_files_are_refused(tmp_path, ext):
    m = initialised("resnet18")
    path = tmp_path / f"weights{ext}"
    with pytest.raises(ValueError, match="pickle"):
        save_weights(m, path)
    assert not path.exists()
    path.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ValueError, match="pickle"):
        load_weights(m, path)


@pytest.mark.parametrize("filename", ["weights.h5", "weights.txt", "weights", "weights.safetensors.tmp"])
def test_unknown_extensions_are_refused(tmp_path, filename):
    m = initialised("resnet18")
    path = tmp_path / filename
    with pytest.raises(ValueError):
        save_weights(m, path)
    assert not path.exists()
    path.write_bytes(b"x")
    with pytest.raises(ValueError):
        load_weights(m, path)


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_missing_file(tmp_path, ext):
    m = initialised("resnet18")
    with pytest.raises(FileNotFoundError):
        load_weights(m, tmp_path / f"absent{ext}")


def test_save_without_weights_raises(tmp_path):
    with pytest.raises(WeightsError):
        save_weights(models.resnet18(), tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()


@pytest.mark.parity
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_safetensors_written_by_torch_loads(tmp_path, name):
    _, _ = require_torchvision()
    from safetensors.torch import save_file

    tv = tv_model_random_bn(name, seed=8)
    path = tmp_path / f"{name}.safetensors"
    save_file(tv.state_dict(), str(path))
    m = getattr(models, name)()
    result = load_weights(m, path)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert_state_dicts_identical(m.state_dict(), numpy_state_dict(tv))
