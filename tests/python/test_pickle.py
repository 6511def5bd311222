"""Models travel well: pickling gives an identical model (architecture, weights, bit-identical outputs), also in
another process; weights travel as a reference to the enum member or file they came from, else as .safetensors
bytes; the weights record (models.weights_source) and the weights version that keeps it honest."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import MODEL_NAMES, env_without_torch, numpy_state_dict, require_torchvision, tv_model_random_bn
from pyflame_vision.inference import resolve_weights
from pyflame_vision.models import EnumSource, FileSource, weights_source
from pyflame_vision.models._pickle import weights_state


def _input(seed: int = 0, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3, size, size), dtype=np.float32)


def _same_model(a, b) -> None:
    assert type(a) is type(b)
    assert a._architecture() == b._architecture()
    assert a.name == b.name and str(a) == str(b)
    assert {k: (p.shape, str(p.dtype)) for k, p in a.named_parameters().items()} == \
        {k: (p.shape, str(p.dtype)) for k, p in b.named_parameters().items()}
    assert a.has_weights == b.has_weights
    if a.has_weights:
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k


def _same_outputs(a, b, size: int = 64) -> None:
    x = _input(size=size)
    out_a, out_b = a(x), b(x)
    assert out_a.dtype == np.float32 and np.array_equal(out_a, out_b)  # bit for bit
    fa, fb = a.forward_features(x), b.forward_features(x)
    for u, v in zip(fa if isinstance(fa, list) else [fa], fb if isinstance(fb, list) else [fb]):
        assert np.array_equal(u, v)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_pickles_without_weights(name):
    model = models.get_model(name)
    assert model.weights_version == 0 and weights_state(model) is None
    blob = pickle.dumps(model)
    assert len(blob) < 4096  # architecture only
    back = pickle.loads(blob)
    _same_model(model, back)
    assert not back.has_weights and back.weights_version == 0
    assert back.get_output_shape([1, 3, 224, 224]) == model.get_output_shape([1, 3, 224, 224])


@pytest.mark.parametrize("build", [
    lambda: models.resnet18(num_classes=10),
    lambda: models.ResNet(models.ResNetBlockType.BOTTLENECK, [1, 1, 1, 1], num_classes=7, zero_init_residual=True,
                          groups=4, width_per_group=8, replace_stride_with_dilation=[False, True, True]),
    lambda: models.resnext50_32x4d(num_classes=0),
    lambda: models.efficientnet_b0(num_classes=5, dropout=0.3, stochastic_depth_prob=0.1),
    lambda: models.EfficientNet(width_mult=0.5, depth_mult=0.5, dropout=0.1, num_classes=3, resolution=96),
], ids=["resnet18", "custom-resnet", "headless-resnext", "efficientnet_b0-kwargs", "custom-efficientnet"])
def test_pickle_with_weights_is_identical(build):
    model = build()
    model.init_weights(seed=7)
    state = weights_state(model)
    assert state["kind"] == "safetensors"  # random weights: no file or enum to refer to
    back = pickle.loads(pickle.dumps(model))
    _same_model(model, back)
    _same_outputs(model, back)
    clone = copy.deepcopy(model)
    _same_outputs(model, clone)
    clone.init_weights(seed=8)  # an independent model
    assert not np.array_equal(clone.state_dict()[next(iter(clone.state_dict()))],
                              model.state_dict()[next(iter(model.state_dict()))])
    _same_outputs(model, back)


def test_removed_head_travels():
    model = models.resnet18()
    model.init_weights(seed=1)
    model.remove_fc()
    back = pickle.loads(pickle.dumps(model))
    assert not back.has_fc() and back.num_classes == 0
    _same_model(model, back)
    _same_outputs(model, back)
    eff = models.efficientnet_b0()
    eff.init_weights(seed=2)
    eff.remove_classifier()
    back = pickle.loads(pickle.dumps(eff))
    assert not back.has_classifier()
    _same_outputs(eff, back)


def test_weights_version_moves_with_every_change():
    model = models.resnet18(num_classes=4)
    assert model.weights_version == 0
    model.init_weights(0)
    v1 = model.weights_version
    model.init_weights(0)
    v2 = model.weights_version
    other = models.resnet18(num_classes=4)
    other.load_state_dict(model.state_dict())
    assert len({0, v1, v2, other.weights_version}) == 4
    with pytest.raises(pyflame_vision.WeightsError):
        model.load_state_dict({"conv1.weight": np.zeros((1, 1, 1, 1), np.float32)})
    assert model.weights_version == v2  # a failed load changes nothing
    model.remove_fc()
    assert model.weights_version == v2


def test_partial_weights_refuse_to_pickle():
    model = models.resnet18(num_classes=4)
    model.load_state_dict({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)}, strict=False)
    assert not model.has_weights and model.weights_version != 0
    with pytest.raises(pyflame_vision.WeightsError, match="only part of its weights"):
        pickle.dumps(model)


def test_corrupted_or_foreign_pickles_are_refused():
    model = models.resnet18(num_classes=3)
    model.init_weights(1)
    rebuild, (arch, state) = model.__reduce__()
    state = dict(state, data=state["data"][:-1] + bytes([state["data"][-1] ^ 1]))
    with pytest.raises(pyflame_vision.WeightsError, match="SHA-256"):
        rebuild(arch, state)
    with pytest.raises(pyflame_vision.UnsupportedError, match="architecture format 1, got 99"):
        rebuild(dict(arch, format=99), None)
    with pytest.raises(pyflame_vision.UnsupportedError, match="family"):
        rebuild(dict(arch, family="vit"), None)


# ---------------------------------------------------------------------------------------------- references


@pytest.fixture(scope="module")
def resnet18_files(tmp_path_factory):
    """A torch-made resnet18 (calibrated BatchNorm) saved by torch (.pth) and as .safetensors and .npz."""
    torch, _ = require_torchvision()
    d = tmp_path_factory.mktemp("weights")
    tv = tv_model_random_bn("resnet18", seed=3)
    torch.save(tv.state_dict(), str(d / "resnet18.pth"))
    torch.save({"model": {f"module.{k}": v for k, v in tv.state_dict().items()}}, str(d / "wrapped.pth"))
    model = models.resnet18()
    model.load_state_dict(numpy_state_dict(tv))
    pyflame_vision.save_weights(model, d / "resnet18.safetensors")
    pyflame_vision.save_weights(model, d / "resnet18.npz")
    return d


@pytest.mark.parametrize("file", ["resnet18.pth", "resnet18.safetensors", "resnet18.npz", "wrapped.pth"])
def test_file_weights_pickle_as_a_reference(resnet18_files, file):
    path = resnet18_files / file
    options = {"key": "model", "strip_prefix": "module."} if file == "wrapped.pth" else {}
    model = models.resnet18()
    pyflame_vision.load_weights(model, path, **options)
    src = weights_source(model)
    st = os.stat(path)
    assert src == FileSource(str(path), st.st_size, st.st_mtime_ns, options.get("key"), options.get("strip_prefix"))
    blob = pickle.dumps(model)
    assert len(blob) < 4096  # the reference, not 45 MB of weights
    back = pickle.loads(blob)
    assert weights_source(back) == src
    _same_model(model, back)
    _same_outputs(model, back)
    with models.inline_weights():
        inline = pickle.dumps(model)
    assert len(inline) > 40_000_000
    assert weights_source(model) == src  # only the pickle changed
    _same_outputs(model, pickle.loads(inline))


def test_stale_records_fall_back_to_bytes(resnet18_files, tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes((resnet18_files / "resnet18.safetensors").read_bytes())
    model = models.resnet18()
    pyflame_vision.load_weights(model, path)
    assert isinstance(weights_source(model), FileSource)
    model.load_state_dict(model.state_dict())  # same values, new version: the record no longer holds
    assert weights_source(model) is None and weights_state(model)["kind"] == "safetensors"
    pyflame_vision.load_weights(model, path)
    model.init_weights(0)
    assert weights_source(model) is None
    # A non-strict load that leaves keys of the model unset from the file records nothing.
    partial = tmp_path / "partial.safetensors"
    sd = dict(pyflame_vision.read_weights(path))
    del sd["fc.bias"]
    from safetensors.numpy import save_file

    save_file(sd, str(partial))
    fresh = models.resnet18()
    fresh.init_weights(0)
    assert pyflame_vision.load_weights(fresh, partial, strict=False).missing_keys == ["fc.bias"]
    assert weights_source(fresh) is None
    # A file that changed after pickling is refused when unpickled, never loaded silently.
    pyflame_vision.load_weights(model, path)
    blob = pickle.dumps(model)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    with pytest.raises(pyflame_vision.WeightsError, match="changed since the model was pickled"):
        pickle.loads(blob)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        pickle.loads(blob)


@pytest.fixture
def weights_cache(tmp_path, monkeypatch):
    """A PYFLAME_VISION_HOME whose checkpoint cache holds torch-made checkpoints under torchvision's file names
    (so weights= finds them; nothing is downloaded: the mirror points at a closed port)."""
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("PYFLAME_VISION_HOME", str(home))
    monkeypatch.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", "http://127.0.0.1:1/")
    return home / "checkpoints"


def _cache_checkpoint(cache, name: str, member: str, seed: int = 0):
    torch, _ = require_torchvision()
    url = models.get_model_weights(name)[member].url
    torch.save(tv_model_random_bn(name, seed=seed).state_dict(), str(cache / os.path.basename(url)))


def test_enum_weights_pickle_as_a_reference_and_set_predict_defaults(weights_cache):
    _cache_checkpoint(weights_cache, "efficientnet_b1", "IMAGENET1K_V1")
    model = models.efficientnet_b1(weights="IMAGENET1K_V1")
    v1, v2 = models.EfficientNet_B1_Weights.IMAGENET1K_V1, models.EfficientNet_B1_Weights.IMAGENET1K_V2
    assert models.EfficientNet_B1_Weights.DEFAULT is v2
    assert weights_source(model) == EnumSource("EfficientNet_B1_Weights.IMAGENET1K_V1")
    state = weights_state(model)
    assert state == {"kind": "enum", "weights": "EfficientNet_B1_Weights.IMAGENET1K_V1"}
    back = pickle.loads(pickle.dumps(model))
    assert weights_source(back) == weights_source(model)
    _same_outputs(model, back, size=96)
    # predict() without weights= uses the preset of the weights actually loaded (V1: resize 256 bicubic), not
    # DEFAULT's (V2: resize 255 bilinear).
    assert resolve_weights(model, None) is v1 and resolve_weights(back, None) is v1
    img = (np.random.default_rng(0).random((3, 300, 280)) * 255).astype(np.uint8)
    [got] = pyflame_vision.predict(model, img, topk=5)
    [want] = pyflame_vision.predict(model, img, weights=v1, topk=5)
    assert got == want
    # The methods (model.predict / model.embed) take the same default, on the original and on the unpickled model.
    assert model.predict(img, topk=5) == [want] and back.predict(img, topk=5) == [want]
    want_emb = pyflame_vision.embed(model, img, weights=v1)
    assert np.array_equal(model.embed(img), want_emb) and np.array_equal(back.embed(img), want_emb)
    assert not np.array_equal(want_emb, pyflame_vision.embed(model, img, weights=v2))
    x1 = v1.transforms()(img)
    assert not np.array_equal(x1, v2.transforms()(img))  # the two presets differ on this image
    # New weights: the record no longer holds and the default is DEFAULT again.
    model.init_weights(0)
    assert resolve_weights(model, None) is v2


def test_pickles_load_bit_identical_in_another_process(resnet18_files, weights_cache, tmp_path):
    """A fresh interpreter, where torch (and the safetensors package) cannot even be imported, unpickles each kind
    of model and runs it: the outputs are the original's, bit for bit; the models pickle again there."""
    _cache_checkpoint(weights_cache, "resnet18", "IMAGENET1K_V1", seed=5)
    by_file = models.resnet18()
    pyflame_vision.load_weights(by_file, resnet18_files / "resnet18.pth")
    by_enum = models.resnet18(weights="DEFAULT")
    random = models.efficientnet_b0(num_classes=11)
    random.init_weights(seed=4)
    x = _input(size=96)
    np.save(tmp_path / "x.npy", x)
    for i, m in enumerate([by_file, by_enum, random]):
        (tmp_path / f"m{i}.pkl").write_bytes(pickle.dumps(m))
    code = (
        "import pickle, sys, numpy as np\n"
        "import pyflame_vision\n"
        "x = np.load(sys.argv[1] + '/x.npy')\n"
        "for i in range(3):\n"
        "    m = pickle.loads(open(f'{sys.argv[1]}/m{i}.pkl', 'rb').read())\n"
        "    np.save(f'{sys.argv[1]}/y{i}.npy', m(x))\n"
        "    with pyflame_vision.models.inline_weights():\n"
        "        again = pickle.loads(pickle.dumps(m))\n"
        "    assert np.array_equal(again(x), m(x)), i\n"
        "assert 'torch' not in sys.modules and 'safetensors' not in sys.modules\n"
    )
    env = env_without_torch(tmp_path)
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env, timeout=300)
    for i, m in enumerate([by_file, by_enum, random]):
        assert np.array_equal(np.load(tmp_path / f"y{i}.npy"), m(x)), i
