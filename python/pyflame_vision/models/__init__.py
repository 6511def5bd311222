"""torchvision-compatible model factories.

Every factory takes ``num_classes`` and ``pretrained`` (as in the spec) and also
torchvision's ``weights=None`` / ``progress`` keywords. Models are lazy: building
one records shapes only, so even wide_resnet101_2 builds in milliseconds.

>>> import pyflame_vision.models as models
>>> models.resnet50().get_output_shape([1, 3, 224, 224])
[1, 1000]
"""

from __future__ import annotations

import operator
from typing import Any, Callable

from pyflame_vision._core import EfficientNet, Model, ResNet, ResNetBlockType

__all__ = [
    "EfficientNet",
    "Model",
    "ResNet",
    "ResNetBlockType",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "get_model",
    "list_models",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]

# torchvision.models.resnet: (block, layers, groups, width_per_group)
_RESNETS: dict[str, tuple] = {
    "resnet18": (ResNetBlockType.BASIC, [2, 2, 2, 2], 1, 64),
    "resnet34": (ResNetBlockType.BASIC, [3, 4, 6, 3], 1, 64),
    "resnet50": (ResNetBlockType.BOTTLENECK, [3, 4, 6, 3], 1, 64),
    "resnet101": (ResNetBlockType.BOTTLENECK, [3, 4, 23, 3], 1, 64),
    "resnet152": (ResNetBlockType.BOTTLENECK, [3, 8, 36, 3], 1, 64),
    "resnext50_32x4d": (ResNetBlockType.BOTTLENECK, [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": (ResNetBlockType.BOTTLENECK, [3, 4, 23, 3], 32, 8),
    "wide_resnet50_2": (ResNetBlockType.BOTTLENECK, [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": (ResNetBlockType.BOTTLENECK, [3, 4, 23, 3], 1, 128),
}
# torchvision.models.efficientnet: (width_mult, depth_mult, dropout, native resolution)
_EFFICIENTNETS: dict[str, tuple] = {
    "efficientnet_b0": (1.0, 1.0, 0.2, 224),
    "efficientnet_b1": (1.0, 1.1, 0.2, 240),
    "efficientnet_b2": (1.1, 1.2, 0.3, 260),
    "efficientnet_b3": (1.2, 1.4, 0.3, 300),
    "efficientnet_b4": (1.4, 1.8, 0.4, 380),
}
_RESNET_KWARGS = {"zero_init_residual", "replace_stride_with_dilation"}
_EFFICIENTNET_KWARGS = {"dropout", "stochastic_depth_prob"}


def _check_num_classes(num_classes: Any) -> int:
    try:
        if isinstance(num_classes, bool):
            raise TypeError
        num_classes = operator.index(num_classes)
    except TypeError:
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__} {num_classes!r}") from None
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0 (0 builds the model without its classifier), got {num_classes}")
    return num_classes


def _check_weights(name: str, pretrained: Any, weights: Any) -> None:
    if pretrained or weights is not None:
        raise NotImplementedError(
            f"{name}: pretrained weights are not available yet (got pretrained={pretrained!r}, "
            f"weights={weights!r}); build with pretrained=False and load weights from a file instead"
        )


def _check_kwargs(name: str, kwargs: dict[str, Any], allowed: set) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword argument(s) {unknown}; accepted: {sorted(allowed)}")


def _make_resnet_factory(name: str) -> Callable[..., ResNet]:
    block, layers, groups, width = _RESNETS[name]

    def factory(num_classes: int = 1000, pretrained: bool = False, *, weights: Any = None, progress: bool = True,
                **kwargs: Any) -> ResNet:
        _check_weights(name, pretrained, weights)
        _check_kwargs(name, kwargs, _RESNET_KWARGS)
        model = ResNet(block, layers, num_classes=_check_num_classes(num_classes), groups=groups,
                       width_per_group=width, **kwargs)
        return _named(model, name)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"torchvision's {name}: ResNet({block.name}, layers={layers}, groups={groups}, width_per_group={width}).\n\n"
        "num_classes=0 builds it without avgpool/fc (as remove_fc()). pretrained=True and weights are not\n"
        "available yet and raise NotImplementedError. Extra keywords: zero_init_residual,\n"
        "replace_stride_with_dilation."
    )
    return factory


def _make_efficientnet_factory(name: str) -> Callable[..., EfficientNet]:
    width, depth, dropout, resolution = _EFFICIENTNETS[name]

    def factory(num_classes: int = 1000, pretrained: bool = False, *, weights: Any = None, progress: bool = True,
                **kwargs: Any) -> EfficientNet:
        _check_weights(name, pretrained, weights)
        _check_kwargs(name, kwargs, _EFFICIENTNET_KWARGS)
        model = EfficientNet(width_mult=width, depth_mult=depth, dropout=kwargs.get("dropout", dropout),
                             num_classes=_check_num_classes(num_classes),
                             stochastic_depth_prob=kwargs.get("stochastic_depth_prob", 0.2), resolution=resolution)
        return _named(model, name)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"torchvision's {name}: width_mult={width}, depth_mult={depth}, dropout={dropout}, native input "
        f"{resolution}x{resolution}.\n\nnum_classes=0 builds it without avgpool/classifier (as remove_classifier()).\n"
        "pretrained=True and weights are not available yet and raise NotImplementedError. Extra keywords:\n"
        "dropout, stochastic_depth_prob."
    )
    return factory


def _named(model: Model, name: str) -> Model:
    model._set_name(name)
    return model


resnet18 = _make_resnet_factory("resnet18")
resnet34 = _make_resnet_factory("resnet34")
resnet50 = _make_resnet_factory("resnet50")
resnet101 = _make_resnet_factory("resnet101")
resnet152 = _make_resnet_factory("resnet152")
resnext50_32x4d = _make_resnet_factory("resnext50_32x4d")
resnext101_32x8d = _make_resnet_factory("resnext101_32x8d")
wide_resnet50_2 = _make_resnet_factory("wide_resnet50_2")
wide_resnet101_2 = _make_resnet_factory("wide_resnet101_2")
efficientnet_b0 = _make_efficientnet_factory("efficientnet_b0")
efficientnet_b1 = _make_efficientnet_factory("efficientnet_b1")
efficientnet_b2 = _make_efficientnet_factory("efficientnet_b2")
efficientnet_b3 = _make_efficientnet_factory("efficientnet_b3")
efficientnet_b4 = _make_efficientnet_factory("efficientnet_b4")

_FACTORIES: dict[str, Callable[..., Model]] = {
    name: globals()[name] for name in sorted(list(_RESNETS) + list(_EFFICIENTNETS))
}


def list_models() -> list[str]:
    """The names of all available models, sorted (as torchvision.models.list_models)."""
    return list(_FACTORIES)


def get_model(name: str, **kwargs: Any) -> Model:
    """Builds a model by name with the factory's keyword arguments (as torchvision.models.get_model)."""
    try:
        factory = _FACTORIES[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"Unknown model {name!r}; available models: {', '.join(_FACTORIES)}") from None
    return factory(**kwargs)
