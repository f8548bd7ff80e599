"""PyTorch on the CPU or a CUDA device: the shipped safetensors weights, no ONNX involved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vsr.backends import UINT8, UINT16, DeviceBackend
from vsr.backends.options import TorchOptions
from vsr.errors import BackendUnavailableError
from vsr.models.registry import ModelSpec


class TorchBackend(DeviceBackend):
    """Runs a registry model with integer NHWC codes in and out (uint8, or uint16 at 16-bit precision);
    layout, scaling and rounding in one fused module. NHWC memory (channels_last) on CUDA, where tensor-core
    convolutions want it."""

    def __init__(self, spec: ModelSpec, weights: Path, options: TorchOptions = TorchOptions()) -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError("the torch backend needs torch (pip install 'vsr[gpu]')") from None
        from vsr.models.export import IntegerIo, load_model

        self._torch = torch
        self.device = torch.device(options.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("no CUDA device is available to torch")
        if options.threads:
            torch.set_num_threads(options.threads)
        precision, compile, cuda_graphs = options.precision, options.compile, options.cuda_graphs
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        net = load_model(spec, weights).to(self.device, dtype)
        channels_last = self.device.type == "cuda"
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
            # Video runs one shape for thousands of frames: let cuDNN time its algorithms once per shape.
            torch.backends.cudnn.benchmark = True
        if compile:
            # dynamic=True: one compiled graph for every frame size instead of a recompile per resolution.
            net = torch.compile(net, dynamic=True)
        self.scale, self.channels = spec.scale, spec.channels
        self.dtypes = frozenset({UINT8, UINT16})  # IntegerIo scales 16-bit codes by their own range
        self._dtype, self._channels_last = dtype, channels_last
        self._net = IntegerIo(net, dtype, scale=spec.scale, margin=spec.edge_margin).eval()
        self._graphs: dict[tuple, tuple[Any, Any, Any]] = {} if cuda_graphs else None  # type: ignore[assignment]
        # One memory pool for every shape's graph (whole frames, edge tiles): they replay one after another
        # on one stream, so their scratch memory can be shared instead of held once per shape.
        self._pool = torch.cuda.graph_pool_handle() if cuda_graphs else None
        where = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        extras = "".join(f", {x}" for x, on in (("compiled", compile), ("CUDA graphs", cuda_graphs)) if on)
        self.name = f"torch {torch.__version__} ({where}, {precision}{extras})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 (or uint16) RGB → (N, H·s, W·s, 3) of the same type."""
        self.check(batch)
        x = self._torch.from_numpy(batch).to(self.device)
        return self.run_device(x).cpu().numpy()

    def run_device(self, x: Any) -> Any:
        """(N, H, W, 3) uint8 tensor already on the device → uint8 output on the device (no copies).

        With CUDA graphs the result lives in the graph's static buffer: the next call of the same shape
        overwrites it, so use it (or copy it) before calling again.
        """
        return self._call("uint8", self._net, x)

    def run_float(self, x: Any) -> Any:
        """(N, 3, H, W) float 0..1 device tensor → the model's float32 output (the GPU YUV path)."""
        return self._call("float", self._float, x)

    def _float(self, x: Any) -> Any:
        if self._channels_last:
            x = x.contiguous(memory_format=self._torch.channels_last)
        return self._net.float_forward(x)

    def _call(self, kind: str, fn: Any, x: Any) -> Any:
        torch = self._torch
        with torch.inference_mode():
            if self._graphs is None:
                return fn(x)
            key = (kind, tuple(x.shape), x.dtype)
            if key not in self._graphs:
                self._graphs[key] = self._capture(fn, x)
            graph, static_in, static_out = self._graphs[key]
            static_in.copy_(x)
            graph.replay()  # one launch for the whole network: no per-kernel CPU overhead
            return static_out

    def _capture(self, fn: Any, x: Any) -> tuple[Any, Any, Any]:
        """Record fn for this input shape as a CUDA graph (after a warm-up on a side stream, as required)."""
        torch = self._torch
        static_in = x.clone()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):  # cuDNN picks its algorithms and the allocator warms up outside the capture
                fn(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = fn(static_in)
        return graph, static_in, static_out

    def close(self) -> None:
        """Free the model (and the CUDA cache it used)."""
        self._net = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
