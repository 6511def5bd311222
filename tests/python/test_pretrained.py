"""torchvision's weights enums and the checkpoint download cache, without torch in the package.

The table (cpp/models/weights_table.cpp) is checked field by field against the
installed torchvision; downloads are served by an HTTP server on 127.0.0.1 that
the tests start (no other network)."""

from __future__ import annotations

import copy
import hashlib
import http.server
import inspect
import os
import pickle
import stat
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import MODEL_NAMES, ROOT, env_without_torch, require_torchvision, tv_model_random_bn
from pyflame_vision import hub
from pyflame_vision.transforms import ImageClassification, InterpolationMode

# --------------------------------------------------------------------------- the table vs torchvision


@pytest.mark.parity
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_enums_equal_torchvision(name):
    _, torchvision = require_torchvision()
    tv_enum = torchvision.models.get_model_weights(name)
    ours = models.get_model_weights(name)
    assert ours.__name__ == tv_enum.__name__
    assert list(ours.__members__) == list(tv_enum.__members__)  # IMAGENET1K_V1, [IMAGENET1K_V2,] DEFAULT
    assert ours.DEFAULT.name == tv_enum.DEFAULT.name
    assert getattr(models, ours.__name__) is ours
    for tv_member in tv_enum:
        member = ours[tv_member.name]
        assert repr(member) == repr(tv_member)
        assert member.url == tv_member.url
        assert member.meta == tv_member.meta  # categories, num_params, min_size, recipe, _metrics, _ops, ...
        assert list(member.meta) == sorted(tv_member.meta, key=list(member.meta).index)
        tv_preset, preset = tv_member.transforms(), member.transforms()
        for attr in ("crop_size", "resize_size", "mean", "std", "antialias"):
            assert getattr(preset, attr) == getattr(tv_preset, attr), attr
        assert preset.interpolation.value == tv_preset.interpolation.value
        assert repr(preset) == repr(tv_preset)


@pytest.mark.parity
def test_legacy_pretrained_members_equal_torchvision():
    _, torchvision = require_torchvision()
    for name in MODEL_NAMES:
        fn = getattr(torchvision.models, name)
        while fn is not None:
            found = inspect.getclosurevars(fn).nonlocals.get("weights")
            if found:
                break
            fn = getattr(fn, "__wrapped__", None)
        (_, tv_default), = found.values()
        assert repr(models._weights.LEGACY_PRETRAINED[name]) == repr(tv_default)


@pytest.mark.parity
def test_generated_table_is_up_to_date():
    require_torchvision()
    script = ROOT / "cpp" / "models" / "gen_weights_table.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_table_facts_without_torch():
    # Spot checks of facts the issue names, independent of torchvision being installed.
    v2 = models.ResNet50_Weights.IMAGENET1K_V2
    assert v2.url == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
    assert v2.transforms() == ImageClassification(crop_size=224, resize_size=232)
    b4 = models.EfficientNet_B4_Weights.IMAGENET1K_V1.transforms()
    assert (b4.crop_size, b4.resize_size, b4.interpolation) == ([380], [384], InterpolationMode.BICUBIC)
    cats = v2.meta["categories"]
    assert len(cats) == 1000 and cats[0] == "tench" and cats[-1] == "toilet tissue"
    assert v2.meta["_metrics"]["ImageNet-1K"]["acc@1"] == 80.858
    assert models.ResNet50_Weights.DEFAULT is v2
    assert models.EfficientNet_B0_Weights.DEFAULT is models.EfficientNet_B0_Weights.IMAGENET1K_V1
    # every model has weights, every member's meta agrees with the model it builds
    for name in MODEL_NAMES:
        enum = models.get_model_weights(name)
        model = getattr(models, name)()
        for member in enum:
            assert member.meta["num_params"] == model.num_parameters()
            assert hub.HASH_REGEX.search(member.url.rsplit("/", 1)[1])


# --------------------------------------------------------------------------- the enum API


