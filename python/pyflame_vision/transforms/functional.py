"""torchvision.transforms.functional's pixel operations, without torch.

Images are ``PIL.Image.Image`` objects or NumPy arrays:

- **PIL images** go through Pillow exactly as torchvision sends them there
  (``Image.resize``, ``ImageOps.expand``, ``Image.crop``), so the results are
  torchvision's to the bit.
- **Arrays** follow torchvision's *tensor* semantics: ``[..., C, H, W]`` (any
  number of leading dimensions) for :func:`resize`, :func:`center_crop`,
  :func:`crop` and :func:`normalize`. Only :func:`to_tensor` reads ``H x W x C``
  arrays, as torchvision's does. Resizing runs in the library's C++ resampler
  (uint8 and float32; torchvision's numbers for every interpolation mode it
  supports on tensors); crops are NumPy views where no padding is needed.

A 3-D uint8 array whose last dimension looks like channels (1, 3 or 4) and
whose first does not (more than 4) is almost certainly an ``H x W x C`` image
read as ``C x H x W``: the array functions raise ``ValueError`` for it instead
of silently resizing the wrong axes. Pass ``img.transpose(2, 0, 1)`` (or the
PIL image, or :func:`pil_to_tensor`'s output); a genuine many-channel uint8
image can be passed with a leading batch dimension ``[1, C, H, W]``.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from pyflame_vision import _core
from pyflame_vision.transforms._presets import InterpolationMode

__all__ = [
    "center_crop",
    "convert_image_dtype",
    "crop",
    "get_dimensions",
    "normalize",
    "pil_to_tensor",
    "resize",
    "to_dtype",
    "to_tensor",
]

# torchvision.transforms.functional.pil_modes_mapping / _interpolation_modes_from_int.
_PIL_MODES = {
    InterpolationMode.NEAREST: 0,
    InterpolationMode.BILINEAR: 2,
    InterpolationMode.BICUBIC: 3,
    InterpolationMode.NEAREST_EXACT: 0,
    InterpolationMode.BOX: 4,
    InterpolationMode.HAMMING: 5,
    InterpolationMode.LANCZOS: 1,
}
_MODES_FROM_INT = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
                   4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}


def _type_name(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _is_pil(img: Any) -> bool:
    return isinstance(img, Image.Image)


def interpolation_mode(value: Any) -> InterpolationMode:
    """An ``InterpolationMode`` from itself, its value (``"bilinear"``), a Pillow integer constant (as torchvision
    accepts) or torchvision's own ``InterpolationMode`` member."""
    if isinstance(value, InterpolationMode):
        return value
    if isinstance(value, bool):
        raise TypeError(f"interpolation: expected an InterpolationMode, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        try:
            return _MODES_FROM_INT[int(value)]
        except KeyError:
            raise ValueError(f"interpolation: expected a Pillow resampling constant {sorted(_MODES_FROM_INT)}, "
                             f"got {value}") from None
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        try:
            return InterpolationMode(raw)
        except ValueError:
            names = ", ".join(repr(m.value) for m in InterpolationMode)
            raise ValueError(f"interpolation: expected one of {names}, got {raw!r}") from None
    raise TypeError("Argument interpolation should be a InterpolationMode or a corresponding Pillow integer constant, "
                    f"got {_type_name(value)}")


def _image_array(img: Any, who: str, min_ndim: int = 3) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{who}: expected a PIL.Image.Image or a numpy.ndarray, got {_type_name(img)}")
    if img.ndim < min_ndim:
        layout = "[..., C, H, W]" if min_ndim >= 3 else "[..., H, W]"
        raise ValueError(f"{who}: expected an array image of shape {layout}, got a {img.ndim}-D array of shape "
                         f"{list(img.shape)}")
    if img.ndim == 3 and img.dtype == np.uint8 and img.shape[-1] in (1, 3, 4) and img.shape[0] > 4:
        raise ValueError(
            f"{who}: got a uint8 array of shape {list(img.shape)}, which looks like an H x W x C image; arrays are "
            "read as [..., C, H, W] (torchvision's tensor layout). Pass img.transpose(2, 0, 1) (or the PIL image, "
            "or pil_to_tensor(img)); a uint8 image with more than 4 channels goes in as [1, C, H, W]")
    return img


def get_dimensions(img: Any) -> list[int]:
    """``[channels, height, width]`` of a PIL image or an array ``[..., C, H, W]`` (``[H, W]``: one channel)."""
    if _is_pil(img):
        return [len(img.getbands()), img.height, img.width]
    arr = _image_array(img, "get_dimensions", min_ndim=2)
    channels = 1 if arr.ndim == 2 else arr.shape[-3]
    return [int(channels), int(arr.shape[-2]), int(arr.shape[-1])]


def _resized_size(height: int, width: int, size: Any, max_size: Any, interpolation: InterpolationMode,
                  antialias: Any) -> list[int]:
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise ValueError(f"Size must be an int or a 1 or 2 element tuple/list, not a {len(size)} element "
                             "tuple/list")
        if max_size is not None and len(size) != 1:
            raise ValueError("max_size should only be passed if size specifies the length of the smaller edge, i.e. "
                             "size should be an int or a sequence of length 1 in torchscript mode.")
        sizes = [int(v) for v in size]
    elif isinstance(size, numbers.Integral) and not isinstance(size, bool):
        sizes = [int(size)]
    else:
        raise TypeError(f"resize: size should be int or sequence, got {_type_name(size)}")
    impl = _core.transforms.Resize(sizes, -1 if max_size is None else int(max_size), interpolation.value,
                                   bool(antialias), len(sizes) == 1)
    return impl.get_output_shape([height, width])


def resize(img: Any, size: Any, interpolation: Any = InterpolationMode.BILINEAR, max_size: int | None = None,
           antialias: bool | None = True) -> Any:
    """torchvision.transforms.functional.resize.

    ``size``: an int (or 1-element sequence) resizes the smaller edge keeping the aspect ratio (the longer edge
    becomes ``int(size * long / short)``, capped by ``max_size``); ``(h, w)`` resizes exactly. A PIL image is
    resized by Pillow (always antialiased for bilinear/bicubic, as in torchvision: ``antialias=False`` warns);
    an array ``[..., C, H, W]`` of uint8 or float32 by the C++ resampler with ``F.interpolate``'s numbers
    (``antialias`` applies to bilinear and bicubic; ``None`` means ``False``, as for tensors). The same size
    returns the input itself.
    """
    mode = interpolation_mode(interpolation)
    if _is_pil(img):
        h, w = _resized_size(img.height, img.width, size, max_size, mode, antialias)
        if [h, w] == [img.height, img.width]:
            return img
        if antialias is False:
            warnings.warn("Anti-alias option is always applied for PIL Image input. Argument antialias is ignored.",
                          stacklevel=2)
        return img.resize((w, h), _PIL_MODES[mode])
    arr = _image_array(img, "resize")
    h, w = _resized_size(arr.shape[-2], arr.shape[-1], size, max_size, mode, antialias)
    if (h, w) == arr.shape[-2:]:
        return img
    lead = arr.shape[:-3]
    c, ih, iw = arr.shape[-3:]
    out = _core.transforms.resize(arr.reshape((-1, c, ih, iw)), h, w, mode.value, bool(antialias))
    return out.reshape((*lead, c, h, w))


def _crop_size(output_size: Any) -> tuple[int, int]:
    if isinstance(output_size, numbers.Number) and not isinstance(output_size, bool):
        return int(output_size), int(output_size)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 1:
        return int(output_size[0]), int(output_size[0])
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        return int(output_size[0]), int(output_size[1])
    raise ValueError(f"center_crop: output_size should be an int or a sequence of 1 or 2 ints, got {output_size!r}")


def _pad_pil(img: Image.Image, ltrb: list[int]) -> Image.Image:
    # torchvision's _functional_pil.pad, constant mode, fill 0 (per band).
    bands = len(img.getbands())
    fill: Any = 0 if bands == 1 else (0,) * bands
    if img.mode == "F":
        fill = 0.0 if bands == 1 else (0.0,) * bands
    if img.mode == "P":
        palette = img.getpalette()
        out = ImageOps.expand(img, border=tuple(ltrb), fill=fill)
        out.putpalette(palette)
        return out
    return ImageOps.expand(img, border=tuple(ltrb), fill=fill)


def crop(img: Any, top: int, left: int, height: int, width: int) -> Any:
    """torchvision.transforms.functional.crop: the ``height x width`` box at ``(top, left)``; parts outside the image
    are zero. Arrays ``[..., H, W]`` give a view when the box lies inside, else a zero-padded copy."""
    top, left, height, width = (int(v) for v in (top, left, height, width))
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    arr = _image_array(img, "crop", min_ndim=2)
    if height < 0 or width < 0:
        raise ValueError(f"crop: height and width must be >= 0, got {height}x{width}")
    h, w = arr.shape[-2:]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return arr[..., top:top + height, left:left + width]
    out = np.zeros((*arr.shape[:-2], height, width), dtype=arr.dtype)
    y0, y1 = max(top, 0), min(top + height, h)
    x0, x1 = max(left, 0), min(left + width, w)
    if y1 > y0 and x1 > x0:
        out[..., y0 - top:y1 - top, x0 - left:x1 - left] = arr[..., y0:y1, x0:x1]
    return out


def center_crop(img: Any, output_size: Any) -> Any:
    """torchvision.transforms.functional.center_crop: an image smaller than the crop is zero-padded first
    ((crop - size) // 2 before), the crop's corner is ``int(round((size - crop) / 2))`` (half to even)."""
    crop_h, crop_w = _crop_size(output_size)
    if _is_pil(img):
        h, w = img.height, img.width
        if crop_w > w or crop_h > h:
            ltrb = [(crop_w - w) // 2 if crop_w > w else 0, (crop_h - h) // 2 if crop_h > h else 0,
                    (crop_w - w + 1) // 2 if crop_w > w else 0, (crop_h - h + 1) // 2 if crop_h > h else 0]
            img = _pad_pil(img, ltrb)
            h, w = img.height, img.width
            if crop_w == w and crop_h == h:
                return img
        top, left = int(round((h - crop_h) / 2.0)), int(round((w - crop_w) / 2.0))
        return img.crop((left, top, left + crop_w, top + crop_h))
    arr = _image_array(img, "center_crop", min_ndim=2)
    top, left = _core.transforms.center_crop_offsets(arr.shape[-2], arr.shape[-1], crop_h, crop_w)
    return crop(arr, top, left, crop_h, crop_w)


def normalize(tensor: Any, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> np.ndarray:
    """torchvision.transforms.functional.normalize: ``(x - mean[c]) / std[c]`` on a float array ``[..., C, H, W]``,
    in the array's precision (float32 through the C++ core)."""
    if not isinstance(tensor, np.ndarray):
        raise TypeError(f"normalize: expected a float numpy.ndarray [..., C, H, W], got {_type_name(tensor)}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.ndim < 3:
        raise ValueError("Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                         f"{list(tensor.shape)}")
    mean_l = [float(v) for v in (mean if isinstance(mean, Sequence) else [mean])]
    std_l = [float(v) for v in (std if isinstance(std, Sequence) else [std])]
    if tensor.dtype == np.float32:
        c, h, w = tensor.shape[-3:]
        out = _core.transforms.normalize(tensor.reshape((-1, c, h, w)), mean_l, std_l).reshape(tensor.shape)
        if inplace:
            tensor[...] = out
            return tensor
        return out
    # float64 / float16: NumPy in the array's dtype, as torch computes it.
    _core.transforms.Normalize(mean_l, std_l, bool(inplace)).get_output_shape(list(tensor.shape))
    m = np.asarray(mean_l, dtype=tensor.dtype).reshape(-1, 1, 1)
    s = np.asarray(std_l, dtype=tensor.dtype).reshape(-1, 1, 1)
    if (s == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by zero.")
    out = tensor if inplace else tensor.copy()
    np.subtract(out, m, out=out)
    np.divide(out, s, out=out)
    return out


def to_tensor(pic: Any) -> np.ndarray:
    """torchvision.transforms.functional.to_tensor: a PIL image or an ``H x W x C`` (or ``H x W``) array to
    ``C x H x W``; uint8 data (and the 8-bit PIL modes) become float32 in [0, 1] (``x / 255``), other dtypes
    keep their values."""
    if isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
        arr = pic[:, :, None] if pic.ndim == 2 else pic
        out = np.ascontiguousarray(arr.transpose(2, 0, 1))
        return out.astype(np.float32) / np.float32(255) if out.dtype == np.uint8 else out
    if not _is_pil(pic):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic)}")
    mode_to_nptype = {"I": np.int32, "I;16" if sys.byteorder == "little" else "I;16B": np.int16, "F": np.float32}
    arr = np.array(pic, mode_to_nptype.get(pic.mode, np.uint8), copy=True)
    if pic.mode == "1":
        arr = 255 * arr
    arr = arr.reshape(pic.height, pic.width, len(pic.getbands()))
    out = np.ascontiguousarray(arr.transpose(2, 0, 1))
    return out.astype(np.float32) / np.float32(255) if out.dtype == np.uint8 else out


def pil_to_tensor(pic: Any) -> np.ndarray:
    """torchvision.transforms.functional.pil_to_tensor: the PIL image's values as a ``C x H x W`` array of its own
    dtype (uint8 for 8-bit modes; a transposed view of a copy, as torchvision's permuted tensor)."""
    if not _is_pil(pic):
        raise TypeError(f"pic should be PIL Image. Got {type(pic)}")
    arr = np.array(pic, copy=True)
    return arr.reshape(pic.height, pic.width, len(pic.getbands())).transpose(2, 0, 1)


def _numpy_dtype(dtype: Any) -> np.dtype:
    # torch dtypes (torch.float32) are accepted by name without importing torch.
    if type(dtype).__module__ == "torch" and type(dtype).__name__ == "dtype":
        dtype = str(dtype).replace("torch.", "")
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"expected a NumPy dtype (e.g. numpy.float32), got {dtype!r}") from None


def _max_value(dtype: np.dtype) -> int:
    if dtype.kind not in "iu":
        raise TypeError(f"expected an integer dtype, got {dtype}")
    return int(np.iinfo(dtype).max)


def _float_to_int_check(src: np.dtype, dst: np.dtype) -> None:
    if (src == np.float32 and dst in (np.int32, np.int64)) or (src == np.float64 and dst == np.int64):
        raise RuntimeError(f"The cast from {src} to {dst} cannot be performed safely.")


def convert_image_dtype(image: Any, dtype: Any = np.float32) -> np.ndarray:
    """torchvision.transforms.functional.convert_image_dtype on arrays: integer -> float divides by the type's
    maximum (uint8: ``x / 255``), float -> integer multiplies by ``max + 1 - 1e-3`` and truncates, integer ->
    integer rescales by the ratio of the ranges."""
    if not isinstance(image, np.ndarray):
        raise TypeError("Input img should be Tensor Image")
    dst = _numpy_dtype(dtype)
    src = image.dtype
    if src == dst:
        return image
    if src.kind == "f":
        if dst.kind == "f":
            return image.astype(dst)
        _float_to_int_check(src, dst)
        return (image * src.type(_max_value(dst) + 1.0 - 1e-3)).astype(dst)
    input_max = _max_value(src)
    if dst.kind == "f":
        return image.astype(dst) / dst.type(input_max)
    output_max = _max_value(dst)
    if input_max > output_max:
        return (image // ((input_max + 1) // (output_max + 1))).astype(dst)
    return image.astype(dst) * dst.type((output_max + 1) // (input_max + 1))


def _value_bits(dtype: np.dtype) -> int:
    bits = {np.dtype(np.uint8): 8, np.dtype(np.int8): 7, np.dtype(np.int16): 15, np.dtype(np.uint16): 16,
            np.dtype(np.int32): 31, np.dtype(np.int64): 63}
    try:
        return bits[dtype]
    except KeyError:
        raise TypeError(f"Number of value bits is only defined for integer dtypes, but got {dtype}.") from None


def to_dtype(image: Any, dtype: Any = np.float32, scale: bool = False) -> Any:
    """torchvision.transforms.v2.functional.to_dtype on arrays: ``scale=False`` casts; ``scale=True`` rescales the
    value range (integer -> float multiplies by ``1 / max``; float -> integer as :func:`convert_image_dtype`;
    integer -> integer shifts by the difference in value bits). PIL images pass through unchanged, as in v2."""
    if _is_pil(image):
        return image
    if not isinstance(image, np.ndarray):
        raise TypeError(f"to_dtype: expected a numpy.ndarray or a PIL image, got {_type_name(image)}")
    dst = _numpy_dtype(dtype)
    src = image.dtype
    if src == dst:
        return image
    if not scale:
        return image.astype(dst)
    if src.kind == "f":
        if dst.kind == "f":
            return image.astype(dst)
        _float_to_int_check(src, dst)
        return (image * src.type(_max_value(dst) + 1.0 - 1e-3)).astype(dst)
    if dst.kind == "f":
        return image.astype(dst) * dst.type(1.0 / _max_value(src))
    shift = abs(_value_bits(src) - _value_bits(dst))
    if _value_bits(src) > _value_bits(dst):
        return (image >> shift).astype(dst)
    return image.astype(dst) << shift
