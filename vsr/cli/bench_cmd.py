"""`vsr bench`: model-only throughput grid and an end-to-end stage breakdown; JSON and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vsr.cli import app
from vsr.errors import UsageError

if TYPE_CHECKING:
    from vsr.bench import BenchResult


def _list(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


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
        str | None, typer.Option(help="fp32,fp16,bf16; default fp32,bf16 (CPU), fp32,fp16 (CUDA).")
    ] = None,
    backends: Annotated[
        str | None,
        typer.Option(help="onnxruntime,openvino,torch,tensorrt; default: what this machine has."),
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

    try:
        batch_list = [int(b) for b in _list(batches) or []]
    except ValueError:
        raise UsageError(f"--batches takes integers, got {batches!r}") from None
    result = bench.run(
        models=_list(models),
        resolutions=_list(resolutions),
        batches=batch_list,
        precisions=_list(precisions),
        backends=_list(backends),
        seconds=seconds,
        e2e=e2e,
        clip=input,
        e2e_model=e2e_model,
        e2e_backend=e2e_backend,
        e2e_size=e2e_size,
        e2e_frames=e2e_frames,
        log=(lambda m: None) if as_json else (lambda m: typer.echo(m, err=True)),
        out=out,
    )
    record = json.dumps(result.to_dict(), indent=1)
    if chart is not None:
        bench.chart(result.model_only, result.end_to_end, chart)
    print(record) if as_json else _print(result)


def _print(result: BenchResult) -> None:
    console = Console()
    table = Table(title="model only")
    columns = (
        "model",
        "backend",
        "precision",
        "input",
        "batch",
        "frames/s",
        "out MP/s",
        "ms/batch",
        "GPU MiB",
        "Set5 dB",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    for p in result.model_only:
        cells = [p.model, p.backend, p.precision, p.resolution, str(p.batch)]
        if p.skipped:
            table.add_row(*cells, f"skipped: {p.skipped}", "", "", "", "")
        else:
            gpu = "-" if p.peak_gpu_mib is None else f"{p.peak_gpu_mib:.0f}"
            cost = "-" if p.set5_psnr_cost_db is None else f"{-p.set5_psnr_cost_db or 0.0:+.3f}"
            speed = [f"{p.frames_per_s:.2f}", f"{p.output_megapixels_per_s:.1f}", f"{p.ms_per_batch:.1f}"]
            table.add_row(*cells, *speed, gpu, cost)
    table.caption = "Set5 dB: PSNR against ONNX Runtime fp32, as the manifest records it"
    console.print(table)
    if (e := result.end_to_end) is not None:
        stages = ", ".join(f"{k} {1000 / v:.1f}" for k, v in e.stages_fps.items())
        console.print(
            f"end to end ({e.model}, {e.path}, batch {e.batch}): {e.end_to_end_fps:.2f} fps; "
            f"ms per frame alone: {stages}; {e.bound} bound {e.bound_fps:.2f} fps, efficiency "
            f"{e.efficiency}; naive loop {e.naive_fps:.2f} fps (×{e.speedup_over_naive})"
        )
