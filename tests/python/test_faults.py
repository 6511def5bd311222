"""The fault catalogue: every class of bad input, bad file, bad state dict, race and process-level event a user can
cause, each with several instances and the behaviour the user gets (issue 14). The C++ side is
tests/cpp/test_faults.cpp.

Each test function is one class of fault (its name says which); its parameters are the instances. The README's
"Reliability" section counts them: ``python -m pytest tests/python/test_faults.py --collect-only -q``.

Rules every case checks: a typed exception (the pyflame_vision class and the builtin it subclasses) whose message
says where, what was expected and what was received; never a crash, hang or silently wrong result; a failed
operation leaves the model as it was (same weights, still usable).
"""

from __future__ import annotations

import collections
import gc
import io
import json
import multiprocessing
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import ROOT, numpy_state_dict, require_torchvision, tv_model_random_bn
from pyflame_vision import (
    DTypeError,
    InvalidArgumentError,
    ShapeError,
    ShapeOverflowError,
    WeightsError,
)
from pyflame_vision.io import load_weights, read_weights, save_weights

SMALL = ["resnet18", "efficientnet_b0"]


def make_input(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def nets():
    """resnet18 and efficientnet_b0 with weights (module-wide; tests that change a model build their own)."""
    out = {}
    for name in SMALL:
        m = getattr(models, name)()
        m.init_weights(seed=3)
        out[name] = m
    return out


@pytest.fixture(scope="module")
def tv_pairs():
    """name -> (torchvision model with randomised BatchNorm, our model with its weights), built once."""
    require_torchvision()
    out = {}
    for name in SMALL:
        tv = tv_model_random_bn(name, seed=2)
        m = getattr(models, name)()
        m.load_state_dict(numpy_state_dict(tv))
        out[name] = (tv, m)
    return out


@pytest.fixture(scope="module")
def net():
    """A resnet18 with weights that failed loads are tried on (each test checks it is unchanged afterwards)."""
    m = models.resnet18()
    m.init_weights(seed=1)
    return m


def weights_bytes(model) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in model.state_dict().items()}


def assert_unchanged(model, before: dict[str, bytes], x: np.ndarray | None = None, y: np.ndarray | None = None):
    """The model still has exactly its previous weights and still runs (bit-identically, when given x and y)."""
    assert weights_bytes(model) == before
    if x is not None:
        out = model(x)
        assert y is None or out.tobytes() == y.tobytes()


def raises(exc_type, fn, *args, match: str | None = None, **kwargs) -> str:
    """Calls fn, expects exc_type with `match` (a literal substring) in its message; returns the message (checked
    to be short and free of NULs)."""
    with pytest.raises(exc_type, match=None if match is None else re.escape(match)) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\x00" not in msg
    assert len(msg) < 20000, len(msg)
    return msg


# =============================================================================================
# Inputs to forward / get_output_shape


def agree(model, shape):
    """(forward on an array, get_output_shape, forward on the shape): each an output shape or the exception type."""
    results = []
    for fn in (lambda: list(model(np.zeros(shape, np.float32)).shape) if all(d >= 0 for d in shape) else None,
               lambda: model.get_output_shape(list(shape)),
               lambda: model(list(shape)).shape):
        try:
            results.append(fn())
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            results.append(type(exc))
    if results[0] is None:
        results = results[1:]
    return results


@pytest.mark.parametrize("shape", [[3], [3, 224], [3, 32, 32], [1, 1, 3, 32, 32], [1, 3, 32, 32, 1]])
@pytest.mark.parametrize("name", SMALL)
def test_wrong_rank(nets, name, shape):
    m = nets[name]
    results = agree(m, shape)
    assert all(r is ShapeError for r in results), results
    msg = raises(ShapeError, m.get_output_shape, shape)
    assert "expected a 4-D input [N, C, H, W]" in msg and f"{len(shape)}-D" in msg
    raises(ValueError, m, np.zeros(shape, np.float32))


@pytest.mark.parametrize("channels", [0, 1, 2, 4, 64])
@pytest.mark.parametrize("name", SMALL)
def test_wrong_channels(nets, name, channels):
    m = nets[name]
    shape = [1, channels, 32, 32]
    assert all(r is ShapeError for r in agree(m, shape))
    msg = raises(ShapeError, m, np.zeros(shape, np.float32))
    first = "conv1" if name.startswith("resnet") else "features.0.0"
    assert first in msg and f"expected 3 input channels, got {channels}" in msg


@pytest.mark.parity
@pytest.mark.parametrize("hw", [(0, 0), (0, 32), (32, 0), (1, 1), (2, 2), (1, 64), (3, 5), (7, 7), (33, 17)])
@pytest.mark.parametrize("name", SMALL)
def test_small_and_empty_spatial_sizes_as_torch(tv_pairs, name, hw):
    torch, _ = require_torchvision()
    tv, m = tv_pairs[name]
    shape = [2, 3, *hw]
    x = make_input(shape, 4)
    try:
        with torch.no_grad():
            ref = tv(torch.from_numpy(x)).numpy()
    except RuntimeError:
        ref = None
    results = agree(m, shape)
    if ref is None:  # torch refuses: so do we, with a ValueError naming the first layer, the same way in all three
        assert all(r is ShapeError for r in results), results
        raises(ShapeError, m, x, match=r"input too small")
    else:
        assert results == [list(ref.shape)] * 3, results
        out = m(x)
        assert np.abs(out - ref).max() <= 1e-4 * max(np.abs(ref).max(), 1e-6)


@pytest.mark.parametrize("shape", [[0, 3, 224, 224], [0, 3, 1, 1], [0, 3, 17, 33]])
@pytest.mark.parametrize("name", SMALL)
def test_batch_zero_is_valid(nets, name, shape):
    m = nets[name]
    assert agree(m, shape) == [[0, 1000]] * 3
    out = m(np.zeros(shape, np.float32))
    assert out.shape == (0, 1000) and out.dtype == np.float32
    feats = m.forward_features(np.zeros(shape, np.float32))
    for f in feats if isinstance(feats, list) else [feats]:
        assert f.shape[0] == 0


@pytest.mark.parametrize(
    "shape, exc, match",
    [
        ([-1, 3, 224, 224], ShapeError, "negative"),
        ([1, 3, -5, 224], ShapeError, "negative"),
        ([1, 3, True, 224], DTypeError, "dimension 2 must be an int, got bool"),
        ([1, 3, 224.0, 224], DTypeError, "dimension 2 must be an int, got float"),
        ([1, 3, None, 224], DTypeError, "dimension 2 must be an int, got NoneType"),
        ([1, 3, "224", 224], DTypeError, "dimension 2 must be an int, got str"),
        ([2**63, 3, 224, 224], ShapeOverflowError, "does not fit in int64"),
        ([-(2**63) - 1, 3, 8, 8], ShapeOverflowError, "does not fit in int64"),
        ([2**62, 3, 224, 224], ShapeOverflowError, None),
        ([1, 3, 2**40, 2**40], ShapeOverflowError, None),
        ([2**61, 3, 2**20, 2**20], ShapeOverflowError, None),
    ],
)
def test_bad_dimensions(nets, shape, exc, match):
    for m in nets.values():
        raises(exc, m.get_output_shape, shape, match=match)
        raises(exc, m, shape, match=match)
        raises(exc, m.forward_features, shape, match=match)
    # ShapeOverflowError is both a ShapeError (ValueError) and an OverflowError: never a wrapped-around shape.
    if exc is ShapeOverflowError:
        with pytest.raises(OverflowError):
            nets["resnet18"].get_output_shape(shape)


