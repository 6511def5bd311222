"""pyflame_vision: torchvision-compatible vision models for the CPU, without PyTorch.

Models are defined once in C++ (``pyflame_vision._core``); this package adds the
torchvision-style factories (:mod:`pyflame_vision.models`), preprocessing
transforms (:mod:`pyflame_vision.transforms`), weight files (``save_weights`` /
``load_weights`` / ``read_weights``: ``.safetensors``, ``.npz`` and PyTorch checkpoints, read
without torch and without running code from the file), torchvision's pretrained weights
(``models.ResNet50_Weights``, downloaded by :mod:`pyflame_vision.hub` into torch hub's cache),
images in, labels out (:func:`predict`, :func:`embed`: :mod:`pyflame_vision.inference`) and the
``pyflame-vision`` command. Wheels also ship the C++
SDK (headers, static library, CMake package): see :func:`get_cmake_dir`. Models run on float32
NumPy arrays with the library's own CPU kernels.
"""

from pyflame_vision import hub, models, transforms
from pyflame_vision._core import (
    DTypeError,
    IncompatibleKeys,
    InvalidArgumentError,
    Parameter,
    PyflameVisionError,
    ShapeError,
    ShapeOverflowError,
    Summary,
    TensorSpec,
    UnsupportedError,
    WeightsError,
    __version__,
    active_isa,
    detected_isa,
    get_num_threads,
    set_max_isa,
    set_num_threads,
)
from pyflame_vision._sdk import SdkNotFoundError, get_cmake_dir, get_include
from pyflame_vision.inference import Prediction, embed, load_image, predict, softmax, topk
from pyflame_vision.io import load_weights, read_weights, save_weights


def _model_predict(self, images, weights=None, **kwargs):
    """``pyflame_vision.predict(self, images, weights, ...)``: top-k labels and probabilities per image."""
    return predict(self, images, weights, **kwargs)


def _model_embed(self, images, weights=None, **kwargs):
    """``pyflame_vision.embed(self, images, weights, ...)``: one pooled feature vector per image."""
    return embed(self, images, weights, **kwargs)


# model.predict(...) / model.embed(...): the C++ Model class gets the Python pipeline as methods.
models.Model.predict = _model_predict
models.Model.embed = _model_embed

__all__ = [
    "DTypeError",
    "IncompatibleKeys",
    "InvalidArgumentError",
    "Parameter",
    "Prediction",
    "PyflameVisionError",
    "ShapeError",
    "SdkNotFoundError",
    "ShapeOverflowError",
    "Summary",
    "TensorSpec",
    "UnsupportedError",
    "WeightsError",
    "__version__",
    "active_isa",
    "detected_isa",
    "embed",
    "get_cmake_dir",
    "get_include",
    "get_num_threads",
    "hub",
    "load_image",
    "load_weights",
    "models",
    "predict",
    "read_weights",
    "save_weights",
    "set_max_isa",
    "set_num_threads",
    "softmax",
    "topk",
    "transforms",
]
