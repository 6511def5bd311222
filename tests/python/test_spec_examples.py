"""Every example of ../shared/spec/MODELS.md runs and gives what the spec says.

Each ```python block is executed statement by statement. Where a statement
carries a comment that states a value (`x = f()  # [1, 1000]`), the value is
checked; `# Output:` comment blocks are compared with what the block printed.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import re
from pathlib import Path

import pytest

import pyflame_vision.models as models
from conftest import ROOT
from pyflame_vision import TensorSpec

SPEC = Path(os.environ.get("PYFLAME_VISION_SPEC", ROOT.parent / "shared" / "spec" / "MODELS.md"))


def spec_blocks():
    if not SPEC.exists():
        if os.environ.get("PYFLAME_VISION_REQUIRE_SPEC") == "1":
            pytest.fail(f"PYFLAME_VISION_REQUIRE_SPEC=1 but the spec is missing at {SPEC}")
        pytest.skip(f"spec not found at {SPEC} (set PYFLAME_VISION_SPEC)")
    return re.findall(r"```python\n(.*?)```", SPEC.read_text(), re.S)


def expected_values(comment: str):
    """The values a comment states: `[1, 1000]`, `1280 for B0`, `512 (Basic) or 2048 (Bottleneck)`.

    Descriptive comments (`18 layers, BasicBlock`, `224x224 input`) state no value."""
    alternatives = []
    for part in comment.split(" or "):
        m = re.match(r"(\[[\d,\s]*\]|\d+)(\s*$|\s+\(|\s+for\s)", part.strip())
        if m:
            alternatives.append(ast.literal_eval(m.group(1)))
    return alternatives


def as_plain(value):
    if isinstance(value, TensorSpec):
        return value.shape
    if isinstance(value, list) and value and isinstance(value[0], TensorSpec):
        return [v.shape for v in value]
    return value


def run_block(source: str, namespace: dict) -> tuple[str, int]:
    """Executes `source` statement by statement; returns (stdout, number of checked comments)."""
    lines = source.splitlines()
    out = io.StringIO()
    checked = 0
    for stmt in ast.parse(source).body:
        before = len(out.getvalue())
        with contextlib.redirect_stdout(out):
            exec(compile(ast.Module(body=[stmt], type_ignores=[]), "<spec>", "exec"), namespace)
        line = lines[stmt.end_lineno - 1]
        if "#" not in line:
            continue
        comment = line.split("#", 1)[1].strip()
        wanted = expected_values(comment)
        if not wanted:
            continue
        is_print = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and \
            getattr(stmt.value.func, "id", "") == "print"
        if is_print:
            printed = out.getvalue()[before:].strip()
            assert any(printed.endswith(str(w)) for w in wanted), (line, printed)
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            value = as_plain(namespace[stmt.targets[0].id])
            assert value in wanted, (line, value)
        elif isinstance(stmt, ast.Expr):
            value = as_plain(eval(compile(ast.Expression(stmt.value), "<spec>", "eval"), namespace))
            assert value in wanted, (line, value)
        else:
            continue
        checked += 1
    return out.getvalue(), checked


def find_block(blocks, marker):
    matches = [b for b in blocks if marker in b]
    assert len(matches) == 1, marker
    return matches[0]


def test_spec_has_the_expected_blocks():
    assert len(spec_blocks()) == 12


def test_factories_blocks():
    blocks = spec_blocks()
    for marker in ("# ResNet Family", "model = models.resnet18()   # 18 layers",
                   "model = models.efficientnet_b0()  # 224x224 input"):
        run_block(find_block(blocks, marker), {"models": models})


def test_resnet_class_block():
    ns = {}
    run_block(find_block(spec_blocks(), "layers=[3, 4, 6, 3],  # ResNet-50 configuration"), ns)
    assert ns["model"].num_parameters() == 25557032


def test_constructor_signature_block_matches_our_resnet():
    block = find_block(spec_blocks(), "block_type: ResNetBlockType,")
    params = re.findall(r"^\s+(\w+): [\w\[\]]+(?: = (\S+?))?,?$", block, re.M)
    assert [p[0] for p in params] == ["block_type", "layers", "num_classes", "zero_init_residual", "groups",
                                      "width_per_group"]
    doc = models.ResNet.__init__.__doc__
    for name, default in params:
        assert (f"{name}: " in doc), name
        if default:
            assert re.search(rf"{name}: [^,=]+ = {re.escape(default)}", doc), (name, default)
    kwargs = {n: ast.literal_eval(d) for n, d in params if d}
    m = models.ResNet(models.ResNetBlockType.BOTTLENECK, [3, 4, 6, 3], **kwargs)
    assert m.num_parameters() == 25557032


def test_block_type_block():
    run_block(find_block(spec_blocks(), "ResNetBlockType.BASIC      # 2 conv layers"), {})


def test_resnet_methods_block():
    ns = {"model": models.resnet50(), "input_spec": [1, 3, 224, 224]}
    _, checked = run_block(find_block(spec_blocks(), "# Returns: [stem_out, layer1_out"), ns)
    assert checked == 4  # [1, 1000], [1, 2048, 7, 7], 512/2048, [3, 4, 6, 3]
    assert ns["block_type"] == models.ResNetBlockType.BOTTLENECK
    assert [f.shape for f in ns["features"]][0] == [1, 64, 56, 56]
    assert ns["has_fc"] is False


def test_efficientnet_methods_block():
    ns = {"model": models.efficientnet_b0(), "input_spec": TensorSpec([1, 3, 224, 224])}
    _, checked = run_block(find_block(spec_blocks(), "model.remove_classifier()\noutput"), ns)
    assert checked == 4  # [1, 1000], [1, 1280, 7, 7] twice, 1280
    assert ns["has_clf"] is False


def test_image_classification_block():
    out, checked = run_block(find_block(spec_blocks(), "# Verify pipeline"), {})
    assert out == "Output: [1, 1000]\n"
    assert checked == 1


def test_feature_extraction_block():
    block = find_block(spec_blocks(), "# Create backbone without classifier")
    out, _ = run_block(block, {})
    expected = [re.sub(r"\s*\(.*\)$", "", line.lstrip("# ").rstrip())
                for line in block.split("# Output:")[1].strip().splitlines()]
    assert out.splitlines() == expected


def test_transfer_learning_block():
    ns = {}
    _, checked = run_block(find_block(spec_blocks(), "# Custom classification head"), ns)
    assert checked == 1 and ns["num_features"] == 1280
    assert ns["model"].get_output_shape([1, 3, 224, 224]) == [1, 10]


def test_model_inspection_block():
    out, _ = run_block(find_block(spec_blocks(), "# Print model structure"), {})
    lines = out.splitlines()
    assert lines[0] == "ResNet("
    assert "conv1.weight: [64, 3, 7, 7]" in lines
    assert "fc.bias: [1000]" in lines
    # parameters() and named_parameters() print the same 161 lines
    assert len([line for line in lines if line == "layer4.2.bn3.bias: [2048]"]) == 2


def test_signature_is_introspectable():
    sig = inspect.signature(models.resnet50)
    assert list(sig.parameters)[:2] == ["num_classes", "pretrained"]
    assert sig.parameters["num_classes"].default == 1000
    assert sig.parameters["pretrained"].default is False