@pytest.mark.parametrize("shape", [[2**40, 3, 224, 224], [1, 3, 2**20, 2**20 + 1], [np.int64(5), np.uint8(3), 32, 32]])
def test_huge_but_valid_dimensions_are_exact(nets, shape):
    n, _, h, w = (int(d) for d in shape)
    out = nets["resnet18"].get_output_shape(shape)
    assert out == [n, 1000] and all(type(d) is int for d in out)
    last = nets["resnet18"].forward_features(shape)[-1].shape
    down = [h, w]
    for _ in range(5):  # stride 2 five times (conv1, maxpool, layer2-4), with the conv formula's padding
        down = [(d - 1) // 2 + 1 for d in down]
    assert last == [n, 512, *down]


@pytest.mark.parametrize("how", ["more_than_the_machine", "memory_limit_variable"])
def test_a_forward_whose_activations_exceed_memory_is_a_memory_error_before_allocating(nets, how, monkeypatch):
    """The activation arena is checked against the memory the process can get before it is allocated: a forward
    that cannot fit raises OutOfMemoryError (a MemoryError) saying for what and how many bytes, at once (not an
    overcommitted allocation the OOM killer ends later), and the model runs as before afterwards."""
    m = nets["resnet18"]
    x = make_input((1, 3, 32, 32), 1)
    y = m(x)
    if how == "more_than_the_machine":  # 80 GiB of activations; zero strides: the input takes no memory
        big = np.broadcast_to(make_input((1, 3, 1, 1), 2), (256, 3, 2048, 2048))
    else:
        monkeypatch.setenv("PYFLAME_VISION_MEMORY_LIMIT", str(16 << 20))
        big = make_input((8, 3, 224, 224), 2)  # 30.6 MiB of activations
    start = time.perf_counter()
    msg = raises(pyflame_vision.OutOfMemoryError, m, big, match="cannot allocate")
    assert time.perf_counter() - start < 30
    assert f"for the activations of a forward on input {list(big.shape)}" in msg and " bytes)" in msg, msg
    assert "available" in msg, msg
    with pytest.raises(MemoryError):
        m(big)
    monkeypatch.delenv("PYFLAME_VISION_MEMORY_LIMIT", raising=False)
    assert m(x).tobytes() == y.tobytes()


def _structured():
    return np.zeros((1, 3, 8, 8), dtype=[("r", np.float32), ("g", np.float32)])


@pytest.mark.parametrize(
    "make, hint",
    [
        (lambda: np.zeros((1, 3, 32, 32), np.float64), "x.astype(numpy.float32)"),
        (lambda: np.zeros((1, 3, 32, 32), np.float16), "x.astype(numpy.float32)"),
        (lambda: np.zeros((1, 3, 32, 32), np.int32), "divide uint8 pixels by 255"),
        (lambda: np.zeros((1, 3, 32, 32), np.uint8), "divide uint8 pixels by 255"),
        (lambda: np.zeros((1, 3, 32, 32), np.bool_), "astype(numpy.float32)"),
        (lambda: np.zeros((1, 3, 32, 32), np.complex64), "x.real.astype(numpy.float32)"),
        (lambda: np.zeros((1, 3, 32, 32), object), "object array holds Python objects"),
        (_structured, "structured or void array"),
        (lambda: np.zeros((1, 3, 32, 32), ">f4"), "x.astype(numpy.float32)"),
        (lambda: np.zeros((1, 3, 32, 32), "datetime64[s]"), "pass a float32 NumPy array"),
        (lambda: np.zeros((1, 3, 32, 32), "U1"), "pass a float32 NumPy array"),
    ],
    ids=["float64", "float16", "int32", "uint8", "bool", "complex64", "object", "structured", "big-endian",
         "datetime", "str"],
)
def test_input_dtypes_are_refused_with_a_hint(nets, make, hint):
    x = make()
    for m in nets.values():
        for fn in (m, m.forward_features):
            msg = raises(DTypeError, fn, x)
            assert "expected a float32 [N, C, H, W] array, got dtype" in msg and hint in msg, msg
            assert "never casts silently" in msg


@pytest.mark.parametrize(
    "value, exc",
    [("abc", DTypeError), (b"abc", DTypeError), (None, DTypeError), (3.5, DTypeError), (7, DTypeError),
     ({"x": 1}, DTypeError), (object(), DTypeError)],
    ids=["str", "bytes", "None", "float", "int", "dict", "object"],
)
def test_non_arrays_are_type_errors(nets, value, exc):
    for m in nets.values():
        raises(exc, m, value)
        raises(TypeError, m.get_output_shape, value)


@pytest.mark.parametrize("size", [(3, 8, 8), (3, 224, 224)])
def test_nested_lists_get_a_short_message_saying_how_to_pass_data(nets, size):
    data = np.zeros((1, *size), np.float32).tolist()
    for m in nets.values():
        msg = raises(DTypeError, m, data)
        assert len(msg) < 400, len(msg)
        assert "numpy.asarray(x, dtype=numpy.float32)" in msg and "characters)" in msg or len(str(data)) < 60


def layouts(base: np.ndarray, tmp_path):
    """(label, array): the values of `base` in every memory layout a user can hand over."""
    n, c, h, w = base.shape
    big = np.zeros((n, c, 2 * h, 3 * w), np.float32)
    big[:, :, ::2, ::3] = base
    flipped = np.ascontiguousarray(base[:, ::-1, ::-1, ::-1])[:, ::-1, ::-1, ::-1]
    raw = np.zeros(base.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=base.size, offset=1).reshape(base.shape)
    assert not unaligned.flags.aligned
    raw[1:] = np.frombuffer(base.tobytes(), np.uint8)
    readonly = base.copy()
    readonly.setflags(write=False)
    mm = np.memmap(tmp_path / "input.f32", dtype=np.float32, mode="w+", shape=base.shape)
    mm[...] = base
    mm.flush()
    mm_ro = np.memmap(tmp_path / "input.f32", dtype=np.float32, mode="r", shape=base.shape)
    return [
        ("slice", big[:, :, ::2, ::3]),
        ("transposed", np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)),
        ("channels_last", np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)),
        ("negative_strides", flipped),
        ("fortran", np.asfortranarray(base)),
        ("unaligned", unaligned),
        ("readonly", readonly),
        ("memmap", mm),
        ("memmap_readonly", mm_ro),
    ]


@pytest.mark.parametrize("name", SMALL)
def test_every_layout_is_bit_identical_and_never_written(nets, name, tmp_path):
    m = nets[name]
    base = make_input((2, 3, 36, 44), 8)
    want, want_feats = m(base), m.forward_features(base)
    want_feats = want_feats if isinstance(want_feats, list) else [want_feats]
    for label, x in layouts(base, tmp_path):
        before = x.tobytes()
        assert np.array_equal(np.asarray(x), base), label
        assert m(x).tobytes() == want.tobytes(), label
        feats = m.forward_features(x)
        for a, b in zip(feats if isinstance(feats, list) else [feats], want_feats):
            assert a.tobytes() == b.tobytes(), label
        assert x.tobytes() == before, f"{label}: the input was written"


@pytest.mark.parametrize("name", SMALL)
def test_zero_strides_broadcast_inputs(nets, name):
    m = nets[name]
    pixel = make_input((1, 3, 1, 1), 2)
    row = make_input((1, 3, 1, 40), 3)
    image = make_input((1, 3, 40, 40), 4)
    for x in (np.broadcast_to(pixel, (2, 3, 40, 40)), np.broadcast_to(row, (3, 3, 40, 40)),
              np.broadcast_to(image, (4, 3, 40, 40))):
        assert 0 in x.strides
        assert m(x).tobytes() == m(np.ascontiguousarray(x)).tobytes()


@pytest.mark.parity
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", SMALL)
def test_non_finite_values_propagate_as_torch_on_every_tier(tv_pairs, name, value, isa_tier):
    torch, _ = require_torchvision()
    tv, m = tv_pairs[name]
    x = make_input((3, 3, 48, 48), 12)
    x[0, 0, 5, 7] = value  # a single pixel: through conv1, ReLU and the max-pool's window
    x[1, :, 20:23, 30:33] = value  # a patch
    with torch.no_grad():
        ref = tv(torch.from_numpy(x)).numpy()
        stem = tv.maxpool(tv.relu(tv.bn1(tv.conv1(torch.from_numpy(x))))).numpy() if name == "resnet18" else None
    out = m(x)
    for mask in (np.isnan, np.isposinf, np.isneginf):
        assert np.array_equal(mask(out), mask(ref)), (isa_tier, mask.__name__)
    assert np.isfinite(out[2]).all() and np.isfinite(ref[2]).all()
    if stem is not None:
        ours = m.forward_features(x)[0]
        for mask in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(mask(ours), mask(stem)), (isa_tier, mask.__name__)
        assert 0 < np.sum(~np.isfinite(stem[0])) < stem[0].size


FP_ENV_CHILD = """
import numpy as np
tiny = np.array([np.finfo(np.float32).smallest_subnormal] * 8, np.float32)
def subnormals_work():
    # FTZ would flush the product, DAZ would read the subnormal operand as zero.
    return bool((tiny * np.float32(1.0) != 0).all() and (tiny + np.float32(0.0) != 0).all())
assert subnormals_work(), "subnormals already broken before importing pyflame_vision"
import pyflame_vision, pyflame_vision.models as models
assert subnormals_work(), "importing pyflame_vision changed the FP environment (FTZ/DAZ)"
m = models.resnet18()
m.init_weights(0)
m(np.ones((1, 3, 32, 32), np.float32))
assert subnormals_work(), "a forward changed the FP environment (FTZ/DAZ)"
print("ok")
"""


