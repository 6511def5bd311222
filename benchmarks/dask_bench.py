"""Images/s of predict over a directory of JPEGs: one process without Dask, 1 Dask worker, N Dask workers.

    python -m benchmarks --dask                      # resnet50, 192 images, 1 and 2 workers
    python -m benchmarks --dask --model efficientnet_b0 --images 384 --workers 1 2 --out dask.json

Each configuration runs the whole path: JPEG decode (Pillow), the weights' preset, batches of ``--batch-size``,
the model, top-5. The images are 500x375 JPEGs cut from scikit-image's photographs (ImageNet's typical size).
Configurations:

- ``no dask``: :func:`pyflame_vision.predict` in this process, with all cores as intra-op threads;
- ``dask xN``: :func:`pyflame_vision.dask.predict` on a ``LocalCluster`` of N worker processes x 1 thread on
  127.0.0.1 (intra-op threads per worker: cores // N, the library's default), computed to the client
  (``frame.compute()``: results travel back, as they would to ``to_parquet``'s writers).

Every configuration runs once untimed first (the workers load the model and compile it for the batch shapes),
then ``--runs`` timed runs; the median is reported. The overhead per image of the Dask path is
(t(dask x1) - t(no dask)) / images: both use every core for one model, so the difference is what Dask adds
(scheduling, task and result transfer, per-partition setup). Each timed run is what a user's call costs:
``pvd.predict(...)`` (registering the model: a no-op after the first call) plus ``compute()``. Random weights
(``init_weights``, speed does not depend on them) saved to a ``.safetensors`` file and loaded from it, so the
model travels as a reference to that file, as it does for weights from a weights enum (a model whose weights come
from nowhere would be serialized on every call, then skipped by the workers that hold it). The machine may be
shared: the load average before and after is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

import pyflame_vision
import pyflame_vision.models as models


def make_images(directory: str, n: int, seed: int = 0) -> list[str]:
    import skimage.data

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize((1000, 750), Image.BICUBIC)
               for name in ("astronaut", "coffee", "chelsea", "rocket")]
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        x, y = int(rng.integers(0, 500)), int(rng.integers(0, 375))
        path = os.path.join(directory, f"img{i:05d}.jpg")
        src.crop((x, y, x + 500, y + 375)).save(path, quality=90)
        paths.append(path)
    return paths


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def run_plain(model, paths: list[str], batch_size: int, runs: int) -> list[float]:
    pyflame_vision.set_num_threads(_cores())
    pyflame_vision.predict(model, paths[: batch_size * 2], batch_size=batch_size)  # compile
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = pyflame_vision.predict(model, paths, batch_size=batch_size)
        times.append(time.perf_counter() - t)
        assert all(p is not None for p in out)
    return times


def run_dask(model, paths: list[str], workers: int, batch_size: int, partition_size: int,
             runs: int) -> tuple[list[float], dict]:
    from distributed import Client

    import pyflame_vision.dask as pvd

    with pvd.local_cluster(workers) as cluster, Client(cluster) as client:
        t = time.perf_counter()
        frame = pvd.predict(model, paths, batch_size=batch_size, partition_size=partition_size, client=client)
        setup = time.perf_counter() - t  # the model's pickle to every worker, and loaded there
        frame.compute()  # untimed: compiles every batch shape on every worker
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            frame = pvd.predict(model, paths, batch_size=batch_size, partition_size=partition_size, client=client)
            got = frame.compute()
            times.append(time.perf_counter() - t)
            assert len(got) == len(paths) and got["error"].isna().all()
        info = client.run(pvd.worker_info)
    threads = sorted({i["num_threads"] for i in info.values()})
    # What each worker received and built: one payload (the model's pickle) and one load per worker, however many
    # runs.
    received = [(m["payloads"], m["loads"], m["payload_bytes"]) for i in info.values() for m in i["models"].values()]
    assert len(received) == workers and all(r[:2] == (1, 1) for r in received), received
    return times, {"publish_s": setup, "intra_op_threads": threads, "payload_bytes": max(r[2] for r in received)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks --dask", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--images", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--partition-size", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    model = models.get_model(args.model)
    model.init_weights(seed=0)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pfv-dask-bench-") as d:
        weights = os.path.join(d, f"{args.model}.safetensors")
        pyflame_vision.save_weights(model, weights)
        pyflame_vision.load_weights(model, weights)  # the workers open the file: the model travels by reference
        assert isinstance(models.weights_source(model), models.FileSource)
        paths = make_images(d, args.images)
        times = run_plain(model, paths, args.batch_size, args.runs)
        rows.append({"config": "no dask (1 process)", "workers": 0, "seconds": statistics.median(times),
                     "runs": times, "intra_op_threads": [_cores()]})
        for w in args.workers:
            times, extra = run_dask(model, paths, w, args.batch_size, args.partition_size, args.runs)
            rows.append({"config": f"dask x{w} worker{'s' if w > 1 else ''}", "workers": w,
                         "seconds": statistics.median(times), "runs": times, **extra})
    load_after = os.getloadavg()
    n = args.images
    base = rows[0]["seconds"]
    print(f"{args.model}, {n} JPEGs 500x375, batch {args.batch_size}, partitions of {args.partition_size}, "
          f"{_cores()} cores, {platform.processor() or platform.machine()}, isa {pyflame_vision.active_isa()}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| configuration | intra-op threads | seconds | images/s | vs no dask |")
    print("|---|---|---|---|---|")
    for r in rows:
        r["images_per_s"] = n / r["seconds"]
        print(f"| {r['config']} | {'/'.join(map(str, r['intra_op_threads']))} | {r['seconds']:.2f} | "
              f"{r['images_per_s']:.1f} | {base / r['seconds']:.2f} |")
    one = next((r for r in rows if r["workers"] == 1), None)
    summary = {"model": args.model, "images": n, "batch_size": args.batch_size, "partition_size": args.partition_size,
               "cores": _cores(), "load_before": load_before, "load_after": load_after, "rows": rows}
    if one is not None:
        summary["overhead_ms_per_image"] = (one["seconds"] - base) / n * 1e3
        print(f"Dask overhead per image (dask x1 - no dask, same threads): {summary['overhead_ms_per_image']:.2f} ms "
              f"({(one['seconds'] / base - 1) * 100:.1f}%); publishing the model (first call): "
              f"{one['publish_s']:.2f} s, {one['payload_bytes']} bytes to each worker")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
