"""Which backend runs a model: asked for by name, or picked by `auto` with the reason stated."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vsr.backends import Backend
from vsr.backends.torch_backend import Precision, cuda_available
from vsr.errors import BackendUnavailableError
from vsr.models.artefacts import ShippedModel

BackendName = Literal["onnxruntime", "torch", "tensorrt"]
BACKENDS = ("auto", "onnxruntime", "torch", "tensorrt")


@dataclass(frozen=True)
class Choice:
    """A backend and why it was chosen."""

    name: BackendName
    device: str
    reason: str


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose(requested: str) -> Choice:
    """Resolve `auto`: TensorRT when it and a CUDA device are there, then torch on CUDA, then ONNX Runtime."""
    if requested not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    if requested == "onnxruntime":
        return Choice("onnxruntime", "cpu", "asked for")
    if requested == "torch":
        return Choice("torch", "cuda" if cuda_available() else "cpu", "asked for")
    if requested == "tensorrt":
        if not cuda_available():  # checked first: no TensorRT object may exist without a CUDA device
            raise BackendUnavailableError("the tensorrt backend needs a working CUDA device; none was found")
        if not _installed("tensorrt"):
            raise BackendUnavailableError("the tensorrt backend needs TensorRT (pip install 'vsr[tensorrt]')")
        return Choice("tensorrt", "cuda", "asked for")
    if not _installed("torch"):
        return Choice("onnxruntime", "cpu", "auto: torch is not installed, so no CUDA path")
    if not cuda_available():
        return Choice("onnxruntime", "cpu", "auto: no CUDA device")
    if _installed("tensorrt"):
        return Choice("tensorrt", "cuda", "auto: CUDA device and TensorRT found")
    return Choice("torch", "cuda", "auto: CUDA device found, TensorRT not installed")


def open_backend(
    choice: Choice,
    model: ShippedModel,
    *,
    threads: int = 0,
    precision: Precision = "fp32",
    compile: bool = False,
    cuda_graphs: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> Backend:
    """Load a shipped model on the chosen backend (TensorRT builds and caches its plan on first use).

    compile and cuda_graphs apply to the torch backend only (torch.compile; CUDA graphs per input shape).
    """
    if (compile or cuda_graphs) and choice.name != "torch":
        raise BackendUnavailableError("--torch-compile and --cuda-graphs need the torch backend")
    if choice.name == "onnxruntime":
        from vsr.backends.ort_backend import OrtBackend

        return OrtBackend(model.onnx, threads=threads, onnx16=model.onnx16)
    if choice.name == "tensorrt":
        from vsr.backends.tensorrt_backend import open_tensorrt

        return open_tensorrt(model, precision, log=log)
    from vsr.backends.torch_backend import TorchBackend

    return TorchBackend(
        model.spec,
        model.weights,
        device=choice.device,
        precision=precision,
        threads=threads,
        channels_last=choice.device == "cuda",  # NHWC is what tensor-core convolutions want
        compile=compile,
        cuda_graphs=cuda_graphs,
    )
