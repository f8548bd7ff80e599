"""ONNX files into vsr's interface, with no torch: a float (N, 3, H, W) RGB graph in 0..1 (the community's
norm) is checked, its scale measured with ONNX Runtime, and wrapped by graph surgery in vsr's integer NHWC
interface (uint8, and uint16 for deeper sources): cast first and transpose after on the way in, transpose
then round, clamp and cast on the way out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vsr.errors import BadInputError, UsageError


def from_onnx(path: Path, name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The store entry and files (uint8 and uint16 graphs) of an ONNX file."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise BadInputError(
            f"{path}: not a valid ONNX model ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UsageError(f"{path}: vsr runs graphs of one input and one output")
    tensor = inputs[0].type.tensor_type
    dims = tensor.shape.dim
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    if tensor.elem_type not in floats or len(dims) != 4 or dims[1].dim_value != 3:
        raise UsageError(f"{path}: vsr imports ONNX models with float (N, 3, H, W) RGB input in 0..1")
    if dims[2].HasField("dim_value") or dims[3].HasField("dim_value"):
        raise UsageError(f"{path}: the graph takes only {dims[2].dim_value}x{dims[3].dim_value} pictures; "
                         "vsr needs dynamic height and width")  # fmt: skip
    scale = _onnx_scale(model, path)
    graphs = {f"{name}.onnx": _wrapped(model, "uint8"), f"{name}.uint16.onnx": _wrapped(model, "uint16")}
    entry = {
        "arch": "onnx",
        "arch_name": "ONNX graph",
        "imported": True,
        "task": "sr" if scale > 1 else "denoise",
        "family": "imported",
        "scale": scale,
        "params": sum(int(np.prod(t.dims)) for t in graph.initializer),
        "input_channels": 3,
        "license": next(
            (p.value for p in model.metadata_props if p.key.lower() in ("license", "licence")), None
        ),
        "runtimes": ["onnxruntime", "openvino"],  # no weights to rebuild for torch or TensorRT
        "weights": f"{name}.onnx",
        "onnx": f"{name}.onnx",
        "onnx_uint16": f"{name}.uint16.onnx",
    }
    return entry, graphs


def _onnx_scale(model: Any, path: Path) -> int:
    import onnxruntime as ort

    elem = model.graph.input[0].type.tensor_type.elem_type
    dtype = np.float16 if elem == 10 else np.float32
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: np.full((1, 3, 32, 48), 0.5, dtype)})[0]
    except Exception as exc:
        raise BadInputError(
            f"{path}: ONNX Runtime cannot run it ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if out.ndim != 4 or out.shape[1] != 3 or out.shape[2] * 48 != out.shape[3] * 32 or out.shape[2] % 32:
        raise UsageError(f"{path}: output {tuple(out.shape)} for a 32x48 input is no whole-factor upscale")
    return out.shape[2] // 32


def _wrapped(model: Any, io_kind: str) -> bytes:
    """The float NCHW graph inside vsr's integer NHWC interface: cast first and transpose after on the way
    in, transpose then round, clamp and cast on the way out."""
    import onnx
    from onnx import TensorProto, helper

    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    g = wrapped.graph
    # The wrapper's I/O is called input/output; the inner graph's own I/O is renamed out of the way.
    inner_in, inner_out = "vsr_inner_input", "vsr_inner_output"
    renames = {g.input[0].name: inner_in, g.output[0].name: inner_out}
    for node in g.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    elem = g.input[0].type.tensor_type.elem_type
    out_elem = g.output[0].type.tensor_type.elem_type
    code = TensorProto.UINT8 if io_kind == "uint8" else TensorProto.UINT16
    top = 255.0 if io_kind == "uint8" else 65535.0
    consts = [
        helper.make_tensor("vsr_in_scale", TensorProto.FLOAT, [], [1.0 / top]),
        helper.make_tensor("vsr_out_scale", TensorProto.FLOAT, [], [top]),
        helper.make_tensor("vsr_lo", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("vsr_hi", TensorProto.FLOAT, [], [top]),
    ]
    g.initializer.extend(consts)
    before = [
        helper.make_node("Cast", ["input"], ["vsr_f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["vsr_f"], ["vsr_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["vsr_nchw", "vsr_in_scale"], ["vsr_unit"]),
        helper.make_node("Cast", ["vsr_unit"], [inner_in], to=elem),
    ]
    after = [
        helper.make_node("Cast", [inner_out], ["vsr_out_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["vsr_out_f", "vsr_out_scale"], ["vsr_codes"]),
        helper.make_node("Round", ["vsr_codes"], ["vsr_round"]),
        helper.make_node("Clip", ["vsr_round", "vsr_lo", "vsr_hi"], ["vsr_clip"]),
        helper.make_node("Transpose", ["vsr_clip"], ["vsr_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["vsr_nhwc"], ["output"], to=code),
    ]
    nodes = [*before, *g.node, *after]
    del g.node[:]
    g.node.extend(nodes)
    del g.input[0]
    g.input.insert(0, helper.make_tensor_value_info("input", code, ["n", "h", "w", 3]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("output", code, ["n", "h_out", "w_out", 3]))
    if out_elem not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        raise UsageError("the graph's output is not float")
    if (
        wrapped.opset_import
        and min(o.version for o in wrapped.opset_import if o.domain in ("", "ai.onnx")) < 11
    ):
        raise UsageError("the graph's opset is older than 11 (Round and Clip with inputs need 11)")
    onnx.checker.check_model(wrapped)
    return wrapped.SerializeToString()
