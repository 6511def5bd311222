"""Images in, labels out: softmax/topk, image loading, pyflame_vision.predict / embed and the predict / embed
commands; end to end against torchvision with calibrated weights saved by torch."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

import pyflame_vision
import pyflame_vision.models as models
from conftest import require_torchvision
from pyflame_vision import Prediction, embed, load_image, predict, softmax, topk
from pyflame_vision.cli import main
from pyflame_vision.inference import find_images, resolve_weights
from pyflame_vision.transforms import ImageClassification
from sample_images import PHOTOS, encoded, exif_rotated, photo

# ---------------------------------------------------------------------------------------------- softmax / topk


def test_softmax_is_stable_on_large_logits():
    big = np.array([[1e4, 1e4 - 1.0, -1e4], [1e30, 0.0, -1e30], [0.0, 0.0, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        p = softmax(big)
    assert p.dtype == np.float32 and np.all(np.isfinite(p))
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert p[0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)), rel=1e-6) and p[1, 0] == 1.0
    assert np.allclose(p[2], 1 / 3)
    x = np.random.default_rng(0).normal(size=(4, 7)) * 10
    ref = np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)
    assert np.allclose(softmax(x, axis=0), ref, rtol=1e-12)
    assert softmax(np.array([1, 2, 3])).dtype == np.float64
    assert np.allclose(softmax([-np.inf, 0.0]), [0.0, 1.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(softmax([-np.inf, -np.inf])).all()  # as torch.softmax
    with pytest.raises(TypeError, match="numeric"):
        softmax(np.array(["a"]))
    with pytest.raises(ValueError, match="scalar"):
        softmax(np.float32(1))


def test_softmax_and_topk_match_torch():
    torch, _ = require_torchvision()
    x = np.random.default_rng(1).normal(size=(5, 1000)).astype(np.float32) * 8
    assert np.allclose(softmax(x), torch.softmax(torch.from_numpy(x), dim=1).numpy(), rtol=1e-5, atol=1e-7)
    v, i = topk(x, 7)
    tv, ti = torch.topk(torch.from_numpy(x), 7, dim=1)
    assert np.array_equal(i, ti.numpy()) and np.array_equal(v, tv.numpy())


def test_topk_order_ties_and_errors():
    v, i = topk(np.array([0.1, 0.5, 0.5, 0.2, 0.9]), 3)
    assert list(i) == [4, 1, 2] and list(v) == [0.9, 0.5, 0.5]  # ties: lower index first
    v, i = topk(np.array([[1, 3], [4, 2]], dtype=np.uint8), 1, axis=0)
    assert i.tolist() == [[1, 0]] and v.tolist() == [[4, 3]]
    for bad in (0, 3, 1.5, True):
        with pytest.raises(ValueError, match=r"k must be an int in \[1, 2\]"):
            topk(np.zeros(2), bad)


# ---------------------------------------------------------------------------------------------- loading images


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_load_image_applies_exif_orientation(tmp_path, orientation):
    img = photo("rocket").resize((120, 80))
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(exif_rotated(img, orientation))
    got = load_image(path)
    with Image.open(path) as raw:
        want = ImageOps.exif_transpose(raw).convert("RGB")
        assert raw.size == (120, 80)
    assert got.mode == "RGB"
    assert got.size == ((80, 120) if orientation in (6, 8) else (120, 80))
    assert np.array_equal(np.asarray(got), np.asarray(want))
    if orientation == 3:  # upside down: the first row of the decoded file becomes the last
        with Image.open(path) as raw:
            assert np.array_equal(np.asarray(got)[-1, ::-1], np.asarray(raw.convert("RGB"))[0])


def test_load_image_converts_modes_to_rgb(tmp_path):
    base = photo("coffee").resize((64, 48))
    palette_t = base.convert("P")
    palette_t.info["transparency"] = 0
    cases = {
        "gray.png": base.convert("L"),
        "rgba.png": base.convert("RGBA"),
        "cmyk.jpg": base.convert("CMYK"),
        "bw.png": base.convert("1"),
        "palette.png": palette_t,
        "deep.png": Image.fromarray((np.arange(48 * 64, dtype=np.uint16) * 21).reshape(48, 64)),  # 16-bit
        "photo.webp": base,
    }
    for name, img in cases.items():
        fmt = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[name.split(".")[1]]
        (tmp_path / name).write_bytes(encoded(img, fmt))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. Pillow's palette-transparency warning must not appear
            got = load_image(tmp_path / name)
        assert got.mode == "RGB" and got.size == (64, 48), name
        with Image.open(tmp_path / name) as raw:
            ref = raw.convert("RGBA").convert("RGB") if raw.mode == "P" else raw.convert("RGB")
        assert np.array_equal(np.asarray(got), np.asarray(ref)), name
    same = load_image(base)  # a PIL image: oriented and converted the same way (here: pixels unchanged)
    assert same.mode == "RGB" and np.array_equal(np.asarray(same), np.asarray(base))
    with pytest.raises(OSError):
        load_image(tmp_path / "missing.jpg")


def test_find_images_walks_directories(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ["z.JPG", "a/y.png", "a/b/x.webp", "a/notes.txt", "a/b/c.jpeg"]:
        (tmp_path / rel).write_bytes(b"x")
    found = find_images([tmp_path])
    rel = [os.path.relpath(p, tmp_path) for p in found]
    assert rel == ["a/b/c.jpeg", "a/b/x.webp", "a/y.png", "z.JPG"]
    assert find_images([tmp_path / "a" / "notes.txt"]) == [str(tmp_path / "a" / "notes.txt")]  # named: taken
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_images([tmp_path / "nope"])


# ---------------------------------------------------------------------------------------------- end to end


def _calibrated(name: str, seed: int = 0):
    """A torchvision model with its initialisation and BatchNorm statistics calibrated (one training-mode pass
    with a cumulative average) on the preset-processed sample photographs and noise, so activations have the
    scale of a trained network."""
    torch, torchvision = require_torchvision()
    torch.manual_seed(seed)
    m = torchvision.models.get_model(name, weights=None)
    preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    batch = torch.stack([preset(photo(p)) for p in PHOTOS] + [torch.randn(3, preset.crop_size[0],
                                                                           preset.crop_size[0])
                                                               for _ in range(4)])
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None
    m.train()
    with torch.no_grad():
        m(batch)
    return m.eval()


@pytest.fixture(scope="module", params=["resnet18", "efficientnet_b0"])
def trained(request, tmp_path_factory):
    """(name, torchvision model, its checkpoint saved by torch.save)."""
    torch, torchvision = require_torchvision()

    name = request.param
    tv_model = _calibrated(name)
    # Saved by torch as torchvision's checkpoints are (torch.save of the state dict), read by the library's
    # PyTorch checkpoint reader (pyflame_vision.load_weights).
    path = tmp_path_factory.mktemp("weights") / f"{name}.pth"
    torch.save(tv_model.state_dict(), str(path))
    return name, tv_model, path


@pytest.mark.parity
def test_predict_top5_equals_torchvision(trained, tmp_path):
    torch, torchvision = require_torchvision()
    name, tv_model, path = trained
    weights = torchvision.models.get_model_weights(name).DEFAULT
    tv_preset = weights.transforms()
    files = []
    for p in PHOTOS:
        f = tmp_path / f"{p}.jpg"
        f.write_bytes(encoded(photo(p), "JPEG", quality=92))
        files.append(str(f))
    model = models.get_model(name)
    pyflame_vision.load_weights(model, path)
    preds = predict(model, files, weights="DEFAULT", topk=5, batch_size=3)
    assert len(preds) == len(files)
    with torch.no_grad():
        logits = tv_model(torch.stack([tv_preset(Image.open(f).convert("RGB")) for f in files]))
    probs = torch.softmax(logits, dim=1)
    tv_p, tv_i = torch.topk(probs, 6, dim=1)
    categories = weights.meta["categories"]
    for row, pred in enumerate(preds):
        assert isinstance(pred, Prediction)
        # The comparison means something only if torchvision's own top 6 are not tied within float error.
        gaps = -np.diff(tv_p[row].numpy())
        assert gaps.min() > 1e-5 * float(tv_p[row, 0]), f"{name}: near-tie in torchvision's top 6 {tv_p[row]}"
        assert pred.indices == tv_i[row, :5].tolist(), (name, files[row])
        assert pred.labels == [categories[i] for i in pred.indices]
        assert np.allclose(pred.probabilities, tv_p[row, :5].numpy(), rtol=1e-3, atol=1e-6)


@pytest.mark.parity
def test_embed_equals_torchvision_pooled_features(trained):
    torch, torchvision = require_torchvision()
    name, tv_model, path = trained
    preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    imgs = [photo(p) for p in PHOTOS]
    model = models.get_model(name)
    pyflame_vision.load_weights(model, path)
    feats = embed(model, imgs, batch_size=3)
    assert feats.shape == (len(imgs), model.num_features()) and feats.dtype == np.float32
    x = torch.stack([preset(i) for i in imgs])
    with torch.no_grad():
        if name.startswith("resnet"):
            body = torch.nn.Sequential(*list(tv_model.children())[:-1])  # up to avgpool
        else:
            body = torch.nn.Sequential(tv_model.features, tv_model.avgpool)
        ref = torch.flatten(body(x), 1).numpy()
    assert np.max(np.abs(feats - ref)) <= 1e-4 * np.max(np.abs(ref))


@pytest.mark.parity
def test_predict_api_inputs_and_errors(trained, tmp_path):
    torch, torchvision = require_torchvision()
    name, tv_model, path = trained
    model = models.get_model(name)
    with pytest.raises(pyflame_vision.WeightsError, match="has no weights"):
        predict(model, [photo("coffee")])
    pyflame_vision.load_weights(model, path)
    weights = models.get_model_weights(name).DEFAULT
    img = photo("chelsea")
    [from_pil] = predict(model, img, topk=3)
    u8 = np.asarray(img).transpose(2, 0, 1)
    # Arrays take the tensor path (one uint8 level from Pillow's resize at most): the same classes here.
    [from_array] = predict(model, u8, topk=3)
    assert from_array.indices == from_pil.indices
    batch = predict(model, np.stack([u8, u8]), topk=3)
    assert [b.indices for b in batch] == [from_array.indices] * 2
    # Explicit preset and categories override the weights'.
    custom = predict(model, [img], transforms=ImageClassification(crop_size=224), categories=[str(-i)
                                                                                                for i in range(1000)])
    assert custom[0].labels == [str(-i) for i in custom[0].indices]
    assert predict(model, [img], weights=weights, topk=2000)[0].indices.__len__() == 1000  # capped at the classes
    # Unreadable images: reported through on_error and skipped.
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    seen = []
    out = predict(model, [img, str(bad), img], on_error=lambda i, e: seen.append((i, type(e).__name__)))
    assert out[1] is None and out[0].indices == out[2].indices and seen == [(1, "UnidentifiedImageError")]
    with pytest.raises(Image.UnidentifiedImageError):
        predict(model, [str(bad)])
    with pytest.raises(ValueError, match="topk must be an int >= 1"):
        predict(model, [img], topk=0)
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, [img], batch_size=0)
    with pytest.raises(ValueError, match="not resnet|not efficientnet|are not"):
        predict(model, [img], weights="Wide_ResNet50_2_Weights.IMAGENET1K_V1")
    assert resolve_weights(model, None) is weights
    assert resolve_weights(model, f"{type(weights).__name__}.{weights._name_}") is weights
    headless = models.get_model(name, num_classes=0)
    with pytest.raises(ValueError, match="no classifier"):
        predict(headless, [img])


# ---------------------------------------------------------------------------------------------- the commands


def _image_dir(tmp_path):
    """Three good photographs (JPEG, PNG in a subdirectory, WebP), a truncated JPEG, an empty file, a text file
    named .jpg, and a .txt file that is not an image."""
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    (d / "astronaut.jpg").write_bytes(encoded(photo("astronaut"), "JPEG"))
    (d / "sub" / "coffee.png").write_bytes(encoded(photo("coffee"), "PNG"))
    (d / "chelsea.webp").write_bytes(encoded(photo("chelsea"), "WEBP"))
    jpeg = encoded(photo("rocket"), "JPEG")
    (d / "corrupt.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("this is a text file")
    (d / "readme.txt").write_text("not an image")
    return d


GOOD = ["astronaut.jpg", "chelsea.webp", "sub/coffee.png"]
BAD = ["corrupt.jpg", "empty.jpg", "notes.jpg"]


@pytest.mark.parity
def test_predict_command_reports_bad_files_and_classifies_the_rest(trained, tmp_path, capsys):
    name, _, path = trained
    d = _image_dir(tmp_path)
    threads = pyflame_vision.get_num_threads()
    try:
        code = main(["predict", name, str(d), "--weights-file", str(path), "--topk", "3", "--batch-size", "2",
                     "--threads", "1"])
    finally:
        pyflame_vision.set_num_threads(threads)
    out, err = capsys.readouterr()
    assert code == 1  # some images failed
    blocks = [b.splitlines() for b in out.strip().split("\n") if not b.startswith(" ")]
    listed = [line for line in out.splitlines() if not line.startswith(" ")]
    assert listed == [str(d / g) for g in GOOD] and len(blocks) == 3
    for b in BAD:
        assert f"cannot read {d / b}" in err
    assert "3 of 6 images could not be read" in err
    # The printed classes are the API's.
    model = models.get_model(name)
    pyflame_vision.load_weights(model, path)
    preds = predict(model, [str(d / g) for g in GOOD], topk=3)
    rows = [line for line in out.splitlines() if line.startswith(" ")]
    assert len(rows) == 9
    for k, pred in enumerate(preds):
        for j in range(3):
            assert rows[3 * k + j].endswith(f"{pred.labels[j]} ({pred.indices[j]})")
            assert f"{pred.probabilities[j] * 100:6.2f}%" in rows[3 * k + j]


@pytest.mark.parity
def test_predict_command_json(trained, tmp_path, capsys):
    name, _, path = trained
    d = _image_dir(tmp_path)
    assert main(["predict", name, str(d), "--weights-file", str(path), "--json", "--topk", "2"]) == 1
    out, err = capsys.readouterr()
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["path"] for o in objs] == sorted(str(d / p) for p in GOOD + BAD)
    by_path = {os.path.relpath(o["path"], d): o for o in objs}
    for g in GOOD:
        o = by_path[g]
        assert o["model"] == name and o["weights"].endswith(".IMAGENET1K_V1")
        assert len(o["top"]) == 2 and o["top"][0]["probability"] >= o["top"][1]["probability"]
        assert set(o["top"][0]) == {"index", "label", "probability"}
    for b in BAD:
        assert "error" in by_path[b]
    assert main(["predict", name, str(d / "astronaut.jpg"), "--weights-file", str(path), "--json"]) == 0


def test_predict_command_without_weights_explains(tmp_path, capsys, monkeypatch):
    d = _image_dir(tmp_path)
    monkeypatch.setenv("PYFLAME_VISION_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYFLAME_VISION_WEIGHTS_MIRROR", "http://127.0.0.1:1/")  # refused at once: no network here
    assert main(["predict", "resnet18", str(d / "astronaut.jpg")]) == 2
    err = capsys.readouterr().err
    assert "no trained weights for resnet18" in err and "--weights-file" in err
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in err
    assert not list((tmp_path / "cache").rglob("*.pth"))  # nothing half-written
    # And the other failures of the command line.
    assert main(["predict", "resnet18", str(d), "--weights", "IMAGENET1K_V9"]) == 2
    assert "--weights" in capsys.readouterr().err
    assert main(["predict", "resnet18", str(tmp_path / "nothing-here")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", "resnet18", str(d), "--weights-file", str(tmp_path / "none.safetensors")]) == 2
    assert "--weights-file" in capsys.readouterr().err
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert main(["predict", "resnet18", str(empty)]) == 1
    assert "no images found" in capsys.readouterr().err
    for bad in (["--topk", "0"], ["--batch-size", "0"], ["--threads", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["predict", "resnet18", str(d), *bad])
        assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["predict", "resnet9", str(d)])


@pytest.mark.parity
def test_embed_command_writes_npy_and_parquet(trained, tmp_path, capsys, monkeypatch):
    import pyarrow.parquet as pq

    name, _, path = trained
    d = _image_dir(tmp_path)
    model = models.get_model(name)
    pyflame_vision.load_weights(model, path)
    want = embed(model, [str(d / g) for g in GOOD])
    assert main(["embed", name, str(d), "--weights-file", str(path), "--out", str(tmp_path / "o" / "f.npy")]) == 1
    err = capsys.readouterr().err
    assert f"wrote 3 feature vectors of {model.num_features()} floats" in err and "cannot read" in err
    table = np.load(tmp_path / "o" / "f.npy", allow_pickle=False)
    assert [os.path.relpath(p, d) for p in table["path"]] == GOOD
    assert np.array_equal(table["features"], want)
    assert main(["embed", name, str(d), "--weights-file", str(path), "--out", str(tmp_path / "f.parquet"),
                 "--batch-size", "2"]) == 1
    capsys.readouterr()
    t = pq.read_table(tmp_path / "f.parquet")
    assert t.column_names == ["path", "features"] and t.num_rows == 3
    assert np.array_equal(np.stack(t.column("features").to_numpy(zero_copy_only=False)), want)
    assert t.schema.metadata[b"model"] == name.encode()
    # Without pyarrow, .parquet is refused up front with the fix; .npy needs nothing.
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    assert main(["embed", name, str(d), "--weights-file", str(path), "--out", str(tmp_path / "g.parquet")]) == 2
    assert "pip install 'pyflame-vision[parquet]'" in capsys.readouterr().err
    assert not (tmp_path / "g.parquet").exists()
    with pytest.raises(SystemExit):
        main(["embed", name, str(d), "--out", str(tmp_path / "x.csv")])


@pytest.mark.parity
def test_progress_bar_on_a_terminal(trained, tmp_path):
    """The console script on a pseudo-terminal: more than one batch shows tqdm's bar with images/s."""
    import fcntl
    import pty
    import struct
    import termios

    name, _, path = trained
    d = _image_dir(tmp_path)
    exe = shutil.which("pyflame-vision")
    assert exe is not None, "the pyflame-vision console script is not installed"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 columns wide
    try:
        r = subprocess.run([exe, "predict", name, str(d), "--weights-file", str(path), "--batch-size", "2"],
                           stdout=subprocess.PIPE, stderr=slave, timeout=600)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert r.returncode == 1
    assert "img/s" in err and f"{name}:" in err and "/6 [" in err  # the bar: model, images done of 6, rate
    assert b"astronaut.jpg" in r.stdout


def test_model_methods_are_the_functions(tmp_path):
    # model.predict / model.embed are pyflame_vision.predict / embed bound to the model.
    model = models.resnet18(num_classes=10)
    model.init_weights(seed=3)
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (3, 40 + i, 50), dtype=np.uint8) for i in range(3)]
    preset = ImageClassification(crop_size=32, resize_size=36)
    by_method = model.predict(images, topk=3, transforms=preset, categories=[f"c{i}" for i in range(10)])
    by_function = pyflame_vision.predict(model, images, topk=3, transforms=preset,
                                         categories=[f"c{i}" for i in range(10)])
    assert by_method == by_function and len(by_method) == 3 and len(by_method[0].indices) == 3
    assert np.array_equal(model.embed(images, transforms=preset), pyflame_vision.embed(model, images,
                                                                                       transforms=preset))
