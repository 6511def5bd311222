"""torchvision-style preprocessing transforms.

Each transform has torchvision's constructor arguments, ``repr`` and pixel
behaviour (``transform(img)``), plus ``get_output_shape(shape)`` for tensors of
shape ``[..., C, H, W]`` (the shape logic lives in the C++ core).

Images are ``PIL.Image.Image`` objects or NumPy arrays. A PIL image stays a PIL
image through ``Resize`` and ``CenterCrop`` (Pillow does the work, as in
torchvision, so the pixels are torchvision's exactly); ``ToTensor``,
``PILToTensor``, ``ConvertImageDtype`` and ``ToDtype`` turn it into an array.
Arrays follow torchvision's tensor semantics: ``[..., C, H, W]`` (uint8 or
float32 for ``Resize``, float for ``Normalize``), resized by the library's C++
resampler with torchvision's tensor-path numbers. See
:mod:`pyflame_vision.transforms.functional` for the rules.

>>> from pyflame_vision.transforms import Resize, CenterCrop, Compose
>>> Compose([Resize(256), CenterCrop(224)]).get_output_shape([1, 3, 480, 640])
[1, 3, 224, 224]
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyflame_vision import _core
from pyflame_vision.transforms import functional as F
from pyflame_vision.transforms._presets import ImageClassification, InterpolationMode

__all__ = [
    "CenterCrop",
    "Compose",
    "ConvertImageDtype",
    "ImageClassification",
    "InterpolationMode",
    "Lambda",
    "Normalize",
    "PILToTensor",
    "Resize",
    "ToDtype",
    "ToTensor",
    "Transform",
    "functional",
]

functional = F


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
    """Base class: subclasses provide ``__call__(img)`` and ``get_output_shape(shape)``."""

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        raise NotImplementedError(f"{type(self).__name__} does not define get_output_shape()")

    def __call__(self, img: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define __call__()")


class _ShapePreserving(Transform):
    """Conversions that keep the [..., C, H, W] shape (PIL images are described by their tensor shape)."""

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        # An empty Compose returns the shape after the core's checks (ints, >= 0, int64).
        return list(_core.transforms.Compose([]).get_output_shape(list(input_shape)))


class _CoreTransform(Transform):
    _impl: Any

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        """Output shape for an input of shape [..., C, H, W] (list of ints)."""
        return self._impl.get_output_shape(input_shape)


class Resize(_CoreTransform):
    """torchvision.transforms.Resize: an int resizes the smaller edge keeping the
    aspect ratio (480x640 -> 256x341 for 256); an (h, w) pair resizes exactly."""

    def __init__(self, size: Any, interpolation: Any = InterpolationMode.BILINEAR, max_size: int | None = None,
                 antialias: bool | None = True) -> None:
        sizes = _size_list(size, "Resize")
        self.size = size
        self.max_size = max_size
        self.interpolation = F.interpolation_mode(interpolation)
        self.antialias = antialias
        max_size_value = -1 if max_size is None else _as_int(max_size, "Resize max_size")
        self._impl = _core.transforms.Resize(sizes, max_size_value, self.interpolation.value, bool(antialias),
                                             isinstance(size, numbers.Integral))

    def __call__(self, img: Any) -> Any:
        """The resized PIL image (Pillow) or array ``[..., C, H, W]`` (uint8/float32; the C++ resampler)."""
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class CenterCrop(_CoreTransform):
    """torchvision.transforms.CenterCrop: output [..., h, w]; a crop larger than the
    image pads with zeros, as torchvision does."""

    def __init__(self, size: Any) -> None:
        sizes = _size_list(size, "CenterCrop")
        h, w = (sizes[0], sizes[0]) if len(sizes) == 1 else (sizes[0], sizes[1])
        self.size = (h, w)
        self._impl = _core.transforms.CenterCrop(h, w, isinstance(size, numbers.Integral))

    def __call__(self, img: Any) -> Any:
        """The center crop of a PIL image or an array ``[..., H, W]`` (a view when no padding is needed)."""
        return F.center_crop(img, self.size)

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

    def __call__(self, tensor: Any) -> np.ndarray:
        """``(x - mean[c]) / std[c]`` of a float array ``[..., C, H, W]``."""
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


class ToTensor(_ShapePreserving):
    """torchvision.transforms.ToTensor: a PIL image or an ``H x W x C`` array to a ``C x H x W`` array; 8-bit data
    becomes float32 in [0, 1]."""

    def __call__(self, pic: Any) -> np.ndarray:
        return F.to_tensor(pic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PILToTensor(_ShapePreserving):
    """torchvision.transforms.PILToTensor: a PIL image to a ``C x H x W`` array of its own dtype (no scaling)."""

    def __call__(self, pic: Any) -> np.ndarray:
        return F.pil_to_tensor(pic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConvertImageDtype(_ShapePreserving):
    """torchvision.transforms.ConvertImageDtype: converts an array to ``dtype`` (a NumPy dtype, or a torch dtype by
    name) and rescales the values (uint8 -> float32: ``x / 255``)."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = F._numpy_dtype(dtype)

    def __call__(self, image: Any) -> np.ndarray:
        return F.convert_image_dtype(image, self.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype})"


class ToDtype(_ShapePreserving):
    """torchvision.transforms.v2.ToDtype: casts an array to ``dtype``; ``scale=True`` also rescales the value range
    (uint8 -> float32: ``x * (1 / 255)``). PIL images pass through unchanged, as in v2."""

    def __init__(self, dtype: Any, scale: bool = False) -> None:
        self.dtype = F._numpy_dtype(dtype)
        self.scale = bool(scale)

    def __call__(self, image: Any) -> Any:
        return F.to_dtype(image, self.dtype, self.scale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype}, scale={self.scale})"


class Lambda(Transform):
    """torchvision.transforms.Lambda: applies a user function. It has no known output shape."""

    def __init__(self, lambd: Any) -> None:
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        raise TypeError("Lambda: the output shape of a user function is unknown; get_output_shape() is not available")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(Transform):
    """torchvision.transforms.Compose: applies the transforms in order (any callables, as in torchvision;
    ``get_output_shape`` needs every one of them to have it)."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {type(t).__name__} is not callable")

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        shape = list(input_shape)
        for t in self.transforms:
            if not hasattr(t, "get_output_shape"):
                raise TypeError(f"Compose: {type(t).__name__} has no get_output_shape()")
            shape = t.get_output_shape(shape)
        return shape

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("] + [f"    {t}" for t in self.transforms] + [")"]
        return "\n".join(lines)
