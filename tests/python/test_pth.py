"""PyTorch checkpoints without torch: read_weights / load_weights on files torch.save wrote (zip and legacy
formats, every pickle protocol, float32/float16/bfloat16/float64, wrapped and DataParallel-prefixed, shared
storages, views and non-contiguous tensors), malicious files, a process where torch cannot be imported, the
memory bound of loading ResNet-50, and ``pyflame-vision convert``."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import re
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import ROOT, env_without_torch, require_torchvision, tv_model_random_bn
from pyflame_vision import InvalidArgumentError, WeightsError
from pyflame_vision.cli import main as cli_main
from pyflame_vision.io import load_weights, read_weights

pytestmark = pytest.mark.parity  # torch writes every checkpoint here (the oracle)

X = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)


def expected_array(t) -> np.ndarray:
    """What our reader promises for a torch tensor: floats as float32 (torch's .float()), others as they are."""
    return (t.float() if t.is_floating_point() else t).detach().contiguous().numpy()


def torch_load(path):
    """The oracle: torch.load(weights_only=True). That restricted loader warns about pickle protocols other than
    2 and cannot read protocol 4/5 files; those (written by this test with torch.save) are then read with
    weights_only=False."""
    torch, _ = require_torchvision()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        try:
            return torch.load(path, weights_only=True)
        except pickle.UnpicklingError:
            return torch.load(path, weights_only=False)


def assert_bitwise_equal(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)
    for key, t in theirs.items():
        want = expected_array(t)
        got = ours[key]
        assert isinstance(got, np.ndarray), key
        assert got.dtype == want.dtype and got.shape == want.shape, (key, got.dtype, want.dtype, got.shape)
        assert got.flags.c_contiguous, key
        assert got.tobytes() == want.tobytes(), key  # bit for bit, -0.0 and NaN payloads included


def assert_close(out: np.ndarray, ref: np.ndarray) -> None:
    scale = float(np.abs(ref).max())
    assert scale > 0
    err = float(np.abs(out - ref).max())
    assert err <= 1e-4 * scale, (err, scale)


def tv_output(tv, x=X) -> np.ndarray:
    torch, _ = require_torchvision()
    with torch.no_grad():
        return tv(torch.from_numpy(x)).numpy()


# ---------------------------------------------------------------------------------------------
# Checkpoints torch writes


@pytest.fixture(scope="module")
def resnet18_tv():
    return tv_model_random_bn("resnet18", seed=3)


@pytest.fixture(scope="module")
def files(tmp_path_factory, resnet18_tv):
    """resnet18 checkpoints in every layout, saved by torch."""
    torch, _ = require_torchvision()
    d = tmp_path_factory.mktemp("pth")
    sd = resnet18_tv.state_dict()
    out = {}

    def save(name, obj, **kwargs):
        out[name] = d / name
        torch.save(obj, out[name], **kwargs)

    save("zip.pth", sd)
    save("zip_p4.pt", sd, pickle_protocol=4)
    save("zip_p5.bin", sd, pickle_protocol=5)
    save("legacy.pth", sd, _use_new_zipfile_serialization=False)
    save("legacy_p4.pth", sd, _use_new_zipfile_serialization=False, pickle_protocol=4)
    save("no_byteorder.pth", sd, _disable_byteorder_record=True)
    for dtype in ("float16", "bfloat16", "float64"):
        cast = collections.OrderedDict(
            (k, v.to(getattr(torch, dtype)) if v.is_floating_point() else v) for k, v in sd.items()
        )
        save(f"{dtype}.pth", cast)
        save(f"{dtype}_legacy.pth", cast, _use_new_zipfile_serialization=False)
    save("wrapped.ckpt", {"epoch": 7, "state_dict": sd, "optimizer": {"lr": 0.1, "momentum": 0.9}})
    save("model_key.tar", {"model": sd, "args": ["--lr", "0.1"]})
    module = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    save("module.pth", module)
    save("wrapped_module.pth", {"state_dict": module, "best_acc1": torch.tensor(71.5)})
    # Parameters (torch._utils._rebuild_parameter) instead of plain tensors.
    save("parameters.pth", collections.OrderedDict(resnet18_tv.named_parameters()) | dict(resnet18_tv.named_buffers()))
    out["views"] = d / "views.pth"
    torch.save(odd_layouts(torch, sd), out["views"])
    out["views_legacy"] = d / "views_legacy.pth"
    torch.save(odd_layouts(torch, sd), out["views_legacy"], _use_new_zipfile_serialization=False)
    return out


def odd_layouts(torch, sd):
    """The same values as `sd`, held the ways torch can hold them: shared storages, storage offsets,
    transposed and strided views."""
    odd = collections.OrderedDict(sd)
    # bn1.weight and bn1.bias as two halves of one storage; bn1.running_mean at an offset inside a bigger one.
    both = torch.cat([sd["bn1.weight"], sd["bn1.bias"]])
    odd["bn1.weight"], odd["bn1.bias"] = both[:64], both[64:]
    odd["bn1.running_mean"] = torch.cat([torch.zeros(5), sd["bn1.running_mean"], torch.zeros(3)])[5:69]
    # fc.weight as the transpose of a contiguous [512, 1000] tensor (non-contiguous).
    odd["fc.weight"] = sd["fc.weight"].t().contiguous().t()
    assert not odd["fc.weight"].is_contiguous()
    # conv1.weight as every other element of a bigger storage; a channels_last conv weight.
    big = torch.zeros(2 * sd["conv1.weight"].numel())
    big[::2] = sd["conv1.weight"].flatten()
    odd["conv1.weight"] = big.as_strided(sd["conv1.weight"].shape, [2 * s for s in sd["conv1.weight"].stride()])
    odd["layer1.0.conv1.weight"] = sd["layer1.0.conv1.weight"].to(memory_format=torch.channels_last)
    for key in ("conv1.weight", "fc.weight", "bn1.weight", "bn1.running_mean", "layer1.0.conv1.weight"):
        assert torch.equal(odd[key], sd[key]), key
    assert odd["bn1.weight"].untyped_storage().data_ptr() == odd["bn1.bias"].untyped_storage().data_ptr()
    return odd


@pytest.mark.parametrize(
    "name",
    ["zip.pth", "zip_p4.pt", "zip_p5.bin", "legacy.pth", "legacy_p4.pth", "no_byteorder.pth", "float16.pth",
     "float16_legacy.pth", "bfloat16.pth", "bfloat16_legacy.pth", "float64.pth", "float64_legacy.pth",
     "parameters.pth", "views", "views_legacy"],
)
def test_reader_equals_torch_load_bit_for_bit(files, name):
    torch, _ = require_torchvision()
    theirs = torch_load(files[name])
    ours = read_weights(files[name])
    assert isinstance(ours, dict)
    assert_bitwise_equal(ours, theirs)
    assert ours["bn1.num_batches_tracked"].dtype == np.int64 and ours["bn1.num_batches_tracked"].shape == ()


def test_wrapped_and_prefixed_checkpoints(files, resnet18_tv):
    torch, _ = require_torchvision()
    sd = resnet18_tv.state_dict()
    assert_bitwise_equal(read_weights(files["wrapped.ckpt"], key="state_dict"), sd)
    assert_bitwise_equal(read_weights(files["model_key.tar"], key="model"), sd)
    assert_bitwise_equal(read_weights(files["module.pth"], strip_prefix="module."), sd)
    assert_bitwise_equal(read_weights(files["wrapped_module.pth"], key="state_dict", strip_prefix="module."), sd)
    assert list(read_weights(files["module.pth"]))[0] == "module.conv1.weight"

    with pytest.raises(WeightsError) as info:
        read_weights(files["wrapped.ckpt"])
    msg = str(info.value)
    assert str(files["wrapped.ckpt"]) in msg
    assert "its keys are \"epoch\", \"state_dict\", \"optimizer\"" in msg
    assert "pass key=\"state_dict\"" in msg and "strip_prefix" not in msg
    with pytest.raises(WeightsError, match=r'pass key="state_dict" and strip_prefix="module\."'):
        read_weights(files["wrapped_module.pth"])
    with pytest.raises(WeightsError, match=r'no top-level key "model"; its keys are "epoch", "state_dict"'):
        read_weights(files["wrapped.ckpt"], key="model")
    # The training run's other entries (a list, floats) are plain values the VM reads, then ignores.
    with pytest.raises(WeightsError, match=r'its value for "lr" is a float, not a tensor'):
        read_weights(files["wrapped.ckpt"], key="optimizer")
    assert isinstance(WeightsError("x"), ValueError) and isinstance(WeightsError("x"), RuntimeError)


def storage_dtypes(pkl: bytes) -> dict[str, str]:
    """{storage key: storage type name} of a torch data.pkl we wrote ourselves (a trusted file: this reads it
    with Python's pickle, with stand-ins for torch's functions)."""
    types: dict[str, str] = {}

    class Spy(pickle.Unpickler):
        def find_class(self, module, name):
            if name == "OrderedDict":
                return collections.OrderedDict
            if name.endswith("Storage"):
                return name
            return lambda *args: None

        def persistent_load(self, pid):
            types[pid[2]] = pid[1]

    Spy(io.BytesIO(pkl)).load()
    return types


def test_big_endian_checkpoint_equals_torch_load(tmp_path, resnet18_tv):
    """A zip checkpoint written on a big-endian host (byteorder "big", every storage byte-swapped): torch.load
    swaps it back, and so must we."""
    torch, _ = require_torchvision()
    little = tmp_path / "little.pth"
    sd = collections.OrderedDict(resnet18_tv.state_dict())
    sd["fc.bias"] = sd["fc.bias"].double()
    sd["bn1.weight"] = sd["bn1.weight"].half()
    torch.save(sd, little)
    itemsize = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "LongStorage": 8}
    big = tmp_path / "big.pth"
    with zipfile.ZipFile(little) as src, zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as dst:
        prefix = src.namelist()[0].split("/")[0] + "/"
        types = storage_dtypes(src.read(prefix + "data.pkl"))
        assert set(types.values()) == set(itemsize)
        for info in src.infolist():
            data = src.read(info)
            name = info.filename[len(prefix):]
            if name == "byteorder":
                data = b"big"
            elif name.startswith("data/"):
                n = itemsize[types[name[5:]]]
                data = np.frombuffer(data, dtype=f"<u{n}").byteswap().tobytes()
            dst.writestr(info.filename, data)
    theirs = torch_load(big)
    assert_bitwise_equal(read_weights(big), theirs)
    assert_bitwise_equal(read_weights(little), theirs)


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "zip_p5.bin", "views", "parameters.pth"])
def test_loaded_model_matches_torchvision(files, resnet18_tv, name):
    m = models.resnet18()
    result = load_weights(m, files[name])
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert_close(m(X), tv_output(resnet18_tv))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_converted_checkpoints_match_torchvision_on_the_same_values(files, resnet18_tv, dtype):
    """A float16 checkpoint loads as torch's .float() of it: compare with torchvision running those values."""
    torch, torchvision = require_torchvision()
    tv = torchvision.models.resnet18().eval()
    tv.load_state_dict({k: v.float() if v.is_floating_point() else v
                        for k, v in torch_load(files[f"{dtype}.pth"]).items()})
    m = models.resnet18()
    load_weights(m, files[f"{dtype}.pth"])
    assert_close(m(X), tv_output(tv))


