"""`vsr build-engine`: compile a model's ONNX graph into a cached TensorRT plan for this GPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

import vsr.api
from vsr.cli import app, choices


@app.command("build-engine")
def build_engine_command(
    model: Annotated[str, typer.Option(help="Shipped model name, or an ONNX file with uint8 NHWC I/O.")],
    precision: Annotated[
        choices.Precision, typer.Option(help="Shipped models; an ONNX file keeps its graph's types (fp32).")
    ] = "fp16",  # type: ignore[assignment]
    min_shape: Annotated[
        str | None, typer.Option("--min", help="Smallest input NxHxW; default 1x32x32.")
    ] = None,
    opt_shape: Annotated[
        str | None, typer.Option("--opt", help="Shape to tune for, NxHxW; default 4x1080x1920.")
    ] = None,
    max_shape: Annotated[
        str | None, typer.Option("--max", help="Largest input NxHxW; default 4x2160x3840.")
    ] = None,
    workspace: Annotated[int, typer.Option(min=64, help="Builder workspace limit, MiB.")] = 4096,
    out: Annotated[Path | None, typer.Option(help="Also copy the plan (and its .json sidecar) here.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Build even if a valid cached plan exists.")] = False,
) -> None:
    """Build (or find in the cache) the TensorRT plan of a model; prints the plan's path and cache key."""
    cached, key = vsr.api.build_engine(
        model,
        precision=str(choices.value(precision)),
        profile=vsr.api.make_profile(min_shape, opt_shape, max_shape),  # validated before any GPU work
        workspace_mib=workspace,
        rebuild=rebuild,
        log=lambda msg: typer.echo(msg, err=True),
    )
    if out is not None:
        shutil.copyfile(cached.plan, out)
        shutil.copyfile(cached.sidecar, out.with_suffix(".json"))
    typer.echo(
        json.dumps({"plan": str(out or cached.plan), "sidecar": str(cached.sidecar), "key": key.digest()})
    )
