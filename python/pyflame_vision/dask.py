"""Batch inference and embeddings over large image sets on a Dask cluster (``pip install 'pyflame-vision[dask]'``).

>>> from distributed import Client
>>> import pyflame_vision.dask as pvd, pyflame_vision.models as models
>>> client = Client("tcp://scheduler:8786")                      # or Client(LocalCluster(...))
>>> model = models.resnet50(weights="IMAGENET1K_V2")
>>> frame = pvd.predict(model, "/data/photos/", topk=5)           # a lazy dask DataFrame, one row per image
>>> pvd.to_parquet(frame, "/data/predictions.parquet")            # runs the job; or frame.compute()

Images are a list of paths, a directory (walked recursively for image files), a glob (``"/data/**/*.jpg"``), a
pandas or Dask DataFrame with a ``path`` column (or a Series), or a Dask Bag of paths. Paths from a list, a
directory or a glob are made absolute on the client: every worker must see the files under the same path (a
shared file system). The result has one row per input path, in input order, with these columns (pyarrow-backed):

- ``path`` (string);
- :func:`predict`: ``indices`` (``topk`` int64 class indices, most probable first), ``labels`` (their category
  names) and ``probabilities`` (float32 softmax values), each a fixed-size list;
- :func:`embed`: ``features``, the pooled feature vector (a fixed-size list of ``model.num_features()`` float32);
- ``error``: null, or ``"ExceptionType: message"`` for an image that could not be read or preprocessed (then the
  other columns are null). An unreadable image never fails the job.

The values are those of :func:`pyflame_vision.predict` / :func:`pyflame_vision.embed` in one process, bit for bit
(results do not depend on batch composition or thread count).

**How the model gets to the workers.** Calling :func:`predict` / :func:`embed` registers a Dask worker plugin
holding the model's pickle (see :mod:`pyflame_vision.models._pickle`): a small reference when the model's weights
come from a weights enum member (each worker finds the checkpoint in its download cache, or downloads it) or a
file (opened on the worker; its size and modification time must match), else the weights' ``.safetensors``
bytes. The scheduler sends a plugin once to every worker, and again only to workers that join later (or replace
a dead one); registering the same model again (same architecture and weights) is skipped, so a worker that holds
the model never receives it again. Each worker process builds the model once, in the plugin's setup, into a
process-wide cache that all its threads share (a model's forward is thread-safe); tasks carry only the model's
key. If a worker cannot open the reference (no shared file system, no download), the plugin is registered again
with the bytes (``ship_weights="auto"``; ``"bytes"`` always ships them). :func:`release` drops a model from the
cluster; :func:`worker_info` tells what a worker holds and how often it loaded it.

**Threads.** Each worker thread runs one partition at a time, in batches of ``batch_size`` images (the next batch
is decoded and preprocessed while the current one runs). The model's intra-op threads
(:func:`pyflame_vision.set_num_threads`) are set in each worker process to ``max(1, cores // threads)``, where
``cores`` is the number of CPUs the worker may use and ``threads`` the total number of Dask threads of all
workers on that host (so that threads x intra-op threads <= cores on every host); ``threads=`` overrides it.

**Faults.** Partitions are pure functions of their paths (deterministic, no side effects): when a worker dies,
Dask reruns its lost partitions elsewhere, and :func:`to_parquet` (Dask's ``to_parquet``: one file per
partition, named by its index) rewrites the same file, so no image is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import os
import pickle
import threading
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

try:
    import dask.bag as db
    import dask.dataframe as dd
    import distributed
    import pandas as pd
    import pyarrow as pa
    from distributed import WorkerPlugin
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"pyflame_vision.dask needs dask[distributed], pandas and pyarrow ({_exc}): "
                      "pip install 'pyflame-vision[dask]'") from _exc

import pyflame_vision
from pyflame_vision.inference import (
    _batches,
    _ensure_weights,
    _top_k,
    _transform_and_categories,
    find_images,
    pooled_features,
    softmax,
)
from pyflame_vision.models import _pickle

__all__ = ["embed", "image_paths", "local_cluster", "predict", "release", "to_parquet", "worker_info"]

_STRING = pd.ArrowDtype(pa.string())
_SHIP = ("auto", "bytes")


# ------------------------------------------------------------------------------------------------ inputs


def _absolute(paths: Sequence[Any]) -> list[str]:
    return [os.path.abspath(os.fspath(p)) for p in paths]


def _expand(pattern: str) -> list[str]:
    if os.path.isdir(pattern):
        return find_images([pattern])
    if os.path.exists(pattern):
        return [pattern]
    if any(c in pattern for c in "*?["):
        found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not found:
            raise FileNotFoundError(f"image_paths: no file matches the glob {pattern!r}")
        return found
    raise FileNotFoundError(f"image_paths: no such file or directory: {pattern!r}")


def _as_record(path: Any, column: str) -> dict[str, Any]:
    return {column: path}


def image_paths(images: Any, *, partition_size: int = 128, column: str = "path") -> dd.DataFrame:
    """A Dask DataFrame with one column ``column`` of image paths, from what :func:`predict` accepts (see the
    module docstring). A list, a directory or a glob is split into partitions of ``partition_size`` paths (index:
    the position, 0 to N-1); Dask collections keep their partitions. Raises FileNotFoundError for a missing path
    or a glob that matches nothing, ValueError when there are no images, TypeError for another kind of input."""
    if isinstance(partition_size, bool) or not isinstance(partition_size, (int, np.integer)) or partition_size < 1:
        raise ValueError(f"image_paths: partition_size must be an int >= 1, got {partition_size!r}")
    if isinstance(images, dd.DataFrame):
        if column not in images.columns:
            raise ValueError(f"image_paths: expected a column {column!r} of paths, got columns "
                             f"{list(images.columns)} (pass column=)")
        return images[[column]]
    if isinstance(images, dd.Series):
        return images.to_frame(name=column)
    if isinstance(images, db.Bag):
        meta = pd.DataFrame({column: pd.Series([], dtype=_STRING)})
        return images.map(_as_record, column).to_dataframe(meta=meta)
    if isinstance(images, pd.DataFrame):
        if column not in images.columns:
            raise ValueError(f"image_paths: expected a column {column!r} of paths, got columns "
                             f"{list(images.columns)} (pass column=)")
        images = images[column]
    if isinstance(images, pd.Series):
        frame = pd.DataFrame({column: pd.Series(list(images), dtype=object)})  # taken as they are
        if frame.empty:
            raise ValueError("image_paths: no images")
        return dd.from_pandas(frame, chunksize=int(partition_size), sort=True)
    if isinstance(images, (str, os.PathLike)):
        paths = _absolute(_expand(os.fspath(images)))
    elif isinstance(images, bytes):
        raise TypeError("image_paths: expected a str path, got bytes (decode it, e.g. os.fsdecode)")
    else:
        try:
            items = list(images)
        except TypeError:
            raise TypeError(f"image_paths: expected paths (a list, a directory, a glob, a DataFrame, a Series or a "
                            f"Bag), got {type(images).__name__}") from None
        bad = [p for p in items if not isinstance(p, (str, os.PathLike))]
        if bad:
            raise TypeError(f"image_paths: expected str or os.PathLike paths, got {type(bad[0]).__name__} "
                            f"{bad[0]!r}")
        paths = _absolute(items)
    if not paths:
        raise ValueError("image_paths: no images")
    frame = pd.DataFrame({column: pd.array(paths, dtype=_STRING)})
    return dd.from_pandas(frame, chunksize=int(partition_size), sort=True)


# ------------------------------------------------------------------------------------------------ the worker side

_lock = threading.Lock()  # guards everything below
_models: dict[str, Any] = {}  # model key -> model, built once per process, shared by its threads
_local: dict[str, weakref.ref] = {}  # the client's own models (for Dask's local schedulers), not copied
_loads: Counter = Counter()  # model key -> models built in this process
_payloads: Counter = Counter()  # model key -> plugin payloads this process received
_payload_bytes: Counter = Counter()


def _load(key: str, payload: bytes) -> None:
    with _lock:
        if key in _models:
            return  # another plugin (or an earlier run) brought it: never built twice
        arch, state = pickle.loads(payload)
        model = _pickle.build(arch)
        _pickle.load_state(model, state)
        _models[key] = model
        _loads[key] += 1


class _ModelPlugin(WorkerPlugin):
    """Carries a model's pickle to every worker (current and future) once, and builds it there in setup."""

    idempotent = True  # registering the same name again is a no-op: the payload is not sent again

    def __init__(self, key: str, payload: bytes) -> None:
        self.key = key
        self.payload: bytes | None = payload

    async def setup(self, worker: Any) -> None:
        payload = self.payload
        assert payload is not None
        with _lock:
            _payloads[self.key] += 1
            _payload_bytes[self.key] += len(payload)
        # In a thread: loading a large model must not stall the worker's event loop (heartbeats).
        await asyncio.get_running_loop().run_in_executor(None, _load, self.key, payload)
        self.payload = None  # the model holds the weights now


