"""torchvision's weights enums, built from the library's table (no torch needed).

``ResNet50_Weights.IMAGENET1K_V2`` and the other members carry torchvision's
``url``, ``meta`` (categories, num_params, min_size, recipe, _metrics, _ops,
_file_size, _docs) and ``transforms`` (a ``functools.partial`` of
:class:`~pyflame_vision.transforms.ImageClassification`), with ``DEFAULT`` as
an alias, exactly as torchvision 0.29.1 has them. The facts come from
``pyflame_vision._core.pretrained`` (include/pyflame_vision/models/weights.h),
the same table C++ applications read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from pyflame_vision import _core
from pyflame_vision.transforms._presets import ImageClassification, InterpolationMode

__all__ = ["Weights", "WeightsEnum", "get_model_weights", "get_weight"]


@dataclass
class Weights:
    """The data of one weights member (torchvision.models.Weights): url, transforms, meta."""

    url: str
    transforms: Callable[..., ImageClassification]
    meta: dict[str, Any]

    def __eq__(self, other: Any) -> bool:
        # As torchvision: partials compare by function and arguments, so deep copies and
        # unpickled members compare equal to the originals.
        if not isinstance(other, Weights):
            return NotImplemented
        if self.url != other.url or self.meta != other.meta:
            return False
        a, b = self.transforms, other.transforms
        if isinstance(a, functools.partial) and isinstance(b, functools.partial):
            return a.func == b.func and a.args == b.args and a.keywords == b.keywords
        return a == b


class WeightsEnum(Enum):
    """Base class of the weights enums (torchvision.models.WeightsEnum)."""

    @classmethod
    def verify(cls, obj: Any) -> Any:
        """``None``, a member of this enum, or its name (``"IMAGENET1K_V2"``, ``"DEFAULT"``,
        ``"ResNet50_Weights.IMAGENET1K_V2"``) -> the member (or None). Raises TypeError for a
        member of another enum or another type, ValueError for an unknown name."""
        if obj is None or isinstance(obj, cls):
            return obj
        if type(obj) is str:
            name = obj.replace(cls.__name__ + ".", "")
            try:
                return cls[name]
            except KeyError:
                raise ValueError(f"{cls.__name__} has no member {obj!r}; members: "
                                 f"{', '.join(cls.__members__)}") from None
        raise TypeError(f"Invalid Weight class provided; expected {cls.__name__} but received "
                        f"{type(obj).__name__}.")

    def get_state_dict(self, progress: bool = True, check_hash: bool = True, **read_options: Any) -> dict[str, Any]:
        """Downloads the checkpoint into the cache (or finds it there) and returns its state dict
        as NumPy arrays (see pyflame_vision.hub.load_state_dict_from_url)."""
        from pyflame_vision.hub import load_state_dict_from_url

        return load_state_dict_from_url(self.url, progress=progress, check_hash=check_hash, **read_options)

    def get_checkpoint(self, progress: bool = True, check_hash: bool = True) -> str:
        """The path of the checkpoint in the cache, downloading it first if needed."""
        from pyflame_vision.hub import cached_checkpoint

        return cached_checkpoint(self.url, progress=progress, check_hash=check_hash)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self._name_}"

    @property
    def url(self) -> str:
        return self.value.url

    @property
    def transforms(self) -> Callable[..., ImageClassification]:
        return self.value.transforms

    @property
    def meta(self) -> dict[str, Any]:
        return self.value.meta


def _preset(p: dict[str, Any]) -> Callable[..., ImageClassification]:
    return functools.partial(ImageClassification, crop_size=p["crop_size"], resize_size=p["resize_size"],
                             mean=tuple(p["mean"]), std=tuple(p["std"]),
                             interpolation=InterpolationMode(p["interpolation"]), antialias=p["antialias"])


def _build() -> tuple[dict[str, type[WeightsEnum]], dict[str, type[WeightsEnum]], dict[str, WeightsEnum]]:
    categories = list(_core.pretrained.imagenet_categories())
    by_enum: dict[str, list[tuple[str, Weights]]] = {}
    model_of: dict[str, str] = {}
    defaults: dict[str, str] = {}
    legacy: dict[str, str] = {}
    for e in _core.pretrained.entries():
        meta = {
            "min_size": tuple(e["min_size"]),
            "categories": categories,
            "num_params": e["num_params"],
            "recipe": e["recipe"],
            "_metrics": {"ImageNet-1K": {"acc@1": e["acc1"], "acc@5": e["acc5"]}},
            "_ops": e["gmacs"],
            "_file_size": e["file_size_mb"],
            "_docs": e["docs"],
        }
        by_enum.setdefault(e["enum_name"], []).append((e["member"], Weights(e["url"], _preset(e["preset"]), meta)))
        model_of[e["enum_name"]] = e["model"]
        if e["is_default"]:
            defaults[e["enum_name"]] = e["member"]
        if e["is_legacy_pretrained"]:
            legacy[e["model"]] = f"{e['enum_name']}.{e['member']}"
    enums: dict[str, type[WeightsEnum]] = {}
    by_model: dict[str, type[WeightsEnum]] = {}
    for enum_name, members in by_enum.items():
        values = dict(members)
        items = [*members, ("DEFAULT", values[defaults[enum_name]])]  # same value: DEFAULT is an alias
        cls = WeightsEnum(enum_name, items, module="pyflame_vision.models", qualname=enum_name)
        enums[enum_name] = cls
        by_model[model_of[enum_name]] = cls
    legacy_members = {model: _lookup(enums, name) for model, name in legacy.items()}
    return enums, by_model, legacy_members


def _lookup(enums: dict[str, type[WeightsEnum]], name: str) -> WeightsEnum:
    enum_name, member = name.split(".")
    return enums[enum_name][member]


ENUMS, _BY_MODEL, LEGACY_PRETRAINED = _build()


def get_weight(name: str) -> WeightsEnum:
    """The member named ``"ResNet50_Weights.IMAGENET1K_V2"`` (as torchvision.models.get_weight).
    Raises ValueError for a malformed or unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"get_weight expects a name such as 'ResNet50_Weights.IMAGENET1K_V2', got "
                        f"{type(name).__name__}")
    try:
        enum_name, member = name.split(".")
    except ValueError:
        raise ValueError(f"Invalid weight name provided: '{name}'.") from None
    if enum_name not in ENUMS:
        raise ValueError(f"The weight enum '{enum_name}' for the specific method couldn't be retrieved; "
                         f"available: {', '.join(ENUMS)}")
    return ENUMS[enum_name].verify(member)


