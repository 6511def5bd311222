"""The ``pyflame-vision`` command."""

from __future__ import annotations

import argparse
import sys

from pyflame_vision import PyflameVisionError, __version__, models


def _parse_shape(text: str) -> list[int]:
    try:
        shape = [int(part) for part in text.replace("x", ",").split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W such as 1,3,224,224, got {text!r}") from None
    if len(shape) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 dimensions N,C,H,W, got {len(shape)} in {text!r}")
    return shape


def _build(name: str, num_classes: int) -> models.Model:
    return models.get_model(name, num_classes=num_classes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pyflame-vision",
        description="torchvision-compatible vision models for the CPU, without PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"pyflame-vision {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="list the available models")
    p_list.set_defaults(command="list")

    p_sum = sub.add_parser("summary", help="per-layer output shapes, parameters and MACs of a model")
    p_sum.add_argument("model", help="model name, e.g. resnet50 (see `pyflame-vision list`)")
    p_sum.add_argument("--input", type=_parse_shape, default=None, metavar="N,C,H,W",
                       help="input shape (default: the model's native resolution, batch 1)")
    p_sum.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (0: no classifier)")

    p_shape = sub.add_parser("shape", help="output shape (and feature shapes) of a model for an input shape")
    p_shape.add_argument("model")
    p_shape.add_argument("--input", type=_parse_shape, default=None, metavar="N,C,H,W")
    p_shape.add_argument("--num-classes", type=int, default=1000)

    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name in models.list_models():
                print(name)
            return 0
        if args.model not in models.list_models():
            parser.error(f"unknown model {args.model!r}; available: {', '.join(models.list_models())}")
        model = _build(args.model, args.num_classes)
        input_shape = args.input or model.default_input_shape
        if args.command == "summary":
            print(model.summary(input_shape))
        else:
            print(f"input:  {input_shape}")
            feats = model.forward_features(input_shape)
            for i, f in enumerate(feats if isinstance(feats, list) else [feats]):
                print(f"feature {i}: {f.shape}")
            print(f"output: {model.get_output_shape(input_shape)}")
        return 0
    except (PyflameVisionError, ValueError, TypeError) as exc:
        print(f"pyflame-vision: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