def test_the_fp_environment_is_left_alone():
    proc = subprocess.run([sys.executable, "-c", FP_ENV_CHILD], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# =============================================================================================
# Weight files: .safetensors


def st_file(header, data: bytes = b"", length: int | None = None) -> bytes:
    """A .safetensors image: 8-byte length, header (a dict, serialised, or raw str/bytes), data."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def f32(shape, begin, end):
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


def check_bad_weight_file(path, net, match=None):
    """Both readers refuse the file with a WeightsError (a ValueError) naming it; the model keeps its weights."""
    x = make_input((1, 3, 32, 32), 1)
    before, y = weights_bytes(net), net(x)
    msg = raises(WeightsError, read_weights, path, match=match)
    assert str(path) in msg, msg
    assert isinstance(WeightsError(""), ValueError)
    raises(WeightsError, load_weights, net, path, match=match)
    assert_unchanged(net, before, x, y)
    return msg


ST_FAULTS = {
    # short files
    "empty": (b"", "file is 0 bytes, expected at least 8"),
    "one_byte": (b"\x00", "file is 1 bytes"),
    "seven_bytes": (b"\x02\x00\x00\x00\x00\x00\x00", "file is 7 bytes"),
    # header length past the file or overflowing
    "length_past_file": (st_file("{}", length=1000), "exceeds the 2 bytes that follow it"),
    "length_one_past": (st_file("{}", length=3), "exceeds the 2 bytes that follow it"),
    "length_2_63": (st_file("{}", length=2**63), "exceeds the limit of 100000000 bytes"),
    "length_2_64_minus_1": (st_file("{}", length=2**64 - 1), "exceeds the limit"),
    # non-UTF-8, non-JSON, duplicate keys
    "non_utf8_name": (st_file(b'{"\xff\xfe":' + json.dumps(f32([1], 0, 4)).encode() + b"}", bytes(4)),
                      "invalid UTF-8"),
    "overlong_utf8": (st_file(b'{"\xc0\xaf":' + json.dumps(f32([1], 0, 4)).encode() + b"}", bytes(4)),
                      "invalid UTF-8"),
    "lone_surrogate_escape": (st_file('{"\\udc80":' + json.dumps(f32([1], 0, 4)) + "}", bytes(4)),
                              "unpaired low surrogate"),
    "not_json": (st_file("{a: 1}"), "malformed .safetensors header"),
    "json_array": (st_file("[]"), "the header is a JSON object"),
    "trailing_comma": (st_file('{"a":' + json.dumps(f32([1], 0, 4)) + ",}", bytes(4)), "malformed"),
    "duplicate_tensor": (st_file('{"a":' + json.dumps(f32([1], 0, 4)) + ',"a":' + json.dumps(f32([1], 4, 8)) + "}",
                                 bytes(8)), 'duplicate tensor name "a"'),
    "duplicate_metadata": (st_file('{"__metadata__":{},"__metadata__":{}}'), 'duplicate "__metadata__"'),
    "duplicate_field": (st_file('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)),
                        'duplicate "dtype"'),
    "float_in_shape": (st_file('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', bytes(4)),
                       "to be an integer"),
    "negative_in_shape": (st_file('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', bytes(4)),
                          "a non-negative integer"),
    "missing_offsets": (st_file('{"a":{"dtype":"F32","shape":[1]}}', bytes(4)), 'missing "data_offsets"'),
    "unknown_field": (st_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', bytes(4)),
                      'unexpected field "x"'),
    "metadata_not_str": (st_file('{"__metadata__":{"k":1}}'), "a string value for metadata key"),
    "junk_after_object": (st_file('{}{}'), "expected the end of the header"),
    # offsets: overlapping, gapped, backwards, out of range
    "overlapping": (st_file({"a": f32([2], 0, 8), "b": f32([2], 4, 12)}, bytes(12)), "tensors must not overlap"),
    "gap": (st_file({"a": f32([1], 0, 4), "b": f32([1], 8, 12)}, bytes(12)), "the data buffer must have no gaps"),
    "backwards": (st_file({"a": f32([1], 8, 4)}, bytes(8)), "end before they begin"),
    "out_of_range": (st_file({"a": f32([1], 0, 4), "b": f32([1], 4, 8)}, bytes(6)), "exceed the data buffer"),
    "offset_2_63": (st_file({"a": f32([1], 2**63 - 4, 2**63)}, bytes(4)), None),
    "offset_past_int64": (st_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}',
                                  bytes(4)), "does not fit in a signed 64-bit integer"),
    # trailing bytes
    "trailing_bytes": (st_file({"a": f32([1], 0, 4)}, bytes(5)), "the data buffer must have no unused bytes"),
    "trailing_kilobyte": (st_file({"a": f32([1], 0, 4)}, bytes(1028)), "no unused bytes"),
    # shape / dtype / byte length disagreement
    "shape_vs_bytes": (st_file({"a": f32([3], 0, 8)}, bytes(8)), "span 8 bytes, expected 12"),
    "dtype_vs_bytes": (st_file({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
                       "expected 8 for shape [1] of float64"),
    "empty_with_bytes": (st_file({"a": f32([0, 5], 0, 4)}, bytes(4)), "expected 0"),
    # overflowing shape products
    "shape_2_32_squared": (st_file({"a": f32([2**32, 2**32], 0, 4)}, bytes(4)), "more than 2^63 elements"),
    "bytes_overflow": (st_file({"a": f32([2**61, 2], 0, 4)}, bytes(4)), "larger than 2^63 bytes"),
    "many_dims": (st_file({"a": f32([2**16] * 5, 0, 4)}, bytes(4)), "more than 2^63 elements"),
    # unsupported dtypes
    "I8": (st_file({"a": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)), 'unsupported dtype "I8"'),
    "U16": (st_file({"a": {"dtype": "U16", "shape": [1], "data_offsets": [0, 2]}}, bytes(2)),
            'unsupported dtype "U16"'),
    "F8_E4M3": (st_file({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)),
                "unsupported dtype"),
    "C64": (st_file({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)), "unsupported dtype"),
    "lowercase_f32": (st_file({"a": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
                      "supported: F64, F32, F16, BF16, I64, I32, U8, BOOL"),
}
ST_CLASSES = {
    "short_files": ["empty", "one_byte", "seven_bytes"],
    "header_length": ["length_past_file", "length_one_past", "length_2_63", "length_2_64_minus_1"],
    "bad_header_text": ["non_utf8_name", "overlong_utf8", "lone_surrogate_escape", "not_json", "json_array",
                        "trailing_comma", "duplicate_tensor", "duplicate_metadata", "duplicate_field", "float_in_shape",
                        "negative_in_shape", "missing_offsets", "unknown_field", "metadata_not_str",
                        "junk_after_object"],
    "offsets": ["overlapping", "gap", "backwards", "out_of_range", "offset_2_63", "offset_past_int64"],
    "trailing_bytes": ["trailing_bytes", "trailing_kilobyte"],
    "size_disagreement": ["shape_vs_bytes", "dtype_vs_bytes", "empty_with_bytes"],
    "overflowing_shapes": ["shape_2_32_squared", "bytes_overflow", "many_dims"],
    "unsupported_dtypes": ["I8", "U16", "F8_E4M3", "C64", "lowercase_f32"],
}
assert sorted(sum(ST_CLASSES.values(), [])) == sorted(ST_FAULTS)


def _st_cases(cls):
    return [pytest.param(case, id=case) for case in ST_CLASSES[cls]]


def _check_st(tmp_path, net, case):
    data, match = ST_FAULTS[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(data)
    check_bad_weight_file(path, net, match)
    # Under another name the content decides: still a WeightsError, never a crash.
    other = tmp_path / f"{case}.bin"
    other.write_bytes(data)
    raises(WeightsError, read_weights, other)


@pytest.mark.parametrize("case", _st_cases("short_files"))
def test_safetensors_short_files(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("header_length"))
def test_safetensors_header_length_past_the_file_or_overflowing(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("bad_header_text"))
def test_safetensors_header_not_utf8_not_json_or_duplicate_keys(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("offsets"))
def test_safetensors_overlapping_gapped_backwards_out_of_range_offsets(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("trailing_bytes"))
def test_safetensors_trailing_bytes(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("size_disagreement"))
def test_safetensors_shape_dtype_length_disagreement(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("overflowing_shapes"))
def test_safetensors_overflowing_shape_products(tmp_path, net, case):
    _check_st(tmp_path, net, case)


@pytest.mark.parametrize("case", _st_cases("unsupported_dtypes"))
def test_safetensors_unsupported_dtypes(tmp_path, net, case):
    _check_st(tmp_path, net, case)


def test_safetensors_one_reader_for_both_languages(tmp_path, net):
    """Python reads .safetensors through the library's C++ reader: the `safetensors` package's leniencies (a
    duplicate key loads silently there) are WeightsErrors here, the same as from C++, and our files and the
    package's files are read by each other bit for bit."""
    from safetensors.numpy import load_file, save_file

    # Ours -> the package.
    ours = tmp_path / "ours.safetensors"
    save_weights(net, ours)
    theirs_view = load_file(str(ours))
    sd = net.state_dict()
    assert sorted(theirs_view) == sorted(sd)  # (the package returns them in data order, ours in header order)
    assert all(theirs_view[k].tobytes() == v.tobytes() and theirs_view[k].dtype == v.dtype for k, v in sd.items())
    # The package -> ours, every dtype both know.
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32), "f64": rng.standard_normal(5),
        "f16": rng.standard_normal((2, 2)).astype(np.float16), "i64": np.arange(-3, 3, dtype=np.int64),
        "i32": np.arange(7, dtype=np.int32), "u8": np.arange(9, dtype=np.uint8), "bool": np.array([True, False]),
        "scalar": np.array(3.5, np.float32), "empty": np.zeros((0, 3), np.float32),
    }
    pkg = tmp_path / "package.safetensors"
    save_file(arrays, str(pkg), metadata={"k": "v"})
    back = read_weights(pkg)
    assert sorted(back) == sorted(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and back[k].tobytes() == v.tobytes(), k
    # Our writer for arbitrary dicts (pyflame-vision convert) -> the package.
    mine = tmp_path / "mine.safetensors"
    pyflame_vision._core.save_safetensors(str(mine), arrays, {"k": "v"})
    again = load_file(str(mine))
    assert all(again[k].tobytes() == v.tobytes() for k, v in arrays.items())
    # A duplicate key: refused, with the file and the key named.
    dup = tmp_path / "dup.safetensors"
    header = '{"w":' + json.dumps(f32([1], 0, 4)) + ',"w":' + json.dumps(f32([1], 4, 8)) + "}"
    dup.write_bytes(st_file(header, bytes(8)))
    msg = raises(WeightsError, read_weights, dup, match='duplicate tensor name "w"')
    assert str(dup) in msg
    # Errors are WeightsError (also a ValueError), never the package's own exception types.
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError):
        read_weights(tmp_path / "junk.safetensors")


@pytest.mark.parametrize(
    "tensors, exc, match",
    [
        ({"": np.zeros(1, np.float32)}, InvalidArgumentError, "empty name"),
        ({"__metadata__": np.zeros(1, np.float32)}, InvalidArgumentError, "not a valid tensor name"),
        ({"a": np.zeros(1, np.complex64)}, DTypeError, "has dtype complex64"),
        ({"a": np.zeros(1, object)}, DTypeError, "has dtype object"),
        ({"a": [1.0, 2.0]}, DTypeError, "must be a NumPy array, got list"),
        ({3: np.zeros(1, np.float32)}, DTypeError, "keys must be str"),
    ],
    ids=["empty_name", "metadata_name", "complex", "object", "list", "int_key"],
)
def test_safetensors_writer_refuses_bad_input_before_writing(tmp_path, tensors, exc, match):
    path = tmp_path / "out.safetensors"
    raises(exc, pyflame_vision._core.save_safetensors, str(path), tensors, match=match)
    assert not path.exists() and not (tmp_path / "out.safetensors.tmp").exists()


@pytest.mark.parametrize("order", ["big", "fortran", "big_fortran", "sliced"])
def test_safetensors_writer_takes_any_layout_and_byte_order(tmp_path, order):
    from safetensors.numpy import load_file

    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 1.5
    x = {"big": base.astype(">f4"), "fortran": np.asfortranarray(base), "big_fortran": np.asfortranarray(base,
         dtype=">f4"), "sliced": np.repeat(base, 2, axis=2)[:, :, ::2]}[order]
    path = tmp_path / "o.safetensors"
    pyflame_vision._core.save_safetensors(str(path), {"x": x})
    got = load_file(str(path))["x"]
    assert got.dtype == np.float32 and np.array_equal(got, base)


# =============================================================================================
# Weight files: .npz


def npy_bytes(header: str | bytes, data: bytes = b"", version=(1, 0), header_len: int | None = None) -> bytes:
    """A .npy member: magic, version, header length, header, data (everything settable, for crafting)."""
    if isinstance(header, str):
        header = header.encode("latin1")
    size = len(header) if header_len is None else header_len
    length = struct.pack("<H", size) if version[0] == 1 else struct.pack("<I", size)
    return b"\x93NUMPY" + bytes(version) + length + header + data


def npy_header(descr="<f4", fortran=False, shape=(2,)) -> str:
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"


