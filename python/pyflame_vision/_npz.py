"""The ``.npz`` reader: NumPy archives (``np.savez`` / ``np.savez_compressed``) read as data, never as code.

Every member is checked from what the archive *declares* before any of its data is inflated: the
``.npy`` header (at most 64 KiB, a literal dict parsed with :func:`ast.literal_eval`) must name a plain
numeric dtype (object, structured and sub-array dtypes are refused: they would need pickle or do not
hold one number per element), a shape of non-negative ints and a Fortran-order flag, and its size
(header plus ``numel * itemsize``) must equal the member's uncompressed size in the ZIP directory.
Only then is the member inflated, straight into an array of exactly that size and in bounded chunks,
so a DEFLATE bomb costs nothing before it is refused, a member can never inflate past what it
declares, and zipfile checks its CRC-32 at the end. Members must be stored or deflated (what NumPy
writes). Big-endian and Fortran-order members come back as native, C-order arrays with the same
values; bool members as 0/1. Every fault is a :class:`WeightsError` naming the file, the member and
the rule broken.
"""

from __future__ import annotations

import ast
import math
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO, NoReturn

import numpy as np

from pyflame_vision._core import WeightsError

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 16
_CHUNK = 1 << 22
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
# What load_state_dict can take: floats (read as float32 by the model), integers and bool.
_KINDS = {"f": "float", "i": "int", "u": "uint", "b": "bool"}
# What reading a damaged member raises (zlib.error: a broken DEFLATE stream, found by the fuzzer).
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError)


class NpyHeader:
    """What one member declares: dtype, shape, order and where its data starts (in the member)."""

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...], fortran_order: bool, data_offset: int) -> None:
        self.dtype, self.shape, self.fortran_order, self.data_offset = dtype, shape, fortran_order, data_offset
        self.numel = math.prod(shape)
        self.nbytes = self.numel * dtype.itemsize


def _read_exact(f: BinaryIO, n: int, what: str, fail: Callable[[str], NoReturn]) -> bytes:
    data = f.read(n)
    if len(data) != n:
        fail(f"the member ends after {len(data)} of the {n} bytes of {what}")
    return data


def _parse_header(f: BinaryIO, fail: Callable[[str], NoReturn]) -> NpyHeader:
    magic = _read_exact(f, 8, "the .npy magic and version", fail)
    if magic[:6] != _MAGIC:
        fail(f"expected the .npy magic \\x93NUMPY, found {magic[:6]!r}")
    major, minor = magic[6], magic[7]
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        fail(f"unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)")
    size_bytes = 2 if major == 1 else 4
    header_len = int.from_bytes(_read_exact(f, size_bytes, "the header length", fail), "little")
    if header_len > _MAX_HEADER:
        fail(f"the .npy header declares {header_len} bytes, more than the limit of {_MAX_HEADER}")
    raw = _read_exact(f, header_len, "the header", fail)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
    except UnicodeDecodeError as exc:
        fail(f"the .npy header is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        d = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        fail(f"the .npy header is not a Python literal dict ({type(exc).__name__}: {str(exc)[:100]})")
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        keys = sorted(map(repr, d)) if isinstance(d, dict) else type(d).__name__
        fail(f"the .npy header must be a dict with exactly 'descr', 'fortran_order' and 'shape', found {keys}")
    descr, fortran, shape = d["descr"], d["fortran_order"], d["shape"]
    if not isinstance(descr, str):
        fail(
            f"the member has a structured dtype ({_short(descr)}); expected a plain numeric one such as '<f4' "
            "(a state dict holds one number per element)"
        )
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError) as exc:
        fail(f"the .npy header's dtype {_short(descr)} is not a NumPy dtype ({str(exc)[:100]})")
    if dtype.hasobject:
        fail(
            f"the member holds Python objects (dtype {descr!r}), which only pickle can read; pyflame_vision "
            "never unpickles a weight file"
        )
    if dtype.kind not in _KINDS or dtype.names is not None or dtype.subdtype is not None or dtype.itemsize > 8:
        fail(f"the member's dtype {descr!r} ({dtype}) is not a float, integer or bool dtype pyflame_vision reads")
    if not isinstance(fortran, bool):
        fail(f"the .npy header's fortran_order must be True or False, found {_short(fortran)}")
    if not isinstance(shape, tuple) or not all(type(v) is int and v >= 0 for v in shape):
        fail(f"the .npy header's shape must be a tuple of non-negative ints, found {_short(shape)}")
    if len(shape) > 64:
        fail(f"the member has {len(shape)} dimensions, more than 64")
    head = NpyHeader(dtype, shape, fortran, len(magic) + size_bytes + header_len)
    if head.nbytes >= 1 << 63:
        fail(f"shape {list(shape)} of {dtype} is larger than 2^63 bytes")
    return head


def _short(v: object) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:80] + f"... ({len(r)} characters)"