def test_get_weight_and_verify():
    assert models.get_weight("ResNet50_Weights.IMAGENET1K_V2") is models.ResNet50_Weights.IMAGENET1K_V2
    assert models.get_weight("ResNet50_Weights.DEFAULT") is models.ResNet50_Weights.IMAGENET1K_V2
    enum = models.ResNet50_Weights
    assert enum.verify(None) is None
    assert enum.verify("IMAGENET1K_V1") is enum.IMAGENET1K_V1
    assert enum.verify("ResNet50_Weights.IMAGENET1K_V1") is enum.IMAGENET1K_V1
    assert enum.verify(enum.DEFAULT) is enum.IMAGENET1K_V2
    with pytest.raises(TypeError, match="expected ResNet50_Weights but received ResNet18_Weights"):
        enum.verify(models.ResNet18_Weights.DEFAULT)
    with pytest.raises(ValueError, match="no member 'IMAGENET1K_V9'"):
        enum.verify("IMAGENET1K_V9")
    with pytest.raises(ValueError, match="Invalid weight name"):
        models.get_weight("IMAGENET1K_V1")
    with pytest.raises(ValueError, match="couldn't be retrieved"):
        models.get_weight("ResNet9_Weights.IMAGENET1K_V1")
    assert models.get_model_weights(models.resnext50_32x4d) is models.ResNeXt50_32X4D_Weights
    assert models.get_model_weights("EfficientNet_B3".lower()) is models.EfficientNet_B3_Weights
    with pytest.raises(ValueError, match="Unknown model 'resnet9'"):
        models.get_model_weights("resnet9")


def test_members_pickle_and_copy():
    member = models.Wide_ResNet101_2_Weights.IMAGENET1K_V2
    assert pickle.loads(pickle.dumps(member)) is member
    assert copy.deepcopy(member) is member
    assert member.value == copy.deepcopy(member.value)


def test_factory_weight_arguments_are_checked():
    with pytest.raises(ValueError, match="'num_classes' expected value 1000 but got 10"):
        models.resnet50(num_classes=10, weights="DEFAULT")
    with pytest.raises(ValueError, match="'num_classes' expected value 1000 but got 10"):
        models.efficientnet_b0(10, True)
    with pytest.raises(TypeError, match="belong to another model"):
        models.resnet50(weights=models.ResNet18_Weights.DEFAULT)
    with pytest.raises(ValueError, match="pretrained=True loads ResNet50_Weights.IMAGENET1K_V1"):
        models.resnet50(pretrained=True, weights="IMAGENET1K_V2")
    with pytest.raises(TypeError, match="pretrained must be a bool"):
        models.resnet50(pretrained="IMAGENET1K_V2")
    with pytest.raises(TypeError, match="Invalid Weight class"):
        models.resnet50(weights=3)


# --------------------------------------------------------------------------- a local HTTP server


