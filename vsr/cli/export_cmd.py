"""`vsr export`: ship a finished training run as ONNX + safetensors with a measured manifest entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import vsr.api
from vsr.cli import app
from vsr.errors import UsageError


@app.command("export")
def export_command(
    model: Annotated[str, typer.Option(help="Registered model name; with --remeasure, or 'all'.")],
    run: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Run folder of `vsr train`.")
    ] = None,
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
    remeasure: Annotated[
        bool,
        typer.Option(help="Only re-measure shipped models: PSNR per CPU precision and on compressed LR."),
    ] = False,
    calibrate_auto: Annotated[
        bool,
        typer.Option(
            help="Only re-run the calibration of --model auto (with --model all): every candidate chain at "
            "every level of damage, written into the manifest."
        ),
    ] = False,
    graphs_only: Annotated[
        bool,
        typer.Option(
            help="Only re-export shipped models' ONNX graphs from their shipped weights (after a change "
            "of the graphs' interface); scores stay as measured."
        ),
    ] = False,
    scale: Annotated[
        list[int] | None,
        typer.Option(help="With --calibrate-auto: only this scale (repeat for more); default every one."),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            help="With --calibrate-auto: measure every cell again, not only those the table lacks (new "
            "levels, new models, models whose graph changed)."
        ),
    ] = False,
    damage_only: Annotated[
        bool,
        typer.Option(
            help="With --calibrate-auto: re-measure only the sources' damage (after a change to how "
            "vsr.media.assess measures), keeping every chain's recorded PSNR."
        ),
    ] = False,
) -> None:
    """Export weights and ONNX into ENGINES and record params, GFLOPs, recipe and measured quality (also per
    CPU runtime and precision: ONNX Runtime fp32, OpenVINO fp32 and bf16)."""
    try:
        from vsr.train import release
    except ImportError as exc:
        raise UsageError(f"export needs the train extra (pip install 'vsr[train]'): {exc}") from None
    if calibrate_auto:
        if model != "all":
            raise UsageError("--calibrate-auto weighs every shipped chain: use --model all")
        from vsr.train.calibrate import SCALES, calibrate

        if damage_only and fresh:
            raise UsageError("--damage-only measures no chain: --fresh does not apply to it")

        if unknown := sorted(set(scale or ()) - set(SCALES)):
            raise UsageError(f"--scale {unknown[0]}: auto is calibrated for {sorted(SCALES)}")
        table = calibrate(
            engines, data, scale, log=lambda line: typer.echo(line, err=True), damage_only=damage_only,
            fresh=fresh,
        )  # fmt: skip
        typer.echo(json.dumps(table, indent=1, ensure_ascii=False))
        return
    if damage_only or fresh or scale:
        raise UsageError("--damage-only, --fresh and --scale are options of --calibrate-auto")
    if graphs_only:
        names = list(vsr.api.models(imported=False)) if model == "all" else [model]
        typer.echo(json.dumps(release.export_graphs(names, engines), indent=1))
        return
    if remeasure:
        names = list(vsr.api.models(imported=False)) if model == "all" else [model]
        typer.echo(json.dumps(release.remeasure(names, engines, data), indent=1))
        return
    if run is None:
        raise UsageError("--run is needed to export a training run")
    engines.mkdir(parents=True, exist_ok=True)
    entry = release.ship(model, run, engines, data, trained_on=trained_on, recipe=recipe)
    typer.echo(json.dumps({model: entry}, indent=1, ensure_ascii=False))
