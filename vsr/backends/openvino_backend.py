"""OpenVINO on the CPU: the shipped ONNX graphs compiled for this processor, bf16 on AMX where it has it.

Each input shape gets its own compiled model with static dimensions (measured faster than one dynamic
model, and a compile costs about 0.1 s); frames of a batch are spread over `workers` infer requests that
run on as many CPU streams, and land back in their own slots, so frame order never depends on timing.
No completion callbacks: a Python callback runs on OpenVINO's threads and needs the GIL, and freeing a
compiled model joins those threads while holding it, which deadlocked the test suite.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import numpy as np

from vsr.backends import UINT8, UINT16, Backend
from vsr.backends.options import OpenVinoOptions
from vsr.backends.trt_plan import cache_dir
from vsr.errors import BackendUnavailableError, ModelError, UsageError
from vsr.models.artefacts import ShippedModel

_SHAPES_KEPT = 4  # compiled shapes per graph: a job uses one or two (full and last batch tiles)


def bf16_capable(core: Any) -> bool:
    """Whether the CPU plugin reports native bf16 (AVX-512-BF16 or AMX)."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


# The most Set5 PSNR bf16 may cost a model (against ONNX Runtime fp32, as the manifest's cpu_precisions
# record it) for `auto` to run it in bf16; tests/test_quality.py holds every model to it.
BF16_BUDGET_DB = 0.05


def bf16_cost(entry: dict[str, Any]) -> float:
    """What bf16 cost the model on Set5 when it was measured (0 where the manifest does not say)."""
    measured = entry.get("cpu_precisions", {})
    try:
        return float(measured["onnxruntime fp32"]["Set5"] - measured["openvino bf16"]["Set5"])
    except KeyError:
        return 0.0


def resolve_precision(
    requested: str, core: Any, dtype: np.dtype = UINT8, cost: float = 0.0
) -> tuple[str, str]:
    """(precision, why) for `auto`: bf16 where the CPU computes it natively and it cost the model (`cost`,
    dB on Set5) at most BF16_BUDGET_DB, fp32 elsewhere. Sources deeper than 8 bits stay in fp32: bf16 keeps
    8 significant bits, which would discard a 10-bit source's detail."""
    if requested != "auto":
        return requested, "asked for"
    if dtype == UINT16:
        return "fp32", "auto: deep source; bf16 keeps only 8 significant bits"
    if not bf16_capable(core):
        return "fp32", "auto: the CPU reports no native bf16"
    if cost > BF16_BUDGET_DB:
        return "fp32", f"auto: bf16 measured {cost:.3f} dB below fp32 on Set5 for this model"
    return "bf16", "auto: the CPU computes bf16 natively (AMX / AVX-512-BF16)"


# Infer requests in flight when none are asked for: one, with every thread. On the 2-core AMX machine
# (bench/openvino_cpu.py, 10 interleaved rounds) one request beat one per core in bf16 on compact-x2 (70.9
# against 76.3 ms/frame) and dncnn-color (39.4 against 45.8), tied on espcn-x2, and end to end on compact-x2
# (9.9 against 8.5 fps); one per core won only in fp32, by 1-13 %, which `auto` does not pick there.
DEFAULT_WORKERS = 1


