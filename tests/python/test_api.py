"""The models API: factories, classes, properties and the model-surgery methods."""

from __future__ import annotations

import resource
import threading

import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import MODEL_NAMES, PUBLISHED
from pyflame_vision import TensorSpec
from pyflame_vision.models import EfficientNet, ResNet, ResNetBlockType


def test_list_models_and_get_model():
    assert models.list_models() == sorted(MODEL_NAMES)
    for name in MODEL_NAMES:
        m = models.get_model(name, num_classes=7)
        assert m.name == name
        assert m.get_output_shape([2, 3, 64, 64]) == [2, 7]
    with pytest.raises(ValueError, match="Unknown model 'resnet9'"):
        models.get_model("resnet9")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_factory_signature_and_defaults(name):
    factory = getattr(models, name)
    m = factory()
    assert m.num_parameters() == PUBLISHED[name][0]
    assert factory(num_classes=1000, pretrained=False).get_output_shape([1, 3, 224, 224]) == [1, 1000]
    assert factory(weights=None).get_output_shape([1, 3, 224, 224]) == [1, 1000]
    assert factory(10).get_output_shape([1, 3, 224, 224]) == [1, 10]
    with pytest.raises(ValueError, match="'num_classes' expected value 1000 but got 10"):
        factory(10, True)  # pretrained weights have 1000 classes, as in torchvision
    with pytest.raises(ValueError, match="no member 'IMAGENET1K_V0'"):
        factory(weights="IMAGENET1K_V0")
    with pytest.raises(ValueError, match="num_classes must be >= 0"):
        factory(num_classes=-1)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        factory(num_classes=10.0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        factory(num_classes=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        factory(num_clases=10)


def test_factory_torchvision_kwargs():
    m = models.resnet50(replace_stride_with_dilation=[False, True, True])
    assert m.get_output_shape([1, 3, 224, 224]) == [1, 1000]
    assert [f.shape for f in m.forward_features([1, 3, 224, 224])][-1] == [1, 2048, 28, 28]
    assert models.resnet18(zero_init_residual=True).zero_init_residual is True
    e = models.efficientnet_b0(dropout=0.5, stochastic_depth_prob=0.0)
    assert e.dropout == 0.5 and e.stochastic_depth_prob == 0.0
    assert "StochasticDepth(p=0.0, mode=row)" in repr(e)
    assert "Dropout(p=0.5, inplace=True)" in repr(e)


def test_resnet_class_as_in_spec():
    model = ResNet(block_type=ResNetBlockType.BOTTLENECK, layers=[3, 4, 6, 3], num_classes=1000,
                   zero_init_residual=False, groups=1, width_per_group=64)
    assert model.block_type == ResNetBlockType.BOTTLENECK
    assert model.layer_config == [3, 4, 6, 3]
    assert model.num_features() == 2048
    assert model.num_parameters() == 25557032
    assert repr(model) == repr(models.resnet50())
    basic = ResNet(ResNetBlockType.BASIC, [2, 2, 2, 2])
    assert basic.num_features() == 512 and basic.num_parameters() == 11689512
    assert basic.name == "ResNet"


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(layers=[3, 4, 6]), ValueError, "layers must have 4 entries"),
        (dict(layers=[3, 0, 6, 3]), ValueError, r"layers\[1\] must be >= 1"),
        (dict(layers=[3, 4.5, 6, 3]), TypeError, "must be an int"),
        (dict(layers="3463"), TypeError, "sequence of ints"),
        (dict(num_classes=-2), ValueError, "num_classes must be >= 0"),
        (dict(groups=0), ValueError, "groups must be >= 1"),
        (dict(width_per_group=0), ValueError, "width_per_group must be >= 1"),
        (dict(replace_stride_with_dilation=[True]), ValueError, "3-element"),
    ],
)
def test_resnet_constructor_validation(kwargs, exc, match):
    args = dict(block_type=ResNetBlockType.BOTTLENECK, layers=[3, 4, 6, 3])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ResNet(**args)


def test_basic_block_limits_match_torchvision():
    with pytest.raises(ValueError, match="BasicBlock only supports groups=1 and base_width=64"):
        ResNet(ResNetBlockType.BASIC, [2, 2, 2, 2], groups=2)
    with pytest.raises(NotImplementedError, match="Dilation > 1 not supported in BasicBlock"):
        ResNet(ResNetBlockType.BASIC, [2, 2, 2, 2], replace_stride_with_dilation=[False, True, False])
    with pytest.raises(TypeError):
        ResNet("BASIC", [2, 2, 2, 2])


def test_remove_fc():
    model = models.resnet50()
    assert model.has_fc() and model.num_classes == 1000
    model.remove_fc()
    assert not model.has_fc() and model.num_classes == 0
    assert model.get_output_shape([1, 3, 224, 224]) == [1, 2048, 7, 7]
    assert model.num_features() == 2048
    names = model.named_parameters()
    assert "fc.weight" not in names and "layer4.2.bn3.bias" in names
    assert model.num_parameters() == 25557032 - 2048 * 1000 - 1000
    assert "(fc)" not in repr(model) and "(avgpool)" not in repr(model)
    model.remove_fc()  # idempotent
    assert model.get_output_shape([2, 3, 64, 64]) == [2, 2048, 2, 2]


