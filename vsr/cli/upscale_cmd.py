"""`vsr upscale INPUT OUTPUT`: the main job, for one file or a folder (parse → vsr.upscale → render)."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

import vsr
from vsr.cli import DAMAGED, app, choices, exit_code
from vsr.errors import UsageError


@app.command("upscale")
def upscale_command(
    input: Annotated[
        Path, typer.Argument(help="Video file, or a folder of them (never modified).", show_default=False)
    ],
    output: Annotated[Path, typer.Argument(help="Output file, or the output folder.", show_default=False)],
    model: Annotated[
        str | None,
        typer.Option(
            help="Shipped model or cascade (see `vsr models`), or auto (the default): measure the source's "
            "quantiser and noise and run the chain calibrated best for such sources at --scale."
        ),
    ] = None,
    scale: Annotated[
        int | None, typer.Option(help="Upscale factor; picks the default model for it (2).")
    ] = None,
    denoise: Annotated[
        str | None, typer.Option(help="Denoiser run before the upscaler (dncnn-color).")
    ] = None,
    backend: Annotated[
        choices.Backend, typer.Option(help="auto: tensorrt, then torch/CUDA, then onnxruntime.")
    ] = "auto",  # type: ignore[assignment]
    precision: Annotated[
        choices.Precision | None, typer.Option(help="Default: fp16 on CUDA, fp32 on the CPU.")
    ] = None,
    threads: Annotated[int, typer.Option(min=0, help="CPU inference threads; 0 = one per core.")] = 0,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1, help="Frames per inference call; default 2 on the CPU, from free memory on CUDA."
        ),
    ] = None,
    tile: Annotated[
        int | None,
        typer.Option(
            min=16,
            help="Tile side in input pixels for large frames (default: whole frames; CUDA: from memory).",
        ),
    ] = None,
    deinterlace: Annotated[
        choices.Deinterlace, typer.Option(help="auto: interlaced sources only; bwdif before the model.")
    ] = "auto",  # type: ignore[assignment]
    field_rate: Annotated[bool, typer.Option(help="When deinterlacing, one output frame per field.")] = False,
    profile: Annotated[
        choices.Profile | None,
        typer.Option(help="Output profile (see README); the options below override it."),
    ] = None,
    codec: Annotated[str | None, typer.Option(help="Video encoder (FFmpeg name); default libx264.")] = None,
    crf: Annotated[
        int | None, typer.Option(min=0, max=63, help="Constant rate factor (x264/x265); 18.")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="Encoder preset (x264/x265); faster.")] = None,
    pix_fmt: Annotated[
        str | None, typer.Option(help="Output pixel format; default: the input's chroma family.")
    ] = None,
    colorspace: Annotated[
        choices.Colorspace | None, typer.Option(help="Convert the output's Y'CbCr matrix.")
    ] = None,
    square_pixels: Annotated[
        bool, typer.Option(help="Resample anamorphic sources to square pixels.")
    ] = False,
    size: Annotated[
        str | None, typer.Option(help="Exact output size WxH, display aspect kept per --fit.")
    ] = None,
    width: Annotated[int | None, typer.Option(help="Output width; the height follows the aspect.")] = None,
    height: Annotated[int | None, typer.Option(help="Output height; the width follows the aspect.")] = None,
    fit: Annotated[
        choices.Fit, typer.Option(help="With --size: pad (bars), crop, or stretch.")
    ] = choices.Fit("pad"),
    torch_compile: Annotated[
        bool, typer.Option(help="torch backend: torch.compile the model first.")
    ] = False,
    cuda_graphs: Annotated[
        bool, typer.Option(help="torch backend on CUDA: replay CUDA graphs per shape.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Work in keyframe segments beside OUTPUT; rerun to continue a crash.")
    ] = False,
    segment_seconds: Annotated[
        float | None, typer.Option(min=0.1, help="With --resume: segment length; 30.")
    ] = None,
    stall_timeout: Annotated[
        float, typer.Option(min=1.0, help="Stop (exit 3) when no frame moves for this long.")
    ] = 600.0,
    parts_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the segments of --resume/--cluster here, not beside OUTPUT; on a cluster, a folder "
            "every node sees (workers then write their parts straight into it)."
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Encode the keyframe segments on a Ray cluster: local (every core here), auto (the cluster "
            "this machine is in) or ray://HOST:PORT; rerun to continue, as with --resume."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With --cluster: how many workers (default: one per GPU, or one per --worker-cores CPUs); "
            "more than the GPUs share them.",
        ),
    ] = None,
    worker_cores: Annotated[
        int | None, typer.Option(min=1, help="With --cluster: CPU cores of each worker; 1.")
    ] = None,
    ext: Annotated[
        str | None, typer.Option(help="Folder: container of the outputs; .mkv keeps every stream.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option(help="Also write the result as JSON here (one file only).")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="The same video at the output size: VMAF, VMAF NEG and Y-PSNR of the output."),
    ] = None,
) -> None:
    """Upscale a video, or every video of a folder into OUTPUT; every other stream is kept."""
    folder = input.is_dir()
    if segment_seconds is not None and not (resume or cluster):
        raise UsageError("--segment-seconds sets the segments of --resume; add --resume or drop it")
    if (workers is not None or worker_cores is not None) and cluster is None:
        raise UsageError("--workers and --worker-cores size a --cluster pool; add --cluster or drop them")
    if folder and report is not None:
        raise UsageError("--report is for one file; a folder writes OUTDIR/NAME.vsr.json for each")
    if folder and reference is not None:
        raise UsageError("--reference scores one file against its master; name one input file")
    if not folder and ext is not None:
        raise UsageError("--ext sets the container of a folder's outputs; name the output file instead")
    encode = vsr.EncodeSettings(
        profile=choices.value(profile),
        codec=codec,
        crf=crf,
        preset=preset,
        pix_fmt=pix_fmt,  # type: ignore[arg-type]
        colorspace=choices.value(colorspace),  # type: ignore[arg-type]
    )
    common = dict(
        model=model,
        scale=scale,
        denoise=denoise,
        backend=choices.value(backend),
        precision=choices.value(precision),
        threads=threads,
        batch=batch,
        tile=tile,
        encode=encode,
        deinterlace=choices.value(deinterlace),
        field_rate=field_rate,
        square_pixels=square_pixels,
        size=size,
        width=width,
        height=height,
        fit=choices.value(fit),
        overwrite=overwrite,
        resume=resume,
        segment_seconds=segment_seconds or 30.0,
        parts_dir=parts_dir,
        stall_timeout=stall_timeout,
        torch_compile=torch_compile,
        cuda_graphs=cuda_graphs,
        log=_say,
    )
    if cluster is not None:
        common["cluster"] = vsr.ClusterSpec(cluster, workers=workers, cores=worker_cores or 1)
    with _progress(show=sys.stderr.isatty() and not as_json) as on_progress:
        if folder:
            done = vsr.upscale_folder(
                input,
                output,
                ext=ext or ".mkv",
                on_progress=on_progress,
                on_file=functools.partial(_file_line, out=sys.stderr if as_json else sys.stdout),
                **common,
            )  # type: ignore[arg-type]
            raise typer.Exit(_render_folder(done, as_json))
        result = vsr.upscale(input, output, on_progress=on_progress, reference=reference, **common)  # type: ignore[arg-type]
    record = json.dumps(result.to_dict(), indent=2)
    if report is not None:
        report.write_text(record + "\n")
    print(record) if as_json else _render(result)
    if result.damaged:
        errors = f"{result.decode_errors} packets skipped, {result.concealed_errors} errors concealed"
        _say(f"vsr: warning: damaged input: {errors}")
        raise typer.Exit(DAMAGED)  # complete, but the decoder skipped or concealed damaged data


def _say(message: str) -> None:
    print(message, file=sys.stderr)


@contextlib.contextmanager
def _progress(show: bool) -> Iterator[Callable[[vsr.Progress], None] | None]:
    """A progress bar on stderr (frames, fps, ETA) when it is a terminal; nothing is drawn elsewhere."""
    if not show:
        yield None
        return
    fps = TextColumn("{task.fields[fps]:.1f} fps")
    columns = (TextColumn("[bold]upscaling"), BarColumn(), MofNCompleteColumn(), fps, TimeRemainingColumn())
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("upscale", total=None, fps=0.0)
        resumed = 0

        def show(p: vsr.Progress) -> None:
            nonlocal resumed
            if p.resumed != resumed:  # frames of an earlier run: the start, not speed (rich's ETA is a rate)
                resumed = p.resumed
                bar.reset(task, completed=p.resumed)
            bar.update(task, completed=p.encoded, total=p.total_frames, fps=p.fps)

        yield show


def _render(r: vsr.JobResult) -> None:
    (w, h), (ow, oh) = r.input_size, r.output_size
    copied = f"{r.streams_copied} other stream{'s' if r.streams_copied != 1 else ''} copied"
    print(
        f"{r.output}: {r.frames} frames {w}x{h} → {ow}x{oh} with {r.model} in {r.seconds:.1f} s "
        f"({r.fps:.2f} fps), {copied}" + (", deinterlaced (bwdif)" if r.deinterlaced else "")
    )
    if r.auto is not None:
        print(r.auto["summary"])
    for warning in r.warnings:
        _say(f"warning: {warning}")
    print(f"backend: {r.backend} ({r.backend_reason})")
    if r.quality is not None:
        q = r.quality
        print(
            f"against {Path(q['reference']).name}: VMAF {q['vmaf']:.2f}, VMAF NEG {q['vmaf_neg']:.2f}, "
            f"Y-PSNR {q['psnr_y']:.2f} dB over {q['frames']} frames"
        )


def _file_line(k: int, n: int, f: vsr.FileOutcome, *, out: TextIO) -> None:
    tag = f"[{k}/{n}] {f.input.name}"
    if f.status == "skipped":
        print(f"{tag}: done earlier, skipped", file=out)
    elif f.result is None:
        print(f"{tag}: failed ({f.error})", file=out)
    else:
        print(f"{tag}: {f.result.frames} frames in {f.result.seconds:.1f} s → {f.output}", file=out)


def _render_folder(done: vsr.FolderResult, as_json: bool) -> int:
    """Prints the folder's summary; returns its exit code, the worst of its files'."""
    codes = [
        exit_code(f.error_type or "") if f.status == "failed" else DAMAGED * f.damaged for f in done.files
    ]
    if as_json:
        files = [
            {"input": str(f.input), "status": f.status, "error": f.error, "exit_code": code}
            for f, code in zip(done.files, codes, strict=True)
        ]
        print(json.dumps({"files": files, "status_file": str(done.status_file)}, indent=2))
    out = sys.stderr if as_json else sys.stdout
    print(f"folder: {done.done} of {len(done.files)} done; status in {done.status_file}", file=out)
    return max(codes, default=0)
