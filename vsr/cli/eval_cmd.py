"""`vsr eval`: PSNR/SSIM of a shipped model on a folder of images, on the published protocol."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vsr.cli import app
from vsr.errors import UsageError


@app.command("eval")
def eval_command(
    model: Annotated[str, typer.Option(help="Shipped model (see `vsr models`).")],
    data: Annotated[Path, typer.Option(help="Folder of clean reference images (e.g. Set5).")],
    scale: Annotated[int | None, typer.Option(help="SR factor; must match the model's.")] = None,
    task: Annotated[str | None, typer.Option(help="sr or denoise; must match the model's.")] = None,
    sigma: Annotated[float | None, typer.Option(help="Denoise: Gaussian noise σ on 0..255.")] = None,
    jpeg_quality: Annotated[int | None, typer.Option(help="Denoise: JPEG quality (Pillow).")] = None,
    h264_crf: Annotated[int | None, typer.Option(help="Denoise: H.264 intra CRF (libx264).")] = None,
    threads: Annotated[int, typer.Option(min=0, help="Inference threads; 0 = one per core.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score a model against its baseline: bicubic for SR (Y, MATLAB protocol), the degraded input for
    denoising (RGB for Gaussian noise, Y for JPEG/H.264)."""
    from vsr import evaluate
    from vsr.backends.ort_backend import OrtBackend
    from vsr.models.artefacts import shipped_model

    shipped = shipped_model(model)
    spec = shipped.spec
    if task is not None and task != spec.task:
        raise UsageError(f"{model} is a {spec.task} model, not {task}")
    if scale is not None and scale != spec.scale:
        raise UsageError(f"{model} works at ×{spec.scale}, not ×{scale}")
    images = evaluate.load_eval_images(data)
    with OrtBackend(shipped.onnx, threads=threads) as backend:

        def predict(img):  # type: ignore[no-untyped-def]
            return backend.run(img[None])[0]

        if spec.task == "sr":
            protocol = f"Y-PSNR, ×{spec.scale}, MATLAB bicubic LR, shave {spec.scale}"
            scores = evaluate.evaluate_sr(images, spec.scale, predict)
        else:
            chosen = [
                (n, v)
                for n, v in (("sigma", sigma), ("jpeg", jpeg_quality), ("h264", h264_crf))
                if v is not None
            ]
            if len(chosen) != 1:
                raise UsageError("a denoiser is scored on exactly one of --sigma, --jpeg-quality, --h264-crf")
            kind, level = chosen[0]
            if kind == "sigma":
                degrade, on_y = evaluate.noise_degrade(float(level)), False
            elif kind == "jpeg":
                degrade, on_y = evaluate.jpeg_degrade(int(level)), True
            else:
                degrade, on_y = (lambda img, _k: evaluate.h264(img, int(level))), True
            protocol = f"{'Y' if on_y else 'RGB'}-PSNR, {kind} {level}"
            scores = evaluate.evaluate_denoise(images, degrade, predict, on_y=on_y)
    mean = evaluate.mean_scores(scores)
    baseline = "bicubic" if spec.task == "sr" else "input"
    if as_json:
        result = {"model": model, "data": str(data), "protocol": protocol, "baseline": baseline, "mean": mean}
        result["images"] = [dataclasses.asdict(s) for s in scores]
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"{model} on {data.name}: {protocol}")
    for column in ("image", "PSNR", "SSIM", f"{baseline} PSNR", f"{baseline} SSIM"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for s in scores:
        table.add_row(
            s.name, f"{s.psnr:.2f}", f"{s.ssim:.4f}", f"{s.baseline_psnr:.2f}", f"{s.baseline_ssim:.4f}"
        )
    table.add_section()
    table.add_row(
        "mean",
        f"{mean['psnr']:.2f}",
        f"{mean['ssim']:.4f}",
        f"{mean['baseline_psnr']:.2f}",
        f"{mean['baseline_ssim']:.4f}",
    )
    Console().print(table)
