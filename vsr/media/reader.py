"""Decode the main video stream to frames with exact pts, and hand every other kept packet through.

One VideoReader owns the one open container of an input. What only decoded frames tell (display matrix,
interlacing flags, HDR metadata) is learnt by decoding the first few packets up front; those packets and
frames are kept and replayed by the first read, so nothing is opened or decoded twice. Later reads (the
segments of a resumable job, the stream copy that assembles them) seek the same container.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import av
import av.logging
import numpy as np
from av.container import InputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from vsr.errors import BadInputError
from vsr.media import colour
from vsr.media._input import PEEK_FRAMES, PEEK_PACKETS, main_video_stream, open_input, tag_rotation
from vsr.media.deinterlace import DeinterlaceMode, Deinterlacer, wants_deinterlace
from vsr.media.filters import Letterbox
from vsr.media.hdr import HdrMetadata, from_frame
from vsr.media.planes import PLANAR, pack, planar_layout
from vsr.media.probe import FIELD_ORDERS

# Stream types copied untouched into the output; data tracks (timecode, chapter text) are left out.
PASSTHROUGH_TYPES = ("audio", "subtitle", "attachment")

PixelLayout = Literal[
    "rgb24", "rgb48le", "yuv420p", "yuv420p10le", "yuv422p", "yuv422p10le", "yuv444p", "yuv444p10le"
]
# (ndim, dtype) of a frame's pixels in each layout: RGB is (H, W, 3), planar 4:2:0 is (H·3/2, W).
LAYOUTS: dict[str, tuple[int, type]] = {
    "rgb24": (3, np.uint8),
    "rgb48le": (3, np.uint16),
    **{name: (2, p.dtype) for name, p in PLANAR.items()},
}


def rgb_layout(pix_fmt: str) -> PixelLayout:
    """The RGB layout that keeps a source's precision: 16-bit for anything deeper than 8 bits."""
    return "rgb48le" if colour.bit_depth(pix_fmt) > 8 else "rgb24"


def yuv_layout(pix_fmt: str) -> PixelLayout:
    """The planar layout that keeps a source's chroma resolution (4:2:0, 4:2:2, 4:4:4) and precision
    (10-bit for anything deeper than 8 bits)."""
    return planar_layout(pix_fmt)  # type: ignore[return-value]


# Damage is concealed and counted; the reader gives up only when the rejected packets are both many and
# far more than the frames that decoded (the file is mostly garbage, not a video with scratches).
GIVE_UP_REJECTED = 500
GIVE_UP_RATIO = 2

# Header rates above this are nominal placeholders (mkv/flv 1000 fps, DV 60000 fps), not a real guess.
MAX_PLAUSIBLE_FPS = 300


@dataclass(frozen=True, slots=True)
class SourceFormat:
    """Everything the writer and the pipeline need to know about the source video."""

    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    sample_aspect_ratio: Fraction | None
    frame_rate: Fraction | None  # a guess used only for encoder rate control, never for timing
    # FFmpeg AVCOL_* ints as PyAV exposes them. colorspace and color_range are the ones the RGB conversion
    # uses: an untagged source gets BT.709 (HD) or BT.601 (SD) and limited range (full for yuvj*).
    color_primaries: int
    color_trc: int
    colorspace: int
    color_range: int
    rotation: int = 0  # degrees of the display matrix; pixels are never rotated, the tag is carried
    hdr: HdrMetadata | None = None  # mastering display and content light level of the first frame
    chroma_location: int = 0  # AVCHROMA_LOC_* of the first frame (0: the stream does not say)

    @property
    def bits(self) -> int:
        """Bit depth of the source's pixel format."""
        return colour.bit_depth(self.pix_fmt)