def npz_file(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


NPZ_FAULTS = {
    # object members
    "object_member": (lambda: _savez(x=np.array([{"a": 1}, None], dtype=object)), "holds Python objects"),
    "object_in_header": (lambda: npz_file({"x.npy": npy_bytes(npy_header("|O"), bytes(16))}), "holds Python objects"),
    "structured_member": (lambda: _savez(x=np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])), "structured dtype"),
    "subarray_descr": (lambda: npz_file({"x.npy": npy_bytes(npy_header("(2,)<f4"), bytes(16))}),
                       "not a float, integer or bool dtype"),
    "str_member": (lambda: _savez(x=np.array(["ab", "c"])), "not a float, integer or bool dtype"),
    # crafted .npy headers
    "bad_magic": (lambda: npz_file({"x.npy": b"\x93NUMPZ\x01\x00" + bytes(8)}), "expected the .npy magic"),
    "bad_version": (lambda: npz_file({"x.npy": npy_bytes(npy_header(), bytes(8), version=(9, 9))}),
                    "unsupported .npy format version 9.9"),
    "header_len_past_member": (lambda: npz_file({"x.npy": npy_bytes(npy_header(), header_len=60000)}),
                               "the member ends after"),
    "header_too_long": (lambda: npz_file({"x.npy": npy_bytes(" " * 10, version=(2, 0), header_len=2**31)}),
                        "more than the limit of 65536"),
    "header_not_literal": (lambda: npz_file({"x.npy": npy_bytes("__import__('os').system('true')", bytes(8))}),
                           "not a Python literal dict"),
    "header_not_dict": (lambda: npz_file({"x.npy": npy_bytes("[1, 2, 3]", bytes(8))}), "must be a dict"),
    "header_missing_key": (lambda: npz_file({"x.npy": npy_bytes("{'descr': '<f4', 'shape': (2,)}", bytes(8))}),
                           "exactly 'descr', 'fortran_order' and 'shape'"),
    "header_extra_key": (lambda: npz_file({"x.npy": npy_bytes(npy_header()[:-1] + "'x': 1}", bytes(8))}),
                         "exactly 'descr'"),
    "negative_shape": (lambda: npz_file({"x.npy": npy_bytes(npy_header(shape=(-2,)), bytes(8))}),
                       "shape must be a tuple of non-negative ints"),
    "float_shape": (lambda: npz_file({"x.npy": npy_bytes(npy_header(shape=(2.0,)), bytes(8))}),
                    "shape must be a tuple of non-negative ints"),
    "bool_in_shape": (lambda: npz_file({"x.npy": npy_bytes(npy_header(shape=(True,)), bytes(8))}),
                      "shape must be a tuple of non-negative ints"),
    "fortran_not_bool": (lambda: npz_file({"x.npy": npy_bytes(npy_header(fortran="'yes'"), bytes(8))}),
                         "fortran_order must be True or False"),
    "unknown_descr": (lambda: npz_file({"x.npy": npy_bytes(npy_header("<q9"), bytes(8))}), "is not a NumPy dtype"),
    "deep_nesting": (lambda: npz_file({"x.npy": npy_bytes("(" * 5000 + ")" * 5000, bytes(8))}),
                     "not a Python literal dict"),
    "huge_int": (lambda: npz_file({"x.npy": npy_bytes(npy_header()[:-6] + "(1" + "0" * 5000 + ",), }", bytes(8))}),
                 "not a Python literal dict"),
    "shape_too_big": (lambda: npz_file({"x.npy": npy_bytes(npy_header(shape=(2**40, 2**40)), bytes(8))}),
                      "larger than 2^63 bytes"),
    "declared_size_lies": (lambda: npz_file({"x.npy": npy_bytes(npy_header(shape=(100,)), bytes(8))}),
                           "but the archive declares"),
    "latin1_header_v3": (lambda: npz_file({"x.npy": npy_bytes(b"{'descr': '\xff'}", bytes(8), version=(3, 0))}),
                         "not valid UTF-8"),
    # zip faults
    "not_a_zip": (lambda: b"this is not a zip archive" * 10, "not a valid .npz file"),
    "truncated_zip": (lambda: _savez(a=np.arange(100, dtype=np.float32))[:-30], "not a valid .npz file"),
    "empty_file": (lambda: b"", "not a valid .npz file"),
    "not_npy_member": (lambda: npz_file({"readme.txt": b"hello"}), "expected only .npy members"),
    "bzip2_member": (lambda: npz_file({"x.npy": npy_bytes(npy_header(), bytes(8))}, zipfile.ZIP_BZIP2),
                     "uses ZIP compression method 12"),
    "crc_damaged": (lambda: _damage(_savez(a=np.arange(100, dtype=np.float32))), "Bad CRC-32"),
    "duplicate_member": (lambda: _duplicate(), "appears twice"),
    "encrypted_flag": (lambda: _encrypted(), "is encrypted"),
}
NPZ_CLASSES = {
    "object_members": ["object_member", "object_in_header", "structured_member", "subarray_descr", "str_member"],
    "crafted_headers": ["bad_magic", "bad_version", "header_len_past_member", "header_too_long", "header_not_literal",
                        "header_not_dict", "header_missing_key", "header_extra_key", "negative_shape", "float_shape",
                        "bool_in_shape", "fortran_not_bool", "unknown_descr", "deep_nesting", "huge_int",
                        "shape_too_big", "declared_size_lies", "latin1_header_v3"],
    "zip_faults": ["not_a_zip", "truncated_zip", "empty_file", "not_npy_member", "bzip2_member", "crc_damaged",
                   "duplicate_member", "encrypted_flag"],
}
assert sorted(sum(NPZ_CLASSES.values(), [])) == sorted(NPZ_FAULTS)


def _savez(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _damage(data: bytes) -> bytes:
    i = data.index(b"\x93NUMPY") + 200  # inside the stored array data
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


def _duplicate() -> bytes:
    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name"
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("a.npy", npy_bytes(npy_header(), bytes(8)))
            z.writestr("a.npy", npy_bytes(npy_header(), bytes(8)))
    return buf.getvalue()


def _encrypted() -> bytes:
    data = bytearray(npz_file({"a.npy": npy_bytes(npy_header(), bytes(8))}))
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set bit 0 of the general-purpose flags
        i = data.index(sig)
        data[i + off] |= 1
    return bytes(data)


def _check_npz(tmp_path, net, case):
    make, match = NPZ_FAULTS[case]
    path = tmp_path / f"{case}.npz"
    path.write_bytes(make())
    msg = check_bad_weight_file(path, net, match)
    assert len(msg) < 2000


@pytest.mark.parametrize("case", NPZ_CLASSES["object_members"])
def test_npz_object_and_non_numeric_members(tmp_path, net, case):
    _check_npz(tmp_path, net, case)


def test_npz_object_members_are_never_unpickled(tmp_path, net):
    sentinel = tmp_path / "sentinel"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([Payload()], dtype=object))
    assert not sentinel.exists()
    check_bad_weight_file(path, net, "never unpickles a weight file")
    assert not sentinel.exists()


@pytest.mark.parametrize("case", NPZ_CLASSES["crafted_headers"])
def test_npz_crafted_npy_headers(tmp_path, net, case):
    _check_npz(tmp_path, net, case)


@pytest.mark.parametrize("case", NPZ_CLASSES["zip_faults"])
def test_npz_zip_faults(tmp_path, net, case):
    _check_npz(tmp_path, net, case)


def deflate_bomb(path, key: str, shape: tuple, declared_size: int | None = None, header_shape: tuple | None = None
                 ) -> int:
    """Writes a .npz whose one member is a valid .npy of float32 zeros of `shape`, deflated (a few KB per MiB);
    returns the member's inflated size. `declared_size` overrides the size the ZIP directory declares (the CRC-32
    is then that of the declared bytes) and `header_shape` the shape the .npy header declares."""
    header = npy_header("<f4", False, header_shape or shape).encode("latin1")
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    nbytes = int(np.prod(shape)) * 4
    chunk = bytes(1 << 20)
    comp = zlib.compressobj(1, zlib.DEFLATED, -15)
    parts = [comp.compress(head), comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)]
    repeat = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)  # identical for every further MiB
    n_chunks = nbytes >> 20
    assert nbytes == n_chunks << 20 and n_chunks >= 3
    parts += [repeat] * (n_chunks - 2)
    parts.append(comp.flush())
    data = b"".join(parts)
    size = len(head) + nbytes
    usize = size if declared_size is None else declared_size
    crc32 = zlib.crc32(head[:usize])
    left = usize - len(head)
    while left > 0:
        crc32 = zlib.crc32(chunk[:left], crc32)
        left -= len(chunk)
    name = (key + ".npy").encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc32, len(data), usize, len(name), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc32, len(data), usize,
                          len(name), 0, 0, 0, 0, 0, 0)
    cd_offset = len(local) + len(name) + len(data)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    with open(path, "wb") as f:
        f.write(local + name + data + central + name + end)
    return size


BOMB_CHILD = """
import sys, time
import pyflame_vision, pyflame_vision.models as models
m = models.resnet18()
m.init_weights(0)
t = time.perf_counter()
try:
    {call}
except pyflame_vision.WeightsError as exc:
    print("refused", repr(str(exc)))
else:
    print("accepted", "yes")
print("seconds", time.perf_counter() - t)
# VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still counts the parent's (pytest's) peak.
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print("maxrss_mib", int(hwm.split()[1]) / 1024)
"""


