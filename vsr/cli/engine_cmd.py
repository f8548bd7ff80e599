"""`vsr build-engine`: compile a model's ONNX graph into a cached TensorRT plan for this GPU."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from vsr.cli import app
from vsr.errors import UsageError


@app.command("build-engine")
def build_engine_command(
    model: Annotated[str, typer.Option(help="Shipped model name, or an ONNX file with uint8 NHWC I/O.")],
    precision: Annotated[
        str, typer.Option(help="fp16, bf16 or fp32 (shipped models; a file keeps its graph's types).")
    ] = "fp16",
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
    from vsr.backends.trt_plan import make_profile

    if precision not in ("fp32", "fp16", "bf16"):
        raise UsageError(f"unknown precision {precision!r}; choose fp16, bf16 or fp32")
    profile = make_profile(min_shape, opt_shape, max_shape)  # validated before any GPU work
    from vsr.backends.tensorrt_backend import ensure_plan, onnx_for

    source = Path(model)
    if source.suffix == ".onnx":
        if not source.is_file():
            raise UsageError(f"{source}: no such file")
        if precision != "fp32":
            raise UsageError(
                "an ONNX file builds in its own types: export it in fp16/bf16, pass --precision fp32"
            )
        data = source.read_bytes()
        name, digest, onnx = source.stem, hashlib.sha256(data).hexdigest(), lambda: data
    else:
        from vsr.models.artefacts import shipped_model

        shipped = shipped_model(model)
        name, digest = model, shipped.entry["sha256"][shipped.onnx.name]
        onnx = lambda: onnx_for(shipped, precision)  # noqa: E731  (built only on a cache miss)
    cached, key = ensure_plan(
        name,
        digest,
        onnx,
        precision=precision,  # type: ignore[arg-type]
        profile=profile,
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
