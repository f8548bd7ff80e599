"""`vsr probe`: what a media file holds, as a table or as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

import vsr.api
from vsr.cli import app

if TYPE_CHECKING:
    from vsr.media import MediaInfo, StreamInfo, VideoStreamInfo


@app.command("probe")
def probe_command(
    path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Media file to describe.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    assess: Annotated[
        bool,
        typer.Option(
            help="Also measure the damage (quantiser, noise) on a few keyframes and show the chain "
            "`--model auto` would run at each scale."
        ),
    ] = False,
) -> None:
    """Show container, streams, timing, colour, interlacing and rotation of a media file."""
    info = vsr.api.probe(path)
    decisions = []
    if assess:
        first = vsr.api.choose_model(path, scale=2)
        others = [s for s in vsr.api.DEFAULT_MODELS if s != 2]
        decisions = [first, *(vsr.api.choose_model(path, scale=s, measured=first.measured) for s in others)]
    if as_json:
        record = info.to_dict()
        if decisions:
            record["auto"] = {str(d.scale): d.to_dict() for d in decisions}
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(_summary(info))
    console.print(_streams(info))
    for stream in info.streams:
        if stream.video is not None:
            console.print(_video(stream.index, stream.video))
    for warning in info.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if decisions:
        console.print(f"damage: {decisions[0].measured.describe()}")
        for d in decisions:
            console.print(f"auto ×{d.scale}: {d.chain} ({d.reason})")


def _summary(info: MediaInfo) -> Table:
    table = Table(title=info.path, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    duration = f"{info.duration:.3f} s" if info.duration is not None else "unknown"
    bit_rate = f"{info.bit_rate / 1000:.0f} kb/s" if info.bit_rate else "unknown"
    table.add_row("format", f"{info.format} ({info.format_long_name})")
    table.add_row("duration", duration)
    table.add_row("bit rate", bit_rate)
    table.add_row("size", f"{info.size} bytes")
    table.add_row("chapters", str(info.chapters))
    for key, value in info.tags.items():
        table.add_row(f"tag {key}", value)
    return table


def _streams(info: MediaInfo) -> Table:
    table = Table(title="streams", title_justify="left")
    for column in ("#", "type", "codec", "lang", "flags", "title", "details"):
        table.add_column(column)
    for stream in info.streams:
        index = f"{stream.index}*" if stream.index == info.video_index else str(stream.index)
        table.add_row(
            index,
            stream.type,
            stream.codec or "",
            stream.language or "",
            ",".join(stream.disposition),
            stream.title or "",
            _details(stream),
        )
    return table


def _details(stream: StreamInfo) -> str:
    if stream.audio is not None:
        a = stream.audio
        return f"{a.sample_rate} Hz, {a.channels} ch ({a.layout or 'unknown layout'})"
    if stream.video is not None:
        v = stream.video
        return f"{v.width}x{v.height} {v.pix_fmt}, {v.frame_count} frames"
    return ""


def _video(index: int, v: VideoStreamInfo) -> Table:
    table = Table(title=f"video stream {index}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    fps = f"{v.measured_fps:.3f} fps" if v.measured_fps else "unknown"
    rows = {
        "size": f"{v.width}x{v.height}, SAR {v.sample_aspect_ratio}, DAR {v.display_aspect_ratio}",
        "pixels": f"{v.pix_fmt}, {v.bit_depth}-bit",
        "frames": f"{v.frame_count}, {v.duration:.3f} s" if v.duration is not None else str(v.frame_count),
        "rate (pts)": f"{fps}, {'variable' if v.variable_frame_rate else 'constant'}",
        "rate (header)": f"avg {v.avg_frame_rate}, base {v.base_frame_rate}, guessed {v.guessed_frame_rate}",
        "time base": str(v.time_base),
        "colour": f"{v.color_primaries} / {v.color_transfer} / {v.color_matrix} / {v.color_range}",
        "fields": f"{v.field_order}{', interlaced frames' if v.interlaced_frames else ''}",
        "rotation": f"{v.rotation}",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    return table
