"""ONNX Runtime on the CPU: the embedded default that runs on any machine."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import onnxruntime as ort

from vsr.errors import ModelError


class OrtBackend:
    """Runs a uint8-in/uint8-out ONNX graph (see vsr.models.export) with ONNX Runtime's CPU provider."""

    def __init__(self, onnx_path: Path, *, threads: int = 0) -> None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads  # 0: one per physical core
        opts.inter_op_num_threads = 1  # the graphs are a single chain; parallelism is inside each op
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
            raise ModelError(f"{onnx_path}: cannot load ONNX graph ({exc})") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].type != "tensor(uint8)":
            raise ModelError(f"{onnx_path}: expected one uint8 input and one output")
        self._input, self._output = inputs[0].name, outputs[0].name
        self.name = f"onnxruntime {ort.__version__} (CPU, {threads or 'all'} threads)"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB → (N, H·s, W·s, 3) uint8 RGB."""
        return self._session.run([self._output], {self._input: batch})[0]

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it with the last reference)."""
        self._session = None  # type: ignore[assignment]

    def __enter__(self) -> OrtBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