def _model(key: str) -> Any:
    with _lock:
        model = _models.get(key)
        if model is None and key in _local:
            model = _local[key]()
    if model is None:
        raise RuntimeError(f"pyflame_vision.dask: model {key} is not on this worker; it is sent by "
                           "pyflame_vision.dask.predict/embed through the client that runs the job (was it "
                           "released, or is the job running on another cluster?)")
    return model


def worker_info() -> dict[str, Any]:
    """What this process holds: ``{"pid", "num_threads", "models": {key: {"name", "loads", "payloads",
    "payload_bytes"}}}`` (``loads``: times the model was built here; ``payloads``: plugin payloads received for it).
    Run it on the workers with ``client.run(pyflame_vision.dask.worker_info)``."""
    with _lock:
        keys = set(_models) | set(_loads) | set(_payloads)
        models = {k: {"name": getattr(_models.get(k), "name", None), "loads": _loads[k], "payloads": _payloads[k],
                      "payload_bytes": _payload_bytes[k]} for k in keys}
    return {"pid": os.getpid(), "num_threads": pyflame_vision.get_num_threads(), "models": models}


def _drop(key: str) -> bool:
    with _lock:
        return _models.pop(key, None) is not None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------ the client side


def _client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError("pyflame_vision.dask: no Dask client; create one first (distributed.Client("
                         "'tcp://scheduler:8786') or Client(LocalCluster(...))) or pass client=") from None


