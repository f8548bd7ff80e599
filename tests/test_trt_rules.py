"""TensorRT's ONNX parser rules, enforced on the CPU for every graph vsr may hand to TensorRT.

TensorRT cannot be installed on our machines, so what its parser accepts is written down here from its
documentation and source (onnx/onnx-tensorrt 10.15: docs/operators.md, ModelImporter.cpp,
onnxOpImporters.cpp, onnxOpCheckers.cpp, importerUtils.cpp; NVIDIA/TensorRT#1948, #3324, #4123, #4408)
and checked against each graph:

- UINT8 only on graph I/O: "TensorRT does not support UINT8 types for intermediate tensors" is raised for
  any node output of type UINT8 that is not a graph output, and every importer but Cast refuses UINT8
  inputs; uint8 converts only to and from float32/float16 (not bf16). UINT16 is no TensorRT type at all.
- the opset: 9 to 20 in every 10.x, to 24 in 10.15 (the bf16 graphs need opset 22), to 25 in 11.5.
- every op in the operator table, with inputs of a type it lists, and the attributes its importer takes.
- no tensor over 2^31-1 elements at the largest shape of the plan's profile.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import onnx
import onnx.shape_inference
import pytest
from onnx import TensorProto

from vsr.backends.tensorrt_backend import onnx_for
from vsr.backends.trt_plan import DEFAULT_PROFILE, TENSOR_LIMIT, ShapeProfile, capped, fits, widest_tensor
from vsr.models.artefacts import shipped_model, shipped_models

F32, F16, BF16 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16
I32, I64, BOOL, U8 = TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.UINT8
FLOATS = {F32, F16, BF16}
SHAPES = FLOATS | {I32, I64}  # shape arithmetic runs on integers
# operators.md (TensorRT 10.15), the types each op's data input may have, narrowed where its importer
# refuses more than the table says (activationHelper refuses INT32 for Relu; unaryHelper integers for Round).
OPS: dict[str, set[int]] = {
    "Add": SHAPES,
    "Cast": SHAPES | {U8, BOOL},
    "Clip": FLOATS,
    "Concat": SHAPES | {BOOL},
    "Constant": SHAPES | {BOOL},
    "ConstantOfShape": {I64},  # its input is the shape; the value may not be UINT8 (checked below)
    "Conv": FLOATS,
    "ConvTranspose": FLOATS,
    "DepthToSpace": SHAPES,
    "Gather": SHAPES | {BOOL},
    "Mul": SHAPES,
    "Pad": SHAPES,
    "PRelu": FLOATS,
    "Relu": FLOATS,
    "Reshape": SHAPES | {BOOL},
    "Resize": FLOATS,
    "Round": FLOATS,
    "Shape": SHAPES | {BOOL},
    "Slice": SHAPES | {BOOL},
    "Sub": SHAPES,
    "Tanh": FLOATS,
    "Transpose": SHAPES | {BOOL},
    "Unsqueeze": SHAPES | {BOOL},
}
RESIZE_COORDINATES = {
    "half_pixel",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "asymmetric",
    "align_corners",
}
PAD_MODES = {b"constant", b"reflect", b"edge", b"wrap"}
PRECISIONS = ("fp32", "fp16", "bf16")
NAMES = sorted(shipped_models())


@cache
def trt_graph(name: str, precision: str) -> onnx.ModelProto:
    """The graph TensorRTBackend builds its plans from."""
    return onnx.load_from_string(onnx_for(shipped_model(name), precision))  # type: ignore[arg-type]


def _typed(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    types |= {t.name: t.data_type for t in g.initializer}
    for node in g.node:
        if node.op_type == "Constant":
            types[node.output[0]] = onnx.helper.get_attribute_value(node.attribute[0]).data_type
    return inferred, types


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def uint8_violations(model: onnx.ModelProto) -> list[str]:
    """Where a graph breaks TensorRT's UINT8 rule (empty when it keeps it)."""
    inferred, types = _typed(model)
    g = inferred.graph
    outputs = {o.name for o in g.output}
    inputs = {i.name for i in g.input}
    bad = []
    for node in g.node:
        for name in node.output:
            if types.get(name) == U8 and (name not in outputs or node.op_type != "Cast"):
                bad.append(f"{node.op_type} makes uint8 {name!r}, not a graph output made by a Cast")
        for name in node.input:
            if types.get(name) == U8 and (name not in inputs or node.op_type != "Cast"):
                bad.append(f"{node.op_type} takes uint8 {name!r}: only a Cast may, of a graph input")
        if node.op_type == "Cast":
            to, src = _attrs(node)["to"], types.get(node.input[0])
            if U8 in (to, src) and {to, src} - {U8} - {F32, F16}:
                bad.append(f"Cast between uint8 and {TensorProto.DataType.Name(({to, src} - {U8}).pop())}")
    return bad


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", NAMES)
def test_tensorrt_graph_is_float_nchw_and_uses_only_what_the_parser_takes(name: str, precision: str) -> None:
    model = trt_graph(name, precision)
    inferred, types = _typed(model)
    g = inferred.graph
    io_type = F16 if precision == "fp16" else F32
    for value in (*g.input, *g.output):
        assert value.type.tensor_type.elem_type == io_type, value.name
        assert len(value.type.tensor_type.shape.dim) == 4, "NCHW"
    assert g.input[0].type.tensor_type.shape.dim[1].dim_value == 3, "three channels in"
    opset = model.opset_import[0].version
    assert 9 <= opset <= (22 if precision == "bf16" else 20)  # 20: every TensorRT 10.x; 22 needs 10.15+
    assert U8 not in types.values() and TensorProto.UINT16 not in types.values()
    assert uint8_violations(model) == []
    for node in g.node:
        assert node.op_type in OPS, f"{node.op_type} is not in TensorRT's operator table"
        data = types.get(node.input[0]) if node.input else None
        if data is not None:
            assert data in OPS[node.op_type], f"{node.op_type} on {TensorProto.DataType.Name(data)}"
        attrs = _attrs(node)
        if node.op_type == "Resize":
            assert attrs.get("mode", b"nearest") in (b"nearest", b"linear", b"cubic")
            assert attrs.get("coordinate_transformation_mode", b"half_pixel").decode() in RESIZE_COORDINATES
            assert attrs.get("antialias", 0) == 0
            assert attrs.get("keep_aspect_ratio_policy", b"stretch") == b"stretch"
        if node.op_type == "Pad":
            assert attrs.get("mode", b"constant") in PAD_MODES
        if node.op_type == "DepthToSpace":  # the parser reads any mode but "DCR" as CRD, unchecked
            assert attrs.get("mode", b"DCR") in (b"DCR", b"CRD")
        if node.op_type == "ConstantOfShape" and "value" in attrs:
            assert attrs["value"].data_type != U8
        if node.op_type in ("Conv", "ConvTranspose", "PRelu", "Round", "Clip", "Tanh", "Relu"):
            assert data in FLOATS and data == (BF16 if precision == "bf16" else io_type)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_integer_graphs_cast_first_and_transpose_after(name: str) -> None:
    """The uint8 graphs (ONNX Runtime, OpenVINO) keep TensorRT's UINT8 rule too, so one graph could serve."""
    model = onnx.load(str(shipped_model(name).onnx))
    assert uint8_violations(model) == []
    producers = {o: n for n in model.graph.node for o in n.output}
    assert producers[model.graph.output[0].name].op_type == "Cast"