def test_load_weights_with_key_and_prefix_and_failures(files, resnet18_tv):
    m = models.resnet18()
    load_weights(m, files["wrapped_module.pth"], key="state_dict", strip_prefix="module.")
    assert_close(m(X), tv_output(resnet18_tv))
    before = m.state_dict()
    with pytest.raises(WeightsError) as info:
        load_weights(m, files["module.pth"])
    assert "Unexpected key(s) in state_dict" in str(info.value)
    assert 'pass strip_prefix="module."' in str(info.value)
    with pytest.raises(WeightsError, match="size mismatch for fc.weight"):
        load_weights(models.resnet18(num_classes=10), files["zip.pth"])
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # failed loads changed nothing
    result = load_weights(models.resnet34(), files["zip.pth"], strict=False)
    assert "layer1.2.conv1.weight" in result.missing_keys
    with pytest.raises(FileNotFoundError):
        load_weights(m, files["zip.pth"].with_name("missing.pth"))


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnext50_32x4d"])
def test_other_families_load_from_pth(tmp_path, name):
    torch, _ = require_torchvision()
    tv = tv_model_random_bn(name, seed=1)
    path = tmp_path / f"{name}.pth"
    torch.save(tv.state_dict(), path)
    m = models.get_model(name)
    load_weights(m, path)
    assert_close(m(X), tv_output(tv))


