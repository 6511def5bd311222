"""Writes the torch-made checkpoints tests/cpp/test_pth.cpp reads (committed; run again only to refresh them).

    python tests/cpp/data/make_pth_fixtures.py tests/cpp/data/pth

Every value is a small exact expression (test_pth.cpp recomputes them), so no expected-output file is needed:
  a      float32 [3, 4] = arange(12) / 4 - 1
  a_t    a.t()                     (a non-contiguous view sharing a's storage)
  a_row  a[1]                      (a view with a storage offset)
  h      float16 [6] = arange(6) / 2 - 1
  bf     bfloat16 [4] = arange(4) * 1.5
  d      float64 [3] = arange(3) / 3   (read as float32, rounded to nearest)
  n      int64 0-d = 7
  i      int32 [5] = arange(5) - 2
  u      uint8 [4] = arange(4) * 60
  b      bool [3] = [True, False, True]
  p      a Parameter, float32 [2] = [0.5, -2]
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

import torch


def state_dict() -> OrderedDict:
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4 - 1
    sd = OrderedDict()
    sd["a"] = a
    sd["a_t"] = a.t()
    sd["a_row"] = a[1]
    sd["h"] = (torch.arange(6, dtype=torch.float32) / 2 - 1).half()
    sd["bf"] = (torch.arange(4, dtype=torch.float32) * 1.5).bfloat16()
    sd["d"] = torch.arange(3, dtype=torch.float64) / 3
    sd["n"] = torch.tensor(7)
    sd["i"] = torch.arange(5, dtype=torch.int32) - 2
    sd["u"] = (torch.arange(4) * 60).to(torch.uint8)
    sd["b"] = torch.tensor([True, False, True])
    sd["p"] = torch.nn.Parameter(torch.tensor([0.5, -2.0]))
    sd._metadata = OrderedDict({"": {"version": 1}})
    return sd


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.fc(x)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sd = state_dict()
    torch.save(sd, out / "zip_p2.pth")
    torch.save(sd, out / "zip_p5.pth", pickle_protocol=5)
    torch.save(sd, out / "legacy_p2.pth", _use_new_zipfile_serialization=False)
    wrapped = {"epoch": 3, "state_dict": OrderedDict(("module." + k, v) for k, v in sd.items())}
    torch.save(wrapped, out / "wrapped_module.pth")
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(sd, out / "zip_nocrc.pth")
    finally:
        torch.serialization.set_crc32_options(True)
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny()), out / "torchscript.pt")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {len(list(out.iterdir()))} files, {total} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
