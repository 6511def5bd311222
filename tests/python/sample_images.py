"""Real photographs nobody here made (scikit-image's bundled samples) and synthetic edge cases, for the pixel tests.

scikit-image ships its sample images inside the wheel (no download); Pillow writes the PNG/JPEG/WebP variants.
"""

from __future__ import annotations

import io

import numpy as np
import skimage.data
from PIL import Image

# Names of RGB samples in skimage.data and their sizes (H x W): 512x512, 400x600, 300x451, 427x640.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo(name: str) -> Image.Image:
    """A scikit-image sample photograph as an RGB PIL image."""
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def encoded(img: Image.Image, fmt: str, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def reopened(img: Image.Image, fmt: str, **save_kwargs) -> Image.Image:
    """`img` written by Pillow as `fmt` (PNG, JPEG, WEBP) and decoded again."""
    out = Image.open(io.BytesIO(encoded(img, fmt, **save_kwargs)))
    out.load()
    return out


def smooth_noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    """float32 [c, h, w] in [0, 1]: random values, so every weight of a resize shows in the result."""
    return np.random.default_rng(seed).random((c, h, w), dtype=np.float32)


def exif_rotated(img: Image.Image, orientation: int) -> bytes:
    """`img` saved as JPEG with the EXIF orientation tag set (the pixels themselves unrotated)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(img, "JPEG", exif=exif.tobytes(), quality=95)