def test_other_formats_and_options(tmp_path, files):
    m = models.resnet18()
    load_weights(m, files["zip.pth"])
    st, npz = tmp_path / "w.safetensors", tmp_path / "w.npz"
    pyflame_vision.save_weights(m, st)
    pyflame_vision.save_weights(m, npz)
    ref = m.state_dict()
    for path in (st, npz):
        got = read_weights(path)
        assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)
        stripped = read_weights(path, strip_prefix="layer1.")
        assert "0.conv1.weight" in stripped and "layer1.0.conv1.weight" not in stripped and "conv1.weight" in stripped
        with pytest.raises(InvalidArgumentError, match="selects an entry of a PyTorch checkpoint"):
            read_weights(path, key="state_dict")
    # A .safetensors file under another name is recognised by its content, through the C++ reader.
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(st.read_bytes())
    got = read_weights(renamed)
    assert all(np.array_equal(got[k], ref[k]) for k in ref)
    assert pyflame_vision.read_weights is read_weights
    with pytest.raises(ValueError, match="PyTorch checkpoints are read, never written"):
        pyflame_vision.save_weights(m, tmp_path / "w.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not weights")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint .* starts with 64 65 66"):
        read_weights(junk)
    with pytest.raises(WeightsError, match="it is a directory"):
        read_weights(tmp_path)