@dataclass(frozen=True, slots=True, repr=False)
class Frame:
    """One decoded picture and the decoder's pts in SourceFormat.time_base units.

    `pixels` is (H, W, 3) for rgb24 (uint8) and rgb48le (uint16), or the packed planes of a planar
    layout (vsr.media.planes: (H·3/2, W) for 4:2:0, (2H, W) for 4:2:2, (3H, W) for 4:4:4; uint8, or uint16
    for the 10-bit ones): Y rows, then U, then V, as the GPU path uploads them.
    """

    pixels: np.ndarray
    pts: int
    format: PixelLayout = "rgb24"

    def __post_init__(self) -> None:
        px, want = self.pixels, LAYOUTS[self.format]
        if px.ndim != want[0] or px.dtype != want[1] or not px.flags.c_contiguous:
            raise ValueError(f"Frame: {self.format} needs C-contiguous {want}, got {px.shape} {px.dtype}")

    def __repr__(self) -> str:
        return f"Frame({self.format} {self.pixels.shape}, pts={self.pts})"


@dataclass(frozen=True)
class SourceStreams:
    """What a writer copies from the input: its streams, which of them to keep, tags and chapters."""

    path: Path
    video_index: int  # the main video stream, which is encoded rather than copied
    streams: tuple[Stream, ...]  # every stream of the input, valid while its reader is open
    kept: frozenset[int]  # indices of the streams to copy (audio, subtitles, attachments)
    metadata: dict[str, str]
    chapters: tuple[dict[str, Any], ...]


