"""Inspect a model without running it: shapes through a preprocessing pipeline,
backbone feature maps, parameter shapes, and a per-layer cost table.

    python examples/python/inspect_model.py [MODEL] [H W]
"""

from __future__ import annotations

import sys

import pyflame_vision
import pyflame_vision.models as models
from pyflame_vision.transforms import CenterCrop, Compose, Normalize, Resize


def main(argv: list[str]) -> int:
    name = argv[0] if argv else "resnet50"
    h, w = (int(argv[1]), int(argv[2])) if len(argv) >= 3 else (480, 640)
    model = models.get_model(name)
    crop = model.default_input_shape[-1]
    preprocess = Compose([
        Resize(crop * 8 // 7),
        CenterCrop(crop),
        Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    image = [1, 3, h, w]
    batch = preprocess.get_output_shape(image)
    print(f"{name}: image {image} -> preprocessed {batch} -> logits {model.get_output_shape(batch)}")

    features = model.forward_features(batch)
    for i, feat in enumerate(features if isinstance(features, list) else [features]):
        print(f"  feature {i}: {feat.shape}")

    params = model.named_parameters()
    first, last = next(iter(params.values())), list(params.values())[-1]
    print(f"  {len(params)} parameter tensors, {model.num_parameters():,} values; "
          f"first {first.name} {first.spec.shape}, last {last.name} {last.spec.shape}")

    summary = model.summary(batch)
    print(f"  {summary.total_macs / 1e9:.3f} GMACs in {len(summary.rows)} graph nodes")

    try:
        model.get_output_shape([1, 4, crop, crop])
    except pyflame_vision.ShapeError as exc:  # also a ValueError
        print(f"  a 4-channel input is rejected: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