def test_torchscript_and_npz_named_pth(tmp_path):
    # torch.jit.save's archive (the committed fixture tests/cpp/data/make_pth_fixtures.py wrote).
    with pytest.raises(WeightsError, match=r"a TorchScript archive .*save model\.state_dict\(\) instead"):
        read_weights(ROOT / "tests" / "cpp" / "data" / "pth" / "torchscript.pt")
    npz = tmp_path / "arrays.pth"
    with open(npz, "wb") as f:
        np.savez(f, a=np.zeros(3))
    with pytest.raises(WeightsError, match=r"a NumPy \.npz archive"):
        read_weights(npz)


# ---------------------------------------------------------------------------------------------
# Malicious and malformed checkpoints


class Call:
    """Pickles as a call of `fn(*args)` (what a malicious __reduce__ writes)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class FakeStorage:
    def __init__(self, key: str, numel: int, type_name: str = "FloatStorage"):
        self.key, self.numel, self.type_name = key, numel, type_name


class CraftPickler(pickle.Pickler):
    """torch's persistent ids for FakeStorage, so crafted tensors reference crafted storages."""

    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            torch, _ = require_torchvision()
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.numel)
        return None


def tensor_call(storage, offset, size, stride):
    torch, _ = require_torchvision()
    return Call(torch._utils._rebuild_tensor_v2, storage, offset, tuple(size), tuple(stride), False,
                collections.OrderedDict())


def write_zip(path, pkl: bytes, storages: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)


