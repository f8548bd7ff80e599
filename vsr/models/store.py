"""The user's model store: models imported with `vsr import`, beside (never inside) the shipped ones.

$VSR_MODELS_DIR, else the user data directory platformdirs gives (~/.local/share/vsr/models on Linux),
holds each imported model's files (NAME.safetensors, NAME.onnx, NAME.uint16.onnx, as engines/ does) and a
manifest.json of the same shape as the shipped one, each entry marked "imported" with its source,
architecture and licence. Torch-free: listing and running imported models needs no torch.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from vsr.errors import UsageError
from vsr.files import atomic_write
from vsr.models.registry import REGISTRY, ModelSpec

MANIFEST = "manifest.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def models_dir() -> Path:
    """Where imported models live: $VSR_MODELS_DIR, else the platform's user data directory."""
    if explicit := os.environ.get("VSR_MODELS_DIR"):
        return Path(explicit)
    import platformdirs

    return platformdirs.user_data_path("vsr") / "models"


def load(root: Path | None = None) -> dict[str, Any]:
    """The store's manifest ({"models": {}} when nothing was imported)."""
    path = (root or models_dir()) / MANIFEST
    if not path.is_file():
        return {"models": {}}
    return json.loads(path.read_text())


def save(manifest: dict[str, Any], root: Path | None = None) -> None:
    """Write the manifest atomically: a crash leaves the old one or the new one, never half of either."""
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    manifest["models"] = dict(sorted(manifest["models"].items()))
    atomic_write(root / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def model_name(stem: str) -> str:
    """A store name from a file name: lower case, letters, digits, '.', '_' and '-' only."""
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:64]
    return name or "model"


def check_name(name: str, shipped: set[str]) -> None:
    """UsageError for a name that is malformed or taken by a shipped model."""
    if not _NAME.match(name):
        raise UsageError(
            f"model name {name!r}: use lower-case letters, digits, '.', '_' and '-' (64 at most)"
        )
    if name in shipped or name in REGISTRY:
        raise UsageError(f"{name!r} is a shipped model's name; choose another with --name")


def spec_of(name: str, entry: dict[str, Any]) -> ModelSpec:
    """The spec an imported entry runs as: RGB in and out (grey models run on luma inside their graph)."""
    task = "sr" if entry["scale"] > 1 else "denoise"
    kwargs = {"features": entry.get("widest_features", 64)}
    return ModelSpec(name, f"imported:{entry['arch']}", task, "imported", entry["scale"], kwargs)


def add(root: Path, name: str, entry: dict[str, Any], files: dict[str, bytes]) -> None:
    """Put a model's files in the store (each through a temporary name), then its manifest entry: an import
    that fails on the way leaves the manifest as it was."""
    root.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for filename, data in files.items():
            tmp = root / f".{filename}.part"
            tmp.write_bytes(data)
            staged.append((tmp, root / filename))
        for tmp, final in staged:
            tmp.replace(final)
    except OSError:
        for tmp, _final in staged:
            tmp.unlink(missing_ok=True)
        raise
    manifest = load(root)  # read again: another import may have finished meanwhile
    manifest["models"][name] = entry
    save(manifest, root)