def get_model_weights(name: str | Callable[..., Any]) -> type[WeightsEnum]:
    """The weights enum class of a model, by name (``"resnet50"``) or factory
    (``models.resnet50``), as torchvision.models.get_model_weights."""
    key = getattr(name, "__name__", name)
    if not isinstance(key, str):
        raise TypeError(f"get_model_weights expects a model name or factory, got {type(name).__name__}")
    try:
        return _BY_MODEL[key.lower()]
    except KeyError:
        raise ValueError(f"Unknown model {key!r}; models with weights: {', '.join(sorted(_BY_MODEL))}") from None


def resolve(model: str, weights: Any, pretrained: Any) -> WeightsEnum | None:
    """The member a factory call asks for: ``weights`` (member, name or None) or the legacy
    ``pretrained=True`` (IMAGENET1K_V1, as torchvision's legacy interface)."""
    enum = _BY_MODEL[model]
    if weights is not None and not isinstance(weights, str) and isinstance(weights, WeightsEnum) \
            and not isinstance(weights, enum):
        raise TypeError(f"{model}: weights {weights!r} belong to another model; expected a member of "
                        f"{enum.__name__} ({', '.join(enum.__members__)})")
    if isinstance(pretrained, str) or (pretrained not in (True, False, 0, 1) and pretrained is not None):
        raise TypeError(f"{model}: pretrained must be a bool, got {type(pretrained).__name__} {pretrained!r}; "
                        "use weights= to choose weights by name")
    member = enum.verify(weights)
    if pretrained:
        legacy = LEGACY_PRETRAINED[model]
        if member is not None and member is not legacy:
            raise ValueError(f"{model}: pretrained=True loads {legacy!r} but weights={member!r} was also given; "
                             "pass only weights=")
        member = legacy
    return member
