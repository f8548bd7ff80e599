"""`vsr models`: the shipped models with their size, cost and measured quality."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vsr.cli import app


@app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest entries as JSON.")] = False,
) -> None:
    """List every shipped model: task, scale, parameters, GFLOPs per 1080p input frame, Set5/Set14 PSNR."""
    from vsr.models.artefacts import load_manifest

    models = load_manifest()["models"]
    if as_json:
        print(json.dumps(models, indent=2, ensure_ascii=False))
        return
    table = Table(title="shipped models: Y-PSNR dB (gain on bicubic), GFLOPs per 1080p input")
    for column in ("name", "scale", "params", "GFLOPs", "Set5", "Set14"):
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=True)
    for name, e in models.items():
        scores = [e["metrics"][d] for d in ("Set5", "Set14")] if "metrics" in e else []
        quality = [f"{s['psnr']:.2f} (+{s['psnr'] - s['baseline_psnr']:.2f})" for s in scores] or ["–", "–"]
        table.add_row(name, f"×{e['scale']}", f"{e['params']:,}", f"{e['gflops_1080p']:.0f}", *quality)
    Console().print(table)
