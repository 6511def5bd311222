"""Where the wheel's C++ SDK lives (headers, static library, CMake package)."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent


class SdkNotFoundError(FileNotFoundError):
    """This installation of pyflame_vision carries no C++ SDK (e.g. an editable install)."""


def _require(path: Path, marker: str) -> str:
    if not (path / marker).is_file():
        raise SdkNotFoundError(
            f"this pyflame_vision installation ({_ROOT}) has no C++ SDK: {path / marker} does not exist. "
            "Wheels and `pip install .` ship it; editable installs (`pip install -e`) do not. "
            "Install from a wheel, or build and install the C++ library with CMake: "
            "cmake -S . -B build && cmake --build build && cmake --install build --prefix PREFIX"
        )
    return str(path)


def get_cmake_dir() -> str:
    """The directory holding ``pyflame_visionConfig.cmake``: pass it as ``-Dpyflame_vision_DIR=...``.

    Raises SdkNotFoundError (a FileNotFoundError) if this installation has no C++ SDK.
    """
    return _require(_ROOT / "lib" / "cmake" / "pyflame_vision", "pyflame_visionConfig.cmake")


def get_include() -> str:
    """The directory holding ``pyflame_vision/pyflame_vision.h`` (the C++ headers).

    Raises SdkNotFoundError (a FileNotFoundError) if this installation has no C++ SDK.
    """
    return _require(_ROOT / "include", "pyflame_vision/pyflame_vision.h")
