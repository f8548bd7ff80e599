"""ONNX Runtime on the CPU: the embedded default that runs on any machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from vsr.backends import UINT8, UINT16, Backend
from vsr.backends.options import OrtOptions
from vsr.errors import ModelError


class OrtBackend(Backend):
    """Runs a shipped model's integer-code ONNX graphs (vsr.models.export) with the CPU provider: the uint8
    graph, and its uint16 twin for sources deeper than 8 bits (opened on the first 16-bit batch)."""

    def __init__(
        self, onnx: Path, *, scale: int, onnx_uint16: Path | None = None, options: OrtOptions = OrtOptions()
    ) -> None:
        self.scale = scale
        self._threads, self._onnx_uint16 = options.threads, onnx_uint16
        self._sessions: dict[np.dtype, tuple[ort.InferenceSession, str]] = {UINT8: self._open(onnx, "uint8")}
        self.dtypes = frozenset({UINT8, UINT16} if onnx_uint16 is not None else {UINT8})
        self.name = f"onnxruntime {ort.__version__} (CPU, {options.threads or 'all'} threads)"

    def _open(self, onnx: Path, io_type: str) -> tuple[ort.InferenceSession, str]:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self._threads  # 0: one per physical core
        opts.inter_op_num_threads = 1  # the graphs are a single chain; parallelism is inside each op
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
            raise ModelError(f"{onnx}: cannot load ONNX graph ({exc})") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].type != f"tensor({io_type})":
            raise ModelError(f"{onnx}: expected one {io_type} input and one output")
        return session, inputs[0].name  # the input name looked up once, not on every batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 (or uint16) RGB → (N, H·s, W·s, 3) of the same type."""
        self.check(batch)
        if batch.dtype not in self._sessions:
            assert self._onnx_uint16 is not None
            self._sessions[batch.dtype] = self._open(self._onnx_uint16, "uint16")
        session, name = self._sessions[batch.dtype]
        return session.run(None, {name: batch})[0]

    def close(self) -> None:
        """Drop the sessions (ONNX Runtime frees them with the last reference)."""
        self._sessions.clear()
