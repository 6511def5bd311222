"""Parity with torchvision itself: state-dict keys, shapes and dtypes, parameter
counts, printed trees, published MACs, and output shapes (including where
torchvision raises)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyflame_vision.models as models
from conftest import MODEL_NAMES, PUBLISHED, require_torchvision, tv_meta_model, tv_output_shape

pytestmark = pytest.mark.parity

DTYPES = {"torch.float32": "float32", "torch.int64": "int64"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_keys_shapes_dtypes(name):
    tv = tv_meta_model(name)
    ours = getattr(models, name)().state_dict_spec()
    theirs = tv.state_dict()
    assert list(ours) == list(theirs)
    for key, t in theirs.items():
        assert ours[key].shape == list(t.shape), key
        assert ours[key].dtype == DTYPES[str(t.dtype)], key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_counts_and_names(name):
    tv = tv_meta_model(name)
    m = getattr(models, name)()
    theirs = dict(tv.named_parameters())
    ours = m.named_parameters()
    assert list(ours) == list(theirs)
    assert m.num_parameters() == sum(p.numel() for p in theirs.values()) == PUBLISHED[name][0]
    assert list(m.named_buffers()) == [k for k, _ in tv.named_buffers()]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_printed_tree_equals_torchvision(name):
    assert repr(getattr(models, name)()) == repr(tv_meta_model(name))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_macs_match_torchvision_published(name):
    _, torchvision = require_torchvision()
    weights = torchvision.models.get_model_weights(name)
    meta = list(weights)[0].meta
    crop = list(weights)[0].transforms().crop_size[0]
    published = meta["_ops"]  # GMACs as torchvision publishes them ("GFLOPS")
    assert (meta["num_params"], published, crop) == PUBLISHED[name]
    macs = getattr(models, name)().summary([1, 3, crop, crop]).total_macs / 1e9
    assert abs(macs - published) / published < 0.005, (macs, published)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_features_match_torchvision(name):
    torch, _ = require_torchvision()
    tv = tv_meta_model(name)
    shape = [2, 3, 97, 130]
    ours = getattr(models, name)().forward_features(shape)
    x = torch.empty(shape, device="meta")
    with torch.no_grad():
        if name.startswith("efficientnet"):
            assert ours.shape == list(tv.features(x).shape)
        else:
            x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
            theirs = [list(x.shape)]
            for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
                x = layer(x)
                theirs.append(list(x.shape))
            assert [f.shape for f in ours] == theirs


SIZES = [(1, 1, 1), (0, 224, 224), (1, 2, 3), (2, 17, 33), (1, 224, 224), (3, 65, 64), (1, 7, 500), (1, 0, 8)]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shapes_over_sizes(name):
    tv = tv_meta_model(name)
    m = getattr(models, name)()
    for n, h, w in SIZES:
        expected = tv_output_shape(tv, [n, 3, h, w])
        if isinstance(expected, Exception):
            with pytest.raises(ValueError):
                m.get_output_shape([n, 3, h, w])
        else:
            assert m.get_output_shape([n, 3, h, w]) == expected, (n, h, w)


@pytest.mark.parametrize("shape", [[1, 4, 32, 32], [1, 1, 32, 32], [3, 32, 32], [1, 3, 32], [1, 3, 0, 0]])
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "efficientnet_b0"])
def test_raises_where_torchvision_raises(name, shape):
    expected = tv_output_shape(tv_meta_model(name), shape)
    assert isinstance(expected, Exception), expected
    with pytest.raises(ValueError):
        models.get_model(name).get_output_shape(shape)


CONFIGS = [
    ("resnet18", {}),
    ("resnext50_32x4d", {}),
    ("resnet50", {"replace_stride_with_dilation": [False, True, True]}),
    ("resnet101", {"replace_stride_with_dilation": [True, False, True]}),
    ("efficientnet_b0", {}),
    ("efficientnet_b3", {}),
]


@pytest.mark.parametrize("name, kwargs", CONFIGS)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3), h=st.integers(0, 400), w=st.integers(0, 400))
def test_property_output_shape_equals_torchvision(name, kwargs, n, h, w):
    tv = tv_meta_model(name, **{k: tuple(v) for k, v in kwargs.items()})
    m = models.get_model(name, **kwargs)
    assert repr(m) == repr(tv)
    expected = tv_output_shape(tv, [n, 3, h, w])
    if isinstance(expected, Exception):
        with pytest.raises(ValueError):
            m.get_output_shape([n, 3, h, w])
    else:
        assert m.get_output_shape([n, 3, h, w]) == expected


@settings(max_examples=40, deadline=None)
@given(block=st.sampled_from(["BASIC", "BOTTLENECK"]),
       layers=st.lists(st.integers(1, 3), min_size=4, max_size=4),
       groups=st.sampled_from([1, 2, 4]), width=st.sampled_from([16, 32, 64]),
       num_classes=st.integers(1, 50))
def test_property_custom_resnets_equal_torchvision(block, layers, groups, width, num_classes):
    torch, torchvision = require_torchvision()
    from torchvision.models.resnet import BasicBlock, Bottleneck
    if block == "BASIC" and (groups != 1 or width != 64):
        with pytest.raises(ValueError):
            models.ResNet(models.ResNetBlockType.BASIC, layers, groups=groups, width_per_group=width)
        return
    with torch.device("meta"):
        tv = torchvision.models.ResNet(BasicBlock if block == "BASIC" else Bottleneck, layers,
                                       num_classes=num_classes, groups=groups, width_per_group=width)
    m = models.ResNet(getattr(models.ResNetBlockType, block), layers, num_classes=num_classes, groups=groups,
                      width_per_group=width)
    assert repr(m) == repr(tv)
    assert {k: v.shape for k, v in m.state_dict_spec().items()} == {k: list(v.shape) for k, v in
                                                                     tv.state_dict().items()}
    assert m.get_output_shape([2, 3, 45, 71]) == tv_output_shape(tv.eval(), [2, 3, 45, 71])


def test_transforms_match_torchvision_on_real_tensors():
    torch, torchvision = require_torchvision()
    import torchvision.transforms as T

    from pyflame_vision import transforms as P

    cases = [
        (P.Resize(256), T.Resize(256, antialias=True), [1, 3, 480, 640]),
        (P.Resize(256), T.Resize(256, antialias=True), [3, 640, 480]),
        (P.Resize([100]), T.Resize([100], antialias=True), [3, 37, 1000]),
        (P.Resize(64, max_size=80), T.Resize(64, max_size=80, antialias=True), [3, 50, 200]),
        (P.Resize((30, 40)), T.Resize((30, 40), antialias=True), [2, 3, 50, 70]),
        (P.CenterCrop(224), T.CenterCrop(224), [1, 3, 256, 341]),
        (P.CenterCrop(300), T.CenterCrop(300), [3, 256, 341]),
        (P.CenterCrop((10, 400)), T.CenterCrop((10, 400)), [3, 256, 341]),
        (P.Normalize([0.5] * 3, [0.25] * 3), T.Normalize([0.5] * 3, [0.25] * 3), [2, 3, 9, 9]),
    ]
    for ours, theirs, shape in cases:
        assert ours.get_output_shape(shape) == list(theirs(torch.rand(shape)).shape), (ours, shape)
        assert repr(ours) == repr(theirs)
    with pytest.raises(RuntimeError):
        T.Normalize([0.5] * 3, [0.5] * 3)(torch.zeros(1, 4, 5, 5))
    with pytest.raises(ValueError):
        P.Normalize([0.5] * 3, [0.5] * 3).get_output_shape([1, 4, 5, 5])
