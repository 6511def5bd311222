"""
pyflame_vision C++ core: module tree, layer graph, shape inference, CPU execution engine
"""
from __future__ import annotations
import numpy
import types
import typing
from typing import NamedTuple

__version__: str
factories: types.ModuleType
transforms: types.ModuleType  # Resize, CenterCrop, Normalize, Compose (shapes); resize(src, out_h, out_w, interpolation, antialias, window), crop(src, top, left, h, w), center_crop_offsets(h, w, ch, cw), normalize(src, mean, std), image_classification(src, crop_size, resize_size, mean, std, interpolation, antialias) on [N, C, H, W] uint8/float32 arrays
pretrained: types.ModuleType  # entries(), imagenet_categories(), weights_cache_dir(), find_cached_weights(name)

class PyflameVisionError(Exception): ...
class ShapeError(PyflameVisionError, ValueError): ...
class ShapeOverflowError(ShapeError, OverflowError): ...
class InvalidArgumentError(PyflameVisionError, ValueError): ...
class DTypeError(PyflameVisionError, TypeError): ...
class UnsupportedError(PyflameVisionError, NotImplementedError): ...
class WeightsError(PyflameVisionError, RuntimeError, ValueError): ...
class OutOfMemoryError(PyflameVisionError, MemoryError): ...
class CancelledError(PyflameVisionError, RuntimeError): ...

class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]

__all__: list[str] = ['CancelledError', 'DTypeError', 'EfficientNet', 'IncompatibleKeys', 'InvalidArgumentError', 'Model', 'Module', 'OutOfMemoryError', 'Parameter', 'PyflameVisionError', 'ResNet', 'ResNetBlockType', 'ShapeError', 'ShapeOverflowError', 'Summary', 'SummaryRow', 'TensorSpec', 'UnsupportedError', 'WeightsError', 'active_isa', 'detected_isa', 'factories', 'get_num_threads', 'load_weights', 'read_weights', 'set_max_isa', 'set_num_threads', 'transforms']
class TensorSpec:
    """
    Shape and dtype of a tensor (metadata only; never holds data).
    
    TensorSpec([1, 3, 224, 224]) or TensorSpec(shape, dtype='float32').
    """
    def __eq__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __getstate__(self) -> tuple[list, str]:
        ...
    def __hash__(self) -> int:
        ...
    def __init__(self, shape: typing.Any, dtype: str = 'float32') -> None:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, arg0: tuple) -> None:
        ...
    @property
    def dtype(self) -> str:
        """
        The dtype name, e.g. 'float32'.
        """
    @property
    def nbytes(self) -> int:
        """
        Size in bytes.
        """
    @property
    def ndim(self) -> int:
        ...
    @property
    def numel(self) -> int:
        """
        Number of elements.
        """
    @property
    def shape(self) -> list:
        """
        The dimensions as a list of ints.
        """
class Parameter:
    """
    A named parameter or buffer description (name and TensorSpec).
    """
    def __repr__(self) -> str:
        ...
    @property
    def dtype(self) -> str:
        ...
    @property
    def name(self) -> str:
        """
        Full dotted name, e.g. 'layer1.0.conv1.weight'.
        """
    @property
    def shape(self) -> list:
        ...
    @property
    def spec(self) -> TensorSpec:
        """
        TensorSpec with shape and dtype.
        """
class Module:
    """
    A node of the torch-style module tree.
    """
    def __repr__(self) -> str:
        ...
    def named_buffers(self) -> dict:
        """
        Dict of dotted name -> Parameter for buffers (BatchNorm running statistics).
        """
    def named_children(self) -> list:
        """
        List of (name, Module) for the direct children.
        """
    def named_parameters(self) -> dict:
        """
        Dict of dotted name -> Parameter, in torch's order.
        """
    def num_parameters(self) -> int:
        """
        Total number of parameter elements.
        """
    def parameters(self) -> typing.Any:
        """
        List of Parameter (each with .name and .spec), in torch's order.
        """
    def state_dict_spec(self) -> dict:
        """
        Dict of state-dict key -> TensorSpec; keys, order, shapes and dtypes equal torchvision's state_dict().
        """
    @property
    def type_name(self) -> str:
        """
        The torch class name, e.g. 'Conv2d'.
        """
class SummaryRow:
    """
    One graph node of a model summary.
    """
    def __repr__(self) -> str:
        ...
    @property
    def macs(self) -> int:
        ...
    @property
    def output_shape(self) -> list:
        ...
    @property
    def params(self) -> int:
        ...
    @property
    def path(self) -> str:
        ...
    @property
    def type(self) -> str:
        ...
