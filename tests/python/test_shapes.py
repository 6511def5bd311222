"""Shape inference: exact shapes, typed errors that name the layer, no overflow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyflame_vision
import pyflame_vision.models as models
from pyflame_vision import TensorSpec


def conv_out(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def resnet_spatial(n):
    n = conv_out(n, 7, 2, 3)  # conv1
    n = conv_out(n, 3, 2, 1)  # maxpool
    sizes = [n]
    for _ in range(3):  # layer2..4 downsample with the 3x3 stride-2 conv
        n = conv_out(n, 3, 2, 1)
        sizes.append(n)
    return sizes


def test_spec_shapes():
    m = models.resnet50()
    assert m.get_output_shape([1, 3, 224, 224]) == [1, 1000]
    assert [f.shape for f in m.forward_features([1, 3, 224, 224])] == [
        [1, 64, 56, 56], [1, 256, 56, 56], [1, 512, 28, 28], [1, 1024, 14, 14], [1, 2048, 7, 7]]
    assert m.forward_features(TensorSpec([1, 3, 224, 224]))[0] == TensorSpec([1, 64, 56, 56])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(1, 600), w=st.integers(1, 600))
def test_resnet_shapes_follow_the_conv_formula(n, h, w):
    m = models.resnet34(num_classes=0)
    hs, ws = resnet_spatial(h), resnet_spatial(w)
    assert m.get_output_shape([n, 3, h, w]) == [n, 512, hs[-1], ws[-1]]
    feats = m.forward_features([n, 3, h, w])
    assert [f.shape[2:] for f in feats] == [[hs[0], ws[0]]] + [[a, b] for a, b in zip(hs, ws)]


@pytest.mark.parametrize("shape", [[1, 3, 1, 1], [0, 3, 224, 224], [1, 3, 17, 33], [5, 3, 1, 600]])
def test_small_odd_and_empty_batches(shape):
    for name in ("resnet18", "resnext50_32x4d", "efficientnet_b0"):
        assert models.get_model(name).get_output_shape(shape) == [shape[0], 1000]


def test_wrong_channel_count_names_the_layer():
    with pytest.raises(pyflame_vision.ShapeError) as info:
        models.resnet50().get_output_shape([1, 4, 224, 224])
    assert str(info.value) == "[conv2d] conv1: expected 3 input channels, got 4 (input shape [1, 4, 224, 224])"
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match=r"\[conv2d\] features\.0\.0: expected 3 input channels, got 1"):
        models.efficientnet_b0().get_output_shape([1, 1, 224, 224])


def test_input_too_small_for_kernel():
    with pytest.raises(ValueError, match=r"\[conv2d\] conv1: input too small: padded input size per channel "
                                         r"\(6 x 11\) is smaller than the dilated kernel size \(7 x 7\)"):
        models.resnet18().get_output_shape([1, 3, 0, 5])


@pytest.mark.parametrize("shape, match", [
    ([3, 224, 224], r"\[input\] expected a 4-D input \[N, C, H, W\], got a 3-D input"),
    ([1, 1, 3, 224, 224], "got a 5-D input"),
    ([], "got a 0-D input"),
    ([1, -3, 224, 224], "dimension 1 is negative"),
])
def test_bad_ranks_and_negative_dims(shape, match):
    with pytest.raises(ValueError, match=match):
        models.resnet18().get_output_shape(shape)


@pytest.mark.parametrize("shape", [[1, 3, 224.0, 224], [1, 3, "224", 224], [1, 3, None, 224], [True, 3, 8, 8],
                                   "1,3,224,224", 224, [1, 3, np.float32(224), 224]])
def test_non_integers_raise_type_error(shape):
    with pytest.raises(TypeError):
        models.resnet18().get_output_shape(shape)


def test_numpy_integers_and_tuples_are_accepted():
    m = models.resnet18()
    assert m.get_output_shape((1, 3, 224, 224)) == [1, 1000]
    assert m.get_output_shape(np.array([2, 3, 64, 64])) == [2, 1000]
    assert m.get_output_shape([np.int64(1), np.int32(3), 64, 64]) == [1, 1000]


def test_wrong_dtype_raises_type_error():
    with pytest.raises(TypeError, match=r"\[input\] expected a float32 input, got float64"):
        models.resnet18().get_output_shape(TensorSpec([1, 3, 224, 224], "float64"))
    with pytest.raises(TypeError, match="unknown dtype"):
        TensorSpec([1, 3], "complex64")


@pytest.mark.parametrize("shape", [
    [2**62, 3, 224, 224],          # element count overflows int64
    [1, 3, 2**63 - 2, 224],        # padding overflows
    [1, 3, 2**64, 224],            # not an int64 at all
    [1, 3, -2**70, 224],
])
def test_huge_dimensions_never_overflow_silently(shape):
    with pytest.raises(pyflame_vision.ShapeOverflowError) as info:
        models.resnet50().get_output_shape(shape)
    assert isinstance(info.value, ValueError) and isinstance(info.value, OverflowError)


def test_large_but_valid_dimensions():
    # 2**31 does not fit in int32: shapes are computed in int64.
    assert models.resnet18(num_classes=0).get_output_shape([1, 3, 2**31, 64]) == [1, 512, 2**26, 2]


def test_tensor_spec():
    t = TensorSpec([1, 3, 224, 224])
    assert t.shape == [1, 3, 224, 224] and t.dtype == "float32"
    assert t.ndim == 4 and t.numel == 150528 and t.nbytes == 602112
    assert repr(t) == "TensorSpec(shape=[1, 3, 224, 224], dtype=float32)"
    assert t == TensorSpec((1, 3, 224, 224), "float")
    assert t != TensorSpec([1, 3, 224, 224], "float64")
    assert hash(t) == hash(TensorSpec([1, 3, 224, 224]))
    assert (t == [1, 3, 224, 224]) is False
    with pytest.raises(ValueError, match="negative"):
        TensorSpec([-1])
    import pickle
    assert pickle.loads(pickle.dumps(t)) == t


def test_summary_totals_and_rows():
    s = models.resnet50().summary([1, 3, 224, 224])
    assert s.total_params == 25557032
    assert s.total_macs == 4089184256
    assert s.output_shape == [1, 1000]
    assert s.rows[0].path == "conv1" and s.rows[0].type == "Conv2d"
    assert s.rows[0].output_shape == [1, 64, 112, 112]
    assert s.rows[0].macs == 64 * 112 * 112 * 3 * 7 * 7 and s.rows[0].params == 9408
    assert sum(r.macs for r in s.rows) == s.total_macs
    assert [r.path for r in s.rows if r.type == "Add"][:2] == ["layer1.0", "layer1.1"]
    text = str(s)
    assert "Total params: 25,557,032" in text
    assert "Total MACs: 4,089,184,256 (4.089 G" in text
    assert "layer4.2.conv3" in text
    e = models.efficientnet_b0().summary()  # native resolution by default
    assert e.input.shape == [1, 3, 224, 224]
    assert (e.total_params, round(e.total_macs / 1e9, 3)) == (5288548, 0.386)
    assert models.efficientnet_b4().summary().input.shape == [1, 3, 380, 380]
    # MACs scale with the batch
    assert models.resnet50().summary([8, 3, 224, 224]).total_macs == 8 * 4089184256
