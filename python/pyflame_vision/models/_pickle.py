"""Pickling models: architecture + weights (a reference when the weights' origin is known, else their bytes).

``pickle.dumps(model)`` (and ``copy.deepcopy``, Dask, multiprocessing) calls ``Model.__reduce__`` (in the
bindings), which gives ``_rebuild(architecture, weights_state)``:

- ``architecture``: ``model._architecture()``, the family, name and constructor options (ResNet: block type,
  layers, groups, width_per_group, zero_init_residual, replace_stride_with_dilation; EfficientNet: width and depth
  multipliers, dropout, stochastic_depth_prob, resolution) and num_classes (0 once the head was removed, which
  builds the same module tree);
- ``weights_state``: None for a model without weights; ``{"kind": "enum", "weights": "ResNet50_Weights.V2"}``
  or ``{"kind": "file", "path", "size", "mtime_ns", "key", "strip_prefix"}`` when the current weights are known
  to come from a weights enum member or a file (:mod:`pyflame_vision.models._record`), which the unpickling
  process opens itself (the enum's checkpoint from its download cache, downloading it if needed; the file only if
  its size and modification time are unchanged); otherwise ``{"kind": "safetensors", "data": bytes, "sha256",
  "digest"}``, the state dict written by the ``safetensors`` package in memory (``sha256``: of the bytes, checked
  when unpickling; ``digest``: of the tensors, the weights' identity, see :func:`state_digest`).
  :func:`inline_weights` forces the bytes (for a process that cannot open the file or the cache).

Unpickling builds the same architecture and loads the same float32 values, so outputs are bit-identical to the
original's on the same instruction-set tier. A model with only part of its weights (a non-strict load that left
keys missing) cannot be pickled: WeightsError.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from pyflame_vision import _core
from pyflame_vision.models import _record

__all__ = ["inline_weights", "safetensors_bytes", "state_digest", "weights_state"]

FORMAT = 1
_inline: contextvars.ContextVar[bool] = contextvars.ContextVar("pyflame_vision_inline_weights", default=False)


@contextlib.contextmanager
def inline_weights(enabled: bool = True) -> Iterator[None]:
    """Within this block (in this thread / context), models pickle with their weights' ``.safetensors`` bytes even
    when the weights come from a weights enum member or a file: for pickles read where that file or the download
    cache is not available.

    >>> with pyflame_vision.models.inline_weights():       # doctest: +SKIP
    ...     blob = pickle.dumps(model)                      # self-contained
    """
    token = _inline.set(bool(enabled))
    try:
        yield
    finally:
        _inline.reset(token)


def safetensors_bytes(model: Any) -> bytes:
    """``model.state_dict()`` as a ``.safetensors`` image in memory (what ``save_weights`` writes to a file)."""
    return _serialize(model, model.state_dict())


def _serialize(model: Any, state: dict[str, Any]) -> bytes:
    from safetensors.numpy import save

    return save(dict(state), metadata={"format": "np", "model": str(model.name)})


def weights_state(model: Any) -> dict[str, Any] | None:
    """The weights part of ``model``'s pickle (see the module docstring)."""
    if not model.has_weights:
        if model.weights_version != 0:
            raise _core.WeightsError(
                f"cannot pickle {model.name or type(model).__name__}: it has only part of its weights (a "
                "load_state_dict(strict=False) left keys without values); load the rest first")
        return None
    if not _inline.get():
        source = _record.weights_source(model)
        if isinstance(source, _record.EnumSource):
            return {"kind": "enum", "weights": source.weights}
        if isinstance(source, _record.FileSource):
            return {"kind": "file", "path": source.path, "size": source.size, "mtime_ns": source.mtime_ns,
                    "key": source.key, "strip_prefix": source.strip_prefix}
    state = model.state_dict()
    data = _serialize(model, state)
    return {"kind": "safetensors", "data": data, "sha256": hashlib.sha256(data).hexdigest(),
            "digest": state_digest(state)}


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and values, in order: identifies the weights themselves
    (the ``.safetensors`` bytes cannot: the package writes its metadata in a varying order)."""
    h = hashlib.sha256()
    for name, value in state.items():
        h.update(f"{name}|{value.dtype.str}|{list(value.shape)}|".encode())
        h.update(np.ascontiguousarray(value))
    return h.hexdigest()


def build(arch: dict[str, Any]) -> Any:
    """A model (without weights) with the architecture ``model._architecture()`` returned."""
    from pyflame_vision.models import EfficientNet, ResNet, ResNetBlockType

    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        got = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise _core.UnsupportedError(f"unpickling a model: expected architecture format {FORMAT}, got {got!r} "
                                     "(pickled by another version of pyflame_vision?)")
    family = arch.get("family")
    if family == "resnet":
        model = ResNet(ResNetBlockType.__members__[arch["block_type"]], arch["layers"],
                       num_classes=arch["num_classes"], zero_init_residual=arch["zero_init_residual"],
                       groups=arch["groups"], width_per_group=arch["width_per_group"],
                       replace_stride_with_dilation=arch["replace_stride_with_dilation"])
    elif family == "efficientnet":
        model = EfficientNet(width_mult=arch["width_mult"], depth_mult=arch["depth_mult"], dropout=arch["dropout"],
                             num_classes=arch["num_classes"], stochastic_depth_prob=arch["stochastic_depth_prob"],
                             resolution=arch["resolution"])
    else:
        raise _core.UnsupportedError(f"unpickling a model: expected family 'resnet' or 'efficientnet', got "
                                     f"{family!r}")
    if arch["name"]:
        model._set_name(arch["name"])
    return model


def _check_complete(model: Any, result: Any, what: str) -> None:
    if result.missing_keys:
        raise _core.WeightsError(f"unpickling {model.name or type(model).__name__}: {what} lacks "
                                 f"{len(result.missing_keys)} of the model's weights, e.g. {result.missing_keys[0]!r}")


def load_state(model: Any, state: dict[str, Any] | None) -> None:
    """Loads the weights part of a pickle into ``model`` (built by :func:`build`)."""
    from pyflame_vision.io import load_weights

    if state is None:
        return
    kind = state.get("kind")
    if kind == "safetensors":
        data = state["data"]
        digest = hashlib.sha256(data).hexdigest()
        if digest != state["sha256"]:
            raise _core.WeightsError(f"unpickling {model.name}: the weights' bytes have SHA-256 {digest}, expected "
                                     f"{state['sha256']} (corrupted in transit?)")
        from safetensors.numpy import load

        model.load_state_dict(load(bytes(data)), strict=True)
    elif kind == "enum":
        from pyflame_vision.models._weights import get_weight

        member = get_weight(state["weights"])
        path = member.get_checkpoint(progress=False, check_hash=True)
        _check_complete(model, load_weights(model, path, strict=False), f"{state['weights']}'s checkpoint {path}")
        _record.note(model, _record.EnumSource(state["weights"]))
    elif kind == "file":
        path = state["path"]
        st = os.stat(path)  # FileNotFoundError names the path
        if (st.st_size, st.st_mtime_ns) != (state["size"], state["mtime_ns"]):
            raise _core.WeightsError(
                f"unpickling {model.name}: the weight file {path} changed since the model was pickled (size "
                f"{st.st_size}, mtime_ns {st.st_mtime_ns}; expected {state['size']}, {state['mtime_ns']}); pickle "
                "the model inside pyflame_vision.models.inline_weights() to carry the weights themselves")
        _check_complete(model, load_weights(model, path, strict=False, key=state["key"],
                                            strip_prefix=state["strip_prefix"]), f"the weight file {path}")
    else:
        raise _core.UnsupportedError(f"unpickling a model: unknown weights kind {kind!r}")


def _rebuild(arch: dict[str, Any], state: dict[str, Any] | None) -> Any:
    model = build(arch)
    load_state(model, state)
    return model
