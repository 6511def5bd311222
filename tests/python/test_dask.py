"""pyflame_vision.dask on a real cluster: a distributed.LocalCluster of 2 worker processes on 127.0.0.1 (no
dashboard, nothing else on the network). A few hundred generated images, scikit-image's photographs and a few
corrupt files go through predict and embed; every row must equal the single-process result (indices, labels and
probabilities identical, embeddings bit-identical), corrupt files must be rows with an error, the weights must be
loaded once per worker process (and shipped at most once), and a worker killed in the middle of a job must lose
and duplicate no image."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time

# The test extra installs dask[distributed], pandas and pyarrow: a missing one fails here, never skips.
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster
from PIL import Image

import pyflame_vision
import pyflame_vision.dask as pvd
import pyflame_vision.models as models
from conftest import require_torchvision, tv_model_random_bn
from sample_images import PHOTOS, encoded, photo

N_GENERATED = 240
CORRUPT = ["corrupt/truncated.jpg", "corrupt/empty.png", "corrupt/text.jpg"]


def _generate(d, n: int = N_GENERATED, seed: int = 0) -> None:
    """`n` small images of random sizes (gradients with noise) as JPEG, PNG and WebP, some grayscale or RGBA, in
    four subdirectories; scikit-image's photographs; three corrupt files."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(40, 161, size=2))
        y, x = np.mgrid[0:h, 0:w]
        base = (x[..., None] * rng.uniform(0.5, 2.0, 3) + y[..., None] * rng.uniform(0.5, 2.0, 3)) % 256
        pixels = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels)
        fmt, ext = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")][i % 3]
        if i % 7 == 0:
            img = img.convert("L")
        elif i % 11 == 0 and fmt == "PNG":
            img = img.convert("RGBA")
        sub = d / f"set{i % 4}"
        sub.mkdir(exist_ok=True)
        (sub / f"img{i:03d}.{ext}").write_bytes(encoded(img, fmt))
    (d / "photos").mkdir()
    for p in PHOTOS:
        (d / "photos" / f"{p}.jpg").write_bytes(encoded(photo(p), "JPEG", quality=90))
    (d / "corrupt").mkdir()
    jpeg = encoded(photo("rocket"), "JPEG")
    (d / CORRUPT[0]).write_bytes(jpeg[: len(jpeg) // 3])
    (d / CORRUPT[1]).write_bytes(b"")
    (d / CORRUPT[2]).write_text("not an image")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    _generate(d)
    paths = pyflame_vision.inference.find_images([d])
    assert len(paths) == N_GENERATED + len(PHOTOS) + len(CORRUPT)
    return d, paths


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """efficientnet_b0 with calibrated BatchNorm saved by torch (.pth), and a PYFLAME_VISION_HOME whose cache holds
    a torch-made resnet18 checkpoint under torchvision's file name (what weights="DEFAULT" loads)."""
    torch, _ = require_torchvision()
    d = tmp_path_factory.mktemp("weights")
    torch.save(tv_model_random_bn("efficientnet_b0", seed=1).state_dict(), str(d / "efficientnet_b0.pth"))
    home = d / "home"
    (home / "checkpoints").mkdir(parents=True)
    url = models.ResNet18_Weights.DEFAULT.url
    torch.save(tv_model_random_bn("resnet18", seed=2).state_dict(), str(home / "checkpoints" / os.path.basename(url)))
    return d / "efficientnet_b0.pth", home


@pytest.fixture(scope="module")
def client(weights):
    """2 worker processes x 1 thread on 127.0.0.1; they (and the workers a nanny restarts) inherit
    PYFLAME_VISION_HOME, and a weights mirror on a closed port, so nothing is ever downloaded."""
    _, home = weights
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYFLAME_VISION_HOME", str(home))
        mp.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", "http://127.0.0.1:1/")
        # LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None),
        # its HTTP endpoints on a free port of 127.0.0.1
        cluster = pvd.local_cluster(2)
        assert isinstance(cluster, LocalCluster) and cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        c = Client(cluster)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


@pytest.fixture(scope="module")
def model(weights):
    m = models.efficientnet_b0()
    pyflame_vision.load_weights(m, weights[0])
    return m


@pytest.fixture(scope="module")
def reference(model, images):
    """The single-process results: predict (top 5) and embed, with the errors each reported."""
    _, paths = images
    errors: dict[int, str] = {}
    preds = pyflame_vision.predict(model, paths, topk=5,
                                   on_error=lambda i, e: errors.__setitem__(i, f"{type(e).__name__}: {e}"))
    feats = pyflame_vision.embed(model, paths, on_error=lambda i, e: None)
    return {"predict": dict(zip(paths, preds)), "embed": dict(zip(paths, feats)),
            "errors": {paths[i]: e for i, e in errors.items()}}


def _check_predictions(table: pd.DataFrame, reference, paths) -> None:
    assert sorted(table["path"]) == sorted(paths)  # every image exactly once
    assert table["path"].is_unique
    for row in table.itertuples(index=False):
        if row.path in reference["errors"]:
            assert row.error == reference["errors"][row.path]
            assert row.indices is None or pd.isna(row.indices)
            continue
        want = reference["predict"][row.path]
        assert row.error is None or pd.isna(row.error), row.error
        assert list(row.indices) == want.indices
        assert list(row.labels) == want.labels
        assert np.array_equal(np.asarray(row.probabilities, dtype=np.float32),
                              np.asarray(want.probabilities, dtype=np.float32))


def test_predict_equals_single_process_and_writes_parquet(client, model, images, reference, tmp_path):
    d, paths = images
    assert {os.path.relpath(p, d) for p in reference["errors"]} == set(CORRUPT)
    frame = pvd.predict(model, d, topk=5, partition_size=32, client=client)
    assert frame.npartitions == -(-len(paths) // 32)
    assert list(frame.columns) == ["path", "indices", "labels", "probabilities", "error"]
    out = tmp_path / "predictions.parquet"
    pvd.to_parquet(frame, out)
    assert len(list(out.glob("part.*.parquet"))) == frame.npartitions
    # pandas reads it with its default settings; the Arrow schema keeps the fixed-size lists.
    _check_predictions(pd.read_parquet(out), reference, paths)
    schema = pq.read_schema(next(out.glob("part.0.parquet")))
    assert schema.field("indices").type == pa.list_(pa.int64(), 5)
    assert schema.field("labels").type == pa.list_(pa.string(), 5)
    assert schema.field("probabilities").type == pa.list_(pa.float32(), 5)
    # Dask reads it back too, and the in-memory frame is the same.
    assert len(dd.read_parquet(out)) == len(paths)
    _check_predictions(frame.compute().astype({"indices": object, "labels": object, "probabilities": object}),
                       reference, paths)


def test_embed_is_bit_identical(client, model, images, reference):
    d, paths = images
    frame = pvd.embed(model, os.path.join(d, "**", "*.*"), partition_size=40, batch_size=5, client=client)
    got = frame.compute()
    assert got["features"].dtype == pd.ArrowDtype(pa.list_(pa.float32(), model.num_features()))
    assert sorted(got["path"]) == sorted(paths)
    for path, feats, error in zip(got["path"], got["features"], got["error"]):
        if path in reference["errors"]:
            assert error == reference["errors"][path] and pd.isna(feats)
        else:
            assert pd.isna(error)
            f = np.asarray(feats, dtype=np.float32)
            assert f.shape == (model.num_features(),) and np.array_equal(f, reference["embed"][path])


def test_weights_load_once_per_worker_and_travel_as_a_reference(client, model, images):
    """After the two jobs above (and one more registration), each worker process built the model once and
    received one plugin payload: the file reference, not the weights. Intra-op threads: cores / Dask threads."""
    _, paths = images
    pvd.predict(model, paths[:10], client=client)  # registering the same model again sends nothing
    infos = client.run(pvd.worker_info)
    assert len(infos) == 2
    keys = set()
    for info in infos.values():
        [(key, m)] = [(k, v) for k, v in info["models"].items() if v["name"] == "efficientnet_b0"]
        keys.add(key)
        assert m["loads"] == 1 and m["payloads"] == 1
        assert m["payload_bytes"] < 10_000  # a reference to the .pth; the weights are 21 MB
        cores = len(os.sched_getaffinity(0))
        assert info["num_threads"] == max(1, cores // 2)  # 2 workers x 1 thread on this host
    assert len(keys) == 1


def test_weights_without_a_reference_ship_once(client, images):
    """A model with random weights has no file to refer to: its .safetensors bytes go to each worker once, however
    many jobs use it. A weights enum model travels by name and each worker reads its own download cache."""
    _, paths = images
    good = [p for p in paths if "/set" in p][:12]
    random = models.resnet18(num_classes=10)
    random.init_weights(seed=3)
    by_enum = models.resnet18(weights="DEFAULT")
    assert models.weights_source(by_enum) == models.EnumSource("ResNet18_Weights.IMAGENET1K_V1")
    for _ in range(2):
        for m in (random, by_enum):
            frame = pvd.predict(m, good, topk=3, partition_size=4, client=client,
                                transforms=models.ResNet18_Weights.DEFAULT.transforms() if m is random else None)
            got = frame.compute()
            want = pyflame_vision.predict(m, good, topk=3, weights="DEFAULT")
            assert [list(i) for i in got["indices"]] == [w.indices for w in want]
            assert [list(p) for p in got["probabilities"]] == [w.probabilities for w in want]
    size = len(pyflame_vision.models._pickle.safetensors_bytes(random))
    for info in client.run(pvd.worker_info).values():
        shipped = [v for v in info["models"].values() if v["name"] == "resnet18"]
        assert len(shipped) == 2
        assert all(v["loads"] == 1 and v["payloads"] == 1 for v in shipped)
        assert sorted(v["payload_bytes"] > size for v in shipped) == [False, True]
    pvd.release(random, client=client)
    assert all(len([v for v in i["models"].values() if v["name"] == "resnet18"]) == 1
               for i in client.run(pvd.worker_info).values())


def test_unreachable_reference_falls_back_to_bytes(client, weights, images, tmp_path):
    """The workers cannot open the file a model was loaded from (here: it changed after the load): the plugin is
    registered again with the weights' bytes and the job runs."""
    _, paths = images
    path = tmp_path / "w.pth"
    path.write_bytes(weights[0].read_bytes())
    m = models.efficientnet_b0()
    pyflame_vision.load_weights(m, path)  # another file: another identity than the module's model
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    good = [p for p in paths if "/set" in p][:6]
    before = {addr: set(i["models"]) for addr, i in client.run(pvd.worker_info).items()}
    got = pvd.embed(m, good, partition_size=3, client=client).compute()
    assert np.array_equal(np.stack(got["features"].to_numpy()), pyflame_vision.embed(m, good))
    for addr, info in client.run(pvd.worker_info).items():
        [v] = [v for k, v in info["models"].items() if k not in before[addr]]
        assert v["loads"] == 1 and v["payload_bytes"] > 20_000_000  # the reference failed; the bytes came
    pvd.release(m, client=client)


def test_inputs(client, model, images, tmp_path):
    d, paths = images
    frame = pvd.image_paths(paths[:50], partition_size=16)
    assert frame.npartitions == 4 and list(frame.compute()["path"]) == paths[:50]
    assert list(pvd.image_paths(d / "photos").compute()["path"]) == sorted(str(d / "photos" / f"{p}.jpg")
                                                                          for p in PHOTOS)
    assert len(pvd.image_paths(str(d / "set*" / "*.png")).compute()) == N_GENERATED // 3
    rel = os.path.relpath(paths[0])
    assert pvd.image_paths([rel]).compute()["path"][0] == os.path.abspath(rel)  # workers need absolute paths
    for bad, err in [(tmp_path / "missing", FileNotFoundError), (str(tmp_path / "*.jpg"), FileNotFoundError),
                     ([], ValueError), ([1], TypeError), (3.5, TypeError), (b"x", TypeError)]:
        with pytest.raises(err):
            pvd.image_paths(bad)
    with pytest.raises(ValueError, match="partition_size"):
        pvd.image_paths(paths, partition_size=0)
    # A Bag, a Dask DataFrame (with a column name), a pandas Series; a value that is not a path is an error row.
    photos = [str(d / "photos" / f"{p}.jpg") for p in PHOTOS]
    want = pyflame_vision.predict(model, photos, topk=2)
    bag = db.from_sequence(photos, npartitions=2)
    ddf = dd.from_pandas(pd.DataFrame({"file": photos, "n": range(len(photos))}), npartitions=2)
    for source, kw in [(bag, {}), (ddf, {"column": "file"}), (pd.Series(photos + [None]), {})]:
        got = pvd.predict(model, source, topk=2, client=client, **kw).compute()
        assert [list(i) for i in got["indices"][:4]] == [w.indices for w in want]
        if len(got) == 5:
            assert got["error"].iloc[4].startswith("TypeError: expected a path (str), got a missing value")
    with pytest.raises(ValueError, match="column 'path'"):
        pvd.predict(model, ddf, client=client)
    with pytest.raises(ValueError, match="topk"):
        pvd.predict(model, photos, topk=0, client=client)
    with pytest.raises(ValueError, match="ship_weights"):
        pvd.embed(model, photos, ship_weights="never", client=client)
    with pytest.raises(ValueError, match="no classifier"):
        pvd.predict(models.efficientnet_b0(num_classes=0), photos, client=client)
    with pytest.raises(pyflame_vision.WeightsError, match="has no weights"):
        pvd.predict(models.efficientnet_b0(), photos, client=client)


def test_command_line(client, weights, images, tmp_path, capsys):
    """predict --workers 2 (a LocalCluster for the run) and embed --scheduler (the fixture's cluster) write the
    frames the API gives; Dask's progress bar shows on a terminal; unreadable images are reported (status 1)."""
    from pyflame_vision.cli import main

    d, paths = images
    small = tmp_path / "imgs"
    small.mkdir()
    picked = [p for p in paths if "/set0/" in p][:10] + [str(d / c) for c in CORRUPT]
    for i, p in enumerate(picked):
        shutil.copyfile(p, small / f"{i:02d}-{os.path.basename(p)}")
    files = pyflame_vision.inference.find_images([small])
    m = models.efficientnet_b0()
    pyflame_vision.load_weights(m, weights[0])
    want = pyflame_vision.predict(m, files, topk=3, on_error=lambda i, e: None)
    out = tmp_path / "p.parquet"
    assert main(["predict", "efficientnet_b0", str(small), "--weights-file", str(weights[0]), "--topk", "3",
                 "--workers", "2", "--partition-size", "4", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "on 2 Dask worker(s)" in err and f"wrote {len(files)} rows ({len(files) - 3} classified)" in err
    assert all(f"cannot read {small}" in err for _ in CORRUPT) and "3 of 13 images could not be read" in err
    table = pd.read_parquet(out).set_index("path").loc[files]
    for (_, row), w in zip(table.iterrows(), want):
        if w is None:
            assert isinstance(row["error"], str)
        else:
            assert list(row["indices"]) == w.indices and list(row["labels"]) == w.labels
    # The same table without Dask (one process, one file).
    one = tmp_path / "one.parquet"
    assert main(["predict", "efficientnet_b0", str(small), "--weights-file", str(weights[0]), "--topk", "3",
                 "--out", str(one)]) == 1
    capsys.readouterr()
    plain = pd.read_parquet(one).set_index("path").loc[files]
    assert plain["error"].isna().tolist() == table["error"].isna().tolist()
    ok = plain["error"].isna()
    for col in ("indices", "labels", "probabilities"):
        assert [list(v) for v in plain[col][ok]] == [list(v) for v in table[col][ok]]
    assert pq.read_schema(one) .field("indices").type == pq.read_schema(next(out.glob("part.0.parquet"))) \
        .field("indices").type
    # embed on the existing cluster, with Dask's progress bar (stderr made to look like a terminal).
    emb = tmp_path / "e.parquet"
    stderr = sys.stderr
    with contextlib.ExitStack() as stack:
        stack.enter_context(pytest.MonkeyPatch.context()).setattr(stderr, "isatty", lambda: True, raising=False)
        code = main(["embed", "efficientnet_b0", str(small), "--weights-file", str(weights[0]), "--scheduler",
                     client.scheduler.address, "--partition-size", "5", "--out", str(emb)])
    assert code == 1
    err = capsys.readouterr().err
    assert "% Completed" in err
    feats = pd.read_parquet(emb).set_index("path").loc[files]
    good = [i for i, w in enumerate(want) if w is not None]
    assert np.array_equal(np.stack(feats["features"].iloc[good].to_numpy()),
                          pyflame_vision.embed(m, [files[i] for i in good]))
    # Usage errors.
    for bad in (["--workers", "0"], ["--workers", "1", "--scheduler", "tcp://127.0.0.1:1"], ["--workers", "1"],
                ["--workers", "1", "--out", str(tmp_path / "x.npy")], ["--partition-size", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["predict", "efficientnet_b0", str(small), *bad])
        assert exc.value.code == 2
    assert main(["predict", "efficientnet_b0", str(small), "--weights-file", str(weights[0]), "--scheduler",
                 "tcp://127.0.0.1:1", "--out", str(tmp_path / "z.parquet")]) == 2
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:1" in capsys.readouterr().err


def test_worker_killed_mid_job_loses_and_duplicates_nothing(client, model, images, reference, tmp_path):
    """SIGKILL to a worker process while it runs a partition: Dask reruns its lost partitions on the other worker
    and on the one the nanny starts again (which gets the model from the plugin); partitions are idempotent and
    written under their index, so every path appears exactly once with its single-process result."""
    _, paths = images
    out = tmp_path / "killed.parquet"
    before = set(client.run(os.getpid).values())
    future = client.compute(pvd.to_parquet(pvd.predict(model, paths, topk=5, partition_size=8, client=client), out,
                                           compute=False))
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        busy = [addr for addr, keys in client.processing().items() if keys]
        if len(list(out.glob("part.*.parquet"))) >= 4 and busy:
            victim = busy[0]
        else:
            time.sleep(0.05)
    assert victim is not None, "the job never got going"
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    assert not future.done()  # killed in the middle of the job
    future.result(timeout=300)
    client.wait_for_workers(2, timeout=60)
    after = set(client.run(os.getpid).values())
    assert pid in before and pid not in after  # the worker really died (the nanny started another)
    table = pd.read_parquet(out)
    assert len(table) == len(paths)
    _check_predictions(table, reference, paths)
    restarted = [i for i in client.run(pvd.worker_info).values() if i["pid"] not in before]
    assert restarted and all(v["loads"] == 1 for i in restarted for v in i["models"].values()
                             if v["name"] == "efficientnet_b0")
