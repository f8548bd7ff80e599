"""`vsr bench`: model-only throughput grid and an end-to-end stage breakdown; JSON and a PNG chart."""

from __future__ import annotations

import dataclasses
import json
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vsr.cli import app
from vsr.errors import UsageError

if TYPE_CHECKING:
    from vsr.bench import EndToEnd, GridPoint


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@app.command("bench")
def bench_command(
    models: Annotated[
        str | None, typer.Option(help="Comma-separated shipped models; default by device.")
    ] = None,
    resolutions: Annotated[
        str | None, typer.Option(help="Input sizes among 360p,480p,720p,1080p; default by device.")
    ] = None,
    batches: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1,4",
    precisions: Annotated[
        str | None, typer.Option(help="fp32,fp16,bf16; default fp32 (CPU), fp32,fp16 (CUDA).")
    ] = None,
    backends: Annotated[
        str | None, typer.Option(help="onnxruntime,torch,tensorrt; default: what this machine has.")
    ] = None,
    seconds: Annotated[float, typer.Option(min=0.1, help="Timing per grid point.")] = 1.0,
    e2e: Annotated[bool, typer.Option(help="Also time a whole job stage by stage.")] = True,
    input: Annotated[
        Path | None, typer.Option(help="Clip for the end-to-end part; default: a synthetic one.")
    ] = None,
    e2e_model: Annotated[
        str | None, typer.Option(help="Model of the end-to-end part; default by device.")
    ] = None,
    e2e_backend: Annotated[str, typer.Option(help="Backend of the end-to-end part.")] = "auto",
    e2e_size: Annotated[
        str | None, typer.Option(help="Synthetic clip size; 360p (CPU) or 1080p (CUDA).")
    ] = None,
    e2e_frames: Annotated[int, typer.Option(min=4, help="Synthetic clip length.")] = 48,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG chart here (needs matplotlib).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Benchmark the models (frames/s, megapixels/s, ms per batch, peak GPU memory) and the pipeline."""
    from vsr import bench
    from vsr.backends.select import _installed, cuda_available

    cuda = cuda_available()
    res_list = _list(resolutions) if resolutions else (["720p", "1080p"] if cuda else ["360p"])
    if unknown := [r for r in res_list if r not in bench.RESOLUTIONS]:
        raise UsageError(f"unknown resolution {unknown[0]!r}; choose among {', '.join(bench.RESOLUTIONS)}")
    try:
        batch_list = [int(b) for b in _list(batches)]
    except ValueError:
        raise UsageError(f"--batches takes integers, got {batches!r}") from None
    if not batch_list or min(batch_list) < 1:
        raise UsageError("--batches takes positive integers")
    default_backends = (
        (["tensorrt"] if _installed("tensorrt") else []) + ["torch"] if cuda else ["onnxruntime"]
    )
    if not cuda and _installed("torch"):
        default_backends.append("torch")
    model_list = (
        _list(models)
        if models
        else (["espcn-x2", "compact-x2", "compact-x4"] if cuda else ["espcn-x2", "compact-x2"])
    )
    log = (lambda m: None) if as_json else (lambda m: typer.echo(m, err=True))
    points = bench.model_grid(
        model_list,
        res_list,
        batch_list,
        _list(precisions) if precisions else (["fp32", "fp16"] if cuda else ["fp32"]),
        _list(backends) if backends else default_backends,
        seconds=seconds,
        log=log,
    )
    end_to_end = None
    if e2e:
        with tempfile.TemporaryDirectory(prefix="vsr-bench-") as tmp:
            clip = input
            if clip is None:
                h, w = bench.RESOLUTIONS[e2e_size or ("1080p" if cuda else "360p")]
                clip = bench.synthetic_clip(Path(tmp) / "clip.mkv", height=h, width=w, frames=e2e_frames)
            end_to_end = bench.end_to_end(
                clip,
                e2e_model or ("compact-x2" if cuda else "espcn-x2"),
                e2e_backend,
                precision=None,
                batch=None,
                out_dir=Path(tmp),
            )
    results = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "gpu": _gpu_name()},
        "model_only": [dataclasses.asdict(p) for p in points],
        "end_to_end": dataclasses.asdict(end_to_end) if end_to_end else None,
    }
    if out is not None:
        out.write_text(json.dumps(results, indent=1) + "\n")
    if chart is not None:
        bench.chart(points, end_to_end, chart)
    if as_json:
        print(json.dumps(results, indent=1))
        return
    _print(points, end_to_end)


def _gpu_name() -> str | None:
    from vsr.backends.select import cuda_available

    if not cuda_available():
        return None
    import torch

    return torch.cuda.get_device_name()


def _print(points: list[GridPoint], e2e: EndToEnd | None) -> None:
    console = Console()
    table = Table(title="model only")
    for col in (
        "model",
        "backend",
        "precision",
        "input",
        "batch",
        "frames/s",
        "out MP/s",
        "ms/batch",
        "GPU MiB",
    ):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    for p in points:
        cells = [p.model, p.backend, p.precision, p.resolution, str(p.batch)]
        if p.skipped:
            table.add_row(*cells, f"skipped: {p.skipped}", "", "", "")
        else:
            table.add_row(
                *cells,
                f"{p.frames_per_s:.2f}",
                f"{p.output_megapixels_per_s:.1f}",
                f"{p.ms_per_batch:.1f}",
                "-" if p.peak_gpu_mib is None else f"{p.peak_gpu_mib:.0f}",
            )
    console.print(table)
    if e2e is not None:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in e2e.stages_fps.items())
        console.print(
            f"end to end ({e2e.model}, {e2e.path}, batch {e2e.batch}): {e2e.end_to_end_fps:.2f} fps; "
            f"stages alone: {stages}; efficiency {e2e.efficiency}; naive loop {e2e.naive_fps:.2f} fps "
            f"(×{e2e.speedup_over_naive})"
        )