def crafted(obj, protocol=2) -> bytes:
    buf = io.BytesIO()
    CraftPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def payloads(sentinel):
    """(accepted spellings of the global's module, its name, the payload). Protocol 2 spells some modules the
    Python 2 way (pickle's fix_imports): builtins -> __builtin__, subprocess -> commands."""
    torch, _ = require_torchvision()
    import builtins

    return [
        ({"posix"}, "system", Call(os.system, f"touch {sentinel}")),
        ({"builtins", "__builtin__"}, "eval", Call(eval, f"open({str(sentinel)!r}, 'w')")),
        ({"builtins", "__builtin__"}, "exec", Call(exec, f"open({str(sentinel)!r}, 'w')")),
        ({"io"}, "open", Call(builtins.open, str(sentinel), "w")),
        ({"collections"}, "Counter", Call(collections.Counter, "abc")),
        ({"torch._utils"}, "_rebuild_device_tensor_from_numpy", Call(
            torch._utils._rebuild_device_tensor_from_numpy, np.zeros(2, np.float32), torch.float32, "cpu", False
        )),
        ({"torch.serialization"}, "load", Call(torch.load, str(sentinel))),
        ({"subprocess", "commands"}, "call", Call(subprocess.call, ["touch", str(sentinel)])),
    ]


@pytest.mark.parametrize("fmt", ["zip", "zip_p5", "legacy", "plain_pickle"])
def test_malicious_globals_never_run(tmp_path, fmt):
    torch, _ = require_torchvision()
    sentinel = tmp_path / "sentinel"
    for modules, name, payload in payloads(sentinel):
        path = tmp_path / f"{name}.pth"
        obj = {"conv.weight": torch.zeros(2), "x": payload}
        if fmt == "zip":
            torch.save(obj, path)
        elif fmt == "zip_p5":
            torch.save(obj, path, pickle_protocol=5)
        elif fmt == "legacy":
            torch.save(obj, path, _use_new_zipfile_serialization=False)
        else:
            path.write_bytes(pickle.dumps(payload, protocol=4))
        with pytest.raises(WeightsError) as info:
            read_weights(path)
        msg = str(info.value)
        named = re.search(r"global ([\w.]+)\.(\w+) is not allowed", msg)
        assert named and named.group(1) in modules and named.group(2) == name, (fmt, msg)
        assert str(path) in msg
        with pytest.raises(WeightsError):
            load_weights(models.resnet18(), path)
        assert not sentinel.exists(), name


