"""torchvision's interpolation modes and the ``ImageClassification`` preset.

``ImageClassification`` has torchvision's constructor (keyword-only ``crop_size``,
``resize_size``, ``mean``, ``std``, ``interpolation``, ``antialias``), attributes
(lists, as torchvision stores them), ``repr`` and ``describe()``. The weights
enums' ``.transforms`` is a ``functools.partial`` of it, as in torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

__all__ = ["ImageClassification", "InterpolationMode"]


class InterpolationMode(Enum):
    """torchvision.transforms.InterpolationMode (same members and values)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


class ImageClassification:
    """torchvision.transforms._presets.ImageClassification: resize the smaller edge to
    ``resize_size``, center-crop ``crop_size``, scale to [0, 1], normalize."""

    def __init__(
        self,
        *,
        crop_size: int,
        resize_size: int = 256,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        interpolation: InterpolationMode = InterpolationMode.BILINEAR,
        antialias: bool | None = True,
    ) -> None:
        self.crop_size = [crop_size]
        self.resize_size = [resize_size]
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = interpolation
        self.antialias = antialias

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, ImageClassification):
            return NotImplemented
        return vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((tuple(self.crop_size), tuple(self.resize_size), tuple(self.mean), tuple(self.std),
                     self.interpolation, self.antialias))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(\n    crop_size={self.crop_size}\n    resize_size={self.resize_size}"
                f"\n    mean={self.mean}\n    std={self.std}\n    interpolation={self.interpolation}\n)")

    def describe(self) -> str:
        return (
            "Accepts ``PIL.Image``, batched ``(B, C, H, W)`` and single ``(C, H, W)`` image ``numpy.ndarray`` "
            f"objects. The images are resized to ``resize_size={self.resize_size}`` using "
            f"``interpolation={self.interpolation}``, followed by a central crop of ``crop_size={self.crop_size}``. "
            "Finally the values are first rescaled to ``[0.0, 1.0]`` and then normalized using "
            f"``mean={self.mean}`` and ``std={self.std}``."
        )
