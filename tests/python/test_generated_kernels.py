"""The AVX2 and AVX-512 microkernels are generated from one template (cpp/kernels/generate.py); the committed
files must be what the template gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_generated_microkernels_are_up_to_date():
    script = Path(ROOT) / "cpp" / "kernels" / "generate.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_both_instances_come_from_the_same_template_lines():
    kernels = Path(ROOT) / "cpp" / "kernels"
    avx2 = (kernels / "avx2" / "ukernels_f32__avx2.cpp").read_text()
    avx512 = (kernels / "avx512" / "ukernels_f32__avx512.cpp").read_text()
    for name in ("igemm_f32_6x16__avx2", "igemm_f32_6x16g4c4__avx2", "igemm_f32_6x16g2c8__avx2",
                 "dwconv_f32_up8__avx2", "wino_out_f32_2x2_3x3__avx2", "vact_f32__avx2"):
        assert f"void {name}(" in avx2, name
    for name in ("igemm_f32_12x32__avx512", "igemm_f32_12x32g8c4__avx512", "igemm_f32_12x32g4c8__avx512",
                 "igemm_f32_12x32g2c16__avx512", "dwconv_f32_up16__avx512", "wino_out_f32_2x2_3x3__avx512"):
        assert f"void {name}(" in avx512, name
