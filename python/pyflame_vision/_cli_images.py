"""The ``predict`` and ``embed`` subcommands of ``pyflame-vision`` (see cli.py).

    pyflame-vision predict MODEL IMAGE_OR_DIR... [--weights W | --weights-file F] [--topk 5] [--batch-size N]
                           [--threads N] [--json | --out results.parquet]
    pyflame-vision embed MODEL IMAGE_OR_DIR... --out features.parquet|features.npy [--weights W | --weights-file F]
    ... [--workers N | --scheduler tcp://host:8786] --out results.parquet [--partition-size N]

Images are read with Pillow (EXIF orientation applied, converted to RGB), preprocessed with the weights' preset,
batched and run. Directories are walked recursively. An image that cannot be read is reported on stderr with its
path and skipped; the run goes on and exits with status 1. Usage errors and missing weights exit with status 2.

With ``--workers N`` (a Dask ``LocalCluster`` of N single-threaded worker processes on 127.0.0.1, started for the
run) or ``--scheduler ADDRESS`` (an existing Dask cluster), the images are processed by
:mod:`pyflame_vision.dask` and ``--out`` (required) is a directory of Parquet files, one row per image (unreadable
images are rows with an ``error``); Dask's progress bar shows on a terminal. A Dask job that fails (a worker error
other than an unreadable image) is reported and exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any

import numpy as np

import pyflame_vision
from pyflame_vision import PyflameVisionError, models
from pyflame_vision.inference import _batches, _top_k, find_images, pooled_features, resolve_weights, softmax

EXIT_IMAGES_FAILED = 1
EXIT_USAGE = 2

_WEIGHTS_HELP = (
    "weights to use: a member of the model's weights enum (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT, or the full "
    "ResNet50_Weights.IMAGENET1K_V2). Gives the preset and the class names; without --weights-file its checkpoint "
    "is taken from the download cache (torch hub's, ~/.cache/torch/hub/checkpoints) or downloaded. Default: DEFAULT"
)
_WEIGHTS_FILE_HELP = (
    "read the trained weights from this file (a PyTorch checkpoint .pth/.pt/.bin/.ckpt, .safetensors or .npz) "
    "instead of the cache; the preset and class names still come from --weights"
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("predict", help="classify images: the top classes with their ImageNet names and probabilities",
                       description="Classify JPEG/PNG/WebP images (files or directories, walked recursively).")
    _common(p)
    p.add_argument("--topk", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per image on stdout: path, top classes (index, label, probability) or error")
    p.add_argument("--out", default=None, metavar="FILE.parquet",
                   help="write a Parquet table instead (columns path, indices, labels, probabilities, error; one row "
                        "per image); required with --workers/--scheduler, where it is a directory of part files")

    e = sub.add_parser("embed", help="one pooled feature vector per image (.parquet or .npy), for search/clustering",
                       description="Write the global-average-pooled last feature map of every image with its path: "
                                   ".npy holds a structured array (fields 'path' and 'features'; np.load reads it "
                                   "without pickle), .parquet a table (columns 'path' and 'features'; needs pyarrow: "
                                   "pip install 'pyflame-vision[parquet]').")
    _common(e)
    e.add_argument("--out", required=True,
                   help="output file: ends in .parquet or .npy (with --workers/--scheduler: .parquet, a directory of "
                        "part files with columns path, features, error)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model name, e.g. resnet50 (see `pyflame-vision list`)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or directories")
    p.add_argument("--weights", default=None, metavar="W", help=_WEIGHTS_HELP)
    p.add_argument("--weights-file", default=None, metavar="F", help=_WEIGHTS_FILE_HELP)
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    p.add_argument("--threads", type=int, default=None,
                   help="compute threads (default: all available); with Dask, per worker process (default: the "
                        "host's cores divided by the Dask threads of the workers on it)")
    dask = p.add_mutually_exclusive_group()
    dask.add_argument("--workers", type=int, default=None, metavar="N",
                      help="run on a Dask LocalCluster of N worker processes (1 thread each, on 127.0.0.1) started for "
                           "this run (needs pip install 'pyflame-vision[dask]')")
    dask.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="run on an existing Dask cluster, e.g. tcp://host:8786; the workers must see the images "
                           "(and --weights-file) under the same paths")
    p.add_argument("--partition-size", type=int, default=128, metavar="N",
                   help="images per Dask task (default 128)")


def _error(msg: str) -> None:
    print(f"pyflame-vision: error: {msg}", file=sys.stderr)


def _missing_weights_help(name: str, member: Any, reason: BaseException) -> str:
    from pyflame_vision.hub import get_cache_dir

    file = os.path.basename(member.url)
    return (
        f"no trained weights for {name} on this machine, and they could not be downloaded:\n  {reason}\n"
        f"Get them one of these ways, then run the command again:\n"
        f"  - on a machine with internet access: python -c \"import pyflame_vision.models as m; "
        f"m.{name}(weights='{member._name_}')\"\n"
        f"    and copy {file} into {get_cache_dir()} here (torchvision's downloads land there too);\n"
        f"  - download {member.url} yourself and pass --weights-file {file};\n"
        f"  - where torch is installed: torch.save(torchvision.models.{name}(weights='{member._name_}')"
        f".state_dict(), '{name}.pth') and pass --weights-file {name}.pth;\n"
        f"  - or point PYFLAME_VISION_WEIGHTS_MIRROR at a mirror of https://download.pytorch.org/models/."
    )


def _load_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(model with weights, weights member) or raises _Exit."""
    model = models.get_model(args.model)
    try:
        member = resolve_weights(model, args.weights)
    except (ValueError, TypeError) as exc:
        raise _Exit(EXIT_USAGE, f"--weights: {exc}") from None
    if args.weights_file is not None:
        try:
            pyflame_vision.load_weights(model, args.weights_file)
        except (OSError, ValueError, PyflameVisionError) as exc:
            raise _Exit(EXIT_USAGE, f"--weights-file {args.weights_file}: {exc}") from None
        return model, member
    try:
        path = member.get_checkpoint(progress=True, check_hash=True)
    except OSError as exc:
        raise _Exit(EXIT_USAGE, _missing_weights_help(args.model, member, exc)) from None
    try:
        pyflame_vision.load_weights(model, path)
    except (OSError, ValueError, PyflameVisionError) as exc:
        raise _Exit(EXIT_USAGE, f"cannot load the cached checkpoint {path}: {exc}. Delete it to download it again, "
                                "or pass --weights-file") from None
    # As the factories' weights= does (models.weights_source(model) names the member): pickles refer to it, so
    # Dask workers load it from their own cache.
    from pyflame_vision.models import _record

    _record.note(model, _record.EnumSource(f"{type(member).__name__}.{member._name_}"))
    return model, member


