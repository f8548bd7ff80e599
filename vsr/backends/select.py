"""Which backend runs a model: asked for by name or options object, or picked by `auto` with the reason."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, replace

from vsr.backends import Backend
from vsr.backends.options import (
    BACKENDS,
    BackendOptions,
    OpenVinoOptions,
    OrtOptions,
    TensorRTOptions,
    TorchOptions,
)
from vsr.errors import BackendUnavailableError, UsageError
from vsr.models.artefacts import ShippedModel


def cuda_available() -> bool:
    """Whether torch is installed and sees a working CUDA device."""
    if not installed("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def installed(module: str) -> bool:
    """Whether `module` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Choice:
    """A backend's options and why they were chosen."""

    options: BackendOptions
    reason: str

    @property
    def device(self) -> str:
        """ "cuda" or "cpu": where the model runs."""
        if isinstance(self.options, TorchOptions):
            return self.options.device
        return "cuda" if isinstance(self.options, TensorRTOptions) else "cpu"


def choose(
    backend: str | BackendOptions = "auto",
    *,
    precision: str | None = None,
    threads: int = 0,
    compile: bool = False,
    cuda_graphs: bool = False,
) -> Choice:
    """Resolve a backend request into options. `auto`: TensorRT when it and a CUDA device are there, then
    torch on CUDA; on the CPU, OpenVINO where it is installed (1.9-2.9x ONNX Runtime in fp32, more in
    bf16: bench/openvino_cpu.py), ONNX Runtime otherwise, torch where only it can honour the request
    (--torch-compile). Precision None or "auto" is the backend's own default. Options a backend cannot
    honour raise UsageError; a missing runtime BackendUnavailableError."""
    if isinstance(backend, OrtOptions | OpenVinoOptions | TorchOptions | TensorRTOptions):
        if precision is not None or threads or compile or cuda_graphs:
            raise UsageError("with a backend options object, set precision, threads and flags inside it")
        return Choice(backend, "asked for")
    if backend not in ("auto", *BACKENDS):
        raise UsageError(f"unknown backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    torch_only = compile or cuda_graphs
    precision = None if precision == "auto" else precision
    name, reason = _auto(precision, torch_only) if backend == "auto" else (backend, "asked for")
    if name in ("onnxruntime", "openvino") and torch_only:
        raise UsageError("--torch-compile and --cuda-graphs need the torch backend")
    if name == "onnxruntime":
        return Choice(OrtOptions(threads=threads, precision=precision or "fp32"), reason)  # type: ignore[arg-type]
    if name == "openvino":
        if not installed("openvino"):
            raise BackendUnavailableError("the openvino backend needs openvino (pip install openvino)")
        return Choice(OpenVinoOptions(precision=precision or "auto", threads=threads), reason)  # type: ignore[arg-type]
    if not installed("torch"):
        raise BackendUnavailableError(f"the {name} backend needs torch (pip install 'vsr[gpu]')")
    cuda = cuda_available()
    if name == "torch":
        device = "cuda" if cuda else "cpu"
        options = TorchOptions(
            device=device,
            precision=precision or ("fp16" if cuda else "fp32"),  # type: ignore[arg-type]
            threads=threads,
            compile=compile,
            cuda_graphs=cuda_graphs,
        )
        return Choice(options, reason)
    if not cuda:  # checked first: no TensorRT object may exist without a CUDA device
        raise BackendUnavailableError("the tensorrt backend needs a working CUDA device; none was found")
    if not installed("tensorrt"):
        raise BackendUnavailableError("the tensorrt backend needs TensorRT (pip install 'vsr[tensorrt]')")
    if torch_only:
        raise UsageError("--torch-compile and --cuda-graphs need the torch backend")
    if threads:
        raise UsageError("--threads sets CPU inference threads; TensorRT runs on the GPU")
    return Choice(TensorRTOptions(precision=precision or "fp16"), reason)  # type: ignore[arg-type]


def _auto(precision: str | None, torch_only: bool) -> tuple[str, str]:
    cuda = cuda_available()
    if not cuda and not torch_only:
        where = "no CUDA device" if installed("torch") else "torch is not installed, so no CUDA path"
        if installed("openvino") and precision in (None, "fp32", "bf16"):
            return "openvino", f"auto: {where}; OpenVINO is the fastest CPU runtime installed"
        if precision == "bf16" and installed("torch"):
            return "torch", f"auto: {where}; torch on the CPU runs bf16 (ONNX Runtime's graphs are fp32)"
        return "onnxruntime", f"auto: {where}" + ("" if installed("openvino") else ", OpenVINO not installed")
    if not cuda:
        return "torch", "auto: no CUDA device; torch on the CPU, as --torch-compile/--cuda-graphs ask"
    if installed("tensorrt") and not torch_only:
        return "tensorrt", "auto: CUDA device and TensorRT found"
    return "torch", "auto: CUDA device found" + ("" if torch_only else ", TensorRT not installed")


def open_backend(
    options: BackendOptions, model: ShippedModel, *, log: Callable[[str], None] = lambda _msg: None
) -> Backend:
    """Load a shipped model on a backend (TensorRT builds and caches its plan on first use)."""
    # An imported ONNX file has no weights for torch or TensorRT to rebuild from; an imported model of one
    # tile size has no TensorRT graph (its float export would keep the traced size).
    runtimes = model.entry.get("runtimes")
    if runtimes is not None and options.name not in runtimes:
        where = ", ".join(runtimes[:-1]) + f" and {runtimes[-1]}" if len(runtimes) > 1 else runtimes[0]
        raise BackendUnavailableError(
            f"{model.spec.name} (imported) runs on {where} only, not {options.name}"
        )
    options = _within_precision(options, model)
    if isinstance(options, OrtOptions):
        from vsr.backends.ort_backend import OrtBackend

        return OrtBackend(model.onnx, scale=model.spec.scale, onnx_uint16=model.onnx_uint16, options=options)
    if isinstance(options, OpenVinoOptions):
        from vsr.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(model, options)
    if isinstance(options, TensorRTOptions):
        from vsr.backends.tensorrt_backend import open_tensorrt

        return open_tensorrt(model, options, log=log)
    from vsr.backends.torch_backend import TorchBackend

    return TorchBackend(model.spec, model.weights, options)


def _within_precision(options: BackendOptions, model: ShippedModel) -> BackendOptions:
    """An imported model whose architecture spandrel says does not run in fp16 or bf16 is refused there
    (and OpenVINO's automatic bf16 falls back to fp32 for it)."""
    unsupported = {p for p, key in (("fp16", "supports_half"), ("bf16", "supports_bfloat16"))
                   if model.entry.get(key) is False}  # fmt: skip
    if isinstance(options, OpenVinoOptions) and options.precision == "auto" and "bf16" in unsupported:
        return replace(options, precision="fp32")
    if options.precision in unsupported:
        arch = model.entry.get("arch_name", model.spec.name)
        raise UsageError(
            f"{model.spec.name}: {arch} does not run in {options.precision} (spandrel says so); use fp32"
        )
    return options


def fallback(choice: Choice, error: Exception) -> Choice | None:
    """What `auto` runs when its choice failed to load: TensorRT → torch on CUDA → ONNX Runtime, and
    OpenVINO → ONNX Runtime, with the failure in the reason. None for a backend asked for by name: that
    failure is the user's to see."""
    if not choice.reason.startswith("auto"):
        return None
    why = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(choice.options, TensorRTOptions):
        torch = TorchOptions(device="cuda", precision=choice.options.precision)
        return Choice(torch, f"auto: TensorRT failed ({why}); torch on CUDA instead")
    if isinstance(choice.options, TorchOptions) and choice.options.device == "cuda":
        return Choice(OrtOptions(), f"auto: torch on CUDA failed ({why}); ONNX Runtime on the CPU instead")
    if isinstance(choice.options, OpenVinoOptions):
        ort = OrtOptions(threads=choice.options.threads)
        return Choice(ort, f"auto: OpenVINO failed ({why}); ONNX Runtime instead")
    return None


def max_batch(options: BackendOptions) -> int | None:
    """The largest batch a backend takes (a TensorRT plan asked for by profile), or None when any goes."""
    if isinstance(options, TensorRTOptions) and options.profile is not None:
        return options.profile.max[0]
    return None
