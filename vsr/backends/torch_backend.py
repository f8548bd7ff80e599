"""PyTorch on the CPU or a CUDA device: the shipped safetensors weights, no ONNX involved."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from vsr.errors import BackendUnavailableError
from vsr.models.registry import ModelSpec

Precision = Literal["fp32", "fp16", "bf16"]


def cuda_available() -> bool:
    """Whether torch is installed and sees a working CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class TorchBackend:
    """Runs a registry model with uint8 NHWC in and out; layout, scaling and rounding in one fused module."""

    def __init__(
        self,
        spec: ModelSpec,
        weights: Path,
        *,
        device: str = "cpu",
        precision: Precision = "fp32",
        channels_last: bool = False,
        threads: int = 0,
    ) -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError("the torch backend needs torch (pip install 'vsr[gpu]')") from None
        from vsr.models.export import Uint8Io, load_model

        self._torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("no CUDA device is available to torch")
        if self.device.type == "cpu" and precision == "fp16":
            raise BackendUnavailableError("fp16 needs a CUDA device; use fp32 or bf16 on the CPU")
        if threads and self.device.type == "cpu":
            torch.set_num_threads(threads)
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        net = load_model(spec, weights).to(self.device, dtype)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.scale = spec.scale
        self._dtype, self._channels_last = dtype, channels_last
        self._net = Uint8Io(net, dtype).eval()
        where = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        self.name = f"torch {torch.__version__} ({where}, {precision})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB → (N, H·s, W·s, 3) uint8 RGB."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            return self._net(x).cpu().numpy()

    def run_device(self, x: Any) -> Any:
        """(N, H, W, 3) uint8 tensor already on the device → uint8 output on the device (no copies)."""
        with self._torch.inference_mode():
            return self._net(x)

    def run_float(self, x: Any) -> Any:
        """(N, 3, H, W) float 0..1 device tensor → the model's float32 output (the GPU YUV path)."""
        torch = self._torch
        with torch.inference_mode():
            x = x.to(self._dtype)
            if self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self._net.net(x).float()

    def close(self) -> None:
        """Free the model (and the CUDA cache it used)."""
        self._net = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()

    def __enter__(self) -> TorchBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