def test_num_classes_zero_is_remove_fc():
    a = models.resnet18(num_classes=0)
    b = models.resnet18()
    b.remove_fc()
    assert not a.has_fc()
    assert repr(a) == repr(b)
    assert a.get_output_shape([1, 3, 224, 224]) == [1, 512, 7, 7]
    e = models.efficientnet_b3(num_classes=0)
    assert not e.has_classifier()
    assert e.get_output_shape([1, 3, 300, 300]) == [1, 1536, 10, 10]


def test_remove_classifier():
    model = models.efficientnet_b0()
    assert model.has_classifier() and model.num_classes == 1000
    assert model.get_output_shape([1, 3, 224, 224]) == [1, 1000]
    model.remove_classifier()
    assert not model.has_classifier()
    assert model.get_output_shape([1, 3, 224, 224]) == [1, 1280, 7, 7]
    assert model.num_features() == 1280
    assert not any(k.startswith("classifier") for k in model.state_dict_spec())
    model.remove_classifier()
    assert model.get_output_shape([1, 3, 224, 224]) == [1, 1280, 7, 7]


@pytest.mark.parametrize("name, features, res", [
    ("efficientnet_b0", 1280, 224), ("efficientnet_b1", 1280, 240), ("efficientnet_b2", 1408, 260),
    ("efficientnet_b3", 1536, 300), ("efficientnet_b4", 1792, 380),
])
def test_efficientnet_table(name, features, res):
    m = getattr(models, name)()
    assert m.num_features() == features
    assert m.resolution == res
    assert m.default_input_shape == [1, 3, res, res]
    f = m.forward_features([1, 3, res, res])
    assert isinstance(f, TensorSpec)
    assert f.shape[:2] == [1, features]


def test_efficientnet_class():
    m = EfficientNet(width_mult=1.0, depth_mult=1.0, dropout=0.2, num_classes=1000)
    assert repr(m) == repr(models.efficientnet_b0())
    assert m.name == "EfficientNet"
    with pytest.raises(ValueError, match="width_mult must be > 0"):
        EfficientNet(width_mult=0.0)
    with pytest.raises(ValueError, match="dropout must be in"):
        EfficientNet(dropout=1.5)


def test_parameters_and_buffers():
    model = models.resnet50()
    params = model.parameters()
    assert params[0].name == "conv1.weight"
    assert params[0].spec.shape == [64, 3, 7, 7]
    assert params[-1].name == "fc.bias" and params[-1].spec.shape == [1000]
    named = model.named_parameters()
    assert isinstance(named, dict)
    assert list(named) == [p.name for p in params]
    assert named["layer1.0.downsample.0.weight"].spec.shape == [256, 64, 1, 1]
    assert sum(p.spec.numel for p in params) == 25557032
    buffers = model.named_buffers()
    assert buffers["bn1.running_var"].spec.shape == [64]
    assert buffers["bn1.num_batches_tracked"].spec == TensorSpec([], "int64")
    assert not set(buffers) & set(named)
    sd = model.state_dict_spec()
    assert list(sd)[:7] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                            "bn1.num_batches_tracked", "layer1.0.conv1.weight"]
    assert sd["fc.weight"] == TensorSpec([1000, 2048])
    assert repr(params[0]) == "Parameter(name='conv1.weight', shape=[64, 3, 7, 7], dtype=float32)"


def test_building_is_lazy():
    """Building the largest model allocates no weight memory (126.9 M parameters = 508 MB in float32)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    built = [models.wide_resnet101_2() for _ in range(3)]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert built[0].num_parameters() == 126886696
    assert (after - before) * 1024 < 32 * 2**20, f"building grew peak RSS by {(after - before) / 1024:.1f} MiB"


def test_get_output_shape_is_thread_safe():
    model = models.resnext50_32x4d()
    shapes = [[n, 3, h, w] for n in range(3) for h in (1, 31, 224) for w in (17, 64)]
    expected = [model.get_output_shape(s) for s in shapes]
    errors = []

    def work():
        try:
            for _ in range(30):
                assert [model.get_output_shape(s) for s in shapes] == expected
                assert model.forward_features([1, 3, 224, 224])[2].shape == [1, 512, 28, 28]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_exception_hierarchy():
    assert issubclass(pyflame_vision.ShapeError, ValueError)
    assert issubclass(pyflame_vision.ShapeError, pyflame_vision.PyflameVisionError)
    assert issubclass(pyflame_vision.ShapeOverflowError, pyflame_vision.ShapeError)
    assert issubclass(pyflame_vision.ShapeOverflowError, OverflowError)
    assert issubclass(pyflame_vision.InvalidArgumentError, ValueError)
    assert issubclass(pyflame_vision.DTypeError, TypeError)
    assert issubclass(pyflame_vision.UnsupportedError, NotImplementedError)
    assert issubclass(pyflame_vision.WeightsError, RuntimeError)
    assert issubclass(pyflame_vision.WeightsError, pyflame_vision.PyflameVisionError)


def test_forward_on_specs_returns_specs():
    import numpy as np

    m = models.resnet18()
    assert m.forward([2, 3, 64, 64]) == TensorSpec([2, 1000])
    assert m(TensorSpec([1, 3, 224, 224])) == TensorSpec([1, 1000])
    # An array is data: without weights, running it says how to get them.
    with pytest.raises(pyflame_vision.WeightsError, match="init_weights"):
        m(np.zeros((1, 3, 224, 224), np.float32))