class _Exit(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.model not in models.list_models():
        parser.error(f"unknown model {args.model!r}; available: {', '.join(models.list_models())}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.command == "predict" and args.topk < 1:
        parser.error(f"--topk must be >= 1, got {args.topk}")
    distributed = args.workers is not None or args.scheduler is not None
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.partition_size < 1:
        parser.error(f"--partition-size must be >= 1, got {args.partition_size}")
    if args.out is not None:
        ext = os.path.splitext(args.out)[1].lower()
        allowed = (".parquet",) if distributed or args.command == "predict" else (".parquet", ".npy")
        if ext not in allowed:
            parser.error(f"--out must end in {' or '.join(allowed)}, got {args.out!r}")
        if args.command == "predict" and args.json:
            parser.error("--json and --out are exclusive: choose stdout (JSON lines) or a Parquet file")
        if ext == ".parquet" and importlib.util.find_spec("pyarrow") is None:
            _error("writing .parquet needs pyarrow, which is not installed: pip install 'pyflame-vision[parquet]' "
                   "(or pip install pyarrow)" + ("" if args.command == "predict" else
                                                ", or write .npy instead (--out features.npy)"))
            return EXIT_USAGE
    if distributed:
        if args.out is None:
            parser.error("--workers/--scheduler write their results to --out results.parquet")
        missing = [m for m in ("dask", "distributed", "pandas", "pyarrow") if importlib.util.find_spec(m) is None]
        if missing:
            _error(f"--workers/--scheduler need {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                   "not installed: pip install 'pyflame-vision[dask]'")
            return EXIT_USAGE
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        pyflame_vision.set_num_threads(args.threads)
    try:
        paths = find_images(args.images)
    except FileNotFoundError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if not paths:
        _error(f"no images found in {' '.join(args.images)} (looked for {', '.join(_extensions())})")
        return EXIT_IMAGES_FAILED
    try:
        model, member = _load_model(args)
    except _Exit as exc:
        _error(str(exc))
        return exc.code
    if distributed:
        return _run_dask(model, member, paths, args)
    preset = member.transforms()
    if args.command == "predict":
        return _predict(model, member, preset, paths, args)
    return _embed(model, member, preset, paths, args)


def _extensions() -> list[str]:
    from pyflame_vision.inference import IMAGE_EXTENSIONS

    return list(IMAGE_EXTENSIONS)


def _bar(total: int, batch_size: int, name: str) -> Any:
    from tqdm.auto import tqdm

    # Shown with more than one batch, on a terminal (tqdm's disable=None: not in logs and pipes); images/s is
    # tqdm's rate.
    return tqdm(total=total, desc=name, unit="img", file=sys.stderr, disable=True if total <= batch_size else None,
                dynamic_ncols=True, leave=False)


def _predict(model: Any, member: Any, preset: Any, paths: list[str], args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    names = member.meta["categories"] if model.num_classes == len(member.meta["categories"]) else None
    k = min(args.topk, model.num_classes)
    errors: dict[int, BaseException] = {}
    weights_name = f"{type(member).__name__}.{member._name_}"

    def emit(text: str) -> None:
        tqdm.write(text, file=sys.stdout)

    table: dict[str, list[Any]] = {"path": [], "indices": [], "labels": [], "probabilities": [], "error": []}

    with _bar(len(paths), args.batch_size, model.name) as bar:
        for start, stop, idx, x in _batches(paths, preset, args.batch_size, errors.__setitem__):
            rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            if x is not None:
                values, indices = _top_k(softmax(model(x)), k)
                rows = {i: (values[r], indices[r]) for r, i in enumerate(idx)}
            for i in range(start, stop):
                if i in errors:
                    exc = errors[i]
                    tqdm.write(f"pyflame-vision: cannot read {paths[i]}: {type(exc).__name__}: {exc}",
                               file=sys.stderr)
                    if args.json:
                        emit(json.dumps({"path": paths[i], "error": f"{type(exc).__name__}: {exc}"}))
                    if args.out is not None:
                        for col, value in zip(table, (paths[i], None, None, None, f"{type(exc).__name__}: {exc}")):
                            table[col].append(value)
                    continue
                vals, inds = rows[i]
                top = [{"index": int(c), "label": names[c] if names is not None else f"class {c}",
                        "probability": float(v)} for v, c in zip(vals, inds)]
                if args.out is not None:
                    for col, value in zip(table, (paths[i], [t["index"] for t in top], [t["label"] for t in top],
                                                  vals.tolist(), None)):
                        table[col].append(value)
                elif args.json:
                    emit(json.dumps({"path": paths[i], "model": model.name, "weights": weights_name, "top": top}))
                else:
                    lines = [paths[i]] + [f"  {t['probability'] * 100:6.2f}%  {t['label']} ({t['index']})"
                                          for t in top]
                    emit("\n".join(lines))
            bar.update(stop - start)
    if args.out is not None:
        _write_predictions(table, k, args.out, model.name, weights_name)
        print(f"pyflame-vision: wrote {len(paths)} rows ({len(paths) - len(errors)} classified) to {args.out}",
              file=sys.stderr)
    if errors:
        print(f"pyflame-vision: {len(errors)} of {len(paths)} images could not be read", file=sys.stderr)
        return EXIT_IMAGES_FAILED
    return 0


def _write_predictions(table: dict[str, list[Any]], k: int, out: str, model: str, weights: str) -> None:
    """The single-process --out table: the same columns and types as pyflame_vision.dask.predict's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("path", pa.string()), ("indices", pa.list_(pa.int64(), k)),
                        ("labels", pa.list_(pa.string(), k)), ("probabilities", pa.list_(pa.float32(), k)),
                        ("error", pa.string())], metadata={"model": model, "weights": weights})
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    pq.write_table(pa.table(table, schema=schema), out)


def _run_dask(model: Any, member: Any, paths: list[str], args: argparse.Namespace) -> int:
    """predict / embed on a Dask cluster (--workers N or --scheduler ADDRESS), written to --out by to_parquet."""
    import contextlib

    import pyarrow.parquet as pq
    from distributed import Client, progress

    import pyflame_vision.dask as pvd

    cluster = None
    try:
        if args.workers is not None:
            cluster = pvd.local_cluster(args.workers)  # on 127.0.0.1, no dashboard: nothing open to the network
            client = Client(cluster)
        else:
            client = Client(args.scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        where = f"the Dask scheduler at {args.scheduler}" if args.scheduler else "a local Dask cluster"
        _error(f"cannot connect to {where}: {type(exc).__name__}: {exc}")
        return EXIT_USAGE
    try:
        common = {"weights": member, "batch_size": args.batch_size, "partition_size": args.partition_size,
                  "threads": args.threads, "client": client}
        if args.command == "predict":
            frame = pvd.predict(model, paths, topk=args.topk, **common)
        else:
            frame = pvd.embed(model, paths, **common)
        workers = len(pvd._workers(client))
        print(f"pyflame-vision: {len(paths)} images in {frame.npartitions} partitions on {workers} Dask worker(s) "
              f"({client.scheduler.address})", file=sys.stderr)
        future = client.compute(pvd.to_parquet(frame, args.out, compute=False, overwrite=True))
        if sys.stderr.isatty():
            with contextlib.redirect_stdout(sys.stderr):  # Dask's bar writes to stdout; results never go there
                progress(future)
        try:
            future.result()
        except Exception as exc:  # a failed task (unreadable images never fail one): say what, no traceback
            _error(f"the Dask job failed: {type(exc).__name__}: {exc}")
            return EXIT_IMAGES_FAILED
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    done = pq.read_table(args.out, columns=["path", "error"])
    failed = [(p, e) for p, e in zip(done.column("path").to_pylist(), done.column("error").to_pylist())
              if e is not None]
    for p, e in failed:
        print(f"pyflame-vision: cannot read {p}: {e}", file=sys.stderr)
    what = "classified" if args.command == "predict" else "feature vectors"
    print(f"pyflame-vision: wrote {done.num_rows} rows ({done.num_rows - len(failed)} {what}) to {args.out}",
          file=sys.stderr)
    if failed:
        print(f"pyflame-vision: {len(failed)} of {len(paths)} images could not be read", file=sys.stderr)
        return EXIT_IMAGES_FAILED
    return 0


def _embed(model: Any, member: Any, preset: Any, paths: list[str], args: argparse.Namespace) -> int:
    errors: dict[int, BaseException] = {}
    done: list[int] = []
    chunks: list[np.ndarray] = []
    with _bar(len(paths), args.batch_size, model.name) as bar:
        for start, stop, idx, x in _batches(paths, preset, args.batch_size, errors.__setitem__):
            if x is not None:
                chunks.append(pooled_features(model, x))
                done.extend(idx)
            for i in range(start, stop):
                if i in errors:
                    bar.write(f"pyflame-vision: cannot read {paths[i]}: {type(errors[i]).__name__}: {errors[i]}",
                              file=sys.stderr)
            bar.update(stop - start)
    dim = model.num_features()
    feats = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    kept = [paths[i] for i in done]
    out = args.out
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if out.lower().endswith(".npy"):
        width = max((len(p) for p in kept), default=1)
        table = np.empty(len(kept), dtype=[("path", f"<U{width}"), ("features", "<f4", (dim,))])
        table["path"] = kept
        table["features"] = feats
        np.save(out, table, allow_pickle=False)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        column = pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1), type=pa.float32()), dim)
        meta = {"model": model.name, "weights": f"{type(member).__name__}.{member._name_}",
                "pooling": "global average of the last feature map"}
        pq.write_table(pa.table({"path": pa.array(kept, type=pa.string()), "features": column}, metadata=meta), out)
    print(f"pyflame-vision: wrote {len(kept)} feature vectors of {dim} floats ({model.name}) to {out}",
          file=sys.stderr)
    if errors:
        print(f"pyflame-vision: {len(errors)} of {len(paths)} images could not be read", file=sys.stderr)
        return EXIT_IMAGES_FAILED
    return 0
