"""Inference backends behind one contract: a loaded model on one runtime, run on batches of pixel codes.

    Backend          run(uint8/uint16 NHWC batch) → same type, ×scale; a context manager owning the runtime
    └ DeviceBackend  also run_float(float NCHW device tensor) → float, for the GPU path (no 8-bit round trip),
                     and prepare(smallest, largest input) once a job knows its shapes

Each runtime lives in its own module and imports its heavy dependency there, so `import vsr` and the CPU
path work with nothing but onnxruntime installed. What a runtime is asked to do is a typed options object
(vsr.backends.options); an option it cannot honour is refused when it opens, never dropped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

import numpy as np

UINT8 = np.dtype(np.uint8)
UINT16 = np.dtype(np.uint16)


class Backend(ABC):
    """One model loaded on one runtime: (N, H, W, C) codes in, (N, H·scale, W·scale, C) codes of the same
    dtype out. `dtypes` lists the code types `run` accepts (uint16 carries sources deeper than 8 bits)."""

    name: str  # e.g. "onnxruntime 1.23 (CPU, 2 threads)"
    scale: int
    channels: int = 3
    dtypes: frozenset[np.dtype] = frozenset({UINT8})

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Upscale (or restore, at scale 1) one batch of frames."""

    def close(self) -> None:  # noqa: B027  (a hook: most runtimes free with their last reference)
        """Release the runtime's resources (the default holds none)."""

    def check(self, batch: np.ndarray) -> None:
        """Raise ValueError unless `batch` is (N, H, W, channels) of a dtype this backend accepts."""
        if batch.ndim != 4 or batch.shape[-1] != self.channels or batch.dtype not in self.dtypes:
            accepted = "/".join(sorted(d.name for d in self.dtypes))
            want = f"(N, H, W, {self.channels}) {accepted}"
            raise ValueError(f"{self.name}: expected {want}, got {batch.shape} {batch.dtype}")

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DeviceBackend(Backend):
    """A backend that also runs float tensors already on its device: the GPU path's colour conversion hands
    frames over in float, so no stage quantises them to 8 bits on the way."""

    device: Any  # torch.device

    @abstractmethod
    def run_float(self, x: Any) -> Any:
        """(N, 3, H, W) float 0..1 on the device → (N, 3, H·s, W·s) float32, queued on the current stream."""

    def prepare(self, low: tuple[int, int, int], high: tuple[int, int, int]) -> None:
        """Get ready for inputs from `low` to `high` (N, H, W) before the job's first batch (TensorRT makes
        its plan for them here); runtimes that take any shape need nothing."""
