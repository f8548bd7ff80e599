"""`vsr import`: bring a community checkpoint or an ONNX file (or a folder of them) into the model store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import vsr.api
from vsr.cli import app
from vsr.errors import BadInputError


@app.command("import")
def import_command(
    path: Annotated[
        Path, typer.Argument(help="A .pth/.pt/.ckpt/.safetensors/.onnx file, or a folder of them.")
    ],
    name: Annotated[str | None, typer.Option(help="Name to run it by; default: the file's name.")] = None,
    scale: Annotated[
        int | None, typer.Option(min=1, help="Refuse the model unless it upscales by this factor.")
    ] = None,
) -> None:
    """Detect a checkpoint's architecture, scale and channels (spandrel), export vsr's graphs into the model
    store ($VSR_MODELS_DIR), check them against torch, and print what was found. Then `vsr upscale --model
    NAME` runs it on any backend."""
    result = vsr.api.import_model(path, name=name, scale=scale)
    results = result if isinstance(result, list) else [result]
    table = Table(title=f"imported into {vsr.api.models_dir()}")
    for column in ("name", "architecture", "scale", "params", "check", "seconds", "status"):
        table.add_column(column, justify="right" if column in ("params", "seconds") else "left")
    for r in results:
        table.add_row(
            r.name,
            r.arch or "–",
            f"×{r.scale}" if r.scale else "–",
            f"{r.params:,}" if r.params is not None else "–",
            "–" if r.max_diff is None else f"≤{r.max_diff} level",
            f"{r.seconds:.1f}" if r.ok else "–",
            "imported" if r.ok else r.status,
        )
    Console().print(table)
    if isinstance(result, list) and not any(r.ok for r in results):
        raise BadInputError(f"{path}: nothing imported")