class Summary:
    """
    Per-layer output shapes, parameters and multiply-accumulates; print() shows a table.
    """
    def __repr__(self) -> str:
        ...
    def __str__(self) -> str:
        ...
    @property
    def activation_bytes(self) -> int:
        ...
    @property
    def input(self) -> TensorSpec:
        ...
    @property
    def model(self) -> str:
        ...
    @property
    def output_shape(self) -> list:
        ...
    @property
    def param_bytes(self) -> int:
        ...
    @property
    def rows(self) -> list[SummaryRow]:
        ...
    @property
    def total_macs(self) -> int:
        ...
    @property
    def total_params(self) -> int:
        ...
class Model(Module):
    """
    Common base of every model.
    """
    def __call__(self, input: typing.Any) -> typing.Any:
        ...
    def __reduce__(self) -> tuple:
        """
        Pickle support: architecture + weights (a reference when known, else .safetensors bytes); see
        pyflame_vision.models.inline_weights.
        """
    def _architecture(self) -> dict:
        """
        The architecture as a dict of plain values (family, name, the constructor's options, num_classes: 0
        once the head is removed): what a pickle records, enough to build the same module tree again.
        """
    def _set_name(self, name: str) -> None:
        ...
    def eval(self) -> typing.Any:
        """
        Inference mode, as torch's model.eval(); pyflame_vision only does inference, so this is a no-op that returns the model.
        """
    def execution_plan(self, input_shape: typing.Any, features: bool = False) -> str:
        """
        How the model runs for this input shape: one line per fused step with its algorithm and microkernel.
        """
    def forward(self, input: typing.Any) -> typing.Any:
        """
        On a float32 [N, C, H, W] NumPy array: runs the model and returns a float32 array.
        On a shape or TensorSpec: the output TensorSpec (shape inference only).
        """
    def predict(self, images: typing.Any, weights: typing.Any = None, **kwargs: typing.Any) -> list[typing.Any]:
        """pyflame_vision.predict(self, images, weights, ...): top-k labels and probabilities per image (added by the Python package)."""
    def embed(self, images: typing.Any, weights: typing.Any = None, **kwargs: typing.Any) -> typing.Any:
        """pyflame_vision.embed(self, images, weights, ...): one pooled feature vector per image (added by the Python package)."""
    def forward_features(self, input: typing.Any) -> typing.Any:
        """
        Intermediate features: ResNet -> [stem, layer1, layer2, layer3, layer4] (stem after the max-pool);
        EfficientNet -> the features before pooling. Arrays in, arrays out; shapes or specs in, specs out.
        """
    def get_output_shape(self, input_shape: typing.Any) -> list:
        """
        Output shape for an [N, C, H, W] input shape (list of ints or TensorSpec). Runs no kernel.
        """
    def init_weights(self, seed: typing.Any = 0) -> None:
        """
        Fill every parameter and buffer with torchvision's initialisation scheme, reproducibly from `seed`.
        """
    def load_state_dict(self, state_dict: typing.Any, strict: bool = True) -> typing.Any:
        """
        torch's load_state_dict: keys, shapes and order as torchvision's. Raises WeightsError (a RuntimeError)
        listing every missing, unexpected and mis-shaped key; on error the previous weights stay. Returns
        IncompatibleKeys(missing_keys, unexpected_keys).
        """
    def num_features(self) -> int:
        """
        Channels of the features that feed the classifier.
        """
    def resident_weight_bytes(self) -> int:
        """
        Bytes of parameters and buffers held as loaded. Compiling (the first forward for a shape) drops the
        convolution and linear weights that their packed copies rebuild bit for bit; state_dict() rebuilds
        them on demand. What stays: BatchNorm tensors, biases, Winograd layers' weights.
        """
    def state_dict(self) -> typing.Any:
        """
        Parameters and buffers as NumPy arrays (copies) under torchvision's keys, in torch's order.
        """
    def summary(self, input_shape: typing.Any = None) -> Summary:
        """
        Per-layer table (output shape, parameters, MACs) with totals, at the model's native resolution by default. Runs nothing.
        """
    def train(self, mode: bool = True) -> typing.Any:
        """
        torch's train(mode): train(False) is eval(); train(True) raises UnsupportedError.
        """
    def weight_correction_bytes(self) -> int:
        """
        Bytes of the 2-bit rounding corrections that rebuilding the dropped weights needs.
        """
    @property
    def default_input_shape(self) -> list:
        ...
    @property
    def has_weights(self) -> bool:
        """
        True once every parameter and buffer has a value.
        """
    @property
    def name(self) -> str:
        """
        Registry name, e.g. 'resnet50'.
        """
    @property
    def weights_version(self) -> int:
        """
        0 until the model first gets weights, then a new value (unique in the process) after every
        init_weights and successful load_state_dict / load_weights: identifies the current weights.
        """
