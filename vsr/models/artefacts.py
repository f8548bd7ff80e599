"""The shipped model artefacts (engines/): a manifest, safetensors weights and ONNX graphs.

In a built wheel they live inside the package as vsr/engines; in a source checkout, at the repo root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsr.errors import ModelError, UsageError
from vsr.models.registry import ModelSpec, get_spec

MANIFEST = "manifest.json"


def engines_dir() -> Path:
    """Where the shipped artefacts are: vsr/engines in a wheel, ../engines in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "engines", package.parent / "engines"):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise ModelError(f"no {MANIFEST} beside the vsr package: the installation is incomplete")


@dataclass(frozen=True)
class ShippedModel:
    """One manifest entry with its files resolved."""

    spec: ModelSpec
    onnx: Path
    weights: Path
    onnx_uint16: Path  # the same graph with uint16 I/O, for sources deeper than 8 bits
    entry: dict[str, Any]  # params, GFLOPs, metrics, training recipe, hashes


def load_manifest(root: Path | None = None) -> dict[str, Any]:
    """The manifest as a dict ({"models": {name: entry}})."""
    root = root or engines_dir()
    return json.loads((root / MANIFEST).read_text())


def shipped_models(root: Path | None = None) -> dict[str, ShippedModel]:
    """Every model the manifest ships, by name."""
    root = root or engines_dir()
    models = {}
    for name, entry in load_manifest(root)["models"].items():
        files = (root / entry["onnx"], root / entry["weights"], root / entry["onnx_uint16"])
        models[name] = ShippedModel(get_spec(name), *files, entry)
    return models


def imported_models(root: Path | None = None) -> dict[str, ShippedModel]:
    """Every model `vsr import` put in the user's store (vsr.models.store), by name."""
    from vsr.models import store

    root = root or store.models_dir()
    models = {}
    for name, entry in store.load(root)["models"].items():
        files = (root / entry["onnx"], root / entry["weights"], root / entry["onnx_uint16"])
        models[name] = ShippedModel(store.spec_of(name, entry), *files, entry)
    return models


def all_models() -> dict[str, ShippedModel]:
    """The shipped models, then the imported ones."""
    return {**shipped_models(), **imported_models()}


def shipped_model(name: str, root: Path | None = None) -> ShippedModel:
    """The shipped (or, without `root`, imported) model `name`; UsageError naming the known ones otherwise."""
    models = shipped_models(root) if root is not None else all_models()
    if name not in models:
        raise UsageError(f"model {name!r} is neither shipped nor imported; known: {', '.join(models)}")
    model = models[name]
    for path in (model.onnx, model.onnx_uint16):
        if not path.is_file():
            raise ModelError(f"{path}: missing from the installation")
    return model