@dataclass(slots=True)
class ReaderStats:
    """Counters of one read; the pipeline decides what damage is too much."""

    frames: int = 0
    decode_errors: int = 0  # packets the decoder rejected (concealed by skipping)
    concealed: int = 0  # errors the decoder reported and concealed (damaged slices and macroblocks)
    guessed_pts: int = 0  # frames without pts, given one from dts or the previous interval
    truncated: bool = False  # demuxing stopped at unreadable data before the end of the file
    # Pictures of another size than the stream's first (size changes mid-stream), by "WxH": letterboxed.
    resized: Counter[str] = field(default_factory=Counter)
    first_pts: int | None = None  # of the frames handed out, in SourceFormat.time_base
    last_pts: int | None = None

    def merged(self, later: ReaderStats) -> ReaderStats:
        """These counts followed by those of a later read (the next segment of the same input)."""
        firsts = [p for p in (self.first_pts, later.first_pts) if p is not None]
        lasts = [p for p in (self.last_pts, later.last_pts) if p is not None]
        return ReaderStats(
            frames=self.frames + later.frames,
            decode_errors=self.decode_errors + later.decode_errors,
            concealed=self.concealed + later.concealed,
            guessed_pts=self.guessed_pts + later.guessed_pts,
            truncated=self.truncated or later.truncated,
            resized=self.resized + later.resized,
            first_pts=min(firsts, default=None),
            last_pts=max(lasts, default=None),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a resumable job records each segment's)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReaderStats:
        """The inverse of to_dict."""
        return cls(**{**data, "resized": Counter(data.get("resized", {}))})


_PENDING: Any = object()  # a live packet, not decoded yet (lookahead packets carry their frames)


class VideoReader:
    """Owns the input container; yields the main video as Frames and passthrough packets, in file order."""

    def __init__(
        self, path: Path, *, threads: int = 0, deinterlace: DeinterlaceMode = "auto", field_rate: bool = False
    ) -> None:
        self.path = path
        self.stats = ReaderStats()
        self._container: InputContainer = open_input(path)
        self._damage: _DamageLog | None = None
        try:
            self._stream = main_video_stream(self._container, path)
            self._damage = _DamageLog(self._stream.codec_context.name)
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = threads
            self._truncated = False
            self._demux = self._packets()
            # (packet, its frames) of the peek; (None, frames) is the decoder's flush of a short file.
            self._ahead: list[tuple[av.Packet | None, list[av.VideoFrame] | None]] = []
            self._ahead_concealed = 0
            self._consumed = False  # the container has been read past the lookahead: a new read seeks
            first = self._peek()
            rotation = int(first[0].rotation) % 360 if first else 0
            hdr = from_frame(first[0]) if first else None
            rotation = rotation or tag_rotation(self._stream)
            siting = colour.chroma_location(first[0]) if first else 0
            self.format = replace(
                _source_format(self._stream, rotation, path), hdr=hdr, chroma_location=siting
            )
            self._field_order = FIELD_ORDERS.get(int(self._stream.codec_context.field_order or 0), "unknown")
            flagged = any(f.interlaced_frame for f in first)
            self._field_rate = field_rate
            self.deinterlaced = wants_deinterlace(deinterlace, self._field_order, flagged)
            if self.deinterlaced:
                # bwdif reports its output in half the stream's time base (a field is half a frame).
                rate = self.format.frame_rate
                self.format = replace(
                    self.format,
                    time_base=Fraction(self._stream.time_base) / 2,
                    frame_rate=rate * 2 if rate is not None and field_rate else rate,
                )
        except BaseException:
            self.close()
            raise
        self._letterbox = Letterbox(self.format.width, self.format.height)
        self._src_matrix = colour.sws_matrix(self.format.colorspace)
        kept = frozenset(s.index for s in self._container.streams if s.type in PASSTHROUGH_TYPES)
        self.streams = SourceStreams(
            path=path,
            video_index=self._stream.index,
            streams=tuple(self._container.streams),
            kept=kept,
            metadata=dict(self._container.metadata),
            chapters=tuple(self._container.chapters()),
        )

    @property
    def frames_expected(self) -> int | None:
        """Frames the header promises, else its duration times the rate guess; None when neither says."""
        stream = self._stream
        if stream.frames:
            return stream.frames
        seconds = None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif self._container.duration:
            seconds = self._container.duration / av.time_base
        rate = self.format.frame_rate
        return round(seconds * rate) if seconds and rate else None

    @property
    def video_stream(self) -> VideoStream:
        """The video stream being decoded."""
        return self._stream

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the input container; packets and streams of it must not be used afterwards."""
        self._container.close()  # joins the decoder's threads: nothing of it logs after this
        if self._damage is not None:
            self._damage.close()
            self._damage = None

    def __iter__(self) -> Iterator[Frame | av.Packet]:
        return self.read()

    def read(
        self,
        layout: PixelLayout = "rgb24",
        *,
        start: int | None = None,
        end: int | None = None,
        passthrough: bool = True,
    ) -> Iterator[Frame | av.Packet]:
        """Demux once, in file order: video packets come out as Frames in `layout`, kept packets as they are.

        start/end select the frames with start <= pts < end (in format.time_base), decoded from the keyframe
        at or before `start`; a segment read normally leaves the other streams out (passthrough=False).
        """
        if layout not in LAYOUTS:
            raise ValueError(f"unknown pixel layout {layout!r}")
        if layout in PLANAR and not PLANAR[layout].divides(self.format.width, self.format.height):
            raise ValueError(f"{layout} frames need a picture size of whole chroma samples")
        self.stats = ReaderStats()
        self._last_pts, self._last_step = None, _ticks_per_frame(self._stream)
        self._deinterlacer = (
            Deinterlacer(self._stream, field_order=self._field_order, field_rate=self._field_rate)
            if self.deinterlaced
            else None
        )
        keep = self.streams.kept if passthrough else frozenset()
        if start is not None:
            # Seek in the stream's own time base to the keyframe at or before the segment's start.
            ticks = start * self.format.time_base / self._stream.time_base
            self._seek(int(ticks), stream=self._stream)
        elif self._consumed:
            self._rewind()
        assert self._damage is not None
        for item in self._items(layout, keep):
            self.stats.concealed += self._damage.count()
            if isinstance(item, Frame):
                if start is not None and item.pts < start:
                    continue  # decoded only to reach the segment (or an open-GOP leftover of the last)
                if end is not None and item.pts >= end:
                    break  # frames come out in pts order: everything before `end` has been seen
                self._count(item)
            yield item
        self.stats.concealed += self._damage.count()
        self.stats.truncated = self._truncated
        if self.stats.frames == 0 and start is None:
            raise BadInputError(f"{self.path}: no decodable video frames")

    def keyframes(self) -> list[int]:
        """The pts (in format.time_base) of every video keyframe, from the start, read without decoding."""
        video, tb = self._stream.index, self._stream.time_base
        return [
            int(packet.pts * tb / self.format.time_base)
            for packet, _ in self._from_start()
            if packet is not None
            and packet.stream.index == video
            and packet.is_keyframe
            and packet.pts is not None
        ]

    def packets_to_copy(self) -> Iterator[av.Packet]:
        """Every packet of the kept streams, from the start, in file order (no video decoded)."""
        for packet, _ in self._from_start():
            if packet is None:
                continue
            if packet.stream.index in self.streams.kept and packet.size and packet.dts is not None:
                yield packet

    def _from_start(self) -> Iterator[tuple[av.Packet, Any]]:
        if self._consumed:
            self._rewind()
            yield from ((p, _PENDING) for p in self._demux)
            return
        yield from self._continue()

    def _rewind(self) -> None:
        self._seek(self._container.start_time or 0)  # AV_TIME_BASE units, as a stream-less seek takes

    def _continue(self) -> Iterator[tuple[av.Packet, Any]]:
        """The lookahead's packets (with their frames), then the live demux from where the peek stopped."""
        self._consumed = True
        ahead, self._ahead = self._ahead, []
        self.stats.concealed += self._ahead_concealed
        yield from ahead
        yield from ((p, _PENDING) for p in self._demux)

    def _seek(self, offset: int, stream: VideoStream | None = None) -> None:
        try:
            self._container.seek(offset, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise BadInputError(f"{self.path}: cannot seek in the input ({exc.strerror})") from exc
        self._ahead, self._consumed, self._truncated = [], True, False
        self._demux = self._packets()

    def _peek(self) -> list[av.VideoFrame]:
        """Demux and decode the first packets, keeping them for the first read; returns the frames.

        A frame-threaded decoder holds a frame per thread before it returns any, so the peek counts video
        packets, not frames; a file shorter than that is decoded to its end here (the flush is kept too).
        """
        video, frames, packets = self._stream.index, [], 0
        for packet in self._demux:
            decoded = []
            if packet.stream.index == video and packet.size:
                decoded, packets = self._decode(packet), packets + 1
            self._ahead.append((packet, decoded))
            frames += decoded or []
            if packets >= PEEK_PACKETS or len(frames) >= PEEK_FRAMES:
                break
        else:  # the whole file is in the lookahead: flush the decoder now, keep what it returns
            flushed = self._decode(None)
            self._ahead.append((None, flushed))
            frames += flushed or []
        assert self._damage is not None
        self._ahead_concealed = self._damage.count()
        return frames

    def _items(self, layout: PixelLayout, keep: frozenset[int]) -> Iterator[Frame | av.Packet]:
        video = self._stream.index
        packets = ((p, _PENDING) for p in self._demux) if self._consumed else self._continue()
        flushed = False
        for packet, decoded in packets:
            if packet is None:  # the peek already flushed the decoder (a file shorter than the peek)
                flushed = True
                yield from self._frames(layout, None, decoded)
                continue
            index = packet.stream.index
            if index == video and packet.size:
                yield from self._frames(layout, packet, decoded)
            elif index in keep and packet.size and packet.dts is not None:
                yield packet
        if not flushed:
            yield from self._frames(layout, None, _PENDING)

    def _packets(self) -> Iterator[av.Packet]:
        try:
            yield from self._container.demux()
        except av.error.InvalidDataError:
            self._truncated = True  # keep what was read; the caller sees it in stats

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame] | None:
        """The frames the decoder gives for `packet` (None flushes it); None when it rejects the packet."""
        try:
            return list(self._stream.decode(packet))
        except av.error.InvalidDataError:
            return None

    def _frames(self, layout: PixelLayout, packet: av.Packet | None, decoded: Any) -> Iterator[Frame]:
        pictures = self._decode(packet) if decoded is _PENDING else decoded
        if pictures is None:
            self.stats.decode_errors += 1
            rejected, frames = self.stats.decode_errors, self.stats.frames
            if rejected > GIVE_UP_REJECTED and rejected > GIVE_UP_RATIO * frames:
                raise BadInputError(
                    f"{self.path}: too damaged: {rejected} video packets rejected against {frames} frames "
                    "decoded; giving up"
                )
            return
        for picture in pictures:
            if (picture.width, picture.height) != (self.format.width, self.format.height):
                self.stats.resized[f"{picture.width}x{picture.height}"] += 1
                picture = self._letterbox.fit(picture)
            self._stamp(picture)
            if self._deinterlacer is None:
                yield self._to_frame(picture, layout)
            else:
                yield from (self._to_frame(p, layout) for p in self._deinterlacer.filter(picture))
        if packet is None and self._deinterlacer is not None:
            yield from (self._to_frame(p, layout) for p in self._deinterlacer.filter(None))

    def _stamp(self, picture: av.VideoFrame) -> None:
        """Make sure the picture has a pts (in the stream's time base) before anything uses it."""
        if picture.pts is None:
            picture.pts = self._guess_pts(picture)
            self.stats.guessed_pts += 1
        if self._last_pts is not None and picture.pts > self._last_pts:
            self._last_step = picture.pts - self._last_pts
        self._last_pts = picture.pts

    def _count(self, frame: Frame) -> None:
        """Count a frame handed out (not those decoded only to reach a segment's start)."""
        self.stats.frames += 1
        if self.stats.first_pts is None:
            self.stats.first_pts = frame.pts
        self.stats.last_pts = frame.pts

    def _to_frame(self, picture: av.VideoFrame, layout: PixelLayout) -> Frame:
        if layout.startswith("rgb"):
            pixels = picture.reformat(
                format=layout, src_colorspace=self._src_matrix, src_color_range=self.format.color_range
            ).to_ndarray()
        else:  # planar as decoded (no conversion when the source already is), colour maths on the GPU
            pixels = pack(picture.reformat(format=layout))
        return Frame(np.ascontiguousarray(pixels), picture.pts, layout)

    def _guess_pts(self, picture: av.VideoFrame) -> int:
        # PyAV 18 does not expose best_effort_timestamp; this mirrors FFmpeg's fallback: the dts, else one
        # frame on (raw elementary streams carry no timestamps at all, so the header rate is all there is).
        if picture.dts is not None and (self._last_pts is None or picture.dts > self._last_pts):
            return picture.dts
        if self._last_pts is None:
            return 0
        return self._last_pts + (picture.duration or self._last_step)


class _DamageLog:
    """Counts the errors a decoder logs while it conceals damage (FFmpeg says so only in its log).

    Captures FFmpeg's log process-wide for the reader's lifetime (frame-threaded decoders log from their
    own threads, so the capture may only end once the container is closed and those threads are joined:
    ending it earlier races PyAV's log callback) and keeps only error-level lines from the video decoder;
    the capture is drained at every count, so memory stays flat however damaged the input is. Nothing of
    it reaches stderr.
    """

    def __init__(self, decoder: str) -> None:
        self.decoder = decoder
        self._capture = av.logging.Capture(local=False)
        self._level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        self._logs = self._capture.__enter__()

    def count(self) -> int:
        logs, n = self._logs, 0
        while logs:
            level, name, _message = logs.pop()
            n += level <= av.logging.ERROR and name == self.decoder
        return n

    def close(self) -> None:
        """End the capture and restore the log level."""
        self._capture.__exit__(None, None, None)
        av.logging.set_level(self._level)


def _source_format(stream: VideoStream, rotation: int, path: Path) -> SourceFormat:
    ctx = stream.codec_context
    pix_fmt = ctx.pix_fmt or "yuv420p"
    if stream.time_base is None:
        raise BadInputError(f"{path}: video stream has no time base")
    return SourceFormat(
        width=ctx.width,
        height=ctx.height,
        pix_fmt=pix_fmt,
        time_base=stream.time_base,
        sample_aspect_ratio=ctx.sample_aspect_ratio or None,
        frame_rate=_rate_guess(stream),
        color_primaries=ctx.color_primaries,
        color_trc=ctx.color_trc,
        colorspace=colour.resolve_matrix(ctx.colorspace, ctx.height),
        color_range=colour.resolve_range(ctx.color_range, pix_fmt),
        rotation=rotation,
    )


def _ticks_per_frame(stream: VideoStream) -> int:
    """One frame interval at the guessed rate, in the stream's time base ticks (1 when there is no guess)."""
    rate = _rate_guess(stream)
    if rate is None or stream.time_base is None:
        return 1
    return max(1, round(1 / (rate * stream.time_base)))


def _rate_guess(stream: VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= MAX_PLAUSIBLE_FPS:
            return rate
    return None
