"""torchvision's interpolation modes and the ``ImageClassification`` preset.

``ImageClassification`` has torchvision's constructor (keyword-only ``crop_size``,
``resize_size``, ``mean``, ``std``, ``interpolation``, ``antialias``), attributes
(lists, as torchvision stores them), ``repr``, ``describe()`` and pixel
behaviour: ``preset(img)`` gives the model input as float32 ``[C, crop, crop]``
(or ``[..., C, crop, crop]`` for a batch of arrays). The weights enums'
``.transforms`` is a ``functools.partial`` of it, as in torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np

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

    def __call__(self, img: Any) -> np.ndarray:
        """torchvision's preset: resize the smaller edge to ``resize_size``, center-crop ``crop_size``, rescale to
        [0, 1], normalize. A PIL image takes torchvision's PIL path (Pillow resizes and crops; the result equals
        torchvision's exactly). An array ``[..., C, H, W]`` (uint8 or float32) takes the tensor path in one C++ call:
        only the cropped window of the resize is computed, uint8 is rounded after the resize as torchvision does
        on uint8 tensors."""
        from pyflame_vision import _core
        from pyflame_vision.transforms import functional as F

        if isinstance(img, np.ndarray):
            arr = F._image_array(img, type(self).__name__)
            c, h, w = arr.shape[-3:]
            out = _core.transforms.image_classification(
                arr.reshape((-1, c, h, w)), self.crop_size[0], self.resize_size[0], [float(v) for v in self.mean],
                [float(v) for v in self.std], F.interpolation_mode(self.interpolation).value, bool(self.antialias))
            return out.reshape((*arr.shape[:-3], *out.shape[1:]))
        img = F.resize(img, self.resize_size, interpolation=self.interpolation, antialias=self.antialias)
        img = F.center_crop(img, self.crop_size)
        if not isinstance(img, np.ndarray):
            img = F.pil_to_tensor(img)
        if img.dtype == np.uint8:  # convert_image_dtype (x / 255) and normalize in one pass
            c, h, w = img.shape[-3:]
            return _core.transforms.normalize(img.reshape((1, c, h, w)), [float(v) for v in self.mean],
                                              [float(v) for v in self.std]).reshape(img.shape)
        img = F.convert_image_dtype(img, np.float32)
        return F.normalize(img, mean=self.mean, std=self.std)

    forward = __call__

    def get_output_shape(self, input_shape: Sequence[int]) -> list[int]:
        """``[..., C, crop_size, crop_size]`` for an image of shape ``[..., C, H, W]``."""
        from pyflame_vision import _core

        shape = _core.transforms.Resize(self.resize_size, -1, "bilinear", True, True).get_output_shape(
            list(input_shape))
        shape[-2:] = [self.crop_size[0], self.crop_size[0]]
        return _core.transforms.Normalize([float(v) for v in self.mean], [float(v) for v in self.std],
                                          False).get_output_shape(shape)

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
