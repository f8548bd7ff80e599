"""Weights in, ONNX out: the integer-code interface every backend shares, fused into the graph.

The graph takes (N, H, W, 3) uint8 RGB and returns (N, H·s, W·s, 3) uint8 RGB (or uint16 in and out):
layout change, normalisation, clamping and rounding run inside the runtime, so the hot loop does no
per-pixel numpy. N, H and W are dynamic. torch's own path (TorchBackend, training's predictor) wraps the
network in the same IntegerIo module.
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
    return x.permute(0, 3, 1, 2).to(dtype) * (1.0 / top)


def unit_to_codes(y: Tensor, dtype: torch.dtype) -> Tensor:
    """(N, C, H, W) float on 0..1 → (N, H, W, C) codes of `dtype` (uint8 or a 16-bit type), rounded."""
    top = 255.0 if dtype == torch.uint8 else 65535.0
    return (y * top).round().clamp(0.0, top).to(dtype).permute(0, 2, 3, 1)


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
        m, s = self.margin, self.scale
        if m == 0:
            return self.net(x.to(self.dtype)).float()
        y = self.net(F.pad(x.to(self.dtype), (m, m, m, m), mode="replicate"))
        return y[:, :, m * s : y.shape[2] - m * s, m * s : y.shape[3] - m * s].float()

    def forward(self, x: Tensor) -> Tensor:
        return unit_to_codes(self.float_forward(codes_to_unit(x, self.dtype)), x.dtype)


def load_model(spec: ModelSpec, weights: Path) -> nn.Module:
    """Build the architecture of `spec` and load its safetensors state dict, in eval mode."""
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
    io: Literal["uint8", "uint16"] = "uint8",
) -> Path | BinaryIO:
    """Write `model` as an ONNX graph with integer NHWC I/O (`io`) and dynamic batch, height and width.

    With dtype float16/bfloat16 the weights and the body run in that type (casts at the integer edges):
    the strongly typed graph TensorRT 10.12+ and 11 build reduced-precision engines from. io="uint16" is
    the graph for sources deeper than 8 bits (the CPU path of 10-bit video).
    """
    net = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)  # .to() works in place
    wrapped = IntegerIo(net, dtype, scale=scale, margin=margin).eval()
    # The TorchScript exporter has no uint16: that graph is traced with int32 (same graph, the codes
    # scaled by 65535) and retyped to uint16 afterwards, at its input and at its final Cast.
    uint16 = io == "uint16"
    dummy = torch.randint(0, 256, (1, *sample_size, 3), dtype=torch.int32 if uint16 else torch.uint8)
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (dummy,),
            str(out) if isinstance(out, Path) else out,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "n", 1: "h", 2: "w"},
                OUTPUT_NAME: {0: "n", 1: "h_out", 2: "w_out"},
            },
            opset_version=BF16_OPSET if dtype == torch.bfloat16 else OPSET,
            dynamo=False,
        )
    if uint16:
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
    # The output is produced by Transpose(Cast(to=INT32)): retype that Cast.
    node = producer[graph.graph.output[0].name]
    while node.op_type != "Cast":
        node = producer[node.input[0]]
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
