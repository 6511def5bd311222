"""torchvision-style preprocessing transforms.

Each transform has torchvision's constructor arguments and ``repr`` and a
``get_output_shape(shape)`` for tensors of shape ``[..., C, H, W]``; the shape
logic lives in the C++ core. Pixel operations come in a later release.

>>> from pyflame_vision.transforms import Resize, CenterCrop, Compose
>>> Compose([Resize(256), CenterCrop(224)]).get_output_shape([1, 3, 480, 640])
[1, 3, 224, 224]
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from typing import Any

from pyflame_vision import _core
from pyflame_vision.transforms._presets import ImageClassification, InterpolationMode

__all__ = ["CenterCrop", "Compose", "ImageClassification", "InterpolationMode", "Normalize", "Resize", "Transform"]


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}") from None


def _size_list(size: Any, cls: str) -> list[int]:
    if isinstance(size, (str, bytes)) or not isinstance(size, (numbers.Integral, Sequence)):
        raise TypeError(f"{cls}: size should be int or sequence. Got {type(size)}")
    if isinstance(size, numbers.Integral):
        return [_as_int(size, f"{cls} size")]
    if len(size) not in (1, 2):
        raise ValueError(f"{cls}: size should have 1 or 2 values, got {len(size)}")
    return [_as_int(v, f"{cls} size") for v in size]


class Transform:
    """Base class: subclasses provide ``get_output_shape``."""

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__}: pixel operations are not implemented yet; use get_output_shape()"
        )


class _CoreTransform(Transform):
    _impl: Any

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        """Output shape for an input of shape [..., C, H, W] (list of ints)."""
        return self._impl.get_output_shape(input_shape)


class Resize(_CoreTransform):
    """torchvision.transforms.Resize: an int resizes the smaller edge keeping the
    aspect ratio (480x640 -> 256x341 for 256); an (h, w) pair resizes exactly."""

    def __init__(self, size: Any, interpolation: str = "bilinear", max_size: int | None = None,
                 antialias: bool | None = True) -> None:
        sizes = _size_list(size, "Resize")
        self.size = size
        self.max_size = max_size
        self.interpolation = str(getattr(interpolation, "value", interpolation))
        self.antialias = antialias
        max_size_value = -1 if max_size is None else _as_int(max_size, "Resize max_size")
        self._impl = _core.transforms.Resize(sizes, max_size_value, self.interpolation, bool(antialias),
                                             isinstance(size, numbers.Integral))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class CenterCrop(_CoreTransform):
    """torchvision.transforms.CenterCrop: output [..., h, w]; a crop larger than the
    image pads with zeros, as torchvision does."""

    def __init__(self, size: Any) -> None:
        sizes = _size_list(size, "CenterCrop")
        h, w = (sizes[0], sizes[0]) if len(sizes) == 1 else (sizes[0], sizes[1])
        self.size = (h, w)
        self._impl = _core.transforms.CenterCrop(h, w, isinstance(size, numbers.Integral))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class Normalize(_CoreTransform):
    """torchvision.transforms.Normalize: (x - mean[c]) / std[c] per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        mean_l = [float(v) for v in (mean if isinstance(mean, Sequence) else [mean])]
        std_l = [float(v) for v in (std if isinstance(std, Sequence) else [std])]
        self.mean = mean
        self.std = std
        self.inplace = inplace
        self._impl = _core.transforms.Normalize(mean_l, std_l, bool(inplace))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


class Compose(Transform):
    """torchvision.transforms.Compose: applies the transforms in order."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not hasattr(t, "get_output_shape"):
                raise TypeError(f"Compose: {type(t).__name__} has no get_output_shape()")

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        shape = list(input_shape)
        for t in self.transforms:
            shape = t.get_output_shape(shape)
        return shape

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("] + [f"    {t}" for t in self.transforms] + [")"]
        return "\n".join(lines)
