#!/usr/bin/env python3
"""Enumerate every distinct Conv2d and Linear layer shape of the supported models.

One case list, two uses: the files written here drive both the kernel tests
(tests/cpp/test_kernels*.cpp) and the kernel benchmark (benchmarks/kernel_bench.cpp).

Regenerate (needs torch 2.14.1 and torchvision 0.29.1; nothing is downloaded,
the models are built on the meta device without weights):

    python3 benchmarks/extract_shapes.py            # writes benchmarks/shapes/*.txt
    python3 benchmarks/extract_shapes.py --check    # exits 1 if the files are stale

File format (one layer shape per line; '#' starts a comment; blank lines ignored):

    conv N H W C_in C_out KH KW SH SW PH PW DH DW G  # models: MODEL:NAME,NAME MODEL:NAME
    linear ROWS IN OUT  # models: MODEL:NAME

- conv: batch N, input H x W x C_in, C_out output channels, kernel KH x KW,
  stride SH SW, zero padding PH PW, dilation DH DW, G groups. The output size
  is torch's: OH = (H + 2*PH - DH*(KH-1) - 1) // SH + 1 (likewise OW).
- linear: ROWS input rows (the batch), IN and OUT features.
- The comment after '# models:' lists, per model, the torchvision module names
  that have this shape; the number of names is the layer's multiplicity in that
  model (used for per-model totals). Model names are torchvision's factory
  names, plus "resnet50_dilated" for resnet50(replace_stride_with_dilation=
  [False, True, True]).

Every line is a distinct shape within its file; a shape shared by several
models appears once, with all of them listed. Lines are in order of first use.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision import models

EXPECTED_TORCH = "2.14.1"
EXPECTED_TORCHVISION = "0.29.1"

# (family file, model name, factory, kwargs, input size). Input sizes are the
# native resolutions of the architectures (EfficientNet paper table 1 for b0..b4).
MODELS = [
    ("resnet", "resnet18", models.resnet18, {}, 224),
    ("resnet", "resnet34", models.resnet34, {}, 224),
    ("resnet", "resnet50", models.resnet50, {}, 224),
    ("resnet", "resnet101", models.resnet101, {}, 224),
    ("resnet", "resnet152", models.resnet152, {}, 224),
    ("resnext", "resnext50_32x4d", models.resnext50_32x4d, {}, 224),
    ("resnext", "resnext101_32x8d", models.resnext101_32x8d, {}, 224),
    ("wide_resnet", "wide_resnet50_2", models.wide_resnet50_2, {}, 224),
    ("wide_resnet", "wide_resnet101_2", models.wide_resnet101_2, {}, 224),
    ("efficientnet", "efficientnet_b0", models.efficientnet_b0, {}, 224),
    ("efficientnet", "efficientnet_b1", models.efficientnet_b1, {}, 240),
    ("efficientnet", "efficientnet_b2", models.efficientnet_b2, {}, 260),
    ("efficientnet", "efficientnet_b3", models.efficientnet_b3, {}, 300),
    ("efficientnet", "efficientnet_b4", models.efficientnet_b4, {}, 380),
    ("dilated", "resnet50_dilated", models.resnet50, {"replace_stride_with_dilation": [False, True, True]}, 224),
]

FAMILY_TITLES = {
    "resnet": "ResNet-18/34/50/101/152 at 224x224",
    "resnext": "ResNeXt-50 32x4d and ResNeXt-101 32x8d at 224x224",
    "wide_resnet": "Wide ResNet-50-2 and Wide ResNet-101-2 at 224x224",
    "efficientnet": "EfficientNet-B0..B4 at 224, 240, 260, 300, 380",
    "dilated": "ResNet-50 with replace_stride_with_dilation=[False, True, True] at 224x224",
}

BATCH = 1


def layer_shapes(factory, kwargs: dict, size: int) -> list[tuple[tuple, str]]:
    """Runs the model on the meta device; returns (shape key, module name) per Conv2d/Linear call."""
    with torch.device("meta"):
        model = factory(weights=None, **kwargs)
    model.eval()
    found: list[tuple[tuple, str]] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):

            def conv_hook(mod, inputs, output, name=name):
                n, c, h, w = inputs[0].shape
                assert c == mod.in_channels, (name, c, mod.in_channels)
                assert isinstance(mod.padding, tuple), (name, mod.padding)  # no 'same'/'valid' strings
                assert mod.padding_mode == "zeros", name
                key = (
                    "conv",
                    n, h, w, c, mod.out_channels,
                    *mod.kernel_size, *mod.stride, *mod.padding, *mod.dilation, mod.groups,
                )  # fmt: skip
                # Cross-check torch's output size against the documented formula.
                oh = (h + 2 * mod.padding[0] - mod.dilation[0] * (mod.kernel_size[0] - 1) - 1) // mod.stride[0] + 1
                ow = (w + 2 * mod.padding[1] - mod.dilation[1] * (mod.kernel_size[1] - 1) - 1) // mod.stride[1] + 1
                assert tuple(output.shape) == (n, mod.out_channels, oh, ow), (name, output.shape)
                found.append((tuple(int(v) for v in key[1:]), name))

            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):

            def linear_hook(mod, inputs, output, name=name):
                x = inputs[0]
                assert x.dim() == 2, (name, x.shape)
                found.append(((int(x.shape[0]), mod.in_features, mod.out_features, "linear"), name))

            hooks.append(module.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(torch.empty(BATCH, 3, size, size, device="meta"))
    for h in hooks:
        h.remove()
    return found


def render(family: str) -> str:
    # shape line -> model -> [module names]
    table: OrderedDict[str, OrderedDict[str, list[str]]] = OrderedDict()
    for fam, model_name, factory, kwargs, size in MODELS:
        if fam != family:
            continue
        for key, name in layer_shapes(factory, kwargs, size):
            if key[-1] == "linear":
                line = "linear " + " ".join(str(v) for v in key[:-1])
            else:
                line = "conv " + " ".join(str(v) for v in key)
            table.setdefault(line, OrderedDict()).setdefault(model_name, []).append(name)
    convs = [line for line in table if line.startswith("conv")]
    linears = [line for line in table if line.startswith("linear")]
    out = [
        f"# {FAMILY_TITLES[family]}, batch {BATCH}: every distinct Conv2d and Linear shape.",
        "# Generated by benchmarks/extract_shapes.py "
        f"(torch {EXPECTED_TORCH}, torchvision {EXPECTED_TORCHVISION}); do not edit by hand.",
        "# conv N H W C_in C_out KH KW SH SW PH PW DH DW G  # models: MODEL:NAME,...",
        "# linear ROWS IN OUT  # models: MODEL:NAME,...",
        f"# {len(convs)} conv shapes, {len(linears)} linear shapes.",
    ]
    width = max(len(line) for line in table)
    for line in convs + linears:
        users = " ".join(f"{m}:{','.join(names)}" for m, names in table[line].items())
        out.append(f"{line.ljust(width)}  # models: {users}")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "shapes")
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = parser.parse_args()
    if not torch.__version__.startswith(EXPECTED_TORCH) or not torchvision.__version__.startswith(EXPECTED_TORCHVISION):
        print(
            f"warning: expected torch {EXPECTED_TORCH} / torchvision {EXPECTED_TORCHVISION}, "
            f"got {torch.__version__} / {torchvision.__version__}",
            file=sys.stderr,
        )
    families = list(OrderedDict.fromkeys(fam for fam, *_ in MODELS))
    stale = []
    args.out.mkdir(parents=True, exist_ok=True)
    for family in families:
        text = render(family)
        path = args.out / f"{family}.txt"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path} ({text.count(chr(10)) - 5} shapes)")
    if stale:
        print("stale: " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
