"""What each runtime is asked to do: one typed options object per backend, as vs-mlrt's Backend.TRT(...).

torch- and TensorRT-free: options are checked for what can be known without the runtime (a precision the
runtime has no graphs for, a flag for another runtime); what depends on the machine is checked on opening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vsr.backends.trt_plan import ShapeProfile
from vsr.errors import UsageError

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")
BackendName = Literal["onnxruntime", "openvino", "torch", "tensorrt"]
BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino", "torch", "tensorrt")


def _check_precision(precision: str, allowed: tuple[str, ...], runtime: str, hint: str = "") -> None:
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    if precision not in allowed:
        raise UsageError(f"{runtime} runs {' or '.join(allowed)}, not {precision}{hint}")


@dataclass(frozen=True)
class OrtOptions:
    """ONNX Runtime on the CPU: the shipped fp32 graphs (uint8 and uint16 I/O)."""

    threads: int = 0  # intra-op threads; 0 = one per physical core
    precision: Precision = "fp32"
    name: BackendName = field(default="onnxruntime", init=False)

    def __post_init__(self) -> None:
        bf16 = " (bf16 runs on --backend openvino or torch)"
        hint = " (fp16 needs CUDA)" if self.precision == "fp16" else bf16
        _check_precision(self.precision, ("fp32",), "ONNX Runtime", hint)
        if self.threads < 0:
            raise UsageError("threads must be 0 (one per core) or more")


@dataclass(frozen=True)
class OpenVinoOptions:
    """OpenVINO on the CPU from the shipped ONNX graphs: `auto` precision is bf16 where the CPU reports BF16
    (AMX, AVX-512-BF16) and fp32 elsewhere. (No int8: NNCF post-training quantisation cost compact-x2
    1.3 dB on Set5, bench/int8_ptq.py.) `workers` infer requests run in flight on as many CPU streams
    (frames of a batch spread across them); 0 = the measured default (openvino_backend.DEFAULT_WORKERS)."""

    precision: Literal["auto", "fp32", "bf16"] = "auto"
    threads: int = 0  # inference threads over all workers; 0 = one per core
    workers: int = 0
    cache: bool = True  # compiled models under the plan cache (OpenVINO's CACHE_DIR)
    name: BackendName = field(default="openvino", init=False)

    def __post_init__(self) -> None:
        if self.precision != "auto":
            _check_precision(self.precision, ("fp32", "bf16"), "OpenVINO", " (fp16 needs CUDA)")
        if self.threads < 0 or self.workers < 0:
            raise UsageError("threads and workers must be 0 (automatic) or more")
        if self.threads and self.workers > self.threads:
            raise UsageError(f"{self.workers} workers need at least as many threads, not {self.threads}")


@dataclass(frozen=True)
class TorchOptions:
    """PyTorch on the CPU or a CUDA device, from the shipped safetensors weights."""

    device: Literal["cpu", "cuda"] = "cpu"
    precision: Precision = "fp32"
    threads: int = 0  # CPU threads; 0 keeps torch's default (refused on CUDA, where it means nothing)
    compile: bool = False  # torch.compile with dynamic shapes
    cuda_graphs: bool = False  # capture once per input shape and replay
    name: BackendName = field(default="torch", init=False)

    def __post_init__(self) -> None:
        if self.device == "cpu":
            _check_precision(self.precision, ("fp32", "bf16"), "torch on the CPU", " (fp16 needs CUDA)")
            if self.cuda_graphs:
                raise UsageError("CUDA graphs need a CUDA device")
        else:
            _check_precision(self.precision, PRECISIONS, "torch")
            if self.threads:
                raise UsageError("--threads sets CPU inference threads; torch is running on CUDA")


@dataclass(frozen=True)
class TensorRTOptions:
    """A TensorRT plan built from the ONNX graph for this GPU, cached. Without a profile each job gets a
    plan for its own shapes (found in the cache when one covers them, else built once); with one, that
    plan is made when the model opens and the job's batches and tiles are fitted into it."""

    precision: Precision = "fp16"
    profile: ShapeProfile | None = None
    workspace_mib: int = 4096
    name: BackendName = field(default="tensorrt", init=False)

    def __post_init__(self) -> None:
        _check_precision(self.precision, PRECISIONS, "TensorRT")


BackendOptions = OrtOptions | OpenVinoOptions | TorchOptions | TensorRTOptions
