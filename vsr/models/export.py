"""Weights in, ONNX out: the graphs every runtime is handed.

The shipped graphs take (N, H, W, 3) uint8 RGB and return (N, H·s, W·s, 3) uint8 RGB (or uint16 in and
out): layout change, normalisation, clamping and rounding run inside the runtime, so the hot loop does no
per-pixel numpy. The codes are cast first and transposed after (and transposed before the final cast), so
integer types appear only on the graph's edges, next to a Cast, as TensorRT's ONNX parser demands.
TensorRT gets a graph of its own, float NCHW in and out (io="float", as vs-mlrt feeds fp16:chw), fed
straight from the GPU path's colour conversion: no 8-bit round trip, 10-bit sources keep their precision.
N, H and W are dynamic. torch's own path (TorchBackend, training's predictor) wraps the network in the same
IntegerIo module.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import BinaryIO, Literal

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from vsr.models.registry import ModelSpec

OPSET = 17
# The first opset whose Conv accepts bfloat16. The TorchScript exporter warns that it supports opsets up to
# 20 only; the graphs it writes at 22 pass onnx.checker's full check (tests/test_tensorrt.py).
BF16_OPSET = 22
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def codes_to_unit(x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(N, H, W, C) uint8 or 16-bit codes → (N, C, H, W) `dtype` on 0..1: the one way codes become floats."""
    top = 255.0 if x.dtype == torch.uint8 else 65535.0
    # Cast first (no transpose of integers), and to bfloat16 by way of float32: TensorRT has no integer
    # to bf16 cast.
    unit = x.to(torch.float32 if dtype == torch.bfloat16 else dtype).permute(0, 3, 1, 2) * (1.0 / top)
    return unit.to(dtype)


def unit_to_codes(y: Tensor, dtype: torch.dtype) -> Tensor:
    """(N, C, H, W) float on 0..1 → (N, H, W, C) codes of `dtype` (uint8 or a 16-bit type), rounded."""
    top = 255.0 if dtype == torch.uint8 else 65535.0
    return (y * top).round().clamp(0.0, top).permute(0, 2, 3, 1).to(dtype)  # the cast is the last op


class IntegerIo(nn.Module):
    """Wraps a float NCHW 0..1 network with integer NHWC codes in and out (uint8, or 16-bit for sources
    deeper than 8 bits: the codes then span 0..65535), computing in `dtype`.

    `margin` input pixels are replicated around the frame and cropped from the output: convolutions pad
    with zeros, and some models then darken or brighten the outermost pixels of every frame (the PSNR
    protocol shaves the border and never sees it; a viewer does). ModelSpec.edge_margin sets it.
    """

    def __init__(self, net: nn.Module, dtype: torch.dtype = torch.float32, *, scale: int, margin: int = 0):
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.scale = scale
        self.margin = margin

    def float_forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) float 0..1 → the network's output with the edge margin applied, float32."""
        return with_margin(self.net, x.to(self.dtype), self.scale, self.margin).float()

    def forward(self, x: Tensor) -> Tensor:
        return unit_to_codes(self.float_forward(codes_to_unit(x, self.dtype)), x.dtype)


class FloatIo(nn.Module):
    """TensorRT's interface: (N, 3, H, W) float 0..1 in `io_dtype` → (N, 3, H·s, W·s) in `io_dtype`, the
    body in `dtype`, no clamping (the colour conversion after it clamps). Casts appear only where the two
    types differ: an fp16 graph has none, a bf16 one converts from and to float32 at its edges."""

    def __init__(self, net: nn.Module, dtype: torch.dtype, io_dtype: torch.dtype, *, scale: int, margin: int):
        super().__init__()
        self.net, self.dtype, self.io_dtype, self.scale, self.margin = net, dtype, io_dtype, scale, margin

    def forward(self, x: Tensor) -> Tensor:
        return with_margin(self.net, x.to(self.dtype), self.scale, self.margin).to(self.io_dtype)


