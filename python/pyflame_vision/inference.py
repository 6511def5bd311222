"""Images in, labels out: classification and feature vectors on photographs.

>>> import pyflame_vision, pyflame_vision.models as models
>>> model = models.resnet50(weights="IMAGENET1K_V2")          # or load_weights(model, "resnet50.pth")
>>> [p] = pyflame_vision.predict(model, ["cat.jpg"], topk=3)   # the preset and names of the weights loaded
>>> p.labels, p.indices, p.probabilities                        # doctest: +SKIP
(['tabby', 'tiger cat', 'Egyptian cat'], [281, 282, 285], [0.61, 0.21, 0.09])

Images are file paths (read by :func:`load_image`), PIL images, or arrays ``[C, H, W]`` in torchvision's tensor
layout (uint8 or float32). They go through the weights' preset (``weights.transforms()``, torchvision's
``ImageClassification``), in batches, through the model. :func:`softmax` and :func:`topk` work on any NumPy
logits; :func:`embed` gives one pooled feature vector per image for search and clustering.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, NamedTuple

import numpy as np
from PIL import Image, ImageOps

__all__ = ["IMAGE_EXTENSIONS", "Prediction", "embed", "find_images", "load_image", "predict", "softmax", "topk"]

# What `find_images` picks up when it walks a directory (Pillow reads them all).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


class Prediction(NamedTuple):
    """The top classes of one image, most probable first."""

    indices: list[int]
    labels: list[str]
    probabilities: list[float]


# ------------------------------------------------------------------------------------------------ numbers


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed as ``exp(x - max(x))`` so large logits never overflow.
    float32 stays float32 (other types become float64). A row of only ``-inf``, or one with ``+inf`` or NaN,
    gives NaN as torch.softmax does."""
    x = np.asarray(logits)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"softmax: expected numeric logits, got dtype {x.dtype}")
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    if x.ndim == 0:
        raise ValueError("softmax: expected at least a 1-D array of logits, got a scalar")
    with np.errstate(invalid="ignore"):  # -inf - -inf and inf - inf are NaN, like torch
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def topk(values: Any, k: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest values along ``axis`` and their indices, largest first (ties: lower index first).
    Raises ValueError when ``k`` is not in ``[1, size]``."""
    v = np.asarray(values)
    if v.ndim == 0:
        raise ValueError("topk: expected at least a 1-D array, got a scalar")
    n = v.shape[axis]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"topk: k must be an int in [1, {n}] (the size of axis {axis}), got {k!r}")
    order = np.argsort(-v if v.dtype.kind != "u" else -(v.astype(np.int64)), axis=axis, kind="stable")
    idx = np.take(order, np.arange(int(k)), axis=axis)
    return np.take_along_axis(v, idx, axis=axis), idx


_top_k = topk  # predict's `topk` argument shadows the function there


# ------------------------------------------------------------------------------------------------ images


def load_image(source: Any) -> Image.Image:
    """An RGB PIL image from a path, a file object or a PIL image: the EXIF orientation applied (photographs from
    phones come out upright), then ``.convert("RGB")`` as torchvision's users and its dataset loaders do
    (grayscale is replicated, alpha dropped, CMYK converted, 16-bit and float modes clipped to 8 bits by Pillow;
    palette images with transparency go through RGBA first, which gives the same pixels without Pillow's
    warning). Raises what Pillow raises for unreadable files (OSError, ``PIL.UnidentifiedImageError``, ...)."""
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    with Image.open(source) as img:
        img.load()
        out = ImageOps.exif_transpose(img)
        if out is img:  # closing the file releases the image: keep a copy
            out = img.copy()
    return _to_rgb(out)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def find_images(paths: Iterable[Any]) -> list[str]:
    """File paths for the command line: files as given (whatever their extension), directories walked recursively
    for files with an image extension (:data:`IMAGE_EXTENSIONS`, any case), sorted. Raises FileNotFoundError for
    a path that does not exist."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
            out.extend(sorted(found))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p!r}")
    return out


# ------------------------------------------------------------------------------------------------ weights