class OpenVinoBackend(Backend):
    """A shipped model's integer-code ONNX graphs on OpenVINO's CPU plugin (uint8, and the uint16 twin for
    deep sources, opened on the first 16-bit batch)."""

    def __init__(self, model: ShippedModel, options: OpenVinoOptions = OpenVinoOptions()) -> None:
        try:
            import openvino as ov
        except ImportError:  # a platform without OpenVINO wheels
            raise BackendUnavailableError(
                "the openvino backend needs openvino (pip install openvino)"
            ) from None
        self._core = ov.Core()
        if options.cache:
            self._core.set_property({"CACHE_DIR": str(cache_dir() / "openvino")})
        self.scale, self.channels = model.spec.scale, model.spec.channels
        self._threads = options.threads or len(os.sched_getaffinity(0))
        self._workers = options.workers or DEFAULT_WORKERS
        self._auto = options.precision == "auto"  # then deep sources get their own precision
        self._bf16_cost = bf16_cost(model.entry)
        precision, self.reason = resolve_precision(options.precision, self._core, cost=self._bf16_cost)
        if precision == "bf16" and not bf16_capable(self._core):
            raise UsageError("this CPU has no native bf16 (AMX or AVX-512-BF16); use fp32")
        self.precision = precision
        self._graphs: dict[np.dtype, Path] = {UINT8: model.onnx, UINT16: model.onnx_uint16}
        self.dtypes = frozenset({UINT8, UINT16})
        self._models: dict[np.dtype, Any] = {}  # read once per dtype, reshaped per input shape
        self._compiled: OrderedDict[tuple, list[Any]] = OrderedDict()  # (dtype, h, w) → infer requests
        self._lock = threading.Lock()
        # Fail now, not on the first frame, if the graph does not load; a graph of one size (an imported
        # window-attention model) only compiles at its tile.
        side = model.entry.get("tile") or 64
        self._requests_for(UINT8, side, side)
        auto = {"bf16": "bf16, fp32 for sources deeper than 8 bits", "fp32": "fp32, as the CPU has no bf16"}
        if precision == "fp32" and self._bf16_cost > BF16_BUDGET_DB and bf16_capable(self._core):
            auto["fp32"] = f"fp32, as bf16 costs this model {self._bf16_cost:.2f} dB"
        described = f"auto: {auto[precision]}" if self._auto else precision
        workers = f"{self._workers} worker{'s' if self._workers > 1 else ''}"
        self.name = f"openvino {ov.get_version().split('-')[0]} (CPU, {described}, {workers})"

    def _precision_for(self, dtype: np.dtype) -> str:
        return (
            resolve_precision("auto", self._core, dtype, self._bf16_cost)[0] if self._auto else self.precision
        )

    def _requests_for(self, dtype: np.dtype, height: int, width: int) -> list[Any]:
        key = (dtype, height, width)
        if key in self._compiled:
            self._compiled.move_to_end(key)
            return self._compiled[key]
        if dtype not in self._models:
            try:
                self._models[dtype] = self._core.read_model(str(self._graphs[dtype]))
            except Exception as exc:  # OpenVINO raises its own untyped errors for unreadable graphs
                raise ModelError(f"{self._graphs[dtype]}: cannot load ONNX graph ({exc})") from exc
        graph = self._models[dtype].clone()
        graph.reshape([1, height, width, self.channels])
        precision = self._precision_for(dtype)
        config = {
            "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
            "INFERENCE_NUM_THREADS": self._threads,
            "NUM_STREAMS": self._workers,
            "PERFORMANCE_HINT": "THROUGHPUT" if self._workers > 1 else "LATENCY",
        }
        try:
            compiled = self._core.compile_model(graph, "CPU", config)
        except RuntimeError as exc:  # the CPU plugin's refusals are plain RuntimeErrors
            raise ModelError(f"{self._graphs[dtype]}: OpenVINO cannot compile it ({exc})") from exc
        requests = [compiled.create_infer_request() for _ in range(self._workers)]
        self._compiled[key] = requests
        if len(self._compiled) > _SHAPES_KEPT:
            self._compiled.popitem(last=False)
        return requests

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 (or uint16) RGB → (N, H·s, W·s, 3) of the same type."""
        self.check(batch)
        n, h, w, c = batch.shape
        out = np.empty((n, h * self.scale, w * self.scale, c), batch.dtype)
        with self._lock:  # one batch in flight per backend: the requests are shared
            requests = self._requests_for(batch.dtype, h, w)
            pending: deque[tuple[int, Any]] = deque()
            for i in range(n):
                if len(pending) == len(requests):  # the oldest is the request frame i reuses
                    self._land(out, *pending.popleft())
                request = requests[i % len(requests)]
                request.start_async({0: batch[i : i + 1]})
                pending.append((i, request))
            while pending:
                self._land(out, *pending.popleft())
        return out

    @staticmethod
    def _land(out: np.ndarray, index: int, request: Any) -> None:
        request.wait()
        out[index] = request.get_output_tensor(0).data[0]  # copied: the request is reused

    def close(self) -> None:
        """Drop the compiled models and their requests."""
        self._compiled.clear()
        self._models.clear()