class _Server:
    """Serves `files` (path -> bytes) on 127.0.0.1; `truncate` paths close the connection halfway."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.requests.append(self.path)
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.path in outer.truncate:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    home = tmp_path / "pfv-home"
    monkeypatch.setenv("PYFLAME_VISION_HOME", str(home))
    monkeypatch.delenv("PYFLAME_VISION_WEIGHTS_MIRROR", raising=False)
    return home / "checkpoints"


def _named(payload: bytes, stem: str = "blob", ext: str = ".pth") -> str:
    return f"{stem}-{hashlib.sha256(payload).hexdigest()[:8]}{ext}"


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_cache_dir_follows_torch_hub(monkeypatch, tmp_path):
    monkeypatch.delenv("PYFLAME_VISION_HOME", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert hub.get_cache_dir() == str(tmp_path / "th" / "hub" / "checkpoints")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.get_cache_dir() == str(tmp_path / "xdg" / "torch" / "hub" / "checkpoints")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.get_cache_dir() == str(tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints")
    monkeypatch.setenv("PYFLAME_VISION_HOME", str(tmp_path / "own"))
    assert hub.get_cache_dir() == str(tmp_path / "own" / "checkpoints")


def test_download_then_cache_hit(server, cache):
    payload = os.urandom(3 * (1 << 20) + 17)  # several chunks
    name = _named(payload)
    server.files[f"/models/{name}"] = payload
    url = f"{server.url}/models/{name}"
    path = hub.cached_checkpoint(url, check_hash=True, progress=False)
    assert path == str(cache / name)
    assert Path(path).read_bytes() == payload
    assert server.requests == [f"/models/{name}"]
    assert hub.cached_checkpoint(url, check_hash=True, progress=False) == path
    assert len(server.requests) == 1  # the cache hit asked nothing
    assert _listing(cache) == [name]  # no temporary files left


def test_hash_mismatch_leaves_nothing(server, cache):
    payload = b"not the checkpoint you are looking for" * 100
    name = "resnet18-f37072fd.pth"  # torchvision's name; the payload's hash differs
    server.files[f"/{name}"] = payload
    with pytest.raises(hub.DownloadError, match="invalid hash.*expected a SHA-256 starting with 'f37072fd'"):
        hub.cached_checkpoint(f"{server.url}/{name}", check_hash=True, progress=False)
    assert _listing(cache) == []


def test_enum_download_through_mirror_checks_the_hash(server, cache, monkeypatch):
    member = models.ResNet18_Weights.IMAGENET1K_V1
    name = member.url.rsplit("/", 1)[1]
    server.files[f"/mirror/{name}"] = b"x" * 1000
    monkeypatch.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", f"{server.url}/mirror/")
    with pytest.raises(hub.DownloadError, match="invalid hash"):
        models.resnet18(weights=member, progress=False)
    assert server.requests == [f"/mirror/{name}"]
    assert _listing(cache) == []


def test_truncated_transfer_leaves_nothing(server, cache):
    payload = os.urandom(1 << 20)
    name = _named(payload)
    server.files[f"/{name}"] = payload
    server.truncate.add(f"/{name}")
    with pytest.raises(hub.DownloadError, match=r"(incomplete download|could not download).*" + name.split("-")[0]):
        hub.cached_checkpoint(f"{server.url}/{name}", check_hash=False, progress=False)
    assert _listing(cache) == []


def test_read_only_cache_dir(server, cache):
    payload = b"abc" * 100
    name = _named(payload)
    server.files[f"/{name}"] = payload
    if os.geteuid() == 0:
        # root ignores file modes (CI runs as root); a regular file where the cache's parent
        # directory should be makes the cache unwritable for root too.
        cache.parent.parent.mkdir(parents=True, exist_ok=True)
        cache.parent.write_bytes(b"")
        restore = None
    else:
        cache.mkdir(parents=True)
        cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
        restore = cache
    try:
        with pytest.raises(hub.DownloadError, match="cannot write to the weights cache directory.*PYFLAME_VISION_HOME"):
            hub.cached_checkpoint(f"{server.url}/{name}", progress=False)
    finally:
        if restore is not None:
            restore.chmod(stat.S_IRWXU)
    assert server.requests == []  # nothing downloaded into nowhere
    if restore is not None:
        assert _listing(cache) == []
    else:
        assert cache.parent.read_bytes() == b""


def test_offline_error_names_url_and_path(cache, monkeypatch):
    # A port nothing listens on: the connection is refused, as offline.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}/models/")
    member = models.ResNet50_Weights.IMAGENET1K_V2
    with pytest.raises(hub.DownloadError) as info:
        member.get_checkpoint(progress=False)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/models/resnet50-11ad3fa6.pth" in message
    assert str(cache / "resnet50-11ad3fa6.pth") in message
    assert isinstance(info.value, OSError)
    assert _listing(cache) == []


def test_ctrl_c_during_download_leaves_nothing(server, cache, monkeypatch):
    payload = os.urandom(3 << 20)
    name = _named(payload)
    server.files[f"/{name}"] = payload
    real_urlopen = urllib.request.urlopen

    class Interrupting:
        def __init__(self, response):
            self.response, self.reads = response, 0
            self.headers = response.headers

        def read(self, n):
            self.reads += 1
            if self.reads == 2:
                raise KeyboardInterrupt
            return self.response.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.response.close()

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Interrupting(real_urlopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        hub.cached_checkpoint(f"{server.url}/{name}", progress=False)
    assert _listing(cache) == []


def test_progress_bar_is_shown(server, cache, capsys):
    payload = os.urandom(2 << 20)
    name = _named(payload)
    server.files[f"/{name}"] = payload
    hub.cached_checkpoint(f"{server.url}/{name}", progress=True)
    err = capsys.readouterr().err
    assert f"Downloading: '{server.url}/{name}'" in err
    assert "2.00M/2.00M" in err


def test_package_has_the_new_names():
    assert pyflame_vision.hub is hub
    for name in ("get_weight", "get_model_weights", "WeightsEnum", "Weights", "ResNet50_Weights"):
        assert name in models.__all__


# --------------------------------------------------------------------------- weights= end to end

# A checkpoint made by torch (torchvision's architecture, calibrated BatchNorm) stands in for
# torchvision's trained file under the file name the enum expects: a cached file is used as it is,
# as torch hub does.


@pytest.fixture
def cached_resnet18(cache):
    torch, _ = require_torchvision()
    tv = tv_model_random_bn("resnet18", seed=11)
    member = models.ResNet18_Weights.IMAGENET1K_V1
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / member.url.rsplit("/", 1)[1]
    torch.save(tv.state_dict(), path)
    return tv, path


def _tv_logits(tv, x):
    torch, _ = require_torchvision()
    with torch.no_grad():
        return tv(torch.from_numpy(x)).numpy()


@pytest.mark.parity
def test_weights_default_loads_the_cached_checkpoint(cached_resnet18, server, monkeypatch):
    tv, path = cached_resnet18
    monkeypatch.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", f"{server.url}/models/")  # must not be asked
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    ref = _tv_logits(tv, x)
    for model in (models.resnet18(weights="DEFAULT"), models.resnet18(pretrained=True),
                  models.resnet18(weights=models.ResNet18_Weights.IMAGENET1K_V1, progress=False),
                  models.get_model("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1")):
        out = model(x)
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
    assert server.requests == []
    # get_state_dict: NumPy arrays equal to torch's tensors bit for bit
    state = models.ResNet18_Weights.DEFAULT.get_state_dict(progress=False)
    tv_state = tv.state_dict()
    assert list(state) == list(tv_state)
    for key, value in tv_state.items():
        assert np.array_equal(state[key], value.numpy()), key


def test_weights_default_offline_says_where_to_put_the_file(cache, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}/")
    with pytest.raises(hub.DownloadError, match=str(cache / "efficientnet_b0_rwightman-7f5810bc.pth")):
        models.efficientnet_b0(weights="DEFAULT", progress=False)


NO_TORCH_CHILD = """
import sys
import numpy as np
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("torch is importable in the child")
import pyflame_vision.models as models
model = models.resnet18(weights="DEFAULT")
np.save(sys.argv[2], model(np.load(sys.argv[1])))
preset = models.ResNet18_Weights.DEFAULT.transforms()
assert preset.crop_size == [224] and preset.resize_size == [256]
assert models.ResNet18_Weights.DEFAULT.meta["categories"][207] == "golden retriever"
assert not any(n == "torch" or n.startswith("torch.") for n in sys.modules), "torch got imported"
print("ok")
"""


@pytest.mark.parity
def test_pretrained_weights_without_torch(cached_resnet18, tmp_path):
    tv, _ = cached_resnet18
    x = np.random.default_rng(1).standard_normal((1, 3, 96, 96), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    env = env_without_torch(tmp_path)  # keeps PYFLAME_VISION_HOME pointing at the fixture's cache
    proc = subprocess.run([sys.executable, "-c", NO_TORCH_CHILD, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ref = _tv_logits(tv, x)
    out = np.load(tmp_path / "y.npy")
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