def _plugin_name(key: str, kind: str) -> str:
    return f"pyflame_vision-model-{key}-{kind}"


def _publish(client: Any, model: Any, ship_weights: str) -> str:
    """Registers `model` on the cluster (see the module docstring); returns its key."""
    arch = model._architecture()
    with _pickle.inline_weights(ship_weights == "bytes"):
        state = _pickle.weights_state(model)
    identity = {k: v for k, v in state.items() if k not in ("data", "sha256")}
    key = hashlib.sha256(json.dumps({"architecture": arch, "weights": identity}, sort_keys=True).encode()
                         ).hexdigest()[:32]
    with _lock:
        _local[key] = weakref.ref(model)
    name = _plugin_name(key, state["kind"])
    try:
        client.register_plugin(_ModelPlugin(key, pickle.dumps((arch, state), protocol=5)), name=name)
    except Exception:
        if state["kind"] == "safetensors":
            raise
        # Some worker cannot open the reference (no shared file system, the file changed, no download): ship the
        # weights themselves. The failed plugin must not stay registered for workers that join later.
        try:
            client.unregister_worker_plugin(name)
        except ValueError:
            pass
        with _pickle.inline_weights():
            state = _pickle.weights_state(model)
        client.register_plugin(_ModelPlugin(key, pickle.dumps((arch, state), protocol=5)),
                               name=_plugin_name(key, "safetensors"))
    return key


