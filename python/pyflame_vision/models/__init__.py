"""torchvision-compatible model factories.

Every factory takes ``num_classes`` and ``pretrained`` (as in the spec) and also
torchvision's ``weights=None`` / ``progress`` keywords: ``weights="DEFAULT"`` (or a
member such as ``ResNet50_Weights.IMAGENET1K_V2``, its name, or its full dotted
name) loads torchvision's trained checkpoint, downloading it into torch hub's cache
if needed; ``pretrained=True`` loads what torchvision's legacy ``pretrained=True``
loads (``IMAGENET1K_V1``). Without weights, models are lazy: building one records
shapes only, so even wide_resnet101_2 builds in milliseconds.

>>> import pyflame_vision.models as models
>>> models.resnet50().get_output_shape([1, 3, 224, 224])
[1, 1000]
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Optional

from pyflame_vision import _core
from pyflame_vision._core import EfficientNet, Model, ResNet, ResNetBlockType
from pyflame_vision.models import _record, _weights
from pyflame_vision.models._pickle import inline_weights
from pyflame_vision.models._record import EnumSource, FileSource, weights_source
from pyflame_vision.models._weights import Weights, WeightsEnum, get_model_weights, get_weight

globals().update(_weights.ENUMS)  # ResNet50_Weights, ..., EfficientNet_B4_Weights

__all__ = [  # noqa: PLE0604 - the factories' and enums' names come from the tables
    *sorted(_weights.ENUMS),
    "EfficientNet",
    "EnumSource",
    "FileSource",
    "Model",
    "ResNet",
    "ResNetBlockType",
    "Weights",
    "WeightsEnum",
    "get_model",
    "get_model_weights",
    "get_weight",
    "inline_weights",
    "list_models",
    "weights_source",
    *(row["name"] for row in _core.factories.model_table()),
]

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


def _load_pretrained(model: Model, weights: WeightsEnum, progress: bool) -> None:
    from pyflame_vision.io import load_weights

    load_weights(model, weights.get_checkpoint(progress=progress, check_hash=True))
    _record.note(model, _record.EnumSource(f"{type(weights).__name__}.{weights._name_}"))


def _check_kwargs(name: str, kwargs: dict[str, Any], allowed: set) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword argument(s) {unknown}; accepted: {sorted(allowed)}")


def _make_factory(name: str) -> Callable[..., Model]:
    # The architecture tables live in C++ (cpp/models/registry.cpp); a prototype
    # (lazy, sub-millisecond to build) supplies the configuration for the
    # torchvision keyword arguments that need a custom build.
    proto = _core.factories.create_model(name, 1000)
    is_resnet = isinstance(proto, ResNet)
    allowed = _RESNET_KWARGS if is_resnet else _EFFICIENTNET_KWARGS

    def factory(num_classes: int = 1000, pretrained: bool = False, *, weights: Any = None, progress: bool = True,
                **kwargs: Any) -> Model:
        member = _weights.resolve(name, weights, pretrained)
        _check_kwargs(name, kwargs, allowed)
        num_classes = _check_num_classes(num_classes)
        if member is not None and num_classes != len(member.meta["categories"]):
            # torchvision's _ovewrite_named_param message
            raise ValueError(f"The parameter 'num_classes' expected value {len(member.meta['categories'])} "
                             f"but got {num_classes} instead.")
        model = _build(num_classes, kwargs)
        if member is not None:
            _load_pretrained(model, member, progress)
        return model

    def _build(num_classes: int, kwargs: dict[str, Any]) -> Model:
        if not kwargs:
            return _core.factories.create_model(name, num_classes)
        if is_resnet:
            model = ResNet(proto.block_type, proto.layer_config, num_classes=num_classes, groups=proto.groups,
                           width_per_group=proto.width_per_group, **kwargs)
        else:
            model = EfficientNet(width_mult=proto.width_mult, depth_mult=proto.depth_mult,
                                 dropout=kwargs.get("dropout", proto.dropout), num_classes=num_classes,
                                 stochastic_depth_prob=kwargs.get("stochastic_depth_prob", proto.stochastic_depth_prob),
                                 resolution=proto.resolution)
        model._set_name(name)
        return model

    if is_resnet:
        config = (f"ResNet({proto.block_type.name}, layers={proto.layer_config}, groups={proto.groups}, "
                  f"width_per_group={proto.width_per_group})")
        head = "avgpool/fc (as remove_fc())"
    else:
        config = (f"EfficientNet(width_mult={proto.width_mult}, depth_mult={proto.depth_mult}, "
                  f"dropout={proto.dropout}), native input {proto.resolution}x{proto.resolution}")
        head = "avgpool/classifier (as remove_classifier())"
    enum = _weights.get_model_weights(name)
    factory.__name__ = factory.__qualname__ = name
    factory.__annotations__["weights"] = Optional[enum]  # as torchvision: get_model_weights reads it
    factory.__doc__ = (
        f"torchvision's {name}: {config}.\n\n"
        f"num_classes=0 builds it without {head}. weights= loads trained weights: a member of\n"
        f"{enum.__name__} ({', '.join(enum.__members__)}), its name, or None (default: no weights).\n"
        f"pretrained=True loads {_weights.LEGACY_PRETRAINED[name]!r} (torchvision's legacy pretrained=True).\n"
        f"Checkpoints are downloaded once into the cache (pyflame_vision.hub.get_cache_dir(); progress bar\n"
        f"unless progress=False). Extra torchvision keywords: {', '.join(sorted(allowed))}."
    )
    return factory


# One factory per row of the C++ model table (cpp/models/registry.cpp), under its name:
# pyflame_vision.models.resnet50, ... (listed in __all__ below).
for _row in _core.factories.model_table():
    globals()[_row["name"]] = _make_factory(_row["name"])
del _row

_FACTORIES: dict[str, Callable[..., Model]] = {name: globals()[name] for name in _core.factories.list_models()}


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
