"""Pixel transforms against torchvision 0.29.1 (the oracle).

PIL inputs must give torchvision's pixels exactly (both call Pillow). Arrays must match torchvision's tensor path:
within 1e-5 of the value range for float32, at most one level for uint8, for every interpolation mode, up- and
down-scaling, odd sizes and 1-pixel images, at every instruction-set tier this CPU has.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import pyflame_vision
from conftest import require_torchvision
from pyflame_vision import transforms as P
from pyflame_vision.transforms import functional as F
from sample_images import PHOTOS, photo, reopened, smooth_noise

pytestmark = pytest.mark.parity

MODES = ["nearest", "nearest-exact", "bilinear", "bicubic"]
PIL_MODES = MODES + ["box", "hamming", "lanczos"]


def tv():
    torch, torchvision = require_torchvision()
    import torchvision.transforms as T
    import torchvision.transforms.functional as TF
    import torchvision.transforms.v2.functional as TF2

    return torch, T, TF, TF2


def tv_mode(name: str):
    _, T, _, _ = tv()
    return T.InterpolationMode(name)


def float_tol(reference: np.ndarray) -> float:
    """1e-5 of the value range (at least of [0, 1])."""
    return 1e-5 * max(1.0, float(np.max(reference)) - float(np.min(reference)))


def assert_float_close(ours: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    assert ours.shape == ref.shape, what
    assert ours.dtype == ref.dtype, what
    err = float(np.max(np.abs(ours.astype(np.float64) - ref))) if ours.size else 0.0
    assert err <= float_tol(ref), f"{what}: max abs error {err:.3g} > {float_tol(ref):.3g}"


def assert_u8_close(ours: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    assert ours.shape == ref.shape, what
    assert ours.dtype == np.uint8, what
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max(initial=0) <= 1, f"{what}: {int(diff.max())} levels off"


# ---------------------------------------------------------------------------------------------- Resize: PIL


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("mode", PIL_MODES)
def test_resize_pil_equals_torchvision(name, mode):
    torch, T, TF, _ = tv()
    img = photo(name)
    for size in (224, [97], (101, 333), (1000, 37)):
        ours = P.Resize(size, interpolation=P.InterpolationMode(mode))(img)
        ref = T.Resize(size, interpolation=tv_mode(mode))(img)
        assert isinstance(ours, Image.Image)
        assert ours.size == ref.size and ours.mode == ref.mode
        assert np.array_equal(np.asarray(ours), np.asarray(ref)), (name, mode, size)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_resize_pil_encoded_variants(fmt):
    _, T, _, _ = tv()
    img = reopened(photo("coffee"), fmt)
    for mode in ("bilinear", "bicubic"):
        ours = P.Resize(160, interpolation=mode, max_size=200)(img)
        ref = T.Resize(160, interpolation=tv_mode(mode), max_size=200)(img)
        assert ours.size == ref.size == (200, 133)
        assert np.array_equal(np.asarray(ours), np.asarray(ref))


def test_resize_pil_modes_and_edge_images():
    _, T, _, _ = tv()
    cases = [
        Image.fromarray(np.full((1, 1, 3), 200, np.uint8)),
        Image.fromarray(np.arange(17, dtype=np.uint8).reshape(1, 17)),
        photo("chelsea").convert("L"),
        photo("chelsea").convert("RGBA"),
        photo("chelsea").convert("P"),
        photo("chelsea").convert("CMYK"),
        Image.fromarray((np.arange(30 * 40, dtype=np.uint16) * 50).reshape(30, 40)),  # I;16
        Image.fromarray(np.linspace(0, 1, 30 * 40, dtype=np.float32).reshape(30, 40)),  # F
    ]
    for img in cases:
        for size in ((5, 7), 3, (1, 1)):
            ours = P.Resize(size, interpolation="nearest" if img.mode == "P" else "bilinear")(img)
            ref = T.Resize(size, interpolation=tv_mode("nearest" if img.mode == "P" else "bilinear"))(img)
            assert ours.mode == ref.mode and ours.size == ref.size, (img.mode, size)
            assert np.array_equal(np.asarray(ours), np.asarray(ref)), (img.mode, size)


def test_resize_pil_same_size_is_identity_and_antialias_false_warns():
    img = photo("astronaut")
    assert P.Resize(512)(img) is img
    with pytest.warns(UserWarning, match="Anti-alias option is always applied for PIL Image input"):
        out = P.Resize(100, antialias=False)(img)
    assert out.size == (100, 100)


# ---------------------------------------------------------------------------------------------- Resize: arrays


SIZE_CASES = [
    # (in_h, in_w, out_h, out_w): down, up, odd, mixed, 1-pixel images, one dimension unchanged
    (64, 48, 20, 31),
    (20, 31, 64, 97),
    (37, 53, 19, 100),
    (300, 451, 256, 385),
    (1, 1, 5, 7),
    (5, 7, 1, 1),
    (1, 9, 4, 3),
    (9, 1, 3, 4),
    (33, 40, 33, 17),
    (40, 33, 13, 33),
]


def tv_tensor_resize(x: np.ndarray, out_hw, mode: str, antialias: bool) -> np.ndarray:
    torch, _, TF, _ = tv()
    t = torch.from_numpy(np.ascontiguousarray(x))
    return TF.resize(t, list(out_hw), interpolation=tv_mode(mode), antialias=antialias).numpy()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_float32_arrays_match_torch(isa_tier, mode, antialias):
    for i, (h, w, oh, ow) in enumerate(SIZE_CASES):
        x = smooth_noise(h, w, seed=i)
        ref = tv_tensor_resize(x, (oh, ow), mode, antialias)
        ours = F.resize(x, [oh, ow], interpolation=mode, antialias=antialias)
        assert_float_close(ours, ref, f"{isa_tier} {mode} aa={antialias} {h}x{w}->{oh}x{ow}")
        # Batched [N, C, H, W] and extra leading dimensions give the same per-image results.
        batch = np.stack([x, x[::-1].copy()])
        ours_b = F.resize(batch[None], [oh, ow], interpolation=mode, antialias=antialias)
        assert ours_b.shape == (1, 2, 3, oh, ow)
        assert_float_close(ours_b[0, 1], tv_tensor_resize(batch[1], (oh, ow), mode, antialias), "batched")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_uint8_arrays_match_torch(isa_tier, mode, antialias):
    torch, _, _, TF2 = tv()
    for name in PHOTOS[:2]:
        chw = np.asarray(photo(name)).transpose(2, 0, 1)  # an HWC buffer seen as CHW (interleaved strides)
        for size in (224, (91, 450), (700, 601)):
            ours = F.resize(chw, size, interpolation=mode, antialias=antialias)
            oh, ow = ours.shape[-2:]
            ref = tv_tensor_resize(chw, (oh, ow), mode, antialias)
            assert_u8_close(ours, ref, f"{isa_tier} {name} {mode} aa={antialias} {size}")
            # torchvision's v2 resizes uint8 natively (integer weights, a uint8 intermediate): bilinear is within one
            # level of it too. (v2's bicubic clips the intermediate's overshoot and differs from v1 by several levels
            # near edges; transforms.Resize and the presets use v1.)
            if mode == "bilinear" and antialias:
                ref2 = TF2.resize(torch.from_numpy(np.ascontiguousarray(chw)), [oh, ow], interpolation=tv_mode(mode),
                                  antialias=True).numpy()
                assert_u8_close(ours, ref2, f"v2 {name} {mode} {size}")
    for i, (h, w, oh, ow) in enumerate(SIZE_CASES):
        x = (smooth_noise(h, w, seed=i) * 255).astype(np.uint8)
        ours = F.resize(x, [oh, ow], interpolation=mode, antialias=antialias)
        assert_u8_close(ours, tv_tensor_resize(x, (oh, ow), mode, antialias), f"{mode} {h}x{w}->{oh}x{ow}")


def test_resize_nearest_modes_are_exact_including_ties():
    # in = 2 -> out = 41 etc. put source positions exactly on pixel borders; torch's two kernels (channels-last for
    # outputs with H + W <= 128, generic otherwise) round those ties differently, and so must we.
    for mode in ("nearest", "nearest-exact"):
        for in_h in (1, 2, 3, 7, 41, 100):
            for out_h in (2, 41, 47, 55, 83, 130, 299):
                for out_w in (out_h, 3, 150):
                    x = smooth_noise(in_h, in_h + 2, seed=in_h)
                    ref = tv_tensor_resize(x, (out_h, out_w), mode, False)
                    ours = F.resize(x, [out_h, out_w], interpolation=mode)
                    assert np.array_equal(ours, ref), (mode, in_h, out_h, out_w)


def test_resize_array_layouts_and_strides():
    x = smooth_noise(50, 70, c=4, seed=3)
    ref = tv_tensor_resize(x, (23, 31), "bicubic", True)
    variants = {
        "planar": x,
        "interleaved": np.ascontiguousarray(x.transpose(1, 2, 0)).transpose(2, 0, 1),
        "flipped": np.ascontiguousarray(x[:, ::-1])[:, ::-1],  # negative row stride (copied internally)
        "strided columns": np.repeat(x, 2, axis=2)[:, :, ::2],
        "fortran": np.asfortranarray(x),
    }
    for name, v in variants.items():
        assert np.array_equal(v, x)
        assert_float_close(F.resize(v, [23, 31], interpolation="bicubic"), ref, name)
    # One or two channels, many channels (batched to avoid the HWC check).
    for c in (1, 2, 7):
        y = smooth_noise(30, 20, c=c, seed=c)
        assert_float_close(F.resize(y, 11), tv_tensor_resize(y, (16, 11), "bilinear", True), f"C={c}")
    # Empty batch.
    empty = np.zeros((0, 3, 10, 12), np.float32)
    assert F.resize(empty, [5, 6]).shape == (0, 3, 5, 6)


def test_resize_results_do_not_depend_on_threads():
    x = (smooth_noise(301, 433, seed=9) * 255).astype(np.uint8)
    before = pyflame_vision.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            pyflame_vision.set_num_threads(n)
            outs.append((F.resize(x, 97), F.resize(x.astype(np.float32), (500, 40), interpolation="bicubic")))
    finally:
        pyflame_vision.set_num_threads(before)
    for a, b in outs[1:]:
        assert np.array_equal(a, outs[0][0]) and np.array_equal(b, outs[0][1])


def test_resize_size_rules_match_torchvision():
    torch, T, _, _ = tv()
    for shape in [(3, 480, 640), (3, 640, 480), (3, 300, 500), (3, 3, 1000), (3, 100, 1000)]:
        x = np.zeros(shape, np.float32)
        for kwargs in [dict(size=256), dict(size=[7]), dict(size=224, max_size=300), dict(size=(100, 50))]:
            try:
                ref = T.Resize(**kwargs)(torch.from_numpy(x))
            except RuntimeError as exc:  # a zero-sized output (3 x 1000 capped at 300: 0 x 300)
                assert "greater than 0" in str(exc)
                with pytest.raises(ValueError, match="output size must be >= 1"):
                    P.Resize(**kwargs)(x)
                continue
            ours = P.Resize(**kwargs)(x)
            assert list(ours.shape) == list(ref.shape), (shape, kwargs)
            assert P.Resize(**kwargs).get_output_shape(list(shape)) == list(ref.shape)


def test_resize_array_errors():
    x = smooth_noise(10, 12)
    with pytest.raises(ValueError, match="looks like an H x W x C image"):
        F.resize(np.zeros((480, 640, 3), np.uint8), 224)
    assert F.resize(np.zeros((1, 480, 640, 3), np.uint8), [4, 5]).shape == (1, 480, 4, 5)  # explicit batch: allowed
    with pytest.raises(ValueError, match=r"expected an array image of shape \[\.\.\., C, H, W\], got a 2-D"):
        F.resize(np.zeros((10, 12), np.float32), 5)
    with pytest.raises(TypeError, match="expected a uint8 or float32 array, got dtype float64"):
        F.resize(x.astype(np.float64), 5)
    with pytest.raises(NotImplementedError, match="only available for PIL images"):
        F.resize(x, 5, interpolation="lanczos")
    with pytest.raises(pyflame_vision.UnsupportedError):
        P.Resize(5, interpolation=P.InterpolationMode.BOX)(x)
    with pytest.raises(TypeError, match="expected a PIL.Image.Image or a numpy.ndarray, got list"):
        P.Resize(5)([[1.0]])
    with pytest.raises(ValueError, match="empty image"):
        F.resize(np.zeros((3, 0, 4), np.float32), 5)
    with pytest.raises(ValueError, match="interpolation: expected one of"):
        P.Resize(5, interpolation="cubic")
    with pytest.raises(TypeError, match="Argument interpolation should be a InterpolationMode"):
        F.resize(x, 5, interpolation=2.0)


def test_resize_accepts_torchvision_and_pillow_interpolation_values():
    _, T, _, _ = tv()
    assert P.Resize(5, interpolation=T.InterpolationMode.BICUBIC).interpolation is P.InterpolationMode.BICUBIC
    assert P.Resize(5, interpolation=Image.BICUBIC).interpolation is P.InterpolationMode.BICUBIC
    assert P.Resize(5, interpolation="nearest-exact").interpolation is P.InterpolationMode.NEAREST_EXACT
    r = P.Resize(256, interpolation=P.InterpolationMode.BICUBIC, max_size=300, antialias=False)
    assert repr(r) == repr(T.Resize(256, interpolation=T.InterpolationMode.BICUBIC, max_size=300, antialias=False))


# ---------------------------------------------------------------------------------------------- CenterCrop / crop


CROP_CASES = [224, (100, 37), (37, 100), 513, (600, 300), (1, 1), [255]]


@pytest.mark.parametrize("name", PHOTOS)
def test_center_crop_pil_and_arrays_equal_torchvision(name):
    torch, T, TF, _ = tv()
    img = photo(name)
    chw = np.asarray(img).transpose(2, 0, 1)
    for size in CROP_CASES:
        ours = P.CenterCrop(size)(img)
        ref = T.CenterCrop(size)(img)
        assert isinstance(ours, Image.Image) and ours.size == ref.size and ours.mode == ref.mode
        assert np.array_equal(np.asarray(ours), np.asarray(ref)), (name, size)
        ours_a = P.CenterCrop(size)(chw)
        ref_a = T.CenterCrop(size)(torch.from_numpy(np.ascontiguousarray(chw))).numpy()
        assert np.array_equal(ours_a, ref_a), (name, size)


def test_center_crop_odd_differences_round_half_to_even():
    torch, _, TF, _ = tv()
    for h in range(20, 32):
        for crop in (3, 4, 5, 40):
            x = np.arange(h * (h + 3), dtype=np.float32).reshape(1, h, h + 3)
            ours = F.center_crop(x, [crop])
            ref = TF.center_crop(torch.from_numpy(x), [crop]).numpy()
            assert np.array_equal(ours, ref), (h, crop)


def test_center_crop_palette_and_modes_pil():
    _, T, _, _ = tv()
    for mode in ("P", "L", "RGBA", "I;16", "F", "1"):
        img = photo("chelsea").convert(mode) if mode not in ("I;16",) else Image.fromarray(
            np.arange(300 * 451, dtype=np.uint16).reshape(300, 451))
        for size in (512, (100, 500)):
            ours, ref = P.CenterCrop(size)(img), T.CenterCrop(size)(img)
            assert ours.mode == ref.mode and ours.size == ref.size
            assert np.array_equal(np.asarray(ours), np.asarray(ref)), (mode, size)
            if mode == "P":
                assert ours.getpalette() == ref.getpalette()


def test_crop_views_and_padding():
    torch, _, TF, _ = tv()
    x = smooth_noise(10, 12, seed=4)
    inside = F.crop(x, 2, 3, 4, 5)
    assert np.shares_memory(inside, x)  # a view, like torch's slicing
    for box in [(2, 3, 4, 5), (-2, -3, 6, 7), (8, 10, 5, 5), (-5, -5, 30, 30), (20, 20, 2, 2)]:
        assert np.array_equal(F.crop(x, *box), TF.crop(torch.from_numpy(x), *box).numpy()), box


# ---------------------------------------------------------------------------------------------- Normalize


def test_normalize_equals_torchvision():
    torch, T, _, _ = tv()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    x32 = smooth_noise(41, 37, seed=5)
    for x in (x32, x32[None], np.stack([x32, x32 * 0.5]), x32.astype(np.float64), x32.transpose(0, 2, 1)):
        ours = P.Normalize(mean, std)(x)
        ref = T.Normalize(mean, std)(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        assert ours.dtype == ref.dtype
        assert np.array_equal(ours, ref), x.shape  # the same float operations, in the same precision
    one = P.Normalize([0.5], [0.25])(x32)
    assert np.array_equal(one, T.Normalize([0.5], [0.25])(torch.from_numpy(x32)).numpy())


def test_normalize_inplace_and_errors():
    x = smooth_noise(5, 6)
    y = x.copy()
    out = P.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], inplace=True)(y)
    assert out is y and np.allclose(y, (x - 0.5) / 0.5)
    z = x.copy()
    P.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])(z)
    assert np.array_equal(z, x)  # out of place by default
    with pytest.raises(TypeError, match="Input tensor should be a float tensor. Got uint8"):
        F.normalize(np.zeros((3, 4, 4), np.uint8), [0.5], [0.5])
    with pytest.raises(ValueError, match=r"Expected tensor to be a tensor image of size \(\.\.\., C, H, W\)"):
        F.normalize(np.zeros((4, 4), np.float32), [0.5], [0.5])
    with pytest.raises(ValueError, match="division by zero"):
        F.normalize(np.zeros((3, 4, 4), np.float64), [0.5], [1e-320])
    with pytest.raises(ValueError, match=r"expected 3 channels .* got 4"):
        F.normalize(np.zeros((4, 4, 4), np.float32), [0.1, 0.2, 0.3], [1, 1, 1])
    with pytest.raises(TypeError, match="expected a float numpy.ndarray"):
        F.normalize(photo("coffee"), [0.5], [0.5])


# ---------------------------------------------------------------------------------------------- conversions


def _mode_images():
    rgb = photo("rocket").crop((0, 0, 64, 48))
    return {
        "RGB": rgb,
        "L": rgb.convert("L"),
        "LA": rgb.convert("LA"),
        "RGBA": rgb.convert("RGBA"),
        "P": rgb.convert("P"),
        "CMYK": rgb.convert("CMYK"),
        "1": rgb.convert("1"),
        "I": rgb.convert("I"),
        "F": rgb.convert("F"),
        "I;16": Image.fromarray((np.arange(48 * 64, dtype=np.uint16) * 21).reshape(48, 64)),
    }


def test_to_tensor_and_pil_to_tensor_equal_torchvision():
    torch, T, _, _ = tv()
    for mode, img in _mode_images().items():
        ours, ref = P.ToTensor()(img), T.ToTensor()(img).numpy()
        assert ours.dtype == ref.dtype and np.array_equal(ours, ref), mode
        ours, ref = P.PILToTensor()(img), T.PILToTensor()(img).numpy()
        assert ours.shape == ref.shape and np.array_equal(ours, ref), mode
    hwc = np.array(photo("coffee"))  # writable: torch warns about read-only arrays
    assert np.array_equal(F.to_tensor(hwc), T.ToTensor()(hwc).numpy())
    gray = np.ascontiguousarray(hwc[:, :, 0])
    assert np.array_equal(F.to_tensor(gray), T.ToTensor()(gray).numpy())
    f = hwc.astype(np.float32)
    assert np.array_equal(F.to_tensor(f), T.ToTensor()(f).numpy())  # not scaled, as torchvision
    with pytest.raises(ValueError, match="pic should be 2/3 dimensional"):
        F.to_tensor(np.zeros((1, 2, 3, 4), np.uint8))
    with pytest.raises(TypeError, match="pic should be PIL Image"):
        F.pil_to_tensor(hwc)


def test_convert_image_dtype_and_to_dtype_equal_torchvision():
    torch, T, TF, TF2 = tv()
    import torchvision.transforms.v2 as T2

    u8 = np.asarray(photo("chelsea")).transpose(2, 0, 1)
    f32 = u8.astype(np.float32) / 255
    cases = [(u8, np.float32, torch.float32), (u8, np.float64, torch.float64), (f32, np.uint8, torch.uint8),
             (u8, np.int16, torch.int16), (u8.astype(np.int32), np.uint8, torch.uint8), (f32, np.float64,
                                                                                          torch.float64)]
    for x, nd, td in cases:
        t = torch.from_numpy(np.ascontiguousarray(x))
        assert np.array_equal(P.ConvertImageDtype(nd)(x), T.ConvertImageDtype(td)(t).numpy()), (x.dtype, nd)
        for scale in (False, True):
            assert np.array_equal(P.ToDtype(nd, scale=scale)(x), T2.ToDtype(td, scale=scale)(t).numpy()), (nd, scale)
    assert P.ConvertImageDtype(torch.float32).dtype == np.float32  # torch dtypes by name, without importing torch
    with pytest.raises(RuntimeError, match="cannot be performed safely"):
        F.convert_image_dtype(f32, np.int32)
    img = photo("coffee")
    assert P.ToDtype(np.float32, scale=True)(img) is img  # v2 leaves PIL images alone


# ---------------------------------------------------------------------------------------------- pipelines


def test_compose_pipeline_equals_torchvision_on_pil_and_arrays():
    torch, T, _, _ = tv()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ours = P.Compose([P.Resize(256), P.CenterCrop(224), P.ToTensor(), P.Normalize(mean, std)])
    ref = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
    for name in PHOTOS:
        img = photo(name)
        assert np.array_equal(ours(img), ref(img).numpy()), name
    assert ours.get_output_shape([1, 3, 480, 640]) == [1, 3, 224, 224]
    tensor_pipeline = P.Compose([P.Resize(200, antialias=True), P.CenterCrop(150), P.ConvertImageDtype(np.float32),
                                 P.Normalize(mean, std)])
    ref_t = T.Compose([T.Resize(200, antialias=True), T.CenterCrop(150), T.ConvertImageDtype(torch.float32),
                       T.Normalize(mean, std)])
    u8 = np.asarray(photo("rocket")).transpose(2, 0, 1)
    out, want = tensor_pipeline(u8), ref_t(torch.from_numpy(np.ascontiguousarray(u8))).numpy()
    assert out.shape == want.shape
    assert np.max(np.abs(out - want)) <= 1.0 / 255 / min(std) + 1e-6  # one uint8 level after the resize


def test_lambda_and_compose_accept_any_callable():
    seen = []
    pipe = P.Compose([P.Lambda(lambda x: seen.append(x.shape) or x * 2), np.flipud])
    x = np.arange(6.0).reshape(1, 2, 3)
    assert np.array_equal(pipe(x), np.flipud(x * 2)) and seen == [(1, 2, 3)]
    assert repr(P.Lambda(abs)) == "Lambda()"
    with pytest.raises(TypeError, match="should be callable"):
        P.Lambda(3)
    with pytest.raises(TypeError, match="has no get_output_shape"):
        P.Compose([np.flipud]).get_output_shape([1, 2, 3])
    with pytest.raises(TypeError, match="output shape of a user function is unknown"):
        P.Compose([P.Lambda(abs)]).get_output_shape([1, 2, 3])


# ---------------------------------------------------------------------------------------------- the preset


def tv_presets():
    _, torchvision = require_torchvision()
    W = torchvision.models
    return {
        "resnet50_v1": W.ResNet50_Weights.IMAGENET1K_V1.transforms(),
        "resnet50_v2": W.ResNet50_Weights.IMAGENET1K_V2.transforms(),
        "efficientnet_b0": W.EfficientNet_B0_Weights.IMAGENET1K_V1.transforms(),
        "efficientnet_b3": W.EfficientNet_B3_Weights.IMAGENET1K_V1.transforms(),
        "efficientnet_b4": W.EfficientNet_B4_Weights.IMAGENET1K_V1.transforms(),
    }


def ours_like(ref) -> P.ImageClassification:
    return P.ImageClassification(crop_size=ref.crop_size[0], resize_size=ref.resize_size[0], mean=ref.mean,
                                 std=ref.std, interpolation=P.InterpolationMode(ref.interpolation.value),
                                 antialias=ref.antialias)


@pytest.mark.parametrize("key", ["resnet50_v1", "resnet50_v2", "efficientnet_b0", "efficientnet_b3",
                                 "efficientnet_b4"])
def test_preset_equals_torchvision(key):
    torch, _, _, _ = tv()
    ref = tv_presets()[key]
    ours = ours_like(ref)
    assert ours.crop_size == ref.crop_size and ours.resize_size == ref.resize_size
    assert ours.mean == ref.mean and ours.std == ref.std and ours.antialias == ref.antialias
    assert ours.interpolation.value == ref.interpolation.value
    assert repr(ours) == repr(ref)
    assert ours.describe() == ref.describe().replace("torch.Tensor", "numpy.ndarray")
    level = 1.0 / 255 / min(ref.std)  # one uint8 level, normalised
    for name in PHOTOS[:3]:
        img = photo(name)
        a = ours(img)
        assert a.dtype == np.float32 and a.shape == (3, ref.crop_size[0], ref.crop_size[0])
        assert np.array_equal(a, ref(img).numpy()), (key, name)  # PIL: exactly torchvision's
        u8 = np.asarray(img).transpose(2, 0, 1)
        tu8 = torch.from_numpy(np.ascontiguousarray(u8))
        assert np.max(np.abs(ours(u8) - ref(tu8).numpy())) <= level + 1e-6, (key, name)
        f = u8.astype(np.float32) / 255
        want = ref(torch.from_numpy(f)).numpy()
        assert np.max(np.abs(ours(f) - want)) <= 1e-5 / min(ref.std), (key, name)
        batch = np.stack([u8, u8[:, ::-1]])
        out = ours(batch)
        assert out.shape == (2, 3, ref.crop_size[0], ref.crop_size[0])
        assert np.array_equal(out[0], ours(u8))
    assert ours.get_output_shape([2, 3, 480, 640]) == [2, 3, ref.crop_size[0], ref.crop_size[0]]


def test_preset_crop_larger_than_resize_pads_like_torchvision():
    torch, _, _, _ = tv()
    from torchvision.transforms._presets import ImageClassification as TVIC

    ours, ref = P.ImageClassification(crop_size=50, resize_size=40), TVIC(crop_size=50, resize_size=40)
    for img in (photo("coffee"), Image.fromarray(np.full((1, 40, 3), 99, np.uint8)), photo("rocket").resize((40, 40))):
        assert np.array_equal(ours(img), ref(img).numpy())
        u8 = np.asarray(img).transpose(2, 0, 1)
        want = ref(torch.from_numpy(np.ascontiguousarray(u8))).numpy()
        assert np.max(np.abs(ours(u8) - want)) <= 1.0 / 255 / 0.224 + 1e-6


def test_preset_rejects_unusable_input():
    preset = P.ImageClassification(crop_size=224)
    with pytest.raises(ValueError, match="looks like an H x W x C image"):
        preset(np.asarray(photo("coffee")))
    with pytest.raises(ValueError, match=r"expected 3 channels .* got 1"):
        preset(photo("coffee").convert("L"))  # torchvision fails too; convert("RGB") first
    with pytest.raises(TypeError, match="expected a uint8 or float32 array"):
        preset(np.zeros((3, 10, 10), np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preset(photo("coffee"))  # no warnings on the ordinary path


def test_every_weights_preset_equals_torchvision():
    """ResNet50_Weights.IMAGENET1K_V2.transforms() and every other member's: torchvision's preset (settings,
    repr) with torchvision's output on a photograph (PIL exactly; the uint8 array within one level)."""
    torch, torchvision = require_torchvision()
    from pyflame_vision import models

    img = photo("chelsea")
    u8 = np.asarray(img).transpose(2, 0, 1)
    tu8 = torch.from_numpy(np.ascontiguousarray(u8))
    checked = 0
    for enum_name in sorted(models._weights.ENUMS):
        enum = getattr(models, enum_name)
        for member_name in enum.__members__:
            if member_name == "DEFAULT":
                continue
            ours = enum[member_name].transforms()
            ref = torchvision.models.get_weight(f"{enum_name}.{member_name}").transforms()
            assert isinstance(ours, P.ImageClassification)
            assert (ours.crop_size, ours.resize_size, ours.mean, ours.std, ours.antialias) == (
                ref.crop_size, ref.resize_size, ref.mean, ref.std, ref.antialias), (enum_name, member_name)
            assert ours.interpolation.value == ref.interpolation.value and repr(ours) == repr(ref)
            assert np.array_equal(ours(img), ref(img).numpy()), (enum_name, member_name)
            level = 1.0 / 255 / min(ref.std)
            assert np.max(np.abs(ours(u8) - ref(tu8).numpy())) <= level + 1e-6, (enum_name, member_name)
            checked += 1
    assert checked >= 20  # every member of the 14 models' enums
    assert models.ResNet50_Weights.IMAGENET1K_V2.transforms() == ours_like(tv_presets()["resnet50_v2"])