def with_margin(net: nn.Module, x: Tensor, scale: int, margin: int) -> Tensor:
    """net(x) computed on x grown by `margin` replicated pixels, the grown part cropped from the output."""
    if margin == 0:
        return net(x)
    m, s = margin, scale
    y = net(F.pad(x, (m, m, m, m), mode="replicate"))
    return y[:, :, m * s : y.shape[2] - m * s, m * s : y.shape[3] - m * s]


def float_io_dtype(dtype: torch.dtype) -> torch.dtype:
    """The I/O type of TensorRT's graph for a body in `dtype`: fp16 stays fp16 (half the bytes to move);
    bf16 and fp32 bodies take float32."""
    return torch.float16 if dtype == torch.float16 else torch.float32


def load_model(spec: ModelSpec, weights: Path) -> nn.Module:
    """Build the architecture of `spec` and load its safetensors state dict, in eval mode (an imported
    model is rebuilt by spandrel from its stored weights, wrapped as at import)."""
    if spec.family == "imported":
        from vsr.models.checkpoint import rebuild

        return rebuild(weights)
    model = spec.build()
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


def export_onnx(
    model: nn.Module,
    out: Path | BinaryIO,
    *,
    scale: int,
    margin: int = 0,
    sample_size: tuple[int, int] = (64, 64),
    dtype: torch.dtype = torch.float32,
    io: Literal["uint8", "uint16", "float"] = "uint8",
    fixed: bool = False,
) -> Path | BinaryIO:
    """Write `model` as an ONNX graph with dynamic batch, height and width: integer NHWC I/O (`io` uint8,
    or uint16 for sources deeper than 8 bits, the CPU path of 10-bit video), or float NCHW (TensorRT's).

    With dtype float16/bfloat16 the weights and the body run in that type: the strongly typed graph
    TensorRT 10.12+ and 11 build reduced-precision engines from. fixed=True keeps height and width at
    `sample_size` (for networks whose graph depends on the size it was traced at).
    """
    net = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)  # .to() works in place
    wrapped: nn.Module
    if io == "float":
        io_dtype = float_io_dtype(dtype)
        wrapped = FloatIo(net, dtype, io_dtype, scale=scale, margin=margin).eval()
        dummy = torch.rand((1, 3, *sample_size), dtype=io_dtype)
        axes = {0: "n", 2: "h", 3: "w"}, {0: "n", 2: "h_out", 3: "w_out"}
    else:
        wrapped = IntegerIo(net, dtype, scale=scale, margin=margin).eval()
        # The TorchScript exporter has no uint16: that graph is traced with int32 (same graph, the codes
        # scaled by 65535) and retyped to uint16 afterwards, at its input and at its final Cast.
        code = torch.int32 if io == "uint16" else torch.uint8
        dummy = torch.randint(0, 256, (1, *sample_size, 3), dtype=code)
        axes = {0: "n", 1: "h", 2: "w"}, {0: "n", 1: "h_out", 2: "w_out"}
    if fixed:
        axes = {0: "n"}, {0: "n"}
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (dummy,),
            str(out) if isinstance(out, Path) else out,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes[0], OUTPUT_NAME: axes[1]},
            opset_version=BF16_OPSET if dtype == torch.bfloat16 else OPSET,
            dynamo=False,
        )
    if io == "uint16":
        _retype_int32_io_to_uint16(out)
    return out


def _retype_int32_io_to_uint16(target: Path | BinaryIO) -> None:
    import onnx

    if isinstance(target, Path):
        graph = onnx.load(str(target))
    else:
        target.seek(0)
        graph = onnx.load_from_string(target.read())
    for value in (*graph.graph.input, *graph.graph.output):
        value.type.tensor_type.elem_type = onnx.TensorProto.UINT16
    producer = {o: n for n in graph.graph.node for o in n.output}
    node = producer[graph.graph.output[0].name]  # Cast(to=INT32), the graph's last op: retype it
    assert node.op_type == "Cast", node.op_type
    for attr in node.attribute:
        if attr.name == "to":
            attr.i = onnx.TensorProto.UINT16
    onnx.checker.check_model(graph)
    data = graph.SerializeToString()
    if isinstance(target, Path):
        target.write_bytes(data)
    else:
        target.seek(0)
        target.truncate()
        target.write(data)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (manifest integrity and engine cache keys)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