def resolve_weights(model: Any, weights: Any) -> Any:
    """The weights member for ``model``: a member (``ResNet50_Weights.IMAGENET1K_V2``), its name
    (``"IMAGENET1K_V2"``, ``"DEFAULT"``, ``"ResNet50_Weights.IMAGENET1K_V2"``), or None for the member the model's
    weights were loaded from (``models.resnet50(weights="IMAGENET1K_V1")``: ``IMAGENET1K_V1``; see
    ``models.weights_source``), else the model's ``DEFAULT`` (None if the model has no weights enum)."""
    from pyflame_vision import models

    name = getattr(model, "name", model)
    try:
        enum = models.get_model_weights(name)
    except ValueError:
        if weights is None:
            return None
        raise
    if weights is None:
        source = models.weights_source(model) if isinstance(model, models.Model) else None
        if isinstance(source, models.EnumSource):
            member = source.member()
            if isinstance(member, enum):
                return member
        return enum.DEFAULT
    if isinstance(weights, str) and "." in weights and not weights.startswith(enum.__name__ + "."):
        raise ValueError(f"weights {weights!r} are not {name}'s; expected a member of {enum.__name__} "
                         f"({', '.join(enum.__members__)})")
    return enum.verify(weights)


def _transform_and_categories(model: Any, weights: Any, transforms: Callable[[Any], np.ndarray] | None,
                              categories: Sequence[str] | None) -> tuple[Callable[[Any], np.ndarray], Any, Any]:
    member = resolve_weights(model, weights)
    if transforms is None:
        if member is None:
            raise ValueError(f"{getattr(model, 'name', model)}: no weights preset to take the transforms from; pass "
                             "transforms= (e.g. transforms.ImageClassification(crop_size=224))")
        transforms = member.transforms()
    if categories is None and member is not None and model.num_classes == len(member.meta["categories"]):
        categories = member.meta["categories"]
    return transforms, categories, member


def _ensure_weights(model: Any, member: Any, progress: bool) -> None:
    """Loads `member`'s checkpoint (cache or download) into a model that has no weights yet."""
    if model.has_weights:
        return
    if member is None:
        from pyflame_vision import WeightsError

        raise WeightsError(f"{model.name} has no weights: build it with weights= (models.{model.name}"
                           f"(weights='DEFAULT')), load a file (pyflame_vision.load_weights), or pass weights= here")
    from pyflame_vision.io import load_weights
    from pyflame_vision.models import _record

    load_weights(model, member.get_checkpoint(progress=progress, check_hash=True))
    _record.note(model, _record.EnumSource(f"{type(member).__name__}.{member._name_}"))  # as weights= does


# ------------------------------------------------------------------------------------------------ batches


def _batches(images: Sequence[Any], transforms: Callable[[Any], np.ndarray], batch_size: int,
             on_error: Callable[[int, BaseException], None] | None
             ) -> Iterator[tuple[int, int, list[int], np.ndarray | None]]:
    """(start, stop, positions, float32 [B, C, H, W] or None) per batch of positions [start, stop): the images
    that could be read and preprocessed, in order (None when none could). The next batch is read and
    preprocessed on a worker thread while the caller runs the current one (Pillow and the model release the
    GIL)."""

    def prepare(start: int) -> tuple[list[int], list[np.ndarray]]:
        idx, arrays = [], []
        for i in range(start, min(start + batch_size, len(images))):
            item = images[i]
            try:
                img = load_image(item) if isinstance(item, (str, bytes, os.PathLike)) else item
                if isinstance(img, Image.Image):
                    img = _to_rgb(img)
                x = np.asarray(transforms(img), dtype=np.float32)
            except Exception as exc:  # an unreadable image is reported and skipped, never fatal
                if on_error is None:
                    raise
                on_error(i, exc)
                continue
            idx.append(i)
            arrays.append(x)
        return idx, arrays

    with ThreadPoolExecutor(max_workers=1) as pool:
        starts = list(range(0, len(images), batch_size))
        pending: Future | None = pool.submit(prepare, starts[0]) if starts else None
        for j, start in enumerate(starts):
            assert pending is not None
            idx, arrays = pending.result()
            pending = pool.submit(prepare, starts[j + 1]) if j + 1 < len(starts) else None
            stop = min(start + batch_size, len(images))
            if not arrays:
                yield start, stop, idx, None
                continue
            shapes = {a.shape for a in arrays}
            if len(shapes) != 1:
                raise ValueError(f"the transforms gave images of different shapes {sorted(shapes)}; a batch "
                                 "needs one shape (use a preset with a center crop)")
            yield start, stop, idx, np.stack(arrays)


