"""The engines under test: pyflame_vision and its peers, behind one small interface.

Every engine gets the same weights (a :class:`~benchmarks.models.BenchModel`) and a
float32 NCHW NumPy batch, and returns the logits as a NumPy array, so that the
timed region is what a user with NumPy data pays: conversions included.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import os
import warnings
from typing import Any, Callable

import numpy as np

from .models import BenchModel, cache_dir


class EngineUnavailable(Exception):
    """The engine cannot run this model (reason in the message)."""


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Engine:
    key = ""
    label = ""
    needs: tuple[str, ...] = ()   # Python modules that must be importable

    def missing_reason(self) -> str | None:
        """None if every module in `needs` imports, else why not."""
        absent = []
        for m in self.needs:
            try:
                importlib.import_module(m)
            except ImportError as e:
                absent.append(f"{m} ({type(e).__name__}: {e})" if _have(m) else m)
        if absent:
            return "not installed: " + ", ".join(absent)
        return None

    def load(self, bm: BenchModel) -> None:
        """Builds the engine's model from bm's weights; raises EngineUnavailable."""

    def set_threads(self, threads: int) -> None:
        raise NotImplementedError

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def unload(self) -> None:
        """Frees the model."""

    def describe(self) -> str:
        return self.label


class Ours(Engine):
    key, label = "ours", "pyflame_vision"
    needs = ("pyflame_vision",)

    def load(self, bm: BenchModel) -> None:
        import pyflame_vision

        self._pfv = pyflame_vision
        self.model = pyflame_vision.models.get_model(bm.name)
        self.model.load_state_dict(bm.state)

    def set_threads(self, threads: int) -> None:
        self._pfv.set_num_threads(threads)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.model(x)

    def unload(self) -> None:
        self.model = None

    def describe(self) -> str:
        import pyflame_vision

        return f"pyflame_vision {pyflame_vision.__version__} ({pyflame_vision.active_isa()})"


class _TorchBase(Engine):
    needs = ("torch", "torchvision")

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)

    def describe(self) -> str:
        import torch

        return f"{self.label} (torch {torch.__version__})"


class TorchEager(_TorchBase):
    key, label = "torch", "PyTorch eager (NCHW)"

    def load(self, bm: BenchModel) -> None:
        import torch

        self._torch = torch
        self.model = bm.torch_model

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model(self._torch.from_numpy(x)).numpy()

    def unload(self) -> None:
        self.model = None


class TorchChannelsLast(_TorchBase):
    key, label = "torch_cl", "PyTorch eager (channels_last)"

    def load(self, bm: BenchModel) -> None:
        import torch

        self._torch = torch
        self.model = copy.deepcopy(bm.torch_model).to(memory_format=torch.channels_last)

    def run(self, x: np.ndarray) -> np.ndarray:
        t = self._torch
        with t.inference_mode():
            xt = t.from_numpy(x).contiguous(memory_format=t.channels_last)
            return self.model(xt).numpy()

    def unload(self) -> None:
        self.model = None


class TorchJitFrozen(_TorchBase):
    key, label = "jit", "TorchScript frozen"

    def load(self, bm: BenchModel) -> None:
        import torch

        self._torch = torch
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scripted = torch.jit.script(copy.deepcopy(bm.torch_model).eval())
                self.model = torch.jit.freeze(scripted)
        except Exception as e:  # TorchScript does not support every model
            raise EngineUnavailable(f"torch.jit.script/freeze failed: {type(e).__name__}: {e}".splitlines()[0]) from e

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model(self._torch.from_numpy(x)).numpy()

    def unload(self) -> None:
        self.model = None


def export_onnx(bm: BenchModel) -> tuple[str, str]:
    """Exports bm's torch model with torch.onnx (dynamic batch), cached by weights digest.

    Returns (path, exporter). The dynamo-based exporter (torch's default) is used
    when onnxscript is installed, else the TorchScript-based one.
    """
    import torch

    use_dynamo = _have("onnxscript")
    exporter = "dynamo" if use_dynamo else "torchscript"
    path = os.path.join(cache_dir(), f"{bm.name}-{bm.digest}-torch{torch.__version__}-{exporter}.onnx")
    if os.path.exists(path):
        return path, exporter
    tmp_dir = path + ".tmpdir"
    os.makedirs(tmp_dir, exist_ok=True)
    tmp = os.path.join(tmp_dir, "model.onnx")
    x = torch.from_numpy(bm.input(1))
    model = bm.torch_model.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        if use_dynamo:
            batch = torch.export.Dim("batch", min=1, max=1024)
            onnx_program = torch.onnx.export(model, (x,), dynamo=True, input_names=["input"],
                                             output_names=["logits"], dynamic_shapes=({0: batch},))
            onnx_program.save(tmp, external_data=False)
        else:
            torch.onnx.export(model, (x,), tmp, dynamo=False, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
    os.replace(tmp, path)
    for f in os.listdir(tmp_dir):
        os.remove(os.path.join(tmp_dir, f))
    os.rmdir(tmp_dir)
    return path, exporter


def ort_session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class OnnxRuntime(Engine):
    key, label = "ort", "ONNX Runtime"
    needs = ("torch", "torchvision", "onnx", "onnxruntime")

    def load(self, bm: BenchModel) -> None:
        try:
            self.path, self.exporter = export_onnx(bm)
        except Exception as e:
            raise EngineUnavailable(f"torch.onnx.export failed: {type(e).__name__}: {e}".splitlines()[0]) from e
        self.session = None

    def set_threads(self, threads: int) -> None:
        self.session = None  # free the old session's packed weights first
        self.session = ort_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def unload(self) -> None:
        self.session = None

    def describe(self) -> str:
        import onnxruntime

        return (f"ONNX Runtime {onnxruntime.__version__} (CPUExecutionProvider, ORT_ENABLE_ALL; "
                f"exported by torch.onnx, {getattr(self, 'exporter', 'dynamo')} exporter)")


def openvino_config(threads: int) -> dict[str, str]:
    """OpenVINO CPU settings: float32 arithmetic (no bf16/f16 downcast), latency mode, one stream, `threads` threads."""
    return {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
            "INFERENCE_NUM_THREADS": str(threads)}


def openvino_compile(path: str, threads: int, batch: int) -> Any:
    """The ONNX file `path` compiled by OpenVINO for the CPU with a static input [batch, 3, H, W].

    The exported file has a dynamic batch; OpenVINO's CPU plugin plans memory and picks kernels for static
    shapes, so each batch size gets its own compiled model (as OpenVINO's documentation recommends).
    """
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    dims = list(model.input(0).get_partial_shape())
    if len(dims) != 4 or not all(d.is_static for d in dims[1:]):
        raise EngineUnavailable(f"OpenVINO: expected an input [batch, C, H, W] with static C, H, W, got {dims}")
    model.reshape({model.input(0).get_any_name(): ov.PartialShape([batch] + [d.get_length() for d in dims[1:]])})
    return core.compile_model(model, "CPU", openvino_config(threads))


class OpenVino(Engine):
    key, label = "ov", "OpenVINO"
    needs = ("torch", "torchvision", "onnx", "openvino")

    def load(self, bm: BenchModel) -> None:
        try:
            self.path, self.exporter = export_onnx(bm)
        except Exception as e:
            raise EngineUnavailable(f"torch.onnx.export failed: {type(e).__name__}: {e}".splitlines()[0]) from e
        self.threads = 1
        self.compiled: dict[int, Any] = {}

    def set_threads(self, threads: int) -> None:
        self.compiled = {}  # free the old compiled models first
        self.threads = threads

    def _request(self, batch: int) -> Any:
        req = self.compiled.get(batch)
        if req is None:
            req = openvino_compile(self.path, self.threads, batch).create_infer_request()
            self.compiled[batch] = req
        return req

    def run(self, x: np.ndarray) -> np.ndarray:
        req = self._request(x.shape[0])
        req.infer({0: x}, share_inputs=True)
        return req.get_output_tensor(0).data.copy()

    def unload(self) -> None:
        self.compiled = {}

    def describe(self) -> str:
        import openvino

        cfg = ", ".join(f"{k}={v}" for k, v in openvino_config(1).items() if k != "INFERENCE_NUM_THREADS")
        return (f"OpenVINO {openvino.get_version()} (CPU plugin; {cfg}, INFERENCE_NUM_THREADS = the thread count; "
                f"the ONNX file ORT runs, reshaped to a static batch)")


ENGINES: dict[str, Callable[[], Engine]] = {
    "ours": Ours, "torch": TorchEager, "torch_cl": TorchChannelsLast, "jit": TorchJitFrozen, "ort": OnnxRuntime,
    "ov": OpenVino,
}
PEERS = ["torch", "torch_cl", "jit", "ort", "ov"]
