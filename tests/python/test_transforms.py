"""Shape semantics of the preprocessing transforms (torchvision's)."""

from __future__ import annotations

import pytest

from pyflame_vision.transforms import CenterCrop, Compose, Normalize, Resize


def test_resize_smaller_edge():
    assert Resize(256).get_output_shape([1, 3, 480, 640]) == [1, 3, 256, 341]
    assert Resize(256).get_output_shape([3, 640, 480]) == [3, 341, 256]
    assert Resize([256]).get_output_shape([3, 256, 256]) == [3, 256, 256]
    assert Resize(224, max_size=300).get_output_shape([3, 100, 1000]) == [3, 30, 300]
    assert Resize((100, 50)).get_output_shape([2, 3, 7, 9]) == [2, 3, 100, 50]


def test_resize_validation():
    with pytest.raises(TypeError, match="Got <class 'float'>"):
        Resize(2.5)
    with pytest.raises(ValueError, match="size values must be positive"):
        Resize(0)
    with pytest.raises(ValueError, match="must be strictly greater"):
        Resize(256, max_size=256)
    with pytest.raises(ValueError, match="expected a tensor image"):
        Resize(10).get_output_shape([5])
    with pytest.raises(ValueError, match="empty image"):
        Resize(10).get_output_shape([3, 0, 5])


def test_center_crop_pads_when_larger():
    assert CenterCrop(224).get_output_shape([1, 3, 256, 341]) == [1, 3, 224, 224]
    assert CenterCrop(500).get_output_shape([3, 256, 341]) == [3, 500, 500]
    assert CenterCrop([7]).get_output_shape([3, 9, 9]) == [3, 7, 7]
    assert CenterCrop((7, 11)).get_output_shape([3, 9, 9]) == [3, 7, 11]
    assert repr(CenterCrop(224)) == "CenterCrop(size=(224, 224))"


def test_normalize_checks_channels():
    n = Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    assert n.get_output_shape([1, 3, 224, 224]) == [1, 3, 224, 224]
    with pytest.raises(ValueError, match=r"expected 3 channels .* got 4"):
        n.get_output_shape([1, 4, 224, 224])
    with pytest.raises(ValueError, match="tensor image"):
        n.get_output_shape([224, 224])
    assert Normalize([0.5], [0.5]).get_output_shape([1, 7, 2, 2]) == [1, 7, 2, 2]
    with pytest.raises(ValueError, match="division by zero"):
        Normalize([0.5], [0.0])


def test_compose():
    pipeline = Compose([Resize(256), CenterCrop(224), Normalize(mean=[0.485, 0.456, 0.406],
                                                                std=[0.229, 0.224, 0.225])])
    assert pipeline.get_output_shape([1, 3, 480, 640]) == [1, 3, 224, 224]
    resize = "Resize(size=256, interpolation=bilinear, max_size=None, antialias=True)"
    assert repr(pipeline).splitlines()[1] == "    " + resize
    with pytest.raises(TypeError):
        Compose([object()])
    # Pixel operations exist now: a list is not an image, and the error says what an image is.
    with pytest.raises(TypeError, match=r"expected a PIL.Image.Image or a numpy.ndarray, got list"):
        pipeline([1, 2, 3])
