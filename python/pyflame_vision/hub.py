"""Downloading pretrained checkpoints into the cache torchvision users already have.

The cache directory is torch hub's (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``), so a checkpoint that torchvision downloaded
is found and never downloaded again; ``PYFLAME_VISION_HOME`` moves it to
``$PYFLAME_VISION_HOME/checkpoints``. ``PYFLAME_VISION_WEIGHTS_MIRROR`` (a URL
prefix such as ``http://mirror.local/models/``, or ``file:///srv/models/``)
replaces ``https://download.pytorch.org/models/`` for machines that reach a
mirror instead of the internet.

A download goes to a temporary file in the cache directory and is renamed to
its final name only after its SHA-256 matches the prefix in the file name (as
torch hub checks it), so a wrong hash, a truncated transfer or Ctrl-C never
leaves a file under the final name. Only the standard library and tqdm are used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pyflame_vision import _core
from pyflame_vision._core import PyflameVisionError

__all__ = [
    "DownloadError",
    "cached_checkpoint",
    "download_url_to_file",
    "get_cache_dir",
    "load_state_dict_from_url",
]

# torch.hub's rule: the hex digits after the first "-" that is followed by hex digits and a ".".
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
TORCHVISION_URL_PREFIX = "https://download.pytorch.org/models/"
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


class DownloadError(PyflameVisionError, OSError):
    """A checkpoint could not be downloaded or did not verify (an OSError)."""


def get_cache_dir() -> str:
    """The checkpoint cache directory (not created): ``$PYFLAME_VISION_HOME/checkpoints`` if set,
    else torch hub's ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/hub/checkpoints``)."""
    return _core.pretrained.weights_cache_dir()


def _mirrored(url: str) -> str:
    mirror = os.environ.get("PYFLAME_VISION_WEIGHTS_MIRROR")
    if mirror and url.startswith(TORCHVISION_URL_PREFIX):
        return mirror.rstrip("/") + "/" + url[len(TORCHVISION_URL_PREFIX):]
    return url


def _file_name(url: str) -> str:
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ValueError(f"cannot derive a file name from the URL {url!r}; pass file_name=")
    return name


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                leave=True, dynamic_ncols=True)


def download_url_to_file(url: str, dst: str | os.PathLike[str], hash_prefix: str | None = None,
                         progress: bool = True) -> None:
    """Downloads ``url`` to ``dst`` (as torch.hub.download_url_to_file).

    The bytes go to a temporary file next to ``dst``, which is renamed to ``dst`` only once
    the transfer is complete (as many bytes as the server announced) and, if ``hash_prefix``
    is given, its SHA-256 hex digest starts with it. On any failure, Ctrl-C included, the
    temporary file is removed and ``dst`` is untouched. Raises DownloadError (an OSError)
    naming the URL, the reason and where the file can be placed by hand.
    """
    dst = os.fspath(dst)
    dst_dir = os.path.dirname(os.path.abspath(dst))
    try:
        os.makedirs(dst_dir, exist_ok=True)
        tmp = tempfile.NamedTemporaryFile(dir=dst_dir, prefix=os.path.basename(dst) + ".", suffix=".partial",
                                          delete=False)
    except OSError as exc:
        raise DownloadError(
            f"cannot write to the weights cache directory {dst_dir!r} ({exc.strerror or exc}); set "
            f"PYFLAME_VISION_HOME to a writable directory, or download {url} yourself and place it at {dst!r}"
        ) from exc
    ok = False
    try:
        with tmp:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "pyflame-vision"})
                with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                    length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                    total = int(length) if length and length.isdigit() else None
                    sha = hashlib.sha256()
                    received = 0
                    with _progress_bar(total, os.path.basename(dst), progress) as bar:
                        while True:
                            chunk = response.read(_CHUNK)
                            if not chunk:
                                break
                            tmp.write(chunk)
                            sha.update(chunk)
                            received += len(chunk)
                            if bar is not None:
                                bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(
                    f"could not download {url} ({type(exc).__name__}: {reason}). Without network access, download "
                    f"it on another machine and place it at {dst!r} (or set PYFLAME_VISION_WEIGHTS_MIRROR to a "
                    "mirror of https://download.pytorch.org/models/)"
                ) from exc
            if total is not None and received != total:
                raise DownloadError(f"incomplete download of {url}: received {received} of {total} bytes; "
                                    f"nothing was written to {dst!r}; try again")
        if hash_prefix is not None:
            digest = sha.hexdigest()
            if not digest.startswith(hash_prefix):
                raise DownloadError(
                    f"invalid hash for {url}: expected a SHA-256 starting with {hash_prefix!r}, got {digest!r} "
                    f"({received} bytes); the file was discarded, {dst!r} is untouched"
                )
        os.replace(tmp.name, dst)
        ok = True
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp.name)


def cached_checkpoint(url: str, model_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                      check_hash: bool = False, file_name: str | None = None) -> str:
    """The path of ``url``'s checkpoint in the cache (``model_dir`` or :func:`get_cache_dir`),
    downloading it first if it is not there. A cached file is used as it is (torch hub does not
    check it either); a downloaded one is checked against the hash prefix in its name when
    ``check_hash`` is true."""
    cache = os.fspath(model_dir) if model_dir is not None else get_cache_dir()
    name = file_name or _file_name(url)
    path = os.path.join(cache, name)
    if os.path.isfile(path):
        return path
    hash_prefix = None
    if check_hash:
        match = HASH_REGEX.search(name)
        if not match:
            raise ValueError(f"check_hash=True but the file name {name!r} has no hash prefix ('name-<hex>.ext')")
        hash_prefix = match.group(1)
    if progress:
        print(f"Downloading: {url!r} to {path}", file=sys.stderr)
    download_url_to_file(_mirrored(url), path, hash_prefix=hash_prefix, progress=progress)
    return path


def load_state_dict_from_url(url: str, model_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             **read_options: Any) -> dict[str, Any]:
    """torch.hub.load_state_dict_from_url without torch: downloads (or finds in the cache) the
    checkpoint at ``url`` and returns its state dict as NumPy arrays (float32, int64 for
    ``num_batches_tracked``), read by :func:`pyflame_vision.io.read_weights` (no code from the
    file is run). ``read_options`` (``key=``, ``strip_prefix=``) go to the reader."""
    from pyflame_vision.io import read_weights

    return read_weights(cached_checkpoint(url, model_dir, progress, check_hash, file_name), **read_options)
