"""The C++ SDK the wheel ships: `--cmake-dir`, and C++ programs built against it.

Builds tests/cmake_consumer and examples/cpp with CMake against
``python -m pyflame_vision --cmake-dir`` and checks them against the Python path:
weights the C++ side writes load in Python bit for bit, and the example's top-5 on
weights and an image written by Python match the Python path. Needs cmake and a
C++ compiler, and an installation that ships the SDK (wheels and ``pip install .``;
editable installs do not): without them these tests skip, unless
PYFLAME_VISION_REQUIRE_SDK=1 (CI sets it), which makes that a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision._sdk as sdk
import pyflame_vision.models as models
from pyflame_vision.cli import main

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = os.environ.get("PYFLAME_VISION_REQUIRE_SDK") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (PYFLAME_VISION_REQUIRE_SDK=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cmake_dir() -> str:
    try:
        return pyflame_vision.get_cmake_dir()
    except pyflame_vision.SdkNotFoundError as exc:
        _unavailable(str(exc))


def _build(source: Path, build: Path, cmake_dir: str) -> Path:
    cmake = shutil.which("cmake")
    if cmake is None:
        _unavailable("cmake is not installed")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    env = dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL="2")
    for cmd in ([cmake, "-S", str(source), "-B", str(build), *gen, f"-Dpyflame_vision_DIR={cmake_dir}"],
                [cmake, "--build", str(build)]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return build


@pytest.fixture(scope="module")
def consumer(cmake_dir, tmp_path_factory) -> Path:
    return _build(ROOT / "tests" / "cmake_consumer", tmp_path_factory.mktemp("consumer"), cmake_dir) / "consumer"


@pytest.fixture(scope="module")
def classify(cmake_dir, tmp_path_factory) -> Path:
    return _build(ROOT / "examples" / "cpp", tmp_path_factory.mktemp("classify"), cmake_dir) / "classify"


@pytest.fixture(scope="module")
def make_inputs():
    spec = importlib.util.spec_from_file_location("make_inputs", ROOT / "examples" / "cpp" / "make_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cmake_dir_and_include_dir_from_the_command_line(cmake_dir):
    r = subprocess.run([sys.executable, "-m", "pyflame_vision", "--cmake-dir"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = Path(r.stdout.strip())
    assert str(d) == cmake_dir
    assert (d / "pyflame_visionConfig.cmake").is_file() and (d / "pyflame_visionConfigVersion.cmake").is_file()
    assert d.is_relative_to(Path(pyflame_vision.__file__).resolve().parent)
    r = subprocess.run([sys.executable, "-m", "pyflame_vision", "--include-dir"], capture_output=True, text=True)
    assert r.returncode == 0 and Path(r.stdout.strip(), "pyflame_vision", "io.h").is_file()


def test_cmake_dir_without_an_sdk_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sdk, "_ROOT", tmp_path)
    with pytest.raises(pyflame_vision.SdkNotFoundError, match="has no C\\+\\+ SDK"):
        pyflame_vision.get_cmake_dir()
    with pytest.raises(SystemExit) as exc:
        main(["--cmake-dir"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "pyflame-vision: error:" in err and "editable installs" in err and "cmake --install" in err


def test_consumer_weights_load_in_python_bit_for_bit(consumer, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    out = tmp_path / "w.safetensors"
    r = subprocess.run([str(consumer), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"consumer: OK (pyflame_vision {pyflame_vision.__version__},")
    got = load_file(str(out))
    with safe_open(str(out), "np") as f:
        assert f.metadata() == {"format": "np", "model": "resnet18"}
    ref = models.resnet18(num_classes=10)
    ref.init_weights(seed=0)
    want = ref.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert np.array_equal(got[k], v), k
    # ...and the C++ file loads back through the Python path into an equal model.
    m = models.resnet18(num_classes=10)
    pyflame_vision.load_weights(m, out)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)
    assert np.array_equal(m(x), ref(x))


@pytest.mark.parametrize("model", ["resnet18", "efficientnet_b0"])
def test_example_agrees_with_the_python_path(classify, make_inputs, tmp_path, model):
    assert make_inputs.main([str(tmp_path), "--model", model, "--seed", "3"]) == 0
    r = subprocess.run([str(classify), model, str(tmp_path / f"{model}.safetensors"), str(tmp_path / "image.ppm"),
                        "--threads", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    printed = make_inputs.parse_output(r.stdout)
    p = make_inputs.python_probabilities(model, tmp_path / f"{model}.safetensors", tmp_path / "image.ppm")
    assert make_inputs.check(printed, p) == []
    assert [c for c, _ in printed] == [c for c, _ in make_inputs.top5(p)]
    assert r.stdout.startswith(f"{model} on ") and "(320x240 -> [1, 3, 224, 224])" in r.stdout


def test_example_rejects_bad_input_with_a_message(classify, make_inputs, tmp_path):
    assert make_inputs.main([str(tmp_path)]) == 0
    weights = str(tmp_path / "resnet18.safetensors")
    cases = {
        b"P5\n2 2\n255\n" + bytes(4): 'expected a binary PPM starting with "P6", found "P5"',
        b"P6\n2 2\n255\n" + bytes(11): "expected 12 bytes of pixel data for 2x2, found 11",
        b"P6\n2 2\n65535\n" + bytes(24): "only 8-bit PPM",
        b"P6 # c\n2 x\n255\n": "expected the height (a decimal number), found 'x'",
    }
    for data, message in cases.items():
        img = tmp_path / "bad.ppm"
        img.write_bytes(data)
        r = subprocess.run([str(classify), "resnet18", weights, str(img)], capture_output=True, text=True)
        assert r.returncode == 1 and message in r.stderr, (data, r.stderr)
    r = subprocess.run([str(classify), "resnet18", str(tmp_path / "nope.safetensors"), str(img)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "cannot open" in r.stderr
    r = subprocess.run([str(classify), "resnet19", weights, str(img)], capture_output=True, text=True)
    assert r.returncode == 1 and "resnet18" in r.stderr  # lists the valid names
    assert subprocess.run([str(classify)], capture_output=True).returncode == 2


def test_output_check_catches_disagreement(make_inputs):
    p = np.full(10, 0.01)
    p[[3, 7, 1, 9, 0]] = [0.4, 0.2, 0.1, 0.08, 0.06]
    p /= p.sum()
    good = make_inputs.top5(p)
    assert make_inputs.check(good, p) == []
    assert make_inputs.check([(c, s + 1e-4) if i == 0 else (c, s) for i, (c, s) in enumerate(good)], p)
    assert make_inputs.check([good[1], good[0], *good[2:]], p)
    assert make_inputs.check([*good[:4], (2, float(p[2]))], p)
    assert make_inputs.check(good[:4], p)