def test_malformed_pickles_and_storages(tmp_path):
    torch, _ = require_torchvision()
    sentinel = tmp_path / "sentinel"
    six = np.arange(6, dtype=np.float32).tobytes()
    good = crafted({"w": tensor_call(FakeStorage("0", 6), 0, (2, 3), (3, 1))})
    write_zip(tmp_path / "good.pth", good, {"0": six})
    assert np.array_equal(read_weights(tmp_path / "good.pth")["w"], np.arange(6, dtype=np.float32).reshape(2, 3))

    cases = {
        # A truncated opcode stream, at several lengths.
        **{f"truncated_{n}": (good[:n], {"0": six}, r"pickle error at byte \d+") for n in (1, 10, len(good) // 2,
                                                                                          len(good) - 1)},
        # A storage whose declared size exceeds its record (and the whole file).
        "storage_too_big": (crafted({"w": tensor_call(FakeStorage("0", 10**9), 0, (10,), (1,))}), {"0": six},
                            r'storage "0" declares 1000000000 x FloatStorage \(4000000000 bytes\), but its record '
                            r"archive/data/0 holds 24 bytes"),
        # A view past the end of its storage.
        "view_past_storage": (crafted({"w": tensor_call(FakeStorage("0", 6), 2, (5,), (1,))}), {"0": six},
                              r'reads element 6 of float32, past the end of storage "0"'),
        "strided_past_storage": (crafted({"w": tensor_call(FakeStorage("0", 6), 0, (2, 3), (4, 1))}), {"0": six},
                                 "past the end of storage"),
        # Huge declared lengths.
        "binunicode8_2_62": (b"\x80\x04\x8d" + (2**62).to_bytes(8, "little") + b"abc.", {},
                             r"expected 4611686018427387904 bytes of string data, but only 4 remain"),
        "long4_huge": (b"\x80\x02\x8b\xff\xff\xff\x7f.", {}, "bytes of a long integer, but only 1 remain"),
        # Deep nesting, through lists and through tuples.
        "deep_lists": (b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b".", {}, "nested deeper than 1000 levels"),
        "deep_tuples": (b"\x80\x02N" + b"\x85" * 100000 + b".", {}, "nested deeper than 1000 levels"),
        "many_marks": (b"\x80\x02" + b"(" * 100000 + b".", {}, "more than 65536 nested MARKs"),
        # Garbage.
        "garbage": (bytes(range(256)) * 4, {}, "pickle error at byte"),
    }
    for name, (pkl, storages, pattern) in cases.items():
        path = tmp_path / f"{name}.pth"
        write_zip(path, pkl, storages)
        with pytest.raises(WeightsError, match=pattern):
            read_weights(path)
        with pytest.raises(WeightsError):
            load_weights(models.resnet18(), path)
    # A storage record missing, and a file cut inside the archive's directory.
    write_zip(tmp_path / "no_record.pth", good, {})
    with pytest.raises(WeightsError, match='storage "0" \\(FloatStorage\\) has no record archive/data/0'):
        read_weights(tmp_path / "no_record.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) - 30])
    with pytest.raises(WeightsError, match="malformed ZIP archive|not a PyTorch checkpoint"):
        read_weights(tmp_path / "cut.pth")
    # A compressed archive (torch never writes one).
    with zipfile.ZipFile(tmp_path / "deflated.pth", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", good)
        z.writestr("archive/data/0", six)
    with pytest.raises(WeightsError, match=r"is compressed \(method 8, deflate\)"):
        read_weights(tmp_path / "deflated.pth")
    assert not sentinel.exists()


# ---------------------------------------------------------------------------------------------
# Without torch


CHILD = """
import sys
import numpy as np
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("torch is importable in the child")
import pyflame_vision
import pyflame_vision.models as models
pth, x, out = sys.argv[1:4]
m = models.resnet18()
pyflame_vision.load_weights(m, pth)
np.save(out, m(np.load(x)))
sd = pyflame_vision.read_weights(pth)
assert sd["fc.weight"].shape == (1000, 512) and sd["bn1.num_batches_tracked"].dtype == np.int64
assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules), "torch got imported"
print("ok")
"""


def test_everything_works_where_torch_cannot_be_imported(tmp_path, files, resnet18_tv):
    np.save(tmp_path / "x.npy", X)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(files["zip.pth"]), str(tmp_path / "x.npy"), str(tmp_path / "out.npy")],
        env=env_without_torch(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert_close(np.load(tmp_path / "out.npy"), tv_output(resnet18_tv))
    # The blocker really blocks: the same environment cannot import torch.
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env_without_torch(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode != 0 and "made unimportable for this test" in probe.stderr


# ---------------------------------------------------------------------------------------------
# Memory


RSS_CHILD = """
import json, os, resource, sys
import numpy as np
import pyflame_vision
import pyflame_vision.models as models


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


m = models.resnet50()
before, peak_before = rss(), maxrss()
pyflame_vision.load_weights(m, sys.argv[1])
peak = maxrss()
after = rss()
assert m.has_weights
np.save(sys.argv[3], m(np.load(sys.argv[2])))
print(json.dumps({"before": before, "peak_before": peak_before, "peak": peak, "after": after}))
"""

# Linux keeps ru_maxrss across execve, and a child forked (or vforked) from this test process starts from its
# hundreds of MiB (torch). A small launcher process in between gives the measured process a clean high-water mark.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm (Linux)")
def test_loading_resnet50_from_pth_peaks_below_twice_the_weights(tmp_path):
    torch, _ = require_torchvision()
    tv = tv_model_random_bn("resnet50", seed=5)
    path = tmp_path / "resnet50.pth"
    torch.save(tv.state_dict(), path)
    weights = sum(v.numel() * v.element_size() for v in tv.state_dict().values())
    np.save(tmp_path / "x.npy", X[:1])
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", RSS_CHILD, str(path), str(tmp_path / "x.npy"),
         str(tmp_path / "out.npy")],
        env=env_without_torch(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    grown, kept = r["peak"] - r["before"], r["after"] - r["before"]
    print(f"\nresnet50 .pth: weights {weights / 2**20:.1f} MiB, RSS before loading {r['before'] / 2**20:.1f} MiB, "
          f"peak RSS growth while loading {grown / 2**20:.1f} MiB ({grown / weights:.2f}x), "
          f"kept {kept / 2**20:.1f} MiB ({kept / weights:.2f}x)")
    # The high-water mark before loading is the process's own (not inherited), so the growth measures the load.
    assert r["peak_before"] < r["before"] + weights / 4, r
    assert kept >= 0.9 * weights  # the weights really are in memory...
    assert grown < 2 * weights  # ...and loading them never needed twice their size
    assert_close(np.load(tmp_path / "out.npy"), tv_output(tv, X[:1]))


# ---------------------------------------------------------------------------------------------
# pyflame-vision convert


def test_convert_plain_dump_and_with_model(tmp_path, files, capsys):
    from safetensors.numpy import load_file

    out = tmp_path / "plain.safetensors"
    assert cli_main(["convert", str(files["float16.pth"]), str(out)]) == 0
    dumped = load_file(str(out))
    ref = read_weights(files["float16.pth"])
    assert set(dumped) == set(ref) and all(np.array_equal(dumped[k], ref[k]) for k in ref)
    assert dumped["conv1.weight"].dtype == np.float32
    assert "wrote" in capsys.readouterr().out

    checked = tmp_path / "r18.safetensors"
    assert cli_main(["convert", str(files["wrapped_module.pth"]), str(checked), "--model", "resnet18",
                     "--key", "state_dict", "--strip-prefix", "module."]) == 0
    assert "keys and shapes match resnet18" in capsys.readouterr().out
    m = models.resnet18()
    pyflame_vision.load_weights(m, checked)
    m2 = models.resnet18()
    pyflame_vision.load_weights(m2, files["zip.pth"])
    assert np.array_equal(m(X), m2(X))
    from safetensors import safe_open

    with safe_open(str(checked), "np") as f:
        assert f.metadata()["model"] == "resnet18"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.safetensors", "r18.safetensors"]


def test_convert_errors(tmp_path, files, capsys):
    out = tmp_path / "x.safetensors"
    # The wrong model: non-zero exit, a message listing what does not fit, nothing written.
    assert cli_main(["convert", str(files["zip.pth"]), str(out), "--model", "resnet34"]) == 1
    err = capsys.readouterr().err
    assert "pyflame-vision: error:" in err and "Missing key(s) in state_dict" in err and "layer1.2.conv1.weight" in err
    assert cli_main(["convert", str(files["zip.pth"]), str(out), "--model", "resnet18", "--num-classes", "10"]) == 1
    assert "size mismatch for fc.weight" in capsys.readouterr().err
    assert cli_main(["convert", str(files["module.pth"]), str(out), "--model", "resnet18"]) == 1
    assert "Unexpected key(s) in state_dict" in capsys.readouterr().err
    assert cli_main(["convert", str(files["wrapped.ckpt"]), str(out)]) == 1
    assert 'pass key="state_dict"' in capsys.readouterr().err
    assert cli_main(["convert", str(files["zip.pth"]), str(tmp_path / "x.npz")]) == 1
    assert "must be a .safetensors file" in capsys.readouterr().err
    assert cli_main(["convert", str(tmp_path / "missing.pth"), str(out)]) == 1
    assert "no weight file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["convert", str(files["zip.pth"]), str(out), "--model", "resnet9000"])
    assert list(tmp_path.iterdir()) == []  # no output, no temporary files left behind

    proc = subprocess.run([sys.executable, "-m", "pyflame_vision", "convert", str(files["zip.pth"]), str(out),
                           "--model", "efficientnet_b0"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Error(s) in loading state_dict for EfficientNet" in proc.stderr
    assert not out.exists()
