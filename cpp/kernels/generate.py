#!/usr/bin/env python3
"""Generates the AVX2 and AVX-512 microkernels from one template.

The ISA files cpp/kernels/avx2/ukernels_f32__avx2.cpp and
cpp/kernels/avx512/ukernels_f32__avx512.cpp are instances of
cpp/kernels/templates/ukernels_f32.cpp.in: the same lines, differing only in
vector width, tile sizes and intrinsic names (and a few small helpers whose
bodies are ISA-specific). So the AVX2 instance, which runs and is tested on
every x86-64 CI machine, exercises the logic of the AVX-512 instance, which
only machines with AVX-512 can run.

Both outputs are committed (the build needs no Python); tests check that they
are up to date (`python cpp/kernels/generate.py --check`).

Template syntax (in the spirit of XNNPACK's xngen): a line whose first
non-blank character is `$` is a Python statement (`$for ...:`, `$if ...:`,
`$elif ...:`, `$else:`), closed by `$end`; `${expr}` elsewhere is replaced by
the value of the expression. Everything else is copied.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "templates" / "ukernels_f32.cpp.in"

# Vector intrinsics by role. Keys are the names the template uses.
ISAS = {
    "avx2": {
        "ISA": "avx2",
        "VW": 8,  # floats per vector
        "MR": 6,
        "NR": 16,
        "V": "__m256",
        "VI": "__m256i",
        "LOAD": "_mm256_loadu_ps",
        "STORE": "_mm256_storeu_ps",
        "SET1": "_mm256_set1_ps",
        "BCAST": "_mm256_broadcast_ss",
        "ZERO": "_mm256_setzero_ps",
        "FMA": "_mm256_fmadd_ps",
        "FNMA": "_mm256_fnmadd_ps",
        "ADD": "_mm256_add_ps",
        "SUB": "_mm256_sub_ps",
        "MUL": "_mm256_mul_ps",
        "DIV": "_mm256_div_ps",
        "MAX": "_mm256_max_ps",
        "OR": "_mm256_or_ps",
        "PERMUTE": "_mm256_permute_ps",
        "CASTPS_SI": "_mm256_castps_si256",
        "CASTSI_PS": "_mm256_castsi256_ps",
        "SLLI": "_mm256_slli_epi32",
        "DW_BLOCKS": 4,  # channel vectors per pixel in the depthwise kernel's main loop
        "DW_PIX": 3,  # pixels per step
        "GROUP_CS": [4, 8],  # grouped kernels: channels per group
        "G4_KG": 2,  # 4-channel groups: input channels per pass (16 registers: 12 accumulators + 2 weights + input)
    },
    "avx512": {
        "ISA": "avx512",
        "VW": 16,
        "MR": 12,
        "NR": 32,
        "V": "__m512",
        "VI": "__m512i",
        "LOAD": "_mm512_loadu_ps",
        "STORE": "_mm512_storeu_ps",
        "SET1": "_mm512_set1_ps",
        "BCAST": "_mm512_set1_ps",  # from a scalar load (vbroadcastss zmm, m32)
        "ZERO": "_mm512_setzero_ps",
        "FMA": "_mm512_fmadd_ps",
        "FNMA": "_mm512_fnmadd_ps",
        "ADD": "_mm512_add_ps",
        "SUB": "_mm512_sub_ps",
        "MUL": "_mm512_mul_ps",
        "DIV": "_mm512_div_ps",
        "MAX": "_mm512_max_ps",
        "OR": "_mm512_or_ps",
        "PERMUTE": "_mm512_permute_ps",
        "CASTPS_SI": "_mm512_castps_si512",
        "CASTSI_PS": "_mm512_castsi512_ps",
        "SLLI": "_mm512_slli_epi32",
        "DW_BLOCKS": 4,
        "DW_PIX": 3,
        "GROUP_CS": [4, 8, 16],
        "G4_KG": 4,  # 32 registers: 24 accumulators + 4 weights + input
    },
}

_SUBST = re.compile(r"\$\{([^}]*)\}")


def render(template: str, context: dict) -> str:
    """Expands `template` (syntax in the module docstring) with `context`."""
    code: list[str] = []
    indent = 0
    for number, line in enumerate(template.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("$") and not stripped.startswith("${"):
            stmt = stripped[1:].strip()
            if stmt == "end":
                indent -= 1
                if indent < 0:
                    raise SyntaxError(f"line {number}: $end without an open block")
                continue
            if stmt.startswith(("elif ", "else:")):
                code.append("    " * (indent - 1) + stmt)
                continue
            code.append("    " * indent + stmt)
            if stmt.endswith(":"):
                indent += 1
            continue
        code.append("    " * indent + f"_emit({line!r}, {number})")
    if indent != 0:
        raise SyntaxError(f"{indent} block(s) not closed with $end")
    out: list[str] = []
    scope = dict(context)

    def emit(text: str, number: int) -> None:
        try:
            out.append(_SUBST.sub(lambda m: str(eval(m.group(1), scope)), text))  # noqa: S307 - our own template
        except Exception as exc:  # pragma: no cover - template authoring errors
            raise RuntimeError(f"{TEMPLATE.name}:{number}: {exc}") from exc

    scope["_emit"] = emit
    exec("\n".join(code), scope)  # noqa: S102 - our own template
    return "\n".join(out) + "\n"


def outputs() -> dict[Path, str]:
    template = TEMPLATE.read_text()
    result = {}
    for isa, context in ISAS.items():
        text = render(template, context)
        result[HERE / isa / f"ukernels_f32__{isa}.cpp"] = text
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is missing or stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        names = ", ".join(str(p.relative_to(HERE.parent.parent)) for p in stale)
        print(f"stale generated microkernels: {names}; run python cpp/kernels/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
