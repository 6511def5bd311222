"""Peak resident memory of one engine running one model, in a process of its own.

The parent (``python -m benchmarks``) starts ``python -m benchmarks.memory`` once per
engine and model, so no engine's memory is counted against another's and each
process imports only what its engine needs (pyflame_vision's workers never import
torch). Reported: ``ru_maxrss`` after the imports (the interpreter and libraries)
and after loading the model and running it twice (the peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import numpy as np


def _maxrss_mib() -> float:
    """This process's peak resident set size in MiB.

    VmHWM from /proc/self/status where available: unlike getrusage's ru_maxrss,
    which Linux carries over from the parent through fork and exec, it starts
    afresh with the new program.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _worker(args: argparse.Namespace) -> dict:
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.size, args.size), dtype=np.float32)
    if args.engine == "ours":
        import pyflame_vision

        pyflame_vision.set_num_threads(args.threads)
        base = _maxrss_mib()
        model = pyflame_vision.models.get_model(args.model)
        pyflame_vision.load_weights(model, args.weights)
        run = model
    elif args.engine in ("torch", "torch_cl", "jit"):
        import torch
        import torchvision
        from safetensors.torch import load_file

        torch.set_num_threads(args.threads)
        base = _maxrss_mib()
        tv = getattr(torchvision.models, args.model)(weights=None).eval()
        tv.load_state_dict(load_file(args.weights))
        if args.engine == "torch_cl":
            tv = tv.to(memory_format=torch.channels_last)
        elif args.engine == "jit":
            tv = torch.jit.freeze(torch.jit.script(tv))
        cl = args.engine == "torch_cl"

        def run(a):
            with torch.inference_mode():
                xt = torch.from_numpy(a)
                if cl:
                    xt = xt.contiguous(memory_format=torch.channels_last)
                return tv(xt).numpy()
    elif args.engine == "ort":
        from .engines import ort_session

        base = _maxrss_mib()
        session = ort_session(args.onnx, args.threads)
        name = session.get_inputs()[0].name

        def run(a):
            return session.run(None, {name: a})[0]
    elif args.engine == "ov":
        from .engines import openvino_compile

        base = _maxrss_mib()
        request = openvino_compile(args.onnx, args.threads, args.batch).create_infer_request()

        def run(a):
            request.infer({0: a}, share_inputs=True)
            return request.get_output_tensor(0).data.copy()
    else:
        raise SystemExit(f"unknown engine {args.engine!r}")
    for _ in range(2):
        y = run(x)
    if not np.isfinite(y).all():
        raise SystemExit("non-finite output")
    peak = _maxrss_mib()
    return {"engine": args.engine, "model": args.model, "batch": args.batch, "threads": args.threads,
            "import_rss_mib": round(base, 1), "peak_rss_mib": round(peak, 1), "model_rss_mib": round(peak - base, 1)}


def measure(engine: str, model: str, size: int, batch: int, threads: int, weights: str, onnx: str | None,
            timeout: float = 900.0) -> dict:
    """Runs the worker; returns its result, or {"error": ...} if it failed."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "benchmarks.memory", "--engine", engine, "--model", model, "--size", str(size),
           "--batch", str(batch), "--threads", str(threads), "--weights", weights]
    if onnx:
        cmd += ["--onnx", onnx]
    try:
        p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"engine": engine, "model": model, "error": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return {"engine": engine, "model": model, "error": f"exit code {p.returncode}: {tail[0]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", required=True, help=".safetensors file with the model's state dict")
    ap.add_argument("--onnx", default=None)
    print(json.dumps(_worker(ap.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
