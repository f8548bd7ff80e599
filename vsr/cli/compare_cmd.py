"""`vsr compare`: the same frames through several chains and bicubic, on one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import vsr.api
from vsr.cli import app, choices


@app.command("compare")
def compare_command(
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="Video to compare on.", show_default=False)],
    models: Annotated[
        str, typer.Option(help="Chains beside bicubic: auto, shipped, imported or a+b, comma-separated.")
    ] = "auto",
    scale: Annotated[int, typer.Option(min=2, help="SR factor of every chain.")] = 2,
    frames: Annotated[int, typer.Option(min=1, max=32, help="Frames spread evenly over the clip.")] = 4,
    at: Annotated[
        list[str] | None, typer.Option(help="A moment to show instead (seconds or [HH:]MM:SS); repeatable.")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="The same video at the output size: adds PSNR, VMAF and ERQA per frame."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="The page; default INPUT's name + .compare.html.")] = None,
    backend: Annotated[choices.Backend, typer.Option(help="Runtime of every chain.")] = choices.Backend(
        "auto"
    ),
    threads: Annotated[int, typer.Option(min=0, help="Inference threads; 0 = one per core.")] = 0,
) -> None:
    """Write a page with a before/after slider, a synchronised zoom, per-frame metrics, each chain's speed
    and the chain `auto` chose and why. It opens offline: every picture and script is inside it."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    result = vsr.api.compare_page(
        input, out, models=names, scale=scale, frames=frames,
        at=at or None, reference=reference,
        backend=str(choices.value(backend)), threads=threads,
    )  # fmt: skip
    if result.auto:
        typer.echo(result.auto)
    for row in result.chains:
        scores = "  ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in row.metrics.items())
        typer.echo(f"{row.name:>16}  {row.chain:32} {row.ms_per_frame:8.1f} ms/frame  {scores}")
    typer.echo(f"page: {result.path} ({result.bytes / 1e6:.1f} MB, {len(result.times)} frames)")
