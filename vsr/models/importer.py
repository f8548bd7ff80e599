"""`vsr import`: community checkpoints (through spandrel) and ONNX files into the user's model store.

A checkpoint is read as data only (safetensors, or torch.load with weights_only=True: a file that needs
arbitrary unpickling is refused, never run), its architecture, scale and channels are detected by spandrel,
and the network is exported to vsr's own graphs: integer NHWC codes in and out (uint8, and uint16 for
sources deeper than 8 bits), with layout, scaling, rounding and spandrel's padding to the architecture's
size multiple inside the graph, N/H/W dynamic. Grey models run on luma, chroma upscaled bicubically. Before
anything is written, the graph's output through ONNX Runtime is compared with the network in torch on test
pictures of two odd sizes, one and two at a time; an export more than one level off is refused, a graph
that keeps the size it was traced at (window attention) is exported at one tile size instead and run tile
by tile, and one that keeps the batch it was traced at (DITN) runs one picture per call.

An ONNX file (float NCHW RGB in 0..1, the community's norm) is checked and wrapped in the same integer
interface by graph surgery, with no torch involved.

The store is written file by file under temporary names and the manifest last (atomically), so a refused or
interrupted import leaves it as it was.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsr.errors import BadInputError, UsageError
from vsr.models import store

CHECKPOINTS = (".pth", ".pt", ".ckpt", ".safetensors")
# Architectures whose graph keeps the size it was traced at (window attention sized in Python) are exported
# at one tile size and run tile by tile with this much overlap on each side (vsr.pipeline.tiling.FixedTiles).
FIXED_TILE = 128
TILE_OVERLAP = 16
SUFFIXES = (*CHECKPOINTS, ".onnx")


@dataclass(frozen=True)
class Imported:
    """One file's import: what was found and where it went (or why it was refused)."""

    source: str
    name: str
    arch: str = ""
    scale: int = 0
    params: int | None = None
    status: str = "imported"  # or the refusal
    seconds: float = 0.0
    max_diff: int | None = None  # levels between ONNX Runtime and torch on the check picture

    @property
    def ok(self) -> bool:
        return self.status == "imported"


def import_file(
    path: Path, *, name: str | None = None, scale: int | None = None, root: Path | None = None
) -> Imported:
    """Import one checkpoint or ONNX file into the store; UsageError/BadInputError (exit 2) on refusal."""
    t0 = time.perf_counter()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"{path}: vsr imports {', '.join(SUFFIXES)} files, not {suffix or 'this'}")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    from vsr.models.artefacts import shipped_models

    root = root or store.models_dir()
    name = name or store.model_name(path.stem)
    store.check_name(name, set(shipped_models()))
    manifest = store.load(root)
    if name in manifest["models"]:
        raise UsageError(f"{name!r} is already imported (from {manifest['models'][name]['source']['file']}); "
                         "choose another --name")  # fmt: skip
    if suffix == ".onnx":
        from vsr.models.onnx_import import from_onnx

        entry, files = from_onnx(path, name)
    else:
        entry, files = _from_checkpoint(path, name)
    if scale is not None and scale != entry["scale"]:
        raise UsageError(f"{path}: the model upscales ×{entry['scale']}, not ×{scale} as --scale says")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry["source"] = {"file": path.name, "sha256": digest}
    entry["sha256"] = {f: hashlib.sha256(data).hexdigest() for f, data in files.items()}
    store.add(root, name, entry, files)
    return Imported(
        str(path), name, entry["arch"], entry["scale"], entry.get("params"), "imported",
        round(time.perf_counter() - t0, 2), entry.get("check_max_diff"),
    )  # fmt: skip


def import_folder(folder: Path, *, root: Path | None = None) -> list[Imported]:
    """Import every checkpoint and ONNX file of a folder; a refused file is reported, not fatal."""
    results = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES):
        try:
            results.append(import_file(path, root=root))
        except (UsageError, BadInputError) as exc:
            results.append(Imported(str(path), store.model_name(path.stem), status=str(exc)))
    return results


def _from_checkpoint(path: Path, name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The store entry and files (weights, uint8 and uint16 graphs) of a checkpoint."""
    try:
        from vsr.models import checkpoint
    except ImportError as exc:
        raise UsageError(f"importing checkpoints needs torch: pip install 'vsr[import]' ({exc})") from None
    state, license = checkpoint.read_checkpoint(path)
    descriptor = checkpoint.describe(state, path)
    arch = descriptor.architecture.name
    net = checkpoint.wrap(descriptor).eval()
    # Two odd sizes, neither the one the graph is traced at: a graph that kept the traced size fails here.
    graphs = _export(net, name, descriptor.scale, path, arch, None)
    check, tile = checkpoint.check_export(net, graphs[f"{name}.onnx"], [(45, 37), (70, 83)]), None
    if check is None:  # window attention sized in Python: a graph of one tile size, run tile by tile
        req = descriptor.size_requirements
        tile = max(FIXED_TILE, req.minimum) // req.multiple_of * req.multiple_of
        graphs = _export(net, name, descriptor.scale, path, arch, tile)
        check = checkpoint.check_export(net, graphs[f"{name}.onnx"], [(tile, tile)])
        if check is None:
            raise UsageError(
                f"{path}: {arch}'s exported graph does not run, even at the size it was traced at"
            )
    diff = check.max_diff
    if diff > checkpoint.TOLERANCE:
        raise UsageError(f"{path}: the exported graph differs from torch by {diff} levels; not imported")
    entry = {
        **checkpoint.describe_entry(descriptor, net),
        "license": license,
        "weights": f"{name}.safetensors",
        "onnx": f"{name}.onnx",
        "onnx_uint16": f"{name}.uint16.onnx",
        "check_max_diff": diff,
    }
    if tile is not None:  # torch rebuilds the network, which takes any size; TensorRT's graph would not
        entry |= {
            "tile": tile,
            "tile_overlap": TILE_OVERLAP,
            "runtimes": ["onnxruntime", "openvino", "torch"],
        }
    if not check.batched:  # the graph kept the batch it was traced at (DITN): one picture per call
        entry["batch"] = 1
    return entry, {f"{name}.safetensors": checkpoint.weights_of(descriptor), **graphs}


def _export(net: Any, name: str, scale: int, path: Path, arch: str, tile: int | None) -> dict[str, bytes]:
    """The uint8 and uint16 graphs, with dynamic height and width or fixed at `tile`."""
    import io
    import warnings

    from vsr.models.export import export_onnx

    graphs = {}
    for io_kind, filename in (("uint8", f"{name}.onnx"), ("uint16", f"{name}.uint16.onnx")):
        buffer = io.BytesIO()
        try:
            with warnings.catch_warnings():  # the exporter's notes on constant folding are not the user's
                warnings.simplefilter("ignore")
                size = (tile, tile) if tile else (64, 64)
                export_onnx(net, buffer, scale=scale, io=io_kind, sample_size=size, fixed=tile is not None)  # type: ignore[arg-type]
        except Exception as exc:
            first = str(exc).splitlines()[0][:120] if str(exc) else ""
            raise UsageError(
                f"{path}: {arch} does not export to ONNX ({type(exc).__name__}: {first})"
            ) from None
        graphs[filename] = buffer.getvalue()
    return graphs
