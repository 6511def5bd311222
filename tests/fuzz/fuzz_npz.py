"""atheris target: pyflame_vision's .npz reader (ZIP directory via zipfile, our .npy header parser, the declared-size
checks, inflation into exactly-sized arrays, byte-order and Fortran conversion) on arbitrary bytes.

The contract under test: any input is either read (every array native, C-order, with the declared shape) or refused
with pyflame_vision.WeightsError. Any other exception, a crash or a hang is a finding.

    python tests/fuzz/fuzz_npz.py CORPUS_DIR -max_total_time=60 -seed=1
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from pyflame_vision import WeightsError
    from pyflame_vision._npz import NpzArchive


def test_one_input(data: bytes) -> None:
    try:
        with NpzArchive("fuzz.npz", io.BytesIO(data)) as archive:
            for key, head in archive.headers.items():
                if head.nbytes > 1 << 22:  # a valid header may declare a huge member; reading it is not the point
                    continue
                a = archive.read(key)
                assert a.shape == head.shape and a.flags.c_contiguous and a.dtype.isnative, key
    except WeightsError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