def run_bomb(call: str) -> tuple[str, float, float]:
    proc = subprocess.run([sys.executable, "-c", BOMB_CHILD.format(call=call)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    return lines.get("refused", "accepted"), float(lines["seconds"]), float(lines["maxrss_mib"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status (Linux)")
@pytest.mark.parametrize("how", ["model_shape", "declared_size_lie", "member_longer_than_declared"])
def test_npz_deflate_bomb_is_refused_before_inflating(tmp_path, how):
    """A 9 MB member that inflates to 2 GiB (the issue's bomb: it took 11.6 s and 4.1 GB before failing on its shape)
    is refused from what it declares, in well under a second and without the memory."""
    path = tmp_path / "bomb.npz"
    if how == "model_shape":  # an honest bomb whose shape does not fit the model
        deflate_bomb(path, "fc.weight", (1 << 29,))
        call = f"pyflame_vision.load_weights(m, {str(path)!r})"
        want = "size mismatch for fc.weight: copying a param with shape [536870912] from checkpoint"
    elif how == "declared_size_lie":  # the ZIP directory declares 1 MiB, the .npy header 2 GiB
        deflate_bomb(path, "fc.weight", (1 << 29,), declared_size=1 << 20)
        call = f"pyflame_vision.read_weights({str(path)!r})"
        want = "but the archive declares 1048576 bytes for the member"
    else:  # header and directory declare [1000, 512], the deflated stream holds 2 GiB: inflation stops there
        deflate_bomb(path, "fc.weight", (1 << 29,), declared_size=128 + 1000 * 512 * 4, header_shape=(1000, 512))
        call = f"assert pyflame_vision.read_weights({str(path)!r})['fc.weight'].shape == (1000, 512)"
        want = "accepted"
    refused, seconds, rss = run_bomb(call)
    assert want in refused, refused
    assert seconds < 2.0, seconds
    assert rss < 400, rss  # the interpreter, numpy and the library; nowhere near the 2 GiB the member inflates to


@pytest.mark.parametrize("where", ["in_the_header", "in_the_data"])
def test_npz_corrupt_deflate_streams_are_weights_errors(tmp_path, net, where):
    """A deflated member whose DEFLATE stream is broken (found by the .npz fuzzer: zlib.error escaped from the reader)
    is a WeightsError naming the file and the member, whether the break is in its .npy header or in its data."""
    buf = io.BytesIO()
    np.savez_compressed(buf, w=np.arange(4096, dtype=np.float32))
    data = bytearray(buf.getvalue())
    name_len, extra_len = struct.unpack_from("<HH", data, 26)  # the member's local header
    start = 30 + name_len + extra_len
    if where == "in_the_header":  # a stored block whose LEN and NLEN disagree
        data[start:start + 5] = b"\x00\x05\x00\x05\x00"
    else:  # garbage in the middle of the compressed data (past the .npy header's bytes)
        data[start + 40:start + 48] = b"\xff" * 8
    path = tmp_path / f"corrupt_{where}.npz"
    path.write_bytes(bytes(data))
    before = weights_bytes(net)
    msg = raises(WeightsError, read_weights, path, match=str(path))
    assert "w.npy" in msg, msg
    if where == "in_the_header":
        assert "cannot be read: error: Error -3 while decompressing data: invalid stored block lengths" in msg, msg
    raises(WeightsError, load_weights, net, path)
    assert_unchanged(net, before)


@pytest.mark.parametrize("layout", ["big_endian", "fortran", "big_endian_fortran", "compressed"])
def test_npz_big_endian_and_fortran_members_read_correctly(tmp_path, net, layout):
    sd = net.state_dict()
    conv = {k: v for k, v in sd.items()}
    if "big" in layout:
        conv = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in conv.items()}
    if "fortran" in layout:
        conv = {k: np.asfortranarray(v) for k, v in conv.items()}
    path = tmp_path / f"{layout}.npz"
    (np.savez_compressed if layout == "compressed" else np.savez)(path, **conv)
    back = read_weights(path)
    assert list(back) == list(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and back[k].dtype.isnative and back[k].flags.c_contiguous, k
        assert back[k].tobytes() == v.tobytes(), k
    other = models.resnet18()
    load_weights(other, path)
    x = make_input((1, 3, 32, 32), 3)
    assert other(x).tobytes() == net(x).tobytes()


def test_npz_reader_agrees_with_numpy_on_valid_files(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"f16": rng.standard_normal((3, 5)).astype(np.float16), "f64": rng.standard_normal(7),
              "i8": np.arange(-4, 4, dtype=np.int8), "u16": np.arange(9, dtype=np.uint16),
              "bool": np.array([[True, False], [False, True]]), "scalar": np.array(2.5, np.float32),
              "empty": np.zeros((0, 4), np.float32), "a/b": np.ones(3, np.float32)}
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **arrays)
        ours = read_weights(path)
        with np.load(path, allow_pickle=False) as ref:
            assert list(ours) == list(ref.files)
            for k in ref.files:
                assert ours[k].dtype == ref[k].dtype and ours[k].shape == ref[k].shape, k
                assert np.array_equal(ours[k], ref[k]), k


# =============================================================================================
# Weight files: PyTorch checkpoints (.pth), crafted opcode by opcode (no torch needed)


class Pickle:
    """A pickle written opcode by opcode, the way torch.save lays out a state dict (protocol 2)."""

    def __init__(self, proto: int = 2) -> None:
        self.b = bytearray(b"\x80" + bytes([proto]))

    def raw(self, data: bytes) -> Pickle:
        self.b += data
        return self

    def glob(self, module: str | bytes, name: str | bytes) -> Pickle:
        m = module.encode() if isinstance(module, str) else module
        n = name.encode() if isinstance(name, str) else name
        return self.raw(b"c" + m + b"\n" + n + b"\n")

    def s(self, text: str) -> Pickle:
        data = text.encode("utf-8", "surrogatepass")
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def i(self, v: int) -> Pickle:
        return self.raw(b"J" + struct.pack("<i", v)) if -(2**31) <= v < 2**31 else self.raw(
            b"\x8a" + bytes([8]) + struct.pack("<q", v))

    def ints(self, vals) -> Pickle:
        self.raw(b"(")
        for v in vals:
            self.i(v)
        return self.raw(b"t")

    def tensor(self, key: str, numel: int, offset: int, size, stride, storage="FloatStorage") -> Pickle:
        self.glob("torch._utils", "_rebuild_tensor_v2").raw(b"(")
        self.raw(b"(").s("storage").glob("torch", storage).s(key).s("cpu").i(numel).raw(b"tQ")
        self.i(offset).ints(size).ints(stride).raw(b"\x89")
        self.glob("collections", "OrderedDict").raw(b")R")
        return self.raw(b"tR")

    def state_dict(self, entries) -> Pickle:
        """entries: (key, callback writing the value)."""
        self.raw(b"}(")
        for key, write in entries:
            self.s(key)
            write(self)
        return self.raw(b"u.")

    def bytes(self) -> bytes:
        return bytes(self.b)


def pth_zip(pkl: bytes, storages: dict[str, bytes], extra: dict[str, bytes] | None = None,
            method=zipfile.ZIP_STORED, version: str = "3\n", byteorder: str = "little") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", byteorder)
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
        z.writestr("archive/version", version)
    return buf.getvalue()


SIX = np.arange(6, dtype=np.float32).tobytes()


def _good_pth(**kwargs) -> bytes:
    return pth_zip(Pickle().state_dict([("w", lambda p: p.tensor("0", 6, 0, (2, 3), (3, 1)))]).bytes(), {"0": SIX},
                   **kwargs)


def good_pth() -> bytes:
    return _good_pth()


def test_the_crafted_checkpoint_is_valid(tmp_path):
    (tmp_path / "good.pth").write_bytes(good_pth())
    assert np.array_equal(read_weights(tmp_path / "good.pth")["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


def _call(module, name, *args):
    def write(p: Pickle):
        p.glob(module, name).raw(b"(")
        for a in args:
            p.s(a)
        p.raw(b"tR")
    return write


def _stack_global(module, name, *args):
    def write(p: Pickle):
        p.s(module).s(name).raw(b"\x93(")
        for a in args:
            p.s(a)
        p.raw(b"tR")
    return write


def _in_list(inner):
    def write(p: Pickle):
        p.raw(b"](")
        inner(p)
        p.raw(b"e")
    return write


MALICIOUS = {
    "os_system": (lambda s: _call("os", "system", f"touch {s}"), "global os.system is not allowed"),
    "posix_system": (lambda s: _call("posix", "system", f"touch {s}"), "global posix.system is not allowed"),
    "builtins_eval": (lambda s: _call("builtins", "eval", f"open({str(s)!r}, 'w')"), "global builtins.eval"),
    "builtin_exec_py2": (lambda s: _call("__builtin__", "exec", f"open({str(s)!r}, 'w')"), "global __builtin__.exec"),
    "builtins_getattr": (lambda s: _call("builtins", "getattr", "os", "system"), "global builtins.getattr"),
    "subprocess_popen": (lambda s: _call("subprocess", "Popen", "touch", str(s)), "global subprocess.Popen"),
    "torch_load": (lambda s: _call("torch", "load", str(s)), "global torch.load"),
    "torch_nn_module": (lambda s: _call("torch.nn.modules.module", "Module"), "global torch.nn.modules.module.Module"),
    "numpy_reconstruct": (lambda s: _call("numpy.core.multiarray", "_reconstruct", "x"),
                          "global numpy.core.multiarray._reconstruct"),
    "stack_global_system": (lambda s: _stack_global("os", "system", f"touch {s}"), "global os.system"),
    "nested_in_a_list": (lambda s: _in_list(_call("os", "system", f"touch {s}")), "global os.system"),
    "nul_in_name": (lambda s: _call(b"o\x00s", b"sys\x01tem"), "global o\\u0000s.sys\\u0001tem is not allowed"),
    "non_utf8_name": (lambda s: _call(b"\xff\xfe", b"x"), "is not allowed"),
    "inst_opcode": (lambda s: (lambda p: p.raw(b"(").s("touch").raw(b"ios\nsystem\n")),
                    "opcode 0x69 INST is not supported"),
    "obj_opcode": (lambda s: (lambda p: p.raw(b"(cos\nsystem\nS'x'\no")), "global os.system"),
    "ext1_opcode": (lambda s: (lambda p: p.raw(b"\x82\x01")), "opcode 0x82 EXT1 is not supported"),
    "newobj_opcode": (lambda s: (lambda p: p.glob("collections", "OrderedDict").raw(b")\x81")),
                      "opcode 0x81 NEWOBJ is not supported"),
    "build_on_a_global": (lambda s: (lambda p: p.glob("collections", "OrderedDict").raw(b"}b")),
                          "BUILD (setting an object's state) is only accepted on an OrderedDict"),
}


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_pth_malicious_globals_and_opcodes_never_run(tmp_path, net, case):
    sentinel = tmp_path / "sentinel"
    make, match = MALICIOUS[case]
    pkl = Pickle().state_dict([("w", lambda p: p.tensor("0", 6, 0, (6,), (1,))), ("x", make(sentinel))]).bytes()
    path = tmp_path / f"{case}.pth"
    path.write_bytes(pth_zip(pkl, {"0": SIX}))
    check_bad_weight_file(path, net, match)
    # The same payload as a legacy (non-zip) file's first pickle, and as a plain pickle.
    legacy = Pickle()
    make(sentinel)(legacy)
    (tmp_path / "plain.pth").write_bytes(legacy.raw(b".").bytes())
    raises(WeightsError, read_weights, tmp_path / "plain.pth")
    assert not sentinel.exists()


def _memo_flood(n):
    ops = np.zeros(n, dtype=[("op", "u1"), ("idx", "<u4")])
    ops["op"], ops["idx"] = ord("r"), np.arange(n)
    return b"\x80\x02N" + ops.tobytes() + b"."


def _laughs(levels):
    p = bytearray(b"\x80\x02]q\x00")
    for k in range(1, levels):  # each level is a list holding the previous one twice (by reference)
        p += b"(h" + bytes([k - 1]) + b"h" + bytes([k - 1]) + b"lq" + bytes([k])
    return bytes(p) + b"."


OPCODE_ABUSE = {
    "memo_flood": (_memo_flood((1 << 22) + 1), "more than 4194304 memo entries"),
    "dup_flood": (b"\x80\x02N" + b"2" * ((1 << 20) + 1) + b".", "stack deeper than 1048576 values"),
    "deep_lists": (b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b".", "nested deeper than 1000 levels"),
    "deep_dicts": (b"\x80\x02" + b"}" * 5000 + b"N" + b"s" * 4999 + b".", None),
    "many_marks": (b"\x80\x02" + b"(" * 100000 + b".", "more than 65536 nested MARKs"),
    "long4_huge": (b"\x80\x02\x8b\xff\xff\xff\x7f.", "bytes of a long integer, but only 1 remain"),
    "binunicode8_2_62": (b"\x80\x04\x8d" + (2**62).to_bytes(8, "little") + b"abc.", "but only 4 remain"),
    "frame_lies": (b"\x80\x04\x95" + (2**40).to_bytes(8, "little") + b"N.", "a frame of 1099511627776 bytes"),
    "billion_laughs": (_laughs(40), "expected a state dict"),
    "self_reference": (b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.", "expected a state dict"),
    "unhashable_key": (b"\x80\x02}]Ns.", "unhashable type 'list' used as a dict key"),
    "memo_read_before_write": (b"\x80\x02h\x07.", "memo entry 7 is read before it is written"),
    "pop_empty": (b"\x80\x020.", "POP on an empty stack"),
    "stop_on_empty": (b"\x80\x02.", "expected a value on the stack"),
    "garbage": (bytes(range(256)) * 4, "pickle error at byte"),
    "no_stop": (b"\x80\x02N" * 1000, "pickle error at byte"),
}


@pytest.mark.parametrize("case", list(OPCODE_ABUSE))
def test_pth_opcode_abuse_fails_in_bounded_time(tmp_path, net, case):
    pkl, match = OPCODE_ABUSE[case]
    path = tmp_path / f"{case}.pth"
    path.write_bytes(pth_zip(pkl, {}))
    t = time.perf_counter()
    check_bad_weight_file(path, net, match)
    # Two reads and two loads, each well under a second (an ASan build of the extension is several times slower).
    assert time.perf_counter() - t < (60.0 if os.environ.get("PYFLAME_VISION_SANITIZED") else 10.0)


VIEWS = {
    "offset_past_end": (("0", 6, 2, (5,), (1,)), "reads element 6 of float32, past the end of storage"),
    "stride_past_end": (("0", 6, 0, (2, 3), (4, 1)), "past the end of storage"),
    "size_past_end": (("0", 6, 0, (7,), (1,)), "past the end of storage"),
    "negative_stride": (("0", 6, 5, (6,), (-1,)), "must not be negative"),
    "negative_offset": (("0", 6, -1, (2,), (1,)), "negative storage offset -1"),
    "rank_mismatch": (("0", 6, 0, (2, 3), (1,)), "have different lengths"),
    "stride_overflow": (("0", 6, 0, (3, 3), (2**62, 2**62)), "overflows 64-bit arithmetic"),
    "storage_bigger_than_record": (("0", 10**9, 0, (6,), (1,)), "declares 1000000000 x FloatStorage"),
    "int64_view_of_float_storage": (("0", 6, 0, (6,), (1,), "LongStorage"), "holds 24 bytes"),
}


@pytest.mark.parametrize("case", list(VIEWS))
def test_pth_storage_views_that_read_past_their_storage(tmp_path, net, case):
    args, match = VIEWS[case]
    pkl = Pickle().state_dict([("w", lambda p: p.tensor(*args))]).bytes()
    path = tmp_path / f"{case}.pth"
    path.write_bytes(pth_zip(pkl, {"0": SIX}))
    check_bad_weight_file(path, net, match)


@pytest.mark.parametrize("case", ["fixture", "constants_pkl", "code_dir"])
def test_pth_torchscript_archives_are_refused_with_advice(tmp_path, net, case):
    if case == "fixture":
        path = ROOT / "tests" / "cpp" / "data" / "pth" / "torchscript.pt"
    else:
        extra = {"archive/constants.pkl": b"\x80\x02).", } if case == "constants_pkl" else {
            "archive/code/__torch__.py": b"def forward(self): pass\n"}
        path = tmp_path / f"{case}.pt"
        path.write_bytes(pth_zip(Pickle().raw(b"}.").bytes(), {}, extra))
    x = make_input((1, 3, 32, 32))
    before, y = weights_bytes(net), net(x)
    msg = raises(WeightsError, read_weights, path, match="a TorchScript archive")
    assert "save model.state_dict() instead" in msg and str(path) in msg
    raises(WeightsError, load_weights, net, path)
    assert_unchanged(net, before, x, y)


def _zip_edit(data: bytes, sig: bytes, offset: int, value: bytes, nth: int = 0) -> bytes:
    i = -1
    for _ in range(nth + 1):
        i = data.index(sig, i + 1)
    return data[:i + offset] + value + data[i + offset + len(value):]


def _flip(data: bytes, needle: bytes, delta: int = 0) -> bytes:
    i = data.index(needle) + delta
    return data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1:]


PTH_ZIP = {
    "truncated_end": (lambda g: g[:-1], "malformed ZIP archive"),
    "truncated_half": (lambda g: g[: len(g) // 2], "no end-of-central-directory record"),
    "truncated_directory": (lambda g: g[: len(g) - 40], "malformed ZIP archive"),
    "crc_damaged_pickle": (lambda g: _flip(g, b"_rebuild_tensor_v2"), "is damaged"),
    "crc_damaged_storage": (lambda g: _flip(g, SIX, 5), "record archive/data/0 is damaged"),
    "compressed": (lambda g: pth_zip(Pickle().state_dict([("w", lambda p: p.tensor("0", 6, 0, (6,), (1,)))]).bytes(),
                                     {"0": SIX}, method=zipfile.ZIP_DEFLATED), "is compressed (method 8, deflate)"),
    "duplicate_names": (lambda g: _duplicate_pth(), "duplicate entry name"),
    "no_data_pkl": (lambda g: npz_file({"archive/other": b"x"}), "a ZIP archive without data.pkl"),
    "two_pickles": (lambda g: pth_zip(Pickle().raw(b"}.").bytes(), {}, {"other/data.pkl": b"\x80\x02}."}),
                    "the archive has two pickles"),
    "bad_version": (lambda g: _good_pth(version="99"), "expected a format version from 1 to 10"),
    "bad_byteorder": (lambda g: _good_pth(byteorder="middle"), 'expected "little" or "big"'),
    "local_signature": (lambda g: _zip_edit(g, b"PK\x03\x04", 0, b"PK\x03\x05", nth=2),
                        "expected the local header signature"),
    "central_count_lies": (lambda g: _zip_edit(g, b"PK\x05\x06", 8, struct.pack("<HH", 9000, 9000)),
                           "more than a central directory of"),
    "directory_offset_past_end": (lambda g: _zip_edit(g, b"PK\x05\x06", 16, struct.pack("<I", 2**31)),
                                  "extends past the end records"),
    "missing_storage_record": (lambda g: pth_zip(Pickle().state_dict([("w", lambda p: p.tensor("7", 6, 0, (6,), (1,)))
                                                                      ]).bytes(), {"0": SIX}),
                               'storage "7" (FloatStorage) has no record archive/data/7'),
    "encrypted_flag": (lambda g: _zip_edit(_zip_edit(g, b"PK\x01\x02", 8, b"\x01"), b"PK\x03\x04", 6, b"\x01"),
                       "is encrypted"),
}


def _duplicate_pth() -> bytes:
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", b"\x80\x02}.")
            z.writestr("archive/data.pkl", b"\x80\x02}.")
    return buf.getvalue()


@pytest.mark.parametrize("case", list(PTH_ZIP))
def test_pth_zip_faults(tmp_path, net, case):
    make, match = PTH_ZIP[case]
    path = tmp_path / f"{case}.pth"
    path.write_bytes(make(good_pth()))
    check_bad_weight_file(path, net, match)


STATE_DICT_LOCATION = {
    "top_level_list": (Pickle().raw(b"].").bytes(), "expected a state dict (a dict of tensors)"),
    "int_value": (Pickle().state_dict([("w", lambda p: p.i(3))]).bytes(), "its value for \"w\" is an int"),
    "nested_dict": (Pickle().raw(b"}").s("model").raw(b"}").s("w").raw(b"Nss.").bytes(),
                    'under "model"' if False else "expected a state dict"),
    "int_key": (Pickle().raw(b"}").i(1).raw(b"Ns.").bytes(), "found the key 1"),
    "empty_state_dict": (Pickle().raw(b"}.").bytes(), "Missing key(s) in state_dict"),
}


@pytest.mark.parametrize("case", list(STATE_DICT_LOCATION))
def test_pth_state_dict_not_where_it_is_looked_for(tmp_path, net, case):
    pkl, match = STATE_DICT_LOCATION[case]
    path = tmp_path / f"{case}.pth"
    path.write_bytes(pth_zip(pkl, {}))
    x = make_input((1, 3, 32, 32))
    before, y = weights_bytes(net), net(x)
    if case == "empty_state_dict":  # a valid empty state dict: read, then refused by the model
        assert read_weights(path) == {}
    else:
        raises(WeightsError, read_weights, path, match=match)
    raises(WeightsError, load_weights, net, path, match=None if case != "empty_state_dict" else match)
    assert_unchanged(net, before, x, y)


# =============================================================================================
# State dicts


@pytest.mark.parity
@pytest.mark.parametrize("change", ["missing", "unexpected", "mis_shaped", "all_three"])
def test_state_dict_problems_are_aggregated_as_torch_does(tv_pairs, change):
    """Every missing, unexpected and mis-shaped key in one WeightsError (a RuntimeError, as torch's), listing the
    same keys as torch's message; the model keeps its weights."""
    torch, _ = require_torchvision()
    tv, m = tv_pairs["resnet18"]
    sd = numpy_state_dict(tv)
    if change in ("missing", "all_three"):
        for k in ("layer1.0.conv1.weight", "bn1.running_var", "fc.bias"):
            del sd[k]
    if change in ("unexpected", "all_three"):
        sd["extra.weight"] = np.zeros(3, np.float32)
        sd["module.conv1.weight"] = np.zeros(3, np.float32)
    if change in ("mis_shaped", "all_three"):
        sd["fc.weight"] = np.zeros((10, 512), np.float32)
        sd["layer4.1.bn2.bias"] = np.zeros(7, np.float32)
    x = make_input((1, 3, 32, 32))
    before, y = weights_bytes(m), m(x)
    ours = raises(WeightsError, m.load_state_dict, sd)
    assert isinstance(WeightsError(""), RuntimeError)
    with pytest.raises(RuntimeError) as theirs:
        tv.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()})

    def keys(msg, section):
        found = re.search(section + r": (.*?)\. ", msg)
        return sorted(re.findall(r'"([^"]+)"', found.group(1))) if found else []

    for section in (r"Missing key\(s\) in state_dict", r"Unexpected key\(s\) in state_dict"):
        assert keys(ours, section) == keys(str(theirs.value), section), section
    assert sorted(re.findall(r"size mismatch for ([\w.]+)", ours)) == sorted(
        re.findall(r"size mismatch for ([\w.]+)", str(theirs.value)))
    assert "The model's previous weights are unchanged." in ours
    assert_unchanged(m, before, x, y)


@pytest.mark.parametrize(
    "value, exc, match",
    [
        (np.zeros(64 * 3 * 49, np.complex64).reshape(64, 3, 7, 7), DTypeError, "must be a float or integer array"),
        (np.zeros((64, 3, 7, 7), object), DTypeError, "must be a float or integer array, got dtype object"),
        (np.zeros((64, 3, 7, 7), "U2"), DTypeError, "got dtype <U2"),
        (np.zeros((64, 3, 7, 7), "datetime64[s]"), DTypeError, "got dtype datetime64[s]"),
        (np.zeros((64, 3, 7, 7), np.bool_), DTypeError, "got dtype bool"),
        (np.full((64, 3, 7, 7), 2**63, np.uint64), DTypeError, "values above 2**63 - 1"),
        ([[["not a number"]]], DTypeError, "must be a float or integer array"),
        ({"a": 1}, DTypeError, "must be a float or integer array, got dtype object"),
    ],
    ids=["complex", "object", "str", "datetime", "bool", "uint64_overflow", "nested_str_list", "dict"],
)
def test_state_dict_wrong_dtypes(net, value, exc, match):
    sd = net.state_dict()
    sd["conv1.weight"] = value
    x = make_input((1, 3, 32, 32))
    before, y = weights_bytes(net), net(x)
    msg = raises(exc, net.load_state_dict, sd, match=match)
    assert "'conv1.weight'" in msg
    assert_unchanged(net, before, x, y)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.int64, np.uint8, ">f4", ">f8"])
def test_state_dict_convertible_dtypes_load_as_torch_copies(dtype):
    """float and integer values convert to the model's float32 as torch's param.copy_() does."""
    m = models.resnet18()
    m.init_weights(0)
    sd = m.state_dict()
    conv = (np.arange(64 * 3 * 49) % 7).reshape(64, 3, 7, 7).astype(dtype)
    sd["conv1.weight"] = conv
    m.load_state_dict(sd)
    assert np.array_equal(m.state_dict()["conv1.weight"], conv.astype(np.float32))


@pytest.mark.parametrize(
    "state, exc, match",
    [
        ([("conv1.weight", np.zeros(1))], DTypeError, "expects a mapping of names to arrays, got list"),
        ("conv1.weight", DTypeError, "expects a mapping of names to arrays, got str"),
        ({1: np.zeros(1)}, DTypeError, "keys must be str, got int"),
        ({b"conv1.weight": np.zeros(1)}, DTypeError, "keys must be str, got bytes"),
        ({"a\udc80": np.zeros(1)}, DTypeError, "cannot be encoded as UTF-8"),
        ({"a\x00b": np.zeros(1)}, WeightsError, 'Unexpected key(s) in state_dict: "a\\u0000b"'),
        ({"x" * 100000: np.zeros(1)}, WeightsError, "Unexpected key(s) in state_dict"),
    ],
    ids=["list", "str", "int_key", "bytes_key", "surrogate_key", "nul_key", "huge_key"],
)
def test_state_dict_bad_containers_and_keys(net, state, exc, match):
    if isinstance(state, dict) and exc is WeightsError:
        state = {**net.state_dict(), **state}
    x = make_input((1, 3, 32, 32))
    before, y = weights_bytes(net), net(x)
    msg = raises(exc, net.load_state_dict, state, match=match)
    assert len(msg) < 6000
    assert_unchanged(net, before, x, y)


class BadMapping(collections.abc.Mapping):
    """A mapping whose values fail at the n-th item (a generator dying half-way, an array that cannot convert)."""

    def __init__(self, sd, fail_at):
        self.sd, self.fail_at = sd, fail_at

    def __getitem__(self, k):
        return self.sd[k]

    def __len__(self):
        return len(self.sd)

    def __iter__(self):
        return iter(self.sd)

    def items(self):
        for i, kv in enumerate(self.sd.items()):
            if i == self.fail_at:
                raise RuntimeError("the source died half-way")
            yield kv


@pytest.mark.parametrize("where", ["first", "middle", "last", "bad_value_last", "no_weights_model"])
def test_state_dict_failed_load_changes_nothing(net, where):
    x = make_input((1, 3, 32, 32))
    before, y = weights_bytes(net), net(x)
    new = models.resnet18()
    new.init_weights(seed=99)
    sd = new.state_dict()
    n = len(sd)
    if where == "bad_value_last":
        sd[list(sd)[-1]] = np.zeros((2, 2), np.complex64)
        raises(DTypeError, net.load_state_dict, sd)
    elif where == "no_weights_model":
        empty = models.resnet18()
        sd["fc.weight"] = np.zeros((3, 3), np.float32)
        raises(WeightsError, empty.load_state_dict, sd)
        assert not empty.has_weights
        raises(WeightsError, empty, x, match="has no weights")
        return
    else:
        fail_at = {"first": 0, "middle": n // 2, "last": n - 1}[where]
        with pytest.raises(RuntimeError, match="the source died half-way"):
            net.load_state_dict(BadMapping(sd, fail_at))
    assert_unchanged(net, before, x, y)


# =============================================================================================
# Concurrency and lifetime


MIXED_SHAPES = [(1, 3, 32, 32), (2, 3, 40, 48), (3, 3, 64, 64), (1, 3, 56, 40)]


@pytest.mark.parametrize("name", SMALL)
def test_32_threads_with_mixed_shapes_are_bit_identical(name):
    m = getattr(models, name)()
    m.init_weights(seed=4)
    inputs = [make_input(s, i) for i, s in enumerate(MIXED_SHAPES)]
    want = [m(x).tobytes() for x in inputs]  # single-threaded reference

    def worker(t):
        got = []
        for k in range(len(inputs)):
            i = (t + k) % len(inputs)  # every thread runs every shape, starting at a different one
            got.append((i, m(inputs[i]).tobytes()))
        return got

    with ThreadPoolExecutor(32) as ex:
        results = list(ex.map(worker, range(32)))
    calls = [r for rs in results for r in rs]
    assert len(calls) == 32 * len(inputs)
    assert all(out == want[i] for i, out in calls)


def race(model, mutate, n_mutations, x, allowed):
    """8 threads run forwards while `mutate(k)` runs n_mutations times; every output must be bit-identical to one
    of `allowed` (the whole old model or the whole new one). Returns the number of forwards run."""
    stop = threading.Event()
    seen, errors = [], []

    def forward():
        while not stop.is_set():
            try:
                out = model(x).tobytes()
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)
                return
            seen.append(out in allowed)

    threads = [threading.Thread(target=forward) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for k in range(n_mutations):
            mutate(k)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a forward thread hung"
    assert not errors, errors[0]
    assert seen and all(seen), f"{seen.count(False)} of {len(seen)} forwards saw torn weights"
    return len(seen)


@pytest.mark.parametrize("mutator", ["load_state_dict", "init_weights", "load_weights_safetensors",
                                     "load_weights_npz", "set_num_threads"])
def test_mutators_racing_8_forward_threads(tmp_path, mutator):
    m = models.resnet18()
    a, b = models.resnet18(), models.resnet18()
    a.init_weights(seed=10)
    b.init_weights(seed=11)
    x = make_input((2, 3, 48, 48), 5)
    sd = [a.state_dict(), b.state_dict()]
    m.load_state_dict(sd[0])
    outs = {a(x).tobytes(), b(x).tobytes()}
    files = {}
    for ext in (".safetensors", ".npz"):
        for i, src in enumerate((a, b)):
            files[ext, i] = tmp_path / f"{i}{ext}"
            save_weights(src, files[ext, i])
    threads = pyflame_vision.get_num_threads()
    mutate = {
        "load_state_dict": lambda k: m.load_state_dict(sd[k % 2]),
        "init_weights": lambda k: m.init_weights(seed=10 + k % 2),
        "load_weights_safetensors": lambda k: load_weights(m, files[".safetensors", k % 2]),
        "load_weights_npz": lambda k: load_weights(m, files[".npz", k % 2]),
        "set_num_threads": lambda k: pyflame_vision.set_num_threads(1 + k % 2),
    }[mutator]
    if mutator == "set_num_threads":
        outs = {a(x).tobytes()}  # the weights stay; the thread count never changes results
    try:  # (each mutation makes the next forwards repack the weights: a few per test keep it short)
        n = race(m, mutate, 4 if mutator == "init_weights" else 12, x, outs)
    finally:
        pyflame_vision.set_num_threads(threads)
    assert n >= 8


def test_remove_fc_racing_8_forward_threads():
    """remove_fc (a structural change) while 8 threads run forwards: each forward is the whole model's logits or
    the whole headless model's features, never a mix, an error or a crash; the model keeps working after."""
    for seed in range(4):
        m = models.resnet18()
        m.init_weights(seed=20 + seed)
        x = make_input((2, 3, 48, 48), 6)
        headless = models.resnet18()
        headless.load_state_dict(m.state_dict())
        headless.remove_fc()
        outs = {m(x).tobytes(), headless(x).tobytes()}
        race(m, lambda k, m=m: m.remove_fc(), 1, x, outs)
        assert m(x).tobytes() == headless(x).tobytes()


def test_del_model_while_another_thread_is_inside_forward():
    m = models.resnet18()
    m.init_weights(seed=2)
    x = make_input((8, 3, 96, 96), 6)
    want = m(x).tobytes()
    started, result = threading.Event(), []

    def run(model):
        started.set()
        result.append(model(x).tobytes())

    t = threading.Thread(target=run, args=(m,))
    t.start()
    started.wait()
    del m  # the running call holds the model; the last reference goes when it returns
    gc.collect()
    t.join(timeout=120)
    assert not t.is_alive() and result == [want]


# =============================================================================================
# Process level


def _mp_init(path):
    global _MP_MODEL
    _MP_MODEL = models.resnet18()
    load_weights(_MP_MODEL, path)


def _mp_forward(x):
    return _MP_MODEL(x)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_maps_the_model_over_arrays(tmp_path, method):
    """Arrays that went through pickle (multiprocessing, Dask) are float32 for us too (the dtype check once compared
    identities and refused every one); results equal the parent's bit for bit. With fork, the parent has already run
    the thread pool."""
    m = models.resnet18()
    m.init_weights(seed=8)
    path = tmp_path / "w.safetensors"
    save_weights(m, path)
    xs = [make_input((2, 3, 40, 40), i) for i in range(6)]
    want = [m(x).tobytes() for x in xs]
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2, initializer=_mp_init, initargs=(str(path),)) as pool:
        got = pool.map_async(_mp_forward, xs).get(timeout=240)
    assert [g.tobytes() for g in got] == want


def _pool_workers() -> int:
    """The pool's worker threads in this process (named "pyflame_vision"; NumPy's BLAS may have threads too)."""
    names = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/comm") as f:
            names.append(f.read().strip())
    return names.count("pyflame_vision")


def _mp_init_threads(path, threads):
    _mp_init(path)
    pyflame_vision.set_num_threads(threads)


def _mp_forward_counting_threads(x):
    return _MP_MODEL(x), pyflame_vision.get_num_threads(), _pool_workers() + 1


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("threads", [1, 3])
def test_multiprocessing_children_run_on_their_own_pool(tmp_path, method, threads):
    """A child process (fork after the parent's pool ran, spawn, forkserver) that sets its own thread count runs its
    forwards on a pool of that size: no hang (the fork case hung in pthread_cond_broadcast), not one thread."""
    pyflame_vision.set_num_threads(2)
    m = models.resnet18()
    m.init_weights(seed=8)
    path = tmp_path / "w.safetensors"
    save_weights(m, path)
    xs = [make_input((2, 3, 40, 40), i) for i in range(4)]
    want = [m(x).tobytes() for x in xs]
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2, initializer=_mp_init_threads, initargs=(str(path), threads)) as pool:
        got = pool.map_async(_mp_forward_counting_threads, xs).get(timeout=240)
    assert [g[0].tobytes() for g in got] == want
    assert {(g[1], g[2]) for g in got} == {(threads, threads)}  # the pool's workers and the child's main thread


def _fork_and_wait(child, timeout=120.0) -> int:
    """Runs child() in a forked process (its return value is the exit code); returns that code. A child that has
    not finished within `timeout` is killed and fails the test."""
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process (our pool) may deadlock: what this test checks.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = child()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WIFEXITED(status), f"the child died of signal {os.WTERMSIG(status)}"
            return os.WEXITSTATUS(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung (killed after {timeout:.0f} s)")


@pytest.mark.parametrize("child_threads", [None, 1, 3, 4])
def test_os_fork_after_the_pool_ran(child_threads):
    """os.fork() after forwards on 2 threads; in the child, optionally set_num_threads(n), then forward: the result is
    the parent's bit for bit, on exactly get_num_threads() threads (the pool is rebuilt in the child), no hang."""
    pyflame_vision.set_num_threads(2)
    m = models.resnet18()
    m.init_weights(seed=3)
    x = make_input((2, 3, 48, 48), 1)
    want = m(x).tobytes()

    def child():
        if child_threads is not None:
            pyflame_vision.set_num_threads(child_threads)
        threads = pyflame_vision.get_num_threads()
        ok = m(x).tobytes() == want and m(x).tobytes() == want
        return (0 if ok else 1) | (0 if _pool_workers() == threads - 1 else 2)

    assert _fork_and_wait(child) == 0, "1: wrong output, 2: the child did not run on its configured thread count"
    assert m(x).tobytes() == want  # the parent's pool is untouched


_POOL_WORKERS = """
def pool_workers():
    names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
    return names.count("pyflame_vision")
"""

_ENV_THREADS_SCRIPT = """
import os, sys, numpy as np, pyflame_vision, pyflame_vision.models as models
""" + _POOL_WORKERS + """
m = models.resnet18(); m.init_weights(seed=1)
x = np.zeros((1, 3, 32, 32), np.float32)
try:
    m(x)
except pyflame_vision.InvalidArgumentError as e:
    assert isinstance(e, ValueError), type(e).__mro__
    print("ERROR", e, "| pool workers:", pool_workers())
    sys.exit(0)
print("RAN on", pyflame_vision.get_num_threads(), "| pool workers:", pool_workers())
"""


@pytest.mark.parametrize("value", ["100000", "4097", "0", "-2", "2.5", "abc", "1e3", "99999999999"])
def test_nonsense_num_threads_variable_is_a_clear_error(value):
    """PYFLAME_VISION_NUM_THREADS outside 1..4096 (the setter's cap) or not an integer: every forward raises
    InvalidArgumentError naming the variable, the range and the value; no thread is started."""
    env = {**os.environ, "PYFLAME_VISION_NUM_THREADS": value}
    r = subprocess.run([sys.executable, "-c", _ENV_THREADS_SCRIPT], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ERROR"), r.stdout
    assert f'PYFLAME_VISION_NUM_THREADS: expected an integer from 1 to 4096, got "{value}"' in r.stdout
    assert r.stdout.rstrip().endswith("pool workers: 0"), r.stdout


def test_valid_num_threads_variable_is_used():
    env = {**os.environ, "PYFLAME_VISION_NUM_THREADS": " 3 "}
    r = subprocess.run([sys.executable, "-c", _ENV_THREADS_SCRIPT], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "RAN on 3 | pool workers: 2", r.stdout


_THREAD_LIMIT_SCRIPT = """
import os, resource, numpy as np, pyflame_vision, pyflame_vision.models as models
""" + _POOL_WORKERS + """
alive = pool_workers
pyflame_vision.set_num_threads(2)
m = models.resnet18(); m.init_weights(seed=1)
x = np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)
want = m(x).tobytes()
pyflame_vision.set_num_threads(1)
m(x)
assert alive() == 0, alive()
# Address space for about 12 more thread stacks (8 MiB each): thread 13 or so cannot start.
size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + (100 << 20), resource.RLIM_INFINITY))
pyflame_vision.set_num_threads(4096)
for attempt in range(2):
    try:
        m(x)
        raise SystemExit("4096 threads started under the limit")
    except pyflame_vision.PyflameVisionError as e:
        assert type(e) is pyflame_vision.PyflameVisionError, type(e).__mro__  # the library's base error type
        assert "could not start worker thread" in str(e) and "of 4095" in str(e), e
        assert alive() == 0, f"{alive()} pool threads left alive"
        msg = str(e)
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
pyflame_vision.set_num_threads(3)
assert m(x).tobytes() == want
assert alive() == 2, alive()
print(msg)
"""


def test_thread_creation_failure_is_an_error_and_leaves_no_threads_or_busy_pool():
    """The system refuses the threads (here: an address-space limit leaves room for about 12 stacks of 4095): the
    forward raises PyflameVisionError (the base class: not a bad argument, not memory) saying so, the threads already
    started are stopped (none leak), and after a smaller set_num_threads the pool runs on that many threads again
    (it was once left busy: single-threaded)."""
    if os.environ.get("PYFLAME_VISION_SANITIZED"):
        pytest.skip("RLIMIT_AS cannot be set under ASan (its shadow memory is terabytes of address space)")
    r = subprocess.run([sys.executable, "-c", _THREAD_LIMIT_SCRIPT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "could not start worker thread" in r.stdout


def _interrupt_main_after(delay: float, sent: list) -> threading.Thread:
    """A thread that sends SIGINT to the main thread after `delay` seconds, recording when in `sent`."""

    def send():
        time.sleep(delay)
        sent.append(time.perf_counter())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    t = threading.Thread(target=send)
    t.start()
    return t


def test_ctrl_c_during_a_long_forward_raises_keyboard_interrupt_within_100_ms():
    """Ctrl-C during a forward of resnet152 on a batch of 64 (224x224: about 20 s on 2 cores) raises
    KeyboardInterrupt within 100 ms of the signal (it was only seen when the forward ended, 3-8 s later), at several
    points of the forward; the model then gives the same results as before. The latencies are printed (README)."""
    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        m = models.resnet152()
        m.init_weights(seed=1)
        small = make_input((1, 3, 64, 64), 0)
        want = m(small).tobytes()
        x = make_input((64, 3, 224, 224), 1)
        pyflame_vision._core.bench.executed_macs(m, list(x.shape))  # compile and pack first: the run is timed
        latencies = []
        for delay in (0.3, 1.0, 2.5):
            sent = []
            sender = _interrupt_main_after(delay, sent)
            start = time.perf_counter()
            with pytest.raises(KeyboardInterrupt):
                m(x)
            caught = time.perf_counter()
            sender.join()
            assert sent and sent[0] - start >= delay * 0.9
            latencies.append(caught - sent[0])
        print(f"\nCtrl-C latency (signal -> KeyboardInterrupt), resnet152 batch 64 at 224x224, "
              f"{pyflame_vision.get_num_threads()} threads: " + ", ".join(f"{1000 * v:.1f} ms" for v in latencies))
        assert max(latencies) < 0.1, latencies
        assert m(small).tobytes() == want
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_sigint_handler_that_does_not_raise_lets_the_forward_finish():
    """A SIGINT handler that only takes note (no exception): the interrupted forward starts again and returns the
    right result; the handler ran once."""
    m = models.resnet50()
    m.init_weights(seed=2)
    x = make_input((4, 3, 160, 160), 3)
    want = m(x).tobytes()
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        sent = []
        sender = _interrupt_main_after(0.05, sent)
        out = m(x)
        sender.join()
        assert calls == [signal.SIGINT] and out.tobytes() == want
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_handling_leaves_signal_handlers_as_they_were():
    m = models.resnet18()
    m.init_weights(seed=2)
    x = make_input((1, 3, 32, 32), 3)
    for handler in (signal.default_int_handler, signal.SIG_IGN, lambda s, f: None):
        previous = signal.signal(signal.SIGINT, handler)
        try:
            m(x)
            m.forward_features(x)
            assert signal.getsignal(signal.SIGINT) is handler
        finally:
            signal.signal(signal.SIGINT, previous)
