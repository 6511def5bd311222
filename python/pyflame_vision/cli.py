"""The ``pyflame-vision`` command (also ``python -m pyflame_vision``).

``--cmake-dir`` / ``--include-dir`` print where the wheel's C++ SDK is, for
``cmake -Dpyflame_vision_DIR="$(python -m pyflame_vision --cmake-dir)"``.
``predict`` and ``embed`` (images in, labels or feature vectors out) live in
``_cli_images.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import pyflame_vision
from pyflame_vision import PyflameVisionError, __version__, _cli_images, _core, get_cmake_dir, get_include, models


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


class _PrintPath(argparse.Action):
    """--cmake-dir / --include-dir: print a C++ SDK directory and exit (as --version does)."""

    def __init__(self, option_strings, dest, getter, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.getter = getter

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            path = self.getter()
        except FileNotFoundError as exc:
            parser.exit(1, f"{parser.prog}: error: {exc}\n")
        print(path)
        parser.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pyflame-vision",
        description="torchvision-compatible vision models for the CPU, without PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"pyflame-vision {__version__}")
    parser.add_argument("--cmake-dir", action=_PrintPath, getter=get_cmake_dir,
                        help="print the directory of the C++ CMake package (for -Dpyflame_vision_DIR=...) and exit")
    parser.add_argument("--include-dir", action=_PrintPath, getter=get_include,
                        help="print the directory of the C++ headers and exit")
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

    p_bench = sub.add_parser("bench", help="run a model (random weights) and print its latency and throughput")
    p_bench.add_argument("model")
    p_bench.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p_bench.add_argument("--num-classes", type=int, default=1000)
    p_bench.add_argument("--size", type=int, default=None, help="input height and width (default: native)")
    p_bench.add_argument("--threads", type=int, default=None, help="compute threads (default: all available)")
    p_bench.add_argument("--runs", type=int, default=20, help="timed runs; the median is reported (default 20)")
    p_bench.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p_bench.add_argument("--isa", choices=["scalar", "avx2", "avx512"], default=None,
                         help="cap the instruction-set tier (default: the best this CPU has)")
    p_bench.add_argument("--plan", action="store_true", help="print the execution plan (one line per step)")

    p_conv = sub.add_parser(
        "convert",
        help="convert a weight file (a PyTorch .pth/.pt/.bin/.ckpt, .safetensors or .npz) to .safetensors, "
        "without torch and without running code from the file",
    )
    p_conv.add_argument("input", help="the weight file to read")
    p_conv.add_argument("output", help="the .safetensors file to write (atomically: a temporary file, then a rename)")
    p_conv.add_argument("--model", default=None,
                        help="check the keys and shapes against this model (see `pyflame-vision list`) and write its "
                        "state dict (float32, int64 num_batches_tracked); without it, every tensor is written as read")
    p_conv.add_argument("--num-classes", type=int, default=1000, help="classifier outputs of --model (default 1000)")
    p_conv.add_argument("--key", default=None,
                        help="the top-level entry of a training checkpoint that holds the state dict, e.g. state_dict")
    p_conv.add_argument("--strip-prefix", default=None, metavar="PREFIX",
                        help="remove PREFIX from every key that starts with it, e.g. module. (DataParallel)")

    _cli_images.add_parsers(sub)

    args = parser.parse_args(argv)
    if args.command in ("predict", "embed"):
        return _cli_images.run(args, parser)
    if args.command == "convert":
        if args.model is not None and args.model not in models.list_models():
            parser.error(f"unknown model {args.model!r}; available: {', '.join(models.list_models())}")
        try:
            return _convert(args)
        except (PyflameVisionError, ValueError, TypeError, OSError) as exc:
            print(f"pyflame-vision: error: {exc}", file=sys.stderr)
            return 1
    try:
        if args.command == "list":
            for name in models.list_models():
                print(name)
            return 0
        if args.model not in models.list_models():
            parser.error(f"unknown model {args.model!r}; available: {', '.join(models.list_models())}")
        model = _build(args.model, args.num_classes)
        input_shape = getattr(args, "input", None) or model.default_input_shape
        if args.command == "bench":
            return _bench(model, args)
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


def _convert(args: argparse.Namespace) -> int:
    out = args.output
    if not out.lower().endswith(".safetensors"):
        raise ValueError(f"convert: the output must be a .safetensors file, got {out!r}")
    state = pyflame_vision.read_weights(args.input, key=args.key, strip_prefix=args.strip_prefix)
    metadata = {"format": "np"}
    if args.model is not None:
        model = _build(args.model, args.num_classes)
        model.load_state_dict(state)  # WeightsError listing every missing, unexpected and mis-shaped key
        state = model.state_dict()
        metadata["model"] = model.name
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".pyflame-vision-convert-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would otherwise stick to the output
        _core.save_safetensors(os.fsencode(tmp), dict(state), metadata)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    nbytes = sum(v.nbytes for v in state.values())
    checked = f", keys and shapes match {args.model}" if args.model is not None else ""
    print(f"wrote {out}: {len(state)} tensors, {nbytes} bytes{checked}")
    return 0


def _bench(model: models.Model, args: argparse.Namespace) -> int:
    if args.batch < 1 or args.runs < 1 or args.warmup < 0:
        raise ValueError("--batch and --runs must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        pyflame_vision.set_num_threads(args.threads)
    if args.isa is not None:
        pyflame_vision.set_max_isa(args.isa)
    size = args.size or model.default_input_shape[2]
    shape = [args.batch, 3, size, size]
    model.init_weights(seed=0)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    t0 = time.perf_counter()
    model(x)  # compiles for this shape
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        model(x)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    macs = model.summary(shape).total_macs
    if args.plan:
        print(model.execution_plan(shape), end="")
    print(f"model:      {model.name}  input {shape}  (random weights, init_weights(seed=0))")
    print(f"setup:      isa {pyflame_vision.active_isa()}, {pyflame_vision.get_num_threads()} thread(s), "
          f"first call (compile + run) {compile_s * 1e3:.1f} ms")
    print(f"latency:    median {med * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms over {args.runs} runs")
    print(f"throughput: {args.batch / med:.1f} images/s, {2 * macs / med / 1e9:.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
