"""`vsr export`: ship a finished training run as ONNX + safetensors with a measured manifest entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vsr.cli import app
from vsr.errors import UsageError


@app.command("export")
def export_command(
    model: Annotated[str, typer.Option(help="Registered model name.")],
    run: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Run folder of `vsr train`.")],
    engines: Annotated[Path, typer.Option(file_okay=False, help="Artefact folder to write into.")] = Path(
        "engines"
    ),
    data: Annotated[
        Path,
        typer.Option(exists=True, help="Data root with sr-eval/Set5, sr-eval/Set14, denoise-eval/LIVE1."),
    ] = Path("../shared/data"),
    trained_on: Annotated[str, typer.Option(help="Device the run trained on, for the record.")] = "cpu",
    recipe: Annotated[
        str, typer.Option(help="Where the run's recipe is written down.")
    ] = "recipes/train_gpu.sh",
) -> None:
    """Export weights and ONNX into ENGINES and record params, GFLOPs, recipe and measured quality."""
    try:
        from vsr.train.release import ship
    except ImportError as exc:
        raise UsageError(f"export needs the train extra (pip install 'vsr[train]'): {exc}") from None
    engines.mkdir(parents=True, exist_ok=True)
    entry = ship(model, run, engines, data, trained_on=trained_on, recipe=recipe)
    typer.echo(json.dumps({model: entry}, indent=1, ensure_ascii=False))
