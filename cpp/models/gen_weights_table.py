"""Generates cpp/models/weights_table.cpp from the installed torchvision.

The table is a set of facts about torchvision's pretrained weights (urls, hashes,
metrics, categories, presets). It is read once from torchvision (the version in
TORCHVISION_VERSION below) and committed, so the library never needs torch:

    python cpp/models/gen_weights_table.py            # rewrites weights_table.cpp
    python cpp/models/gen_weights_table.py --check    # exit 1 if it is out of date

tests/python/test_pretrained.py runs the check when torchvision is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

TORCHVISION_VERSION = "0.29.1"
OUT = Path(__file__).resolve().with_name("weights_table.cpp")
# create_model()'s order (sorted names), as models::list_models().
MODELS = sorted([
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4",
])
# torch.hub's rule for the hash prefix in a checkpoint's file name.
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
PRESET_DEFAULTS = {"resize_size": 256, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                   "interpolation": "bilinear", "antialias": True}


def c_str(text: str) -> str:
    if not text.isascii():
        raise ValueError(f"non-ASCII text in the table: {text!r}")
    return json.dumps(text)  # a valid C++ literal for ASCII: \", \\, \n, \t, \u00XX for controls


def c_float(x: float) -> str:
    return repr(float(x))


def entries(torchvision) -> list[dict]:
    from torchvision.models import get_model_weights
    from torchvision.models.resnet import ResNet18_Weights  # noqa: F401 - the module defines the enums

    rows = []
    for model in MODELS:
        enum = get_model_weights(model)
        for member in enum:  # aliases (DEFAULT) are not iterated
            meta = dict(member.meta)
            preset = dict(PRESET_DEFAULTS)
            kw = dict(member.transforms.keywords)
            preset["crop_size"] = kw.pop("crop_size")
            for key in ("resize_size", "mean", "std", "antialias"):
                if key in kw:
                    preset[key] = kw.pop(key)
            if "interpolation" in kw:
                preset["interpolation"] = kw.pop("interpolation").value
            if kw or member.transforms.args or member.transforms.func.__name__ != "ImageClassification":
                raise ValueError(f"{member}: unexpected transforms {member.transforms}")
            file_name = member.url.rsplit("/", 1)[1]
            match = HASH_REGEX.search(file_name)
            if not match:
                raise ValueError(f"{member}: no hash prefix in {file_name}")
            metrics = meta.pop("_metrics")
            if list(metrics) != ["ImageNet-1K"] or set(metrics["ImageNet-1K"]) != {"acc@1", "acc@5"}:
                raise ValueError(f"{member}: unexpected metrics {metrics}")
            row = {
                "model": model, "enum_name": enum.__name__, "member": member.name,
                "is_default": enum.DEFAULT is member, "url": member.url, "file_name": file_name,
                "sha256_prefix": match.group(1), "num_params": meta.pop("num_params"),
                "min_size": tuple(meta.pop("min_size")), "recipe": meta.pop("recipe"),
                "acc1": metrics["ImageNet-1K"]["acc@1"], "acc5": metrics["ImageNet-1K"]["acc@5"],
                "gmacs": meta.pop("_ops"), "file_size_mb": meta.pop("_file_size"), "docs": meta.pop("_docs"),
                "categories": meta.pop("categories"), "preset": preset,
            }
            if meta:
                raise ValueError(f"{member}: meta keys the table does not carry: {sorted(meta)}")
            rows.append(row)
    return rows


def legacy_members(torchvision) -> set[tuple[str, str]]:
    """(model, member) that torchvision's legacy pretrained=True loads (read from its decorators)."""
    import inspect

    import torchvision.models as tvm

    out = set()
    for model in MODELS:
        fn = getattr(tvm, model)
        # handle_legacy_interface keeps {"weights": ("pretrained", default)} in the closure of one of
        # the wrappers around the builder.
        found = None
        while fn is not None and found is None:
            found = inspect.getclosurevars(fn).nonlocals.get("weights")
            fn = getattr(fn, "__wrapped__", None)
        if not found:
            raise ValueError(f"{model}: torchvision's legacy pretrained default not found")
        for _param, default in found.values():
            out.add((model, default.name))
    return out


def render(rows: list[dict], legacy: set[tuple[str, str]]) -> str:
    categories = rows[0]["categories"]
    for r in rows:
        if r["categories"] != categories:
            raise ValueError(f"{r['enum_name']}.{r['member']}: categories differ from the others")
    if len(categories) != 1000:
        raise ValueError(f"expected 1000 categories, got {len(categories)}")
    out = [
        "// Generated by cpp/models/gen_weights_table.py from torchvision "
        f"{TORCHVISION_VERSION}; do not edit by hand.",
        "// Facts about torchvision's pretrained weights; see include/pyflame_vision/models/weights.h.",
        '#include "weights_table.h"',
        "",
        "namespace pyflame_vision {",
        "namespace models {",
        "namespace detail {",
        "",
        "const char* const kImagenetCategories[kNumImagenetCategories] = {",
    ]
    out += [f"    {c_str(c)}," for c in categories]
    out += ["};", "", "const WeightsInfo kWeightsTable[kNumWeights] = {"]
    for r in rows:
        p = r["preset"]
        out += [
            "    {",
            f"        {c_str(r['model'])}, {c_str(r['enum_name'])}, {c_str(r['member'])},",
            f"        /*is_default=*/{'true' if r['is_default'] else 'false'}, "
            f"/*is_legacy_pretrained=*/{'true' if (r['model'], r['member']) in legacy else 'false'},",
            f"        {c_str(r['url'])},",
            f"        {c_str(r['file_name'])}, {c_str(r['sha256_prefix'])},",
            f"        /*num_params=*/{r['num_params']}, /*min_size=*/{{{r['min_size'][0]}, {r['min_size'][1]}}},",
            f"        {c_str(r['recipe'])},",
            f"        /*acc1=*/{c_float(r['acc1'])}, /*acc5=*/{c_float(r['acc5'])}, "
            f"/*gmacs=*/{c_float(r['gmacs'])}, /*file_size_mb=*/{c_float(r['file_size_mb'])},",
            f"        {c_str(r['docs'])},",
            f"        /*preset=*/{{{p['crop_size']}, {p['resize_size']}, {c_str(p['interpolation'])}, "
            f"{{{', '.join(c_float(v) for v in p['mean'])}}}, {{{', '.join(c_float(v) for v in p['std'])}}}, "
            f"{'true' if p['antialias'] else 'false'}}},",
            "    },",
        ]
    out += ["};", "", "}  // namespace detail", "}  // namespace models", "}  // namespace pyflame_vision", ""]
    return "\n".join(out)


def header_counts(rows: list[dict]) -> tuple[int, int]:
    return len(rows), len(rows[0]["categories"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if weights_table.cpp is out of date")
    args = parser.parse_args(argv)
    import torchvision

    if torchvision.__version__.split("+")[0] != TORCHVISION_VERSION:
        print(f"torchvision {TORCHVISION_VERSION} expected, found {torchvision.__version__}", file=sys.stderr)
        return 2
    rows = entries(torchvision)
    text = render(rows, legacy_members(torchvision))
    n, ncat = header_counts(rows)
    header = OUT.with_name("weights_table.h").read_text()
    if f"kNumWeights = {n};" not in header or f"kNumImagenetCategories = {ncat};" not in header:
        print(f"weights_table.h must declare kNumWeights = {n} and kNumImagenetCategories = {ncat}",
              file=sys.stderr)
        return 1
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}: {n} weights, {ncat} categories")
    return 0


if __name__ == "__main__":
    sys.exit(main())
