"""ONNX Runtime on the CPU: the embedded default that runs on any machine."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import onnxruntime as ort

from vsr.errors import ModelError


class OrtBackend:
    """Runs a uint8-in/uint8-out ONNX graph (see vsr.models.export) with ONNX Runtime's CPU provider."""

    def __init__(self, onnx_path: Path, *, threads: int = 0, onnx16: Path | None = None) -> None:
        self._threads, self._onnx16 = threads, onnx16
        self._inputs: dict[int, str] = {}
        self._session = self._open(onnx_path, "uint8")
        self._deep: ort.InferenceSession | None = None  # opened on the first 16-bit batch
        self.supports_deep = onnx16 is not None
        self.name = f"onnxruntime {ort.__version__} (CPU, {threads or 'all'} threads)"

    def _open(self, onnx_path: Path, io_type: str) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self._threads  # 0: one per physical core
        opts.inter_op_num_threads = 1  # the graphs are a single chain; parallelism is inside each op
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
            raise ModelError(f"{onnx_path}: cannot load ONNX graph ({exc})") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].type != f"tensor({io_type})":
            raise ModelError(f"{onnx_path}: expected one {io_type} input and one output")
        self._inputs[id(session)] = inputs[0].name  # looked up once, not on every batch
        return session

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB → (N, H·s, W·s, 3) uint8 RGB; uint16 → uint16 through the 16-bit graph."""
        session = self._session
        if batch.dtype == np.uint16:
            if self._onnx16 is None:
                raise ModelError("this model has no 16-bit graph")
            if self._deep is None:
                self._deep = self._open(self._onnx16, "uint16")
            session = self._deep
        return session.run(None, {self._inputs[id(session)]: batch})[0]

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it with the last reference)."""
        self._session = self._deep = None  # type: ignore[assignment]

    def __enter__(self) -> OrtBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
