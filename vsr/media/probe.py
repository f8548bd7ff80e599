"""What a media file holds: container, streams, timing measured from packets, colour, fields, rotation."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, fields, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer
from av.stream import Disposition, Stream
from av.video.stream import VideoStream

from vsr.media import colour
from vsr.media._input import PEEK_FRAMES, PEEK_PACKETS, main_video_stream, open_input, tag_rotation

FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}

# Intervals further than this from the median (and more than one tick) make a stream variable-rate.
VFR_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class VideoStreamInfo:
    """Picture, timing and colour of one video stream."""

    width: int
    height: int
    pix_fmt: str | None
    bit_depth: int | None
    sample_aspect_ratio: Fraction | None
    display_aspect_ratio: Fraction | None
    time_base: Fraction | None
    avg_frame_rate: Fraction | None
    base_frame_rate: Fraction | None
    guessed_frame_rate: Fraction | None
    measured_fps: float | None  # from the median interval of packet pts; the header rates can lie
    variable_frame_rate: bool
    frame_count: int  # video packets demuxed
    duration: float | None
    color_primaries: str
    color_transfer: str
    color_matrix: str
    color_range: str
    field_order: str
    interlaced_frames: bool  # any of the first decoded frames flagged interlaced
    rotation: int  # degrees of the display matrix (or the legacy rotate tag), 0 when none


@dataclass(frozen=True, slots=True)
class AudioStreamInfo:
    """Sampling of one audio stream."""

    sample_rate: int
    channels: int
    layout: str | None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream of the container; `video`/`audio` are set for streams of that type."""

    index: int
    type: str
    codec: str | None
    language: str | None
    title: str | None
    disposition: tuple[str, ...]
    tags: dict[str, str]
    video: VideoStreamInfo | None = None
    audio: AudioStreamInfo | None = None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Everything `probe` learnt about a file; `video_index` names the stream vsr would process."""

    path: str
    format: str
    format_long_name: str
    size: int
    duration: float | None
    bit_rate: int | None
    tags: dict[str, str]
    chapters: int
    streams: tuple[StreamInfo, ...]
    video_index: int
    warnings: tuple[str, ...]

    @property
    def video(self) -> VideoStreamInfo:
        """The main video stream's details."""
        info = next(s.video for s in self.streams if s.index == self.video_index)
        assert info is not None
        return info

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: fractions become "num/den" strings."""
        return _jsonable(self)


def probe(path: Path) -> MediaInfo:
    """Describe the media file at `path`; raises BadInputError when it is not a video vsr can read."""
    with open_input(path) as container:
        main = main_video_stream(container, path)
        warnings: list[str] = []
        scan = _scan_video(container, main, warnings)
        streams = tuple(_stream_info(s, scan if s.index == main.index else None) for s in container.streams)
        return MediaInfo(
            path=str(path),
            format=container.format.name,
            format_long_name=container.format.long_name,
            size=path.stat().st_size,
            duration=container.duration / av.time_base if container.duration else None,
            bit_rate=container.bit_rate or None,
            tags=dict(container.metadata),
            chapters=len(container.chapters()),
            streams=streams,
            video_index=main.index,
            warnings=tuple(warnings),
        )


@dataclass(slots=True)
class _Scan:
    """What one demux pass over the main video stream measured."""

    stream: VideoStream
    packets: int
    pts: list[int]
    frames: list[av.VideoFrame]


def _scan_video(container: InputContainer, stream: VideoStream, warnings: list[str]) -> _Scan:
    scan = _Scan(stream=stream, packets=0, pts=[], frames=[])
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            scan.packets += 1
            if packet.pts is not None:
                scan.pts.append(packet.pts)
            # Decode only the first few frames: enough for interlacing flags and the display matrix.
            if scan.packets <= PEEK_PACKETS and len(scan.frames) < PEEK_FRAMES:
                scan.frames.extend(stream.decode(packet))
    except av.error.FFmpegError as exc:
        warnings.append(f"stopped reading at video packet {scan.packets}: {exc.strerror}")
    return scan


def _stream_info(stream: Stream, scan: _Scan | None) -> StreamInfo:
    ctx = stream.codec_context
    audio = None
    if stream.type == "audio":
        audio = AudioStreamInfo(ctx.sample_rate, ctx.channels, ctx.layout.name if ctx.layout else None)
    video = None
    if isinstance(stream, VideoStream):
        video = _video_info(stream, scan)
    return StreamInfo(
        index=stream.index,
        type=stream.type,
        codec=ctx.name if ctx is not None else None,
        language=stream.language,
        title=stream.metadata.get("title"),
        disposition=tuple(flag.name or "" for flag in Disposition if flag & stream.disposition),
        tags=dict(stream.metadata),
        video=video,
        audio=audio,
    )


def _video_info(stream: VideoStream, scan: _Scan | None) -> VideoStreamInfo:
    ctx = stream.codec_context
    tb = stream.time_base
    pix_fmt = ctx.pix_fmt
    bit_depth = colour.bit_depth(pix_fmt) if pix_fmt else None
    fps, variable, span = _measure_rate(scan.pts if scan else [], tb)
    duration = None
    if stream.duration and tb:
        duration = float(stream.duration * tb)
    elif span is not None:
        duration = span
    frames = scan.frames if scan else []
    rotation = int(frames[0].rotation) % 360 if frames else 0
    return VideoStreamInfo(
        width=ctx.width,
        height=ctx.height,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth,
        sample_aspect_ratio=ctx.sample_aspect_ratio,
        display_aspect_ratio=ctx.display_aspect_ratio,
        time_base=tb,
        avg_frame_rate=stream.average_rate,
        base_frame_rate=stream.base_rate,
        guessed_frame_rate=stream.guessed_rate,
        measured_fps=fps,
        variable_frame_rate=variable,
        frame_count=scan.packets if scan else stream.frames,
        duration=duration,
        color_primaries=colour.name(colour.PRIMARIES, ctx.color_primaries),
        color_transfer=colour.name(colour.TRANSFERS, ctx.color_trc),
        color_matrix=colour.name(colour.MATRICES, ctx.colorspace),
        color_range=colour.name(colour.RANGES, ctx.color_range),
        field_order=FIELD_ORDERS.get(ctx.field_order, "unknown"),
        interlaced_frames=any(f.interlaced_frame for f in frames),
        rotation=rotation or tag_rotation(stream),
    )


def _measure_rate(pts: list[int], time_base: Fraction | None) -> tuple[float | None, bool, float | None]:
    """(fps from the median pts interval, whether intervals vary, seconds spanned) of packet pts."""
    ordered = sorted(set(pts))  # decode order is not presentation order when there are B-frames
    steps = [b - a for a, b in itertools.pairwise(ordered)]
    if not steps or not time_base:
        return None, False, None
    median = statistics.median(steps)
    slack = max(1.0, median * VFR_TOLERANCE)
    variable = any(abs(step - median) > slack for step in steps)
    span = float((ordered[-1] - ordered[0] + Fraction(median)) * time_base)
    return float(1 / (Fraction(median) * time_base)), variable, span


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
