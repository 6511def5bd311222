"""Weight files: ``.safetensors``, ``.npz`` and PyTorch checkpoints (``.pth``, ``.pt``, ``.bin``, ``.ckpt``, ...).

A weight file holds a model's state dict under torchvision's keys (``conv1.weight``,
``layer1.0.bn1.running_mean``, ...). PyTorch checkpoints, as ``torch.save`` writes them (zip or
legacy format), are read by pyflame_vision's own C++ reader: it needs no torch and never runs
code from the file (its pickle interpreter knows only tensors, storages, dicts and plain values;
any other global is a ``WeightsError`` naming it). ``.safetensors`` files are read with the
``safetensors`` package and ``.npz`` files with NumPy (``allow_pickle=False``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pyflame_vision import _core

_SAFETENSORS, _NPZ = ".safetensors", ".npz"


def _strip(state: dict[str, np.ndarray], prefix: str | None, path: str) -> dict[str, np.ndarray]:
    if not prefix:
        return state
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        new = key[len(prefix):] if key.startswith(prefix) else key
        if new in out:
            raise _core.WeightsError(f"{path}: strip_prefix={prefix!r} maps two keys to the same key {new!r}")
        out[new] = value
    return out


def _check_options(path: str, kind: str, key: str | None, strip_prefix: str | None) -> None:
    if key is not None:
        raise _core.InvalidArgumentError(
            f"key={key!r} selects an entry of a PyTorch checkpoint, but {path!r} is a {kind} file "
            "(a flat dict of tensors)"
        )
    if strip_prefix is not None and not isinstance(strip_prefix, str):
        raise TypeError(f"strip_prefix must be a str or None, got {type(strip_prefix).__name__}")


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path!r}")


def read_weights(
    path: str | os.PathLike[str], *, key: str | None = None, strip_prefix: str | None = None
) -> dict[str, np.ndarray]:
    """The tensors of a weight file as ``{name: numpy array}``, in the file's (state dict's) order.

    ``.npz`` and ``.safetensors`` files are chosen by their name; every other file by its content: a
    PyTorch checkpoint (``.pth``, ``.pt``, ``.bin``, ``.ckpt``, ``.tar``, ... in torch.save's zip or
    legacy format) or a ``.safetensors`` file under another name. From a checkpoint, float32/float16/
    bfloat16/float64 tensors come back as float32 (float64 rounded to nearest, as torch's ``.float()``);
    int64, int32, uint8 and bool keep their dtype.

    ``key`` names the top-level entry of a training checkpoint that holds the state dict (e.g.
    ``"state_dict"`` or ``"model"``); ``strip_prefix`` removes a prefix such as ``"module."``
    (DataParallel) from every key that starts with it. Raises FileNotFoundError, WeightsError (a
    ValueError) for a malformed or unsafe file, a checkpoint whose state dict is not where it is
    looked for (the message lists the top-level keys and suggests ``key=``), or a tensor dtype
    pyflame_vision does not read.
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    _require_file(path)
    lower = path.lower()
    if lower.endswith(_NPZ):
        _check_options(path, ".npz", key, strip_prefix)
        with np.load(path, allow_pickle=False) as f:
            return _strip({k: f[k] for k in f.files}, strip_prefix, path)
    if lower.endswith(_SAFETENSORS):
        _check_options(path, ".safetensors", key, strip_prefix)
        from safetensors.numpy import load_file

        return _strip(dict(load_file(path)), strip_prefix, path)
    return _core.read_weights(path, key=key, strip_prefix=strip_prefix)


def save_weights(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model.state_dict()`` to ``path`` (``.safetensors`` or ``.npz``, chosen by the extension).

    Raises WeightsError if the model has no weights, ValueError for another extension (PyTorch
    checkpoints are read, never written).
    """
    path = os.fspath(path)
    lower = path.lower()
    if not lower.endswith((_SAFETENSORS, _NPZ)):
        raise ValueError(
            f"unsupported weight file {path!r}: expected a name ending in .safetensors or .npz "
            "(PyTorch checkpoints are read, never written)"
        )
    state = model.state_dict()
    if lower.endswith(_SAFETENSORS):
        from safetensors.numpy import save_file

        save_file(dict(state), path, metadata={"format": "np", "model": str(model.name)})
    else:
        # np.savez writes exactly `path` because it already ends in .npz.
        np.savez(path, **state)


def load_weights(
    model: Any,
    path: str | os.PathLike[str],
    strict: bool = True,
    *,
    key: str | None = None,
    strip_prefix: str | None = None,
) -> Any:
    """Load a weight file into ``model`` with ``model.load_state_dict(..., strict)``.

    Reads what :func:`read_weights` reads (same ``key`` and ``strip_prefix``). A PyTorch checkpoint
    (or a ``.safetensors`` file with another name) goes straight from the file into the model in
    C++: the model takes over the tensors read, so loading ResNet-50 needs well under twice its
    weights' size. When no key of the model was missing, the model remembers the file (path, size, modification
    time: ``pyflame_vision.models.weights_source(model)``), so that pickling it refers to the file instead of
    carrying the weights. Returns IncompatibleKeys(missing_keys, unexpected_keys). Raises
    FileNotFoundError, WeightsError if the file is malformed or unsafe or does not fit the model (the
    model's weights are then unchanged).
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    _require_file(path)
    before = os.stat(path)
    if path.lower().endswith((_NPZ, _SAFETENSORS)):
        result = model.load_state_dict(read_weights(path, key=key, strip_prefix=strip_prefix), strict=strict)
    else:
        result = _core.load_weights(model, path, strict, key=key, strip_prefix=strip_prefix)
    # Remember the file (pickles then refer to it instead of carrying the weights; see models/_record.py).
    from pyflame_vision.models import _record

    _record.note_file(model, path, before, result.missing_keys, key, strip_prefix)
    return result