class ResNetBlockType:
    """
    Residual block type of a ResNet.
    
    Members:
    
      BASIC : 2 conv layers (ResNet-18/34)
    
      BOTTLENECK : 3 conv layers (ResNet-50/101/152)
    """
    BASIC: typing.ClassVar[ResNetBlockType]
    BOTTLENECK: typing.ClassVar[ResNetBlockType]
    __members__: typing.ClassVar[dict[str, ResNetBlockType]]
    @typing.overload
    def __eq__(self, other: ResNetBlockType) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: ResNetBlockType) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class ResNet(Model):
    """
    torchvision-compatible ResNet / ResNeXt / Wide ResNet.
    """
    def __init__(self, block_type: ResNetBlockType, layers: typing.Any, num_classes: typing.SupportsInt | typing.SupportsIndex = 1000, zero_init_residual: bool = False, groups: typing.SupportsInt | typing.SupportsIndex = 1, width_per_group: typing.SupportsInt | typing.SupportsIndex = 64, replace_stride_with_dilation: typing.Any = None) -> None:
        ...
    def has_fc(self) -> bool:
        ...
    def remove_fc(self) -> None:
        """
        Remove avgpool and fc; the model then returns layer4's [N, C, H, W] features.
        """
    @property
    def block_type(self) -> ResNetBlockType:
        ...
    @property
    def groups(self) -> int:
        ...
    @property
    def layer_config(self) -> list:
        ...
    @property
    def num_classes(self) -> int:
        ...
    @property
    def replace_stride_with_dilation(self) -> list:
        ...
    @property
    def width_per_group(self) -> int:
        ...
    @property
    def zero_init_residual(self) -> bool:
        ...
class EfficientNet(Model):
    """
    torchvision-compatible EfficientNet (B0-B4 and custom scalings).
    """
    def __init__(self, width_mult: typing.SupportsFloat | typing.SupportsIndex = 1.0, depth_mult: typing.SupportsFloat | typing.SupportsIndex = 1.0, dropout: typing.SupportsFloat | typing.SupportsIndex = 0.2, num_classes: typing.SupportsInt | typing.SupportsIndex = 1000, stochastic_depth_prob: typing.SupportsFloat | typing.SupportsIndex = 0.2, resolution: typing.SupportsInt | typing.SupportsIndex = 224) -> None:
        ...
    def has_classifier(self) -> bool:
        ...
    def remove_classifier(self) -> None:
        """
        Remove avgpool and classifier; the model then returns the [N, C, H, W] features.
        """
    @property
    def depth_mult(self) -> float:
        ...
    @property
    def dropout(self) -> float:
        ...
    @property
    def num_classes(self) -> int:
        ...
    @property
    def resolution(self) -> int:
        ...
    @property
    def stochastic_depth_prob(self) -> float:
        ...
    @property
    def width_mult(self) -> float:
        ...
def active_isa() -> str:
    """
    The tier kernels compile for now (capped by PYFLAME_VISION_MAX_ISA and set_max_isa).
    """
def detected_isa() -> str:
    """
    The best instruction-set tier this CPU supports: 'scalar', 'avx2' or 'avx512'.
    """
def get_num_threads() -> int:
    """
    Threads pyflame_vision uses for compute.
    """
def load_weights(model: Model, path: str, strict: bool = True, *, key: str | None = None, strip_prefix: str | None = None) -> IncompatibleKeys:
    """
    Load a .safetensors file or a PyTorch checkpoint into `model` entirely in C++ (the model takes over the tensors read, no copy). Returns IncompatibleKeys; raises WeightsError (previous weights then unchanged).
    """
def read_weights(path: str, *, key: str | None = None, strip_prefix: str | None = None) -> dict[str, numpy.ndarray]:
    """
    The tensors of a .safetensors file or a PyTorch checkpoint (format from the content; no code from the file runs) as {name: numpy array}, sharing the reader's memory. Raises WeightsError.
    """
def set_max_isa(isa: str) -> None:
    """
    Caps the instruction-set tier ('scalar', 'avx2', 'avx512'); never raises it above detected_isa().
    """
def set_num_threads(n: typing.Any) -> None:
    """
    Sets the number of compute threads (default: PYFLAME_VISION_NUM_THREADS, else the CPUs available).
    """
