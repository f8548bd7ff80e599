"""`vsr upscale INPUT OUTPUT`: the main job."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vsr.cli import app
from vsr.errors import UsageError
from vsr.pipeline import JobResult, UpscaleJob, UpscaleRequest, queue
from vsr.pipeline import Progress as JobProgress
from vsr.pipeline.resume import ResumableJob

if TYPE_CHECKING:
    from vsr.models.artefacts import ShippedModel
    from vsr.pipeline.device import DevicePath

# The default model per scale: the fastest shipped one, so a CPU-only machine gets a usable speed.
DEFAULT_MODELS = {2: "espcn-x2", 4: "compact-x4"}


def _choose_model(model: str | None, scale: int | None) -> str:
    from vsr.models.artefacts import shipped_model

    if model is None:
        scale = scale or 2
        if scale not in DEFAULT_MODELS:
            raise UsageError(f"no default model for scale {scale}; choose one of {sorted(DEFAULT_MODELS)}")
        model = DEFAULT_MODELS[scale]
    shipped = shipped_model(model)
    if scale is not None and shipped.spec.scale != scale:
        raise UsageError(f"model {model} upscales ×{shipped.spec.scale}, not ×{scale}")
    return model


@app.command("upscale")
def upscale_command(
    input: Annotated[
        Path, typer.Argument(help="Video file, or a folder of them (never modified).", show_default=False)
    ],
    output: Annotated[
        Path, typer.Argument(help="Output file, or the output folder of a queue.", show_default=False)
    ],
    model: Annotated[
        str | None, typer.Option(help="Shipped model (see `vsr models`); default: by --scale.")
    ] = None,
    scale: Annotated[int | None, typer.Option(help="Upscale factor; picks the default model for it.")] = None,
    denoise: Annotated[
        str | None, typer.Option(help="Denoiser run before the upscaler (e.g. dncnn-color).")
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Frames per inference call; default 2 on the CPU, from free GPU memory."),
    ] = None,
    tile: Annotated[
        int | None,
        typer.Option(min=0, help="GPU: tile side in input pixels (0: whole frames); default from memory."),
    ] = None,
    deinterlace: Annotated[
        str, typer.Option(help="auto (interlaced sources only), on or off: bwdif before the model.")
    ] = "auto",
    field_rate: Annotated[bool, typer.Option(help="When deinterlacing, one output frame per field.")] = False,
    profile: Annotated[
        str | None, typer.Option(help="Output profile: web, master, archive or hevc10 (see README).")
    ] = None,
    codec: Annotated[str | None, typer.Option(help="Video encoder (FFmpeg name); default libx264.")] = None,
    crf: Annotated[
        int | None, typer.Option(min=0, max=63, help="Constant rate factor (x264/x265); 18.")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="Encoder preset (x264/x265); medium.")] = None,
    pix_fmt: Annotated[
        str | None, typer.Option(help="Output pixel format; default: the input's chroma family.")
    ] = None,
    threads: Annotated[int, typer.Option(min=0, help="Inference threads; 0 = one per core.")] = 0,
    backend: Annotated[
        str,
        typer.Option(
            help="auto, onnxruntime, torch or tensorrt; auto: tensorrt, then torch/CUDA, then onnxruntime."
        ),
    ] = "auto",
    precision: Annotated[
        str | None, typer.Option(help="fp32, fp16 (CUDA) or bf16; default fp16 on CUDA, fp32 on the CPU.")
    ] = None,
    torch_compile: Annotated[
        bool, typer.Option(help="torch backend: torch.compile the model first.")
    ] = False,
    cuda_graphs: Annotated[
        bool, typer.Option(help="torch backend on CUDA: replay CUDA graphs per shape.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option(help="Also write the result as JSON here (a queue writes one per file).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Work in keyframe segments recorded beside OUTPUT; the same command continues a crash."
        ),
    ] = False,
    segment_seconds: Annotated[
        float, typer.Option(min=0.1, help="With --resume: segment length (cut at the next keyframe).")
    ] = 30.0,
    square_pixels: Annotated[
        bool, typer.Option(help="Resample anamorphic sources to square pixels (the width follows the SAR).")
    ] = False,
    colorspace: Annotated[
        str | None, typer.Option(help="Convert the output's Y'CbCr matrix: bt709, bt601 or bt2020.")
    ] = None,
    stall_timeout: Annotated[
        float, typer.Option(min=1.0, help="Stop (exit 3) when no frame moves for this many seconds.")
    ] = 600.0,
    ext: Annotated[
        str, typer.Option(help="Queue: container of the outputs (mkv keeps every stream).")
    ] = ".mkv",
) -> None:
    """Upscale a video, or every video in a folder into OUTPUT as a queue; all other streams are kept."""
    from vsr.backends.select import choose, open_backend
    from vsr.media.profiles import encode_options
    from vsr.models.artefacts import shipped_model

    if deinterlace not in ("auto", "on", "off"):
        raise UsageError(f"unknown --deinterlace {deinterlace!r}; choose auto, on or off")
    chain = [shipped_model(n) for n in ([denoise] if denoise else []) + [_choose_model(model, scale)]]
    if denoise and chain[0].spec.task != "denoise":
        raise UsageError(f"--denoise takes a denoiser; {denoise} is a {chain[0].spec.task} model")
    jobs = queue.plan(input, output, ext) if input.is_dir() else [(input, output)]

    def request_for(src: Path, dst: Path) -> UpscaleRequest:
        return UpscaleRequest(
            input=src,
            output=dst,
            scale=math.prod(m.spec.scale for m in chain),
            batch=batch or 2,
            encode=dataclasses.replace(
                encode_options(
                    profile, suffix=dst.suffix, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt
                ),
                colorspace=matrix,
            ),
            overwrite=overwrite,
            deinterlace=deinterlace,  # type: ignore[arg-type]
            field_rate=field_rate,
            stall_seconds=stall_timeout,
            square_pixels=square_pixels,
        )

    matrix = {None: None, "bt709": 1, "bt601": 6, "bt2020": 9}.get(colorspace, -1)
    if matrix == -1:
        raise UsageError(f"unknown --colorspace {colorspace!r}; choose bt709, bt601 or bt2020")
    requests = [request_for(src, dst) for src, dst in jobs]  # options are checked before any model loads
    choice = choose(backend)
    precision = precision or ("fp16" if choice.device == "cuda" else "fp32")
    if precision not in ("fp32", "fp16", "bf16"):
        raise UsageError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")
    names = " → ".join(m.spec.name for m in chain)
    device_path = _device_path(chain, batch, tile) if choice.device == "cuda" else None
    with contextlib.ExitStack() as stack:
        backends = [
            stack.enter_context(
                open_backend(
                    choice,
                    m,
                    threads=threads,
                    precision=precision,  # type: ignore[arg-type]
                    compile=torch_compile,
                    cuda_graphs=cuda_graphs,
                    log=lambda msg: print(msg, file=sys.stderr),
                )
            )
            for m in chain
        ]

        def run_one(request: UpscaleRequest) -> JobResult:
            job: UpscaleJob | ResumableJob = UpscaleJob(request, backends, device_path=device_path)
            if resume:
                job = ResumableJob(
                    request,
                    backends,
                    segment_seconds=segment_seconds,
                    job_factory=lambda r: UpscaleJob(r, backends, device_path=device_path),
                    log=lambda msg: print(msg, file=sys.stderr),
                )
            return _run_with_progress(job, show=sys.stderr.isatty() and not as_json)

        if input.is_dir():
            code = queue.run_queue(input, output, requests, run_one, names=names, reason=choice.reason)
            raise typer.Exit(code)
        result = run_one(requests[0])
    record = result.report(names, choice.reason)
    if report is not None:
        report.write_text(json.dumps(record, indent=2) + "\n")
    if as_json:
        print(json.dumps(record, indent=2))
    else:
        _print_summary(names, result)
        print(f"backend: {result.backend} ({choice.reason})")
    if result.damaged:
        # Complete, but the decoder had to skip or conceal damaged data: a distinct exit code says so.
        print(
            f"vsr: warning: damaged input: {result.decode_errors} packets skipped, "
            f"{result.concealed_errors} errors concealed",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def _device_path(chain: list[ShippedModel], batch: int | None, tile: int | None) -> DevicePath:
    """The CUDA path: YUV staged through pinned double buffers; batch and tile from free memory by default."""
    import torch

    from vsr.pipeline.device import DevicePath

    specs = [m.spec for m in chain]
    return DevicePath.for_chain(
        torch.device("cuda"), specs, tile=tile or None, auto=batch is None and tile is None
    )


def _run_with_progress(job: UpscaleJob | ResumableJob, *, show: bool) -> JobResult:
    if not show:
        return job.run()
    columns = (
        TextColumn("[bold]upscaling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} fps"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("upscale", total=None, fps=0.0)

        def update(p: JobProgress) -> None:
            bar.update(task, completed=p.encoded, total=p.total_frames, fps=p.fps)

        return job.run(update)


def _print_summary(model: str, r: JobResult) -> None:
    (w, h), (ow, oh) = r.input_size, r.output_size
    print(
        f"{r.output}: {r.frames} frames {w}x{h} → {ow}x{oh} with {model} in {r.seconds:.1f} s "
        f"({r.fps:.2f} fps), {r.streams_copied} other stream{'s' if r.streams_copied != 1 else ''} copied"
        + (", deinterlaced (bwdif)" if r.deinterlaced else "")
    )
    for warning in r.warnings:
        print(f"warning: {warning}", file=sys.stderr)