def _as_list(images: Any) -> list[Any]:
    if isinstance(images, (str, bytes, os.PathLike, Image.Image)):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, dynamic_ncols=True, leave=False)


def predict(model: Any, images: Any, weights: Any = None, *, topk: int = 5, batch_size: int = 8,
            transforms: Callable[[Any], np.ndarray] | None = None, categories: Sequence[str] | None = None,
            progress: bool = False, on_error: Callable[[int, BaseException], None] | None = None) -> list[Any]:
    """Classifies images: one :class:`Prediction` (the ``topk`` classes with labels and probabilities) per image.

    ``images``: a path, PIL image or array ``[C, H, W]``, or a sequence of them (an array ``[N, C, H, W]`` is N
    images). ``weights`` (a member of the model's weights enum or its name; default: the member the model's
    weights were loaded from by ``weights=``, else the model's ``DEFAULT``) supplies the preset
    (``weights.transforms()``) and the category names, and is loaded if the model has no weights yet (from the
    download cache; see :mod:`pyflame_vision.hub`). ``transforms`` and ``categories``
    override them (labels are ``"class N"`` when no names are known). ``on_error(position, exception)``, if
    given, is told about images that cannot be read or preprocessed, which are then skipped (their entry in the
    result is None); without it the first error is raised. ``progress`` shows a tqdm bar (images/s).
    """
    items = _as_list(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"predict: topk must be an int >= 1, got {topk!r}")
    if model.num_classes < 1:
        raise ValueError(f"predict: {model.name} has no classifier (num_classes=0); use embed() for features")
    k = min(int(topk), model.num_classes)
    preset, names, member = _transform_and_categories(model, weights, transforms, categories)
    _ensure_weights(model, member if weights is not None else None, progress)
    results: list[Any] = [None] * len(items)
    with _progress(len(items), progress, f"{model.name}") as bar:
        for start, stop, idx, x in _batches(items, preset, batch_size, on_error):
            if x is not None:
                values, indices = _top_k(softmax(model(x)), k)
                for row, i in enumerate(idx):
                    ind = [int(c) for c in indices[row]]
                    labels = [names[c] if names is not None else f"class {c}" for c in ind]
                    results[i] = Prediction(ind, labels, [float(v) for v in values[row]])
            bar.update(stop - start)
    return results


def pooled_features(model: Any, x: np.ndarray) -> np.ndarray:
    """The global-average-pooled last feature map of ``model`` for a float32 batch ``[N, 3, H, W]``: what the
    classifier sees, ``[N, model.num_features()]`` (resnet50: 2048, efficientnet_b0: 1280)."""
    feats = model.forward_features(x)
    last = feats[-1] if isinstance(feats, list) else feats
    return last.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)


def embed(model: Any, images: Any, weights: Any = None, *, batch_size: int = 8,
          transforms: Callable[[Any], np.ndarray] | None = None, progress: bool = False,
          on_error: Callable[[int, BaseException], None] | None = None) -> np.ndarray:
    """One pooled feature vector per image (float32 ``[N, F]``, F = ``model.num_features()``), through the same
    preset as :func:`predict`. Rows of images that ``on_error`` was told about are NaN."""
    items = _as_list(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"embed: batch_size must be an int >= 1, got {batch_size!r}")
    preset, _, member = _transform_and_categories(model, weights, transforms, ())
    _ensure_weights(model, member if weights is not None else None, progress)
    out = np.full((len(items), model.num_features()), np.nan, dtype=np.float32)
    with _progress(len(items), progress, f"{model.name}") as bar:
        for start, stop, idx, x in _batches(items, preset, batch_size, on_error):
            if x is not None:
                out[idx] = pooled_features(model, x)
            bar.update(stop - start)
    return out
