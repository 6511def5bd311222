"""Where a model's weights came from: a weights enum member or a weight file.

The factories' ``weights=`` path records the member, :func:`pyflame_vision.load_weights` the file (its
absolute path, size and modification time, and the ``key`` / ``strip_prefix`` it was read with). A record holds
only while the model's ``weights_version`` is the one it was made at: any later ``init_weights``,
``load_state_dict`` or ``load_weights`` gives the model a new version, which makes the record stale (so it needs
no hook in those calls). Records are held per model object (weakly: they go with the model).

Users of the record: pickling (a model pickles to the reference instead of its weights' bytes:
:mod:`pyflame_vision.models._pickle`) and :func:`pyflame_vision.predict` / ``embed`` (the preset and category
names of the weights actually loaded).
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["EnumSource", "FileSource", "WeightsSource", "note", "note_file", "weights_source"]


@dataclass(frozen=True)
class EnumSource:
    """Weights loaded from a weights enum member's checkpoint (``"ResNet50_Weights.IMAGENET1K_V2"``)."""

    weights: str

    def member(self) -> Any:
        from pyflame_vision.models._weights import get_weight

        return get_weight(self.weights)


@dataclass(frozen=True)
class FileSource:
    """Weights read from a file: every weight of the model came from it (no key of the model was missing)."""

    path: str  # absolute
    size: int
    mtime_ns: int
    key: str | None = None
    strip_prefix: str | None = None


WeightsSource = Union[EnumSource, FileSource]

_lock = threading.Lock()
_records: weakref.WeakKeyDictionary[Any, tuple[WeightsSource, int]] = weakref.WeakKeyDictionary()


def note(model: Any, source: WeightsSource) -> None:
    """Records that ``model``'s current weights (its current ``weights_version``) come from ``source``."""
    version = model.weights_version
    with _lock:
        _records[model] = (source, version)


def note_file(model: Any, path: str, before: os.stat_result, missing_keys: list[str], key: str | None,
              strip_prefix: str | None) -> None:
    """Records a weight file just loaded into ``model`` if every key of the model came from it and the file did
    not change while it was read (``before``: its stat before the read)."""
    if missing_keys:
        return
    try:
        after = os.stat(path)
    except OSError:
        return
    if (after.st_size, after.st_mtime_ns, after.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
        return
    note(model, FileSource(os.path.abspath(path), after.st_size, after.st_mtime_ns, key, strip_prefix))


def weights_source(model: Any) -> WeightsSource | None:
    """Where ``model``'s current weights came from: an :class:`EnumSource`, a :class:`FileSource`, or None (no
    weights, weights from ``init_weights`` or a state dict, or a record made stale by a later change)."""
    with _lock:
        rec = _records.get(model)
    if rec is None or rec[1] != model.weights_version:
        return None
    return rec[0]