class NpzArchive:
    """An open ``.npz`` file whose members' headers have been read and checked (no data inflated yet).

    ``headers`` maps each key (the member name without ``.npy``) to its :class:`NpyHeader`, in
    archive order. :meth:`read` inflates one member; :meth:`close` (or ``with``) closes the file.
    """

    def __init__(self, path: str, fileobj: BinaryIO | None = None) -> None:
        """Opens ``path`` (or reads ``fileobj``, with ``path`` naming it in messages)."""
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path if fileobj is None else fileobj)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
                raise
            raise WeightsError(f"{path}: not a valid .npz file (a ZIP archive): {exc}") from None
        try:
            self.headers: dict[str, NpyHeader] = {}
            self._infos: dict[str, zipfile.ZipInfo] = {}
            for info in self._zip.infolist():
                self._add(info)
        except BaseException:
            self._zip.close()
            raise

    def _fail(self, member: str, message: str) -> NoReturn:
        raise WeightsError(f"{self.path}: member {member!r}: {message}")

    def _add(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        fail = lambda msg: self._fail(name, msg)  # noqa: E731
        if not name.endswith(".npy") or info.is_dir():
            fail("expected only .npy members (as np.savez writes them)")
        key = name[:-4]
        if key in self.headers:
            fail("appears twice in the archive")
        if info.flag_bits & 0x1:
            fail("is encrypted")
        if info.compress_type not in _METHODS:
            fail(
                f"uses ZIP compression method {info.compress_type}; .npz members are stored or deflated "
                "(np.savez / np.savez_compressed)"
            )
        try:
            with self._zip.open(info) as f:
                head = _parse_header(f, fail)
        except WeightsError:
            raise
        except _READ_ERRORS as exc:
            fail(f"cannot be read: {type(exc).__name__}: {str(exc)[:200]}")
        # The declared sizes agree before anything is inflated: a member can never expand past them.
        if head.data_offset + head.nbytes != info.file_size:
            fail(
                f"its .npy header declares shape {list(head.shape)} of {head.dtype.str} ({head.nbytes} bytes of data "
                f"after a {head.data_offset}-byte header), but the archive declares {info.file_size} bytes "
                "for the member"
            )
        self.headers[key] = head
        self._infos[key] = info

    def read(self, key: str) -> np.ndarray:
        """Inflates member ``key`` into a native-endian, C-order array of exactly its declared size."""
        head, info = self.headers[key], self._infos[key]
        fail = lambda msg: self._fail(info.filename, msg)  # noqa: E731
        out = np.empty(head.numel, dtype=head.dtype)
        view = memoryview(out).cast("B") if head.nbytes else memoryview(b"")
        try:
            with self._zip.open(info) as f:
                _read_exact(f, head.data_offset, "the header", fail)
                done = 0
                while done < head.nbytes:
                    chunk = f.read(min(_CHUNK, head.nbytes - done))
                    if not chunk:
                        fail(f"the data ends after {done} of its {head.nbytes} bytes")
                    view[done:done + len(chunk)] = chunk
                    done += len(chunk)
                if f.read(1):  # also makes zipfile check the CRC-32 at the end
                    fail("holds more bytes than it declares")
        except WeightsError:
            raise
        except _READ_ERRORS as exc:
            fail(f"cannot be read: {type(exc).__name__}: {str(exc)[:200]}")
        if head.fortran_order:
            out = np.ascontiguousarray(out.reshape(head.shape[::-1]).T)
        else:
            out = out.reshape(head.shape)
        if not out.dtype.isnative:
            out = out.astype(out.dtype.newbyteorder("="))
        if out.dtype.kind == "b":
            out = out.view(np.uint8) != 0  # any non-zero byte is True, as NumPy reads it
        return out

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Every member of a ``.npz`` file as ``{key: array}``, in archive order."""
    with NpzArchive(path) as archive:
        return {key: archive.read(key) for key in archive.headers}


def check_shapes(
    path: str, headers: Mapping[str, NpyHeader], model_shapes: Mapping[str, Sequence[int]], model_type: str
) -> None:
    """Raises WeightsError for members whose declared shape differs from the model's, before inflating any
    (torch's wording, every mismatch in one message; a 1-element member fits a 0-d buffer as torch allows)."""
    errors = []
    for key, head in headers.items():
        want = model_shapes.get(key)
        if want is None:
            continue
        want = list(want)
        got = list(head.shape)
        if got != want and not (want == [] and got == [1]):
            errors.append(
                f"size mismatch for {key}: copying a param with shape {got} from checkpoint, "
                f"the shape in current model is {want}."
            )
    if errors:
        raise WeightsError(
            f"{path}: Error(s) in loading state_dict for {model_type}:"
            + "".join("\n\t" + e for e in errors)
            + "\n(checked from the archive's declared shapes before inflating anything; the model's previous "
            "weights are unchanged)"
        )
