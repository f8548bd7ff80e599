"""Which backend runs a model: asked for by name, or picked by `auto` with the reason stated."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from vsr.backends import Backend
from vsr.backends.torch_backend import Precision, cuda_available
from vsr.errors import BackendUnavailableError
from vsr.models.artefacts import ShippedModel

BackendName = Literal["auto", "onnxruntime", "torch"]
BACKENDS = ("auto", "onnxruntime", "torch")


@dataclass(frozen=True)
class Choice:
    """A backend and why it was chosen."""

    name: Literal["onnxruntime", "torch"]
    device: str
    reason: str


def choose(requested: str) -> Choice:
    """Resolve `auto` to torch on CUDA when a device is there, else ONNX Runtime on the CPU."""
    if requested not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    if requested == "onnxruntime":
        return Choice("onnxruntime", "cpu", "asked for")
    if requested == "torch":
        return Choice("torch", "cuda" if cuda_available() else "cpu", "asked for")
    if importlib.util.find_spec("torch") is None:
        return Choice("onnxruntime", "cpu", "auto: torch is not installed, so no CUDA path")
    if not cuda_available():
        return Choice("onnxruntime", "cpu", "auto: no CUDA device")
    return Choice("torch", "cuda", "auto: CUDA device found (the TensorRT backend is not built yet)")


def open_backend(
    choice: Choice, model: ShippedModel, *, threads: int = 0, precision: Precision = "fp32"
) -> Backend:
    """Load a shipped model on the chosen backend."""
    if choice.name == "onnxruntime":
        from vsr.backends.ort_backend import OrtBackend

        return OrtBackend(model.onnx, threads=threads)
    from vsr.backends.torch_backend import TorchBackend

    return TorchBackend(model.spec, model.weights, device=choice.device, precision=precision, threads=threads)
