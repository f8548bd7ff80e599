"""Inference backends behind one narrow protocol: a uint8 RGB batch in, a uint8 RGB batch out.

Each runtime lives in its own module and imports its heavy dependency there, so `import vsr` and the CPU
path work with nothing but onnxruntime installed.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """A loaded model on one runtime; used as a context manager that owns the runtime's resources."""

    name: str  # e.g. "onnxruntime (CPU, 2 threads)"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB → (N, H·s, W·s, 3) uint8 RGB."""
        ...

    def close(self) -> None:
        """Release the runtime's resources."""
        ...

    def __enter__(self) -> Backend: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
