"""pyflame_vision: torchvision-compatible vision models for the CPU, without PyTorch.

Models are defined once in C++ (``pyflame_vision._core``); this package adds the
torchvision-style factories (:mod:`pyflame_vision.models`), preprocessing
transforms (:mod:`pyflame_vision.transforms`) and the ``pyflame-vision`` command.
"""

from pyflame_vision import models, transforms
from pyflame_vision._core import (
    DTypeError,
    InvalidArgumentError,
    Parameter,
    PyflameVisionError,
    ShapeError,
    ShapeOverflowError,
    Summary,
    TensorSpec,
    UnsupportedError,
    __version__,
)

__all__ = [
    "DTypeError",
    "InvalidArgumentError",
    "Parameter",
    "PyflameVisionError",
    "ShapeError",
    "ShapeOverflowError",
    "Summary",
    "TensorSpec",
    "UnsupportedError",
    "__version__",
    "models",
    "transforms",
]