def test_the_uint8_rule_catches_a_transpose_of_integers() -> None:
    """The checker itself: the graph shape every shipped model had before (NVIDIA/TensorRT#3985)."""
    x = onnx.helper.make_tensor_value_info("x", U8, [1, 4, 4, 3])
    y = onnx.helper.make_tensor_value_info("y", F32, [1, 3, 4, 4])
    nodes = [
        onnx.helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        onnx.helper.make_node("Cast", ["t"], ["y"], to=F32),
    ]
    model = onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [x], [y]))
    assert any("Transpose makes uint8" in v for v in uint8_violations(model))
    to_bf16 = onnx.helper.make_graph([onnx.helper.make_node("Cast", ["x"], ["y"], to=BF16)], "g", [x], [
        onnx.helper.make_tensor_value_info("y", BF16, [1, 4, 4, 3])
    ])  # fmt: skip
    assert any("bfloat16" in v.lower() for v in uint8_violations(onnx.helper.make_model(to_bf16)))


def _widest_inferred(model: onnx.ModelProto, shape: tuple[int, int, int]) -> int:
    """The most elements any tensor of `model` holds for an (N, 3, H, W) input of `shape`, by ONNX
    Runtime's symbolic shape inference (which follows the edge padding's computed pads; no pixels are
    computed)."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.ModelProto.FromString(model.SerializeToString())
    n, h, w = shape
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (n, 3, h, w), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    widest = 0
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), f"{value.name} has no static shape"
        widest = max(widest, math.prod(d.dim_value for d in dims))
    return widest


@pytest.mark.parametrize("name", NAMES)
def test_no_tensor_exceeds_the_limit_at_the_profiles_largest_shape(name: str) -> None:
    spec = shipped_model(name).spec
    profile = capped(DEFAULT_PROFILE, spec)
    widest = _widest_inferred(trt_graph(name, "fp16"), profile.max)
    assert widest <= TENSOR_LIMIT
    # The planner's estimate is what inference finds (or a little above, never below).
    assert widest <= widest_tensor(spec, profile.max) <= 1.02 * widest
    if profile != DEFAULT_PROFILE:  # cut only as far as needed: one more frame or row would not fit
        n, h, w = profile.max
        assert not fits(spec, (n + 1, h, w) if n < DEFAULT_PROFILE.max[0] else (n, h + 1, w))


def test_the_heavy_models_are_cut_and_the_light_ones_keep_4k_batches() -> None:
    cut = {name: capped(DEFAULT_PROFILE, shipped_model(name).spec).max for name in NAMES}
    assert cut["compact-x2"] == DEFAULT_PROFILE.max
    assert cut["vdsr-x2"] == (1, 2160, 3840)  # 64 features at 8K: 2.12e9 elements, one frame only
    assert cut["srcnn-x2"][0] == 1 and cut["srcnn-x2"][1] < 2160  # its margin tips it over: rows are cut
    assert ShapeProfile.parse(capped(DEFAULT_PROFILE, shipped_model("srcnn-x2").spec).describe())


def test_the_planner_cuts_batches_then_tiles_within_the_limit() -> None:
    torch = pytest.importorskip("torch")
    from vsr.errors import UsageError
    from vsr.pipeline.device import DevicePath

    cpu = torch.device("cpu")
    vdsr, srcnn = shipped_model("vdsr-x2").spec, shipped_model("srcnn-x2").spec
    path, batch = DevicePath.for_chain(cpu, [vdsr], auto=True).planned(2160, 3840, 2, 8)
    assert (batch, path.tile) == (1, None)
    path, batch = DevicePath.for_chain(cpu, [srcnn], auto=True).planned(2160, 3840, 2, 8)
    assert batch == 1 and path.tile is not None
    for low, high in path.shapes(2160, 3840, batch):
        assert fits(srcnn, high) and low[0] == 1 and low[1] <= high[1]
    # A chain is checked at each model's own input size: the second model of ×2 → ×2 sees 4× the pixels.
    path, batch = DevicePath.for_chain(cpu, [vdsr], auto=True).planned(2160, 3840, 2, 4)
    assert path.tile is None  # a 4K frame fits vdsr-x2 whole; the second of a chain sees 8K and does not
    path, batch = DevicePath.for_chain(cpu, [vdsr, vdsr], auto=True).planned(2160, 3840, 4, 4)
    assert path.tile is not None and all(fits(vdsr, hi) for _lo, hi in path.shapes(2160, 3840, batch))
    with pytest.raises(UsageError, match="2\\^31-1"):
        DevicePath.for_chain(cpu, [vdsr]).planned(2160, 3840, 2, 2)  # --batch 2 asked for: refused


def test_job_shapes_cover_every_tile_and_the_short_last_batch() -> None:
    torch = pytest.importorskip("torch")
    from vsr.pipeline.device import DevicePath
    from vsr.pipeline.tiling import tiles

    spec = shipped_model("compact-x2").spec
    path = DevicePath.for_chain(torch.device("cpu"), [spec, spec], tile=200)
    (low1, high1), (low2, high2) = path.shapes(540, 960, 3)
    for (low, high), (h, w) in (((low1, high1), (540, 960)), ((low2, high2), (1080, 1920))):
        boxes = [(t.y1 - t.y0, t.x1 - t.x0) for t in tiles(h, w, 200, path.overlap)]
        assert low == (1, min(b[0] for b in boxes), min(b[1] for b in boxes))
        assert high == (3, max(b[0] for b in boxes), max(b[1] for b in boxes))
    whole = DevicePath.for_chain(torch.device("cpu"), [spec]).shapes(540, 960, 4)
    assert whole == [((1, 540, 960), (4, 540, 960))]


def test_float_graph_computes_what_the_integer_graph_does() -> None:
    """TensorRT's graph is the shipped model: through ONNX Runtime, its float output rounds to the
    shipped uint8 graph's codes."""
    ort = pytest.importorskip("onnxruntime")
    model = shipped_model("fsrcnn-x2")  # a margin, a transposed convolution
    rgb = np.random.default_rng(3).integers(0, 256, (2, 23, 31, 3), dtype=np.uint8)
    codes = ort.InferenceSession(str(model.onnx)).run(None, {"input": rgb})[0]
    session = ort.InferenceSession(onnx_for(model, "fp32"))
    unit = session.run(None, {"input": rgb.transpose(0, 3, 1, 2).astype(np.float32) / 255})[0]
    again = np.clip(np.round(unit * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    assert again.shape == codes.shape and np.abs(again.astype(int) - codes).max() == 0
