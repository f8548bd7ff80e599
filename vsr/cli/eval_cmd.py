"""`vsr eval`: PSNR/SSIM of a shipped model on a folder of images, on the published protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import vsr.api
from vsr.cli import app, choices


@app.command("eval")
def eval_command(
    model: Annotated[str, typer.Option(help="Shipped model (see `vsr models`).")],
    data: Annotated[Path, typer.Option(help="Folder of clean reference images (e.g. Set5).")],
    scale: Annotated[int | None, typer.Option(help="SR factor; must match the model's.")] = None,
    task: Annotated[choices.Task | None, typer.Option(help="Must match the model's.")] = None,
    sigma: Annotated[float | None, typer.Option(help="Denoise: Gaussian noise σ on 0..255.")] = None,
    jpeg_quality: Annotated[int | None, typer.Option(help="Denoise: JPEG quality (Pillow).")] = None,
    h264_crf: Annotated[int | None, typer.Option(help="Denoise: H.264 intra CRF (libx264).")] = None,
    threads: Annotated[int, typer.Option(min=0, help="Inference threads; 0 = one per core.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score a model against its baseline: bicubic for SR (Y, MATLAB protocol), the degraded input for
    denoising (RGB for Gaussian noise, Y for JPEG/H.264)."""
    result = vsr.api.evaluate(
        model,
        data,
        task=choices.value(task),
        scale=scale,
        sigma=sigma,
        jpeg_quality=jpeg_quality,
        h264_crf=h264_crf,
        threads=threads,
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"{model} on {data.name}: {result.protocol}")
    for column in ("image", "PSNR", "SSIM", f"{result.baseline} PSNR", f"{result.baseline} SSIM"):
        table.add_column(column, justify="left" if column == "image" else "right")
    rows = [(s.name, s.psnr, s.ssim, s.baseline_psnr, s.baseline_ssim) for s in result.scores]
    for name, *values in rows:
        table.add_row(name, *_cells(*values))
    table.add_section()
    mean = result.mean
    table.add_row("mean", *_cells(mean["psnr"], mean["ssim"], mean["baseline_psnr"], mean["baseline_ssim"]))
    Console().print(table)


def _cells(psnr: float, ssim: float, base_psnr: float, base_ssim: float) -> list[str]:
    return [f"{psnr:.2f}", f"{ssim:.4f}", f"{base_psnr:.2f}", f"{base_ssim:.4f}"]