def local_cluster(n_workers: int, threads_per_worker: int = 1, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` processes x ``threads_per_worker`` threads that opens
    nothing to the network: scheduler and workers listen on 127.0.0.1, without a dashboard, and the scheduler's
    HTTP endpoints (health, metrics) on a free port (not 8787, which another cluster may hold). ``kwargs`` go to
    LocalCluster. Close it (``with local_cluster(2) as cluster:``) when done."""
    options: dict[str, Any] = {"n_workers": n_workers, "threads_per_worker": threads_per_worker, "processes": True,
                               "host": "127.0.0.1", "dashboard_address": None,
                               "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"}}
    options.update(kwargs)
    return distributed.LocalCluster(**options)


def release(model: Any, client: Any = None) -> None:
    """Removes ``model`` (the same architecture and weights) from the cluster: its plugins and the workers'
    cached copies. Frames still using it can no longer be computed. A model that was never sent is ignored."""
    client = _client(client)
    arch = model._architecture()
    keys = set()
    for inline in (False, True):
        with _pickle.inline_weights(inline):
            state = _pickle.weights_state(model)
        if state is not None:
            identity = {k: v for k, v in state.items() if k not in ("data", "sha256")}
            keys.add(hashlib.sha256(json.dumps({"architecture": arch, "weights": identity}, sort_keys=True)
                                    .encode()).hexdigest()[:32])
    for key in keys:
        for kind in ("enum", "file", "safetensors"):
            try:
                client.unregister_worker_plugin(_plugin_name(key, kind))
            except ValueError:
                pass
        client.run(_drop, key)
        with _lock:
            _local.pop(key, None)


def _thread_plan(client: Any) -> dict[str, int]:
    """Intra-op threads per host: max(1, cores // Dask threads of all workers on the host)."""
    workers = _workers(client)
    cores = client.run(_usable_cores)
    threads: Counter = Counter()
    host_cores: dict[str, int] = {}
    for addr, w in workers.items():
        host = w.get("host") or _host(addr)
        threads[host] += int(w.get("nthreads", 1))
        host_cores[host] = max(host_cores.get(host, 1), int(cores.get(addr, 1)))
    return {host: max(1, host_cores[host] // max(1, threads[host])) for host in threads}


def _workers(client: Any) -> dict[str, Any]:
    try:
        return client.scheduler_info(n_workers=-1)["workers"]  # recent distributed lists 5 workers by default
    except TypeError:  # older distributed: no n_workers, always every worker
        return client.scheduler_info()["workers"]


def _host(address: str) -> str:
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0].strip("[]")


# ------------------------------------------------------------------------------------------------ partitions


@dataclass(frozen=True)
class _Job:
    """What a partition task needs (small: the model travels by key)."""

    mode: str  # "predict" or "embed"
    model_key: str
    column: str
    batch_size: int
    topk: int = 0
    weights: str | None = None  # the weights member whose preset / categories apply, as "Enum.MEMBER"
    transforms: Callable[[Any], np.ndarray] | None = None  # overrides the member's preset
    categories: tuple[str, ...] | None = None  # overrides the member's categories
    threads: int | None = None
    host_threads: dict[str, int] = field(default_factory=dict)


class _Invalid:
    """A path-column value that is not a path: preprocessing it raises the error it carries."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _preset(job: _Job) -> Callable[[Any], np.ndarray]:
    if job.transforms is not None:
        transforms = job.transforms
    else:
        from pyflame_vision.models import get_weight

        transforms = get_weight(job.weights).transforms()

    def run(img: Any) -> np.ndarray:
        if isinstance(img, _Invalid):
            raise img.exc
        return transforms(img)

    return run


def _set_threads(job: _Job) -> None:
    n = job.threads
    if n is None:
        try:
            worker = distributed.get_worker()
        except ValueError:  # a local Dask scheduler in the client's process: leave its setting alone
            return
        n = job.host_threads.get(_host(worker.address)) or max(1, _usable_cores() // max(1, worker.state.nthreads))
    if pyflame_vision.get_num_threads() != n:
        pyflame_vision.set_num_threads(n)


def _items(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, os.PathLike):
            out.append(os.fspath(v))
        elif v is None or v is pd.NA or (isinstance(v, float) and v != v):
            out.append(_Invalid(TypeError(f"expected a path (str), got a missing value ({v!r})")))
        else:
            out.append(_Invalid(TypeError(f"expected a path (str), got {type(v).__name__} {v!r}")))
    return out


def _fixed_list(values: np.ndarray, ok: np.ndarray, pa_type: pa.DataType) -> pd.arrays.ArrowExtensionArray:
    n, width = values.shape
    flat = pa.array(values.reshape(-1), type=pa_type)
    return pd.arrays.ArrowExtensionArray(pa.FixedSizeListArray.from_arrays(flat, width, mask=pa.array(~ok)))


def _run_partition(df: pd.DataFrame, job: _Job) -> pd.DataFrame:
    model = _model(job.model_key)
    _set_threads(job)
    values = list(df[job.column])
    items = _items(values)
    n = len(items)
    errors: dict[int, BaseException] = {}
    ok = np.zeros(n, dtype=bool)
    preset = _preset(job)
    cols: dict[str, Any] = {"path": pd.array([v if isinstance(v, str) else None for v in items], dtype=_STRING)}
    if job.mode == "predict":
        k = job.topk
        indices = np.zeros((n, k), dtype=np.int64)
        probs = np.zeros((n, k), dtype=np.float32)
        for _, _, idx, x in _batches(items, preset, job.batch_size, errors.__setitem__):
            if x is not None:
                p, i = _top_k(softmax(model(x)), k)
                indices[idx] = i
                probs[idx] = p
                ok[idx] = True
        if job.categories is not None:
            names: Sequence[str] | None = job.categories
        else:
            names = None
            if job.weights is not None:
                from pyflame_vision.models import get_weight

                cats = get_weight(job.weights).meta["categories"]
                names = cats if model.num_classes == len(cats) else None
        labels = np.array([names[c] if names is not None else f"class {c}" for c in indices.reshape(-1)],
                          dtype=object).reshape(n, k)
        cols["indices"] = _fixed_list(indices, ok, pa.int64())
        cols["labels"] = _fixed_list(labels, ok, pa.string())
        cols["probabilities"] = _fixed_list(probs, ok, pa.float32())
    else:
        feats = np.zeros((n, model.num_features()), dtype=np.float32)
        for _, _, idx, x in _batches(items, preset, job.batch_size, errors.__setitem__):
            if x is not None:
                feats[idx] = pooled_features(model, x)
                ok[idx] = True
        cols["features"] = _fixed_list(feats, ok, pa.float32())
    cols["error"] = pd.array([f"{type(errors[i]).__name__}: {errors[i]}" if i in errors else None
                              for i in range(n)], dtype=_STRING)
    return pd.DataFrame(cols, index=df.index)


def _meta(job: _Job, index: pd.Index, width: int) -> pd.DataFrame:
    def fixed(t: pa.DataType) -> pd.Series:
        return pd.Series([], dtype=pd.ArrowDtype(pa.list_(t, width)), index=index)

    cols: dict[str, Any] = {"path": pd.Series([], dtype=_STRING, index=index)}
    if job.mode == "predict":
        cols.update(indices=fixed(pa.int64()), labels=fixed(pa.string()), probabilities=fixed(pa.float32()))
    else:
        cols["features"] = fixed(pa.float32())
    cols["error"] = pd.Series([], dtype=_STRING, index=index)
    return pd.DataFrame(cols, index=index)


def _check_int(fn: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _submit(mode: str, model: Any, images: Any, weights: Any, *, topk: int, batch_size: int, partition_size: int,
            transforms: Any, categories: Any, threads: int | None, client: Any, ship_weights: str,
            column: str) -> dd.DataFrame:
    fn = f"pyflame_vision.dask.{mode}"
    batch_size = _check_int(fn, "batch_size", batch_size)
    if threads is not None:
        threads = _check_int(fn, "threads", threads)
    if ship_weights not in _SHIP:
        raise ValueError(f"{fn}: ship_weights must be one of {_SHIP}, got {ship_weights!r}")
    if mode == "predict":
        topk = _check_int(fn, "topk", topk)
        if model.num_classes < 1:
            raise ValueError(f"{fn}: {model.name} has no classifier (num_classes=0); use embed() for features")
        topk = min(topk, model.num_classes)
    preset, _, member = _transform_and_categories(model, weights, transforms, categories if mode == "predict"
                                                  else ())
    _ensure_weights(model, member if weights is not None else None, False)
    frame = image_paths(images, partition_size=partition_size, column=column)
    client = _client(client)
    key = _publish(client, model, ship_weights)
    job = _Job(mode=mode, model_key=key, column=column, batch_size=batch_size, topk=topk,
               weights=None if member is None else f"{type(member).__name__}.{member._name_}",
               transforms=transforms, categories=None if categories is None else tuple(categories),
               threads=threads, host_threads={} if threads is not None else _thread_plan(client))
    if transforms is None and member is None:  # pragma: no cover - _transform_and_categories raised already
        raise ValueError(f"{fn}: no preset")
    width = topk if mode == "predict" else model.num_features()
    return frame.map_partitions(_run_partition, job, meta=_meta(job, frame._meta.index, width))


def predict(model: Any, images: Any, weights: Any = None, *, topk: int = 5, batch_size: int = 8,
            partition_size: int = 128, transforms: Callable[[Any], np.ndarray] | None = None,
            categories: Sequence[str] | None = None, threads: int | None = None, client: Any = None,
            ship_weights: str = "auto", column: str = "path") -> dd.DataFrame:
    """Classifies images on the Dask cluster of ``client`` (default: the current client): a lazy Dask DataFrame
    with columns ``path``, ``indices``, ``labels``, ``probabilities`` and ``error`` (see the module docstring).

    ``weights``, ``topk``, ``batch_size``, ``transforms`` and ``categories`` are :func:`pyflame_vision.predict`'s
    (default preset and names: those of the weights the model was loaded with, else its ``DEFAULT``; a model
    without weights gets ``weights``' checkpoint here, on the client). ``partition_size``: images per task (lists,
    directories and globs). ``threads``: intra-op threads per worker process (default: see the module
    docstring). ``ship_weights``: ``"auto"`` (a reference when the workers can open it, else the bytes) or
    ``"bytes"``. ``column``: the path column of a DataFrame input. The model is sent to the workers now; the
    images are read when the frame is computed."""
    return _submit("predict", model, images, weights, topk=topk, batch_size=batch_size,
                   partition_size=partition_size, transforms=transforms, categories=categories, threads=threads,
                   client=client, ship_weights=ship_weights, column=column)


def embed(model: Any, images: Any, weights: Any = None, *, batch_size: int = 8, partition_size: int = 128,
          transforms: Callable[[Any], np.ndarray] | None = None, threads: int | None = None, client: Any = None,
          ship_weights: str = "auto", column: str = "path") -> dd.DataFrame:
    """One pooled feature vector per image on the Dask cluster: a lazy Dask DataFrame with columns ``path``,
    ``features`` (a fixed-size list of ``model.num_features()`` float32, what :func:`pyflame_vision.embed`
    returns) and ``error``. Arguments as :func:`predict`."""
    return _submit("embed", model, images, weights, topk=0, batch_size=batch_size, partition_size=partition_size,
                   transforms=transforms, categories=None, threads=threads, client=client,
                   ship_weights=ship_weights, column=column)


# ------------------------------------------------------------------------------------------------ output


def _lists_as_objects(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for name, dtype in df.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_fixed_size_list(dtype.pyarrow_dtype):
            out[name] = pd.Series(pa.array(df[name].array).to_numpy(zero_copy_only=False), index=df.index,
                                  dtype=object)
    return out


def to_parquet(frame: dd.DataFrame, path: str | os.PathLike[str], *, write_index: bool = False,
               **kwargs: Any) -> Any:
    """Writes a frame of :func:`predict` / :func:`embed` with Dask's ``to_parquet`` (a directory of
    ``part.N.parquet`` files, one per partition; ``kwargs`` are passed on, e.g. ``compute=False``). The Arrow
    schema keeps the fixed-size lists (``features``: ``fixed_size_list<float>[F]``), and the files read back with
    the default settings of pandas and Dask (``pd.read_parquet(path)``: the list columns as object arrays of NumPy
    vectors; pyarrow: the fixed-size lists). (pandas cannot rebuild the nested pyarrow dtypes it writes itself,
    so the frame's own ``frame.to_parquet(path)`` files need ``pd.read_parquet(path, dtype_backend="pyarrow")``.)
    """
    # The schema comes from the frame's meta (the pyarrow list types with their sizes); the partitions are written
    # as NumPy object columns, so the pandas metadata in the files names plain "object" columns.
    plain = frame.map_partitions(_lists_as_objects, meta=frame._meta, enforce_metadata=False)
    return plain.to_parquet(os.fspath(path), write_index=write_index, **kwargs)

