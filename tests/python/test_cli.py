"""The pyflame-vision command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import pyflame_vision.models as models
from pyflame_vision.cli import main


def test_summary_resnet50(capsys):
    assert main(["summary", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnet50 (input [1, 3, 224, 224], float32)")
    assert "Total params: 25,557,032" in out
    assert "Total MACs: 4,089,184,256 (4.089 G" in out
    assert "Output shape: [1, 1000]" in out


def test_summary_with_input_and_num_classes(capsys):
    assert main(["summary", "efficientnet_b0", "--input", "2,3,240,320", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_b0 (input [2, 3, 240, 320]" in out and "Output shape: [2, 10]" in out


def test_shape_and_list(capsys):
    assert main(["shape", "resnet18", "--input", "1,3,64,64"]) == 0
    out = capsys.readouterr().out
    assert "feature 4: [1, 512, 2, 2]" in out and "output: [1, 1000]" in out
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == models.list_models()


def test_bench_runs_a_model(capsys):
    assert main(["bench", "resnet18", "--size", "64", "--batch", "2", "--runs", "2", "--warmup", "1",
                 "--threads", "1", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "input [2, 3, 64, 64]" in out
    assert "layer1.0.conv2+bn2+add+relu" in out  # the plan: fused residual block
    assert "latency:    median" in out and "images/s" in out


def test_bench_console_script_as_in_readme():
    exe = shutil.which("pyflame-vision")
    if exe is None:
        pytest.fail("the pyflame-vision console script is not installed")
    r = subprocess.run([exe, "bench", "efficientnet_b0", "--size", "96", "--runs", "2"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "efficientnet_b0" in r.stdout and "GFLOP/s" in r.stdout


def test_bench_rejects_bad_arguments(capsys):
    assert main(["bench", "resnet18", "--batch", "0"]) == 1
    assert "--batch" in capsys.readouterr().err


def test_errors_exit_non_zero(capsys):
    assert main(["summary", "resnet50", "--input", "1,4,224,224"]) == 1
    assert "expected 3 input channels, got 4" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["summary", "resnet9"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["summary", "resnet50", "--input", "1,3,224"])


def test_console_script_and_module_entry_points():
    exe = shutil.which("pyflame-vision")
    assert exe, "the pyflame-vision console script is not installed"
    out = subprocess.run([exe, "summary", "resnet18"], capture_output=True, text=True, check=True).stdout
    assert "Total params: 11,689,512" in out
    out = subprocess.run([sys.executable, "-m", "pyflame_vision", "summary", "efficientnet_b0"],
                         capture_output=True, text=True, check=True).stdout
    assert "Total params: 5,288,548" in out


def test_python_example_runs():
    from conftest import ROOT

    script = ROOT / "examples" / "python" / "inspect_model.py"
    out = subprocess.run([sys.executable, str(script), "efficientnet_b0", "300", "400"], capture_output=True,
                         text=True, check=True).stdout
    assert "image [1, 3, 300, 400] -> preprocessed [1, 3, 224, 224] -> logits [1, 1000]" in out
    assert "feature 0: [1, 1280, 7, 7]" in out
    assert "a 4-channel input is rejected: [conv2d] features.0.0: expected 3 input channels, got 4" in out


def test_versions_agree():
    from importlib.metadata import version

    import pyflame_vision

    assert pyflame_vision.__version__ == version("pyflame-vision")
