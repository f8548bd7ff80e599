"""`vsr eval`: PSNR/SSIM of a shipped model on a folder of images, on the published protocol."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import vsr.api
from vsr.cli import app, choices
from vsr.errors import UsageError


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option(help="Folder of clean reference images (e.g. Set5).")],
    model: Annotated[
        str | None, typer.Option(help="Shipped model; default: bicubic and every upscaler of --scale.")
    ] = None,
    scale: Annotated[int | None, typer.Option(help="SR factor; must match the model's (default 2).")] = None,
    task: Annotated[choices.Task | None, typer.Option(help="Must match the model's.")] = None,
    degrade: Annotated[
        str, typer.Option(help="Damage to the LR first: clean, h264:crf=N, jpeg:q=N or noise:sigma=N.")
    ] = "clean",
    sigma: Annotated[float | None, typer.Option(help="Denoise: Gaussian noise σ on 0..255.")] = None,
    jpeg_quality: Annotated[int | None, typer.Option(help="Denoise: JPEG quality (Pillow).")] = None,
    h264_crf: Annotated[int | None, typer.Option(help="Denoise: H.264 intra CRF (libx264).")] = None,
    backend: Annotated[
        choices.Backend, typer.Option(help="Runtime to score; the manifest's figures are ONNX Runtime fp32.")
    ] = choices.Backend("onnxruntime"),
    precision: Annotated[
        choices.Precision | None, typer.Option(help="Precision to score (default: the backend's own).")
    ] = None,
    threads: Annotated[int, typer.Option(min=0, help="Inference threads; 0 = one per core.")] = 0,
    flicker: Annotated[
        bool,
        typer.Option(help="Score flicker on stills held 2 s and coded by x264 (--degrade h264:crf=N, 28)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score models against bicubic on the published protocol (Y, MATLAB bicubic LR, optionally damaged by a
    codec or noise first), side by side; or one model per image, a denoiser against its degraded input."""
    runtime = {
        "backend": str(choices.value(backend)),
        "precision": choices.value(precision),
        "threads": threads,
    }
    if flicker:
        crf = 28 if degrade == "clean" else _crf(degrade)
        models = [model] if model else None
        steady = vsr.api.stability(data, scale=scale or 2, crf=crf, models=models, **runtime)
        _side_by_side(steady, data, ("flicker (Y std)", "× bicubic"), _flicker_cells, as_json)
        return
    if model is None:
        comparison = vsr.api.compare(data, scale=scale or 2, degrade=degrade, **runtime)
        _side_by_side(comparison, data, ("PSNR", "SSIM"), _quality_cells, as_json)
        return
    result = vsr.api.evaluate(
        model,
        data,
        task=choices.value(task),
        scale=scale,
        sigma=sigma,
        jpeg_quality=jpeg_quality,
        h264_crf=h264_crf,
        degrade=degrade,
        **runtime,  # type: ignore[arg-type]
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


def _crf(degrade: str) -> int:
    kind, _, value = degrade.partition(":crf=")
    if kind != "h264" or not value.isdigit():
        raise UsageError("--flicker codes the stills with x264: give --degrade h264:crf=N or leave it")
    return int(value)


def _quality_cells(m: dict[str, float]) -> list[str]:
    return [f"{m['psnr']:.2f}", f"{m['ssim']:.4f}"]


def _flicker_cells(m: dict[str, float]) -> list[str]:
    return [f"{m['flicker']:.4f}", f"{m.get('vs_bicubic', 1.0):.3f}"]


def _side_by_side(
    result: vsr.api.Comparison,
    data: Path,
    columns: tuple[str, ...],
    cells: Callable[[dict[str, float]], list[str]],
    as_json: bool,
) -> None:
    """A row per model (bicubic first), or the JSON record."""
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"{data.name}: {result.protocol}")
    for column in ("model", *columns):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in result.means.items():
        table.add_row(name, *cells(m))
    Console().print(table)
