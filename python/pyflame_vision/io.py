"""Weight files: ``.safetensors`` and ``.npz``, never pickle.

A weight file holds a model's state dict under torchvision's keys
(``conv1.weight``, ``layer1.0.bn1.running_mean``, ...), so a torchvision
checkpoint converted once with ``safetensors.torch.save_file`` loads here as is.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

_FORMATS = (".safetensors", ".npz")


def _format(path: str) -> str:
    for ext in _FORMATS:
        if path.lower().endswith(ext):
            return ext
    if path.lower().endswith((".pt", ".pth", ".bin", ".pkl", ".ckpt")):
        raise ValueError(
            f"{path!r} looks like a pickled PyTorch checkpoint; pyflame_vision never loads pickled data. "
            "Convert it once where torch is installed: "
            "safetensors.torch.save_file(torch.load(path, weights_only=True), 'weights.safetensors')"
        )
    raise ValueError(f"unsupported weight file {path!r}: expected a name ending in .safetensors or .npz")


def save_weights(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model.state_dict()`` to ``path`` (``.safetensors`` or ``.npz``, chosen by the extension).

    Raises WeightsError if the model has no weights, ValueError for another extension.
    """
    path = os.fspath(path)
    fmt = _format(path)
    state = model.state_dict()
    if fmt == ".safetensors":
        from safetensors.numpy import save_file

        save_file(dict(state), path, metadata={"format": "np", "model": str(model.name)})
    else:
        # np.savez writes exactly `path` because it already ends in .npz.
        np.savez(path, **state)


def load_weights(model: Any, path: str | os.PathLike[str], strict: bool = True) -> Any:
    """Load a ``.safetensors`` or ``.npz`` file into ``model`` with ``model.load_state_dict(..., strict)``.

    Returns IncompatibleKeys(missing_keys, unexpected_keys). Raises FileNotFoundError,
    ValueError for other formats (pickle is never loaded), WeightsError if the file does not fit
    the model (the model's weights are then unchanged).
    """
    path = os.fspath(path)
    fmt = _format(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weight file at {path!r}")
    if fmt == ".safetensors":
        from safetensors.numpy import load_file

        state = load_file(path)
    else:
        with np.load(path, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
    return model.load_state_dict(state, strict=strict)
