"""`vsr eval`: PSNR/SSIM of a shipped model on a folder of images, on the published protocol."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
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
    models: Annotated[
        str | None,
        typer.Option(
            help="Side by side with bicubic: shipped, imported (vsr import) or chained models, a,b,c."
        ),
    ] = None,
    metrics: Annotated[
        str, typer.Option(help="Upscalers: psnr,ssim and any of vmaf,vmaf_neg,erqa (the quality extra),niqe.")
    ] = "psnr,ssim",
    scale: Annotated[int | None, typer.Option(help="SR factor; must match the model's (default 2).")] = None,
    task: Annotated[choices.Task | None, typer.Option(help="Must match the model's.")] = None,
    degrade: Annotated[
        str,
        typer.Option(
            help="Damage to the LR first: clean, h264:crf=N, mpeg2:q=N, mpeg4:q=N, jpeg:q=N or "
            "noise:sigma=N, optionally after blur:sigma=S (blur:sigma=1.0,h264:crf=23); or tape."
        ),
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
    extra = vsr.api.parse_metrics(metrics)
    if model and models:
        raise UsageError("--model scores one model image by image; --models puts several side by side")
    # bicubic is always the first row; naming it is allowed
    names = [m for m in (n.strip() for n in (models or "").split(",")) if m and m != "bicubic"] or None
    if flicker:
        crf = 28 if degrade == "clean" else _crf(degrade)
        steady = vsr.api.stability(
            data, scale=scale or 2, crf=crf, models=[model] if model else names, **runtime
        )
        _side_by_side(steady, data, ("flicker (Y std)", "× bicubic"), _flicker_cells, as_json)
        return
    if model is None:
        names = (
            [m.strip() for m in models.split(",") if m.strip() and m.strip() != "bicubic"] if models else None
        )
        comparison = vsr.api.compare(
            data, scale=scale or 2, degrade=degrade, models=names, metrics=extra, **runtime
        )
        columns = ("PSNR", "SSIM", *(_LABELS[m] for m in extra))
        _side_by_side(comparison, data, columns, lambda m: _quality_cells(m, extra), as_json)
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
        metrics=extra,
        **runtime,  # type: ignore[arg-type]
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"{model} on {data.name}: {result.protocol}")
    labels = ("PSNR", "SSIM", *(_LABELS[m] for m in extra))
    for column in ("image", *labels, *(f"{result.baseline} {label}" for label in labels)):
        table.add_column(column, justify="left" if column == "image" else "right")
    rows = [(s.name, {**asdict(s), **s.extra}) for s in result.scores]
    for name, values in [*rows, ("mean", result.mean)]:
        if name == "mean":
            table.add_section()
        base = {k.removeprefix("baseline_"): v for k, v in values.items() if k.startswith("baseline_")}
        table.add_row(name, *_quality_cells(values, extra), *_quality_cells(base, extra))
    Console().print(table)


_LABELS = {"vmaf": "VMAF", "vmaf_neg": "VMAF NEG", "erqa": "ERQA", "niqe": "NIQE ↓"}
_FORMATS = {"psnr": "{:.2f}", "ssim": "{:.4f}", "vmaf": "{:.2f}", "vmaf_neg": "{:.2f}", "erqa": "{:.4f}"}
_FORMATS["niqe"] = "{:.3f}"


def _crf(degrade: str) -> int:
    kind, _, value = degrade.partition(":crf=")
    if kind != "h264" or not value.isdigit():
        raise UsageError("--flicker codes the stills with x264: give --degrade h264:crf=N or leave it")
    return int(value)


def _quality_cells(m: dict[str, float], extra: tuple[str, ...] = ()) -> list[str]:
    return [_FORMATS[k].format(m[k]) for k in ("psnr", "ssim", *extra)]


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
