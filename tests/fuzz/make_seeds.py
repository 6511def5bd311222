"""Writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/) from valid files: small .safetensors files
written by pyflame_vision (every dtype, metadata, empty and 0-d tensors), the committed torch.save checkpoints of
tests/cpp/data/pth (zip protocol 2 and 5, no-CRC, legacy) and .npz files written by NumPy (stored and deflated,
big-endian, Fortran order, bool, 0-d). The committed corpus was written by this script.

    python tests/fuzz/make_seeds.py [OUT_DIR]     (default: tests/fuzz/corpus)
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np

from pyflame_vision import _core

HERE = Path(__file__).resolve().parent
PTH_FIXTURES = HERE.parent / "cpp" / "data" / "pth"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"
    rng = np.random.default_rng(0)
    st, pth, npz = out / "safetensors", out / "pth", out / "npz"
    for d in (st, pth, npz):
        d.mkdir(parents=True, exist_ok=True)

    tensors = {
        "conv.weight": rng.standard_normal((2, 1, 2, 2)).astype(np.float32),
        "bn.num_batches_tracked": np.array(3, np.int64),
        "half": rng.standard_normal(3).astype(np.float16),
        "double": rng.standard_normal(2),
        "ints": np.arange(3, dtype=np.int32),
        "bytes": np.arange(4, dtype=np.uint8),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 2), np.float32),
    }
    _core.save_safetensors(str(st / "all_dtypes.safetensors"), tensors, {"format": "np", "k": "v\u00e9"})
    _core.save_safetensors(str(st / "one.safetensors"), {"w": np.ones((2, 2), np.float32)})
    _core.save_safetensors(str(st / "empty.safetensors"), {})

    for name in ("zip_p2.pth", "zip_p5.pth", "zip_nocrc.pth", "legacy_p2.pth"):
        shutil.copyfile(PTH_FIXTURES / name, pth / name)

    arrays = {"w": rng.standard_normal((2, 3)).astype(np.float32), "n": np.array(7, np.int64),
              "b": np.array([True, False, True])}
    for label, save in (("stored", np.savez), ("deflated", np.savez_compressed)):
        buf = io.BytesIO()
        save(buf, **arrays)
        (npz / f"{label}.npz").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, be=np.arange(6, dtype=">f4").reshape(2, 3), f=np.asfortranarray(np.arange(6.0).reshape(2, 3)))
    (npz / "big_endian_fortran.npz").write_bytes(buf.getvalue())
    print(f"seeds written to {out}")


if __name__ == "__main__":
    main()
