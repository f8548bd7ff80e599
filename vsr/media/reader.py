"""Decode the main video stream to RGB frames with exact pts, and hand every other kept packet through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import av.logging
import numpy as np
from av.container import InputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from vsr.errors import BadInputError
from vsr.media import colour
from vsr.media._input import main_video_stream, open_input, peek_frames
from vsr.media.deinterlace import DeinterlaceMode, Deinterlacer, wants_deinterlace
from vsr.media.filters import Letterbox
from vsr.media.hdr import HdrMetadata
from vsr.media.probe import FIELD_ORDERS

# Stream types copied untouched into the output; data tracks (timecode, chapter text) are left out.
PASSTHROUGH_TYPES = ("audio", "subtitle", "attachment")

PixelLayout = Literal["rgb24", "rgb48le", "yuv420p", "yuv420p10le"]


def yuv_layout(pix_fmt: str) -> PixelLayout:
    """The planar 4:2:0 layout that keeps a source's precision: 10-bit for anything deeper than 8 bits."""
    deep = any(c.bits > 8 for c in av.video.format.VideoFormat(pix_fmt).components)
    return "yuv420p10le" if deep else "yuv420p"


# Damage is concealed and counted; the reader gives up only when the rejected packets are both many and
# far more than the frames that decoded (the file is mostly garbage, not a video with scratches).
GIVE_UP_REJECTED = 500
GIVE_UP_RATIO = 2

# Header rates above this are nominal placeholders (mkv/flv 1000 fps, DV 60000 fps), not a real guess.
MAX_PLAUSIBLE_FPS = 300


@dataclass(frozen=True, slots=True)
class VideoFormat:
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


@dataclass(frozen=True, slots=True, repr=False)
class Frame:
    """One decoded picture and the decoder's pts in VideoFormat.time_base units.

    `pixels` is (H, W, 3) uint8 for rgb24, or PyAV's packed planes (H·3/2, W) for yuv420p (uint8) and
    yuv420p10le (uint16): Y rows, then U, then V, as the GPU path uploads them without a CPU conversion.
    """

    pixels: np.ndarray
    pts: int
    format: PixelLayout = "rgb24"

    def __post_init__(self) -> None:
        px = self.pixels
        want = {
            "rgb24": (3, np.uint8),
            "rgb48le": (3, np.uint16),
            "yuv420p": (2, np.uint8),
            "yuv420p10le": (2, np.uint16),
        }[self.format]
        if px.ndim != want[0] or px.dtype != want[1] or not px.flags.c_contiguous:
            raise ValueError(f"Frame: {self.format} needs C-contiguous {want}, got {px.shape} {px.dtype}")

    def __repr__(self) -> str:
        return f"Frame({self.format} {self.pixels.shape}, pts={self.pts})"


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
    first_pts: int | None = None  # of the frames handed out, in VideoFormat.time_base
    last_pts: int | None = None


class VideoReader:
    """Owns the input container; yields the main video as Frames and passthrough packets, in file order."""

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 0,
        deinterlace: DeinterlaceMode = "auto",
        field_rate: bool = False,
        layout: Literal["rgb24", "rgb", "yuv"] = "rgb24",
        start: int | None = None,
        end: int | None = None,
        passthrough: bool = True,
    ) -> None:
        self.path = path
        # A segment of the video: frames with start <= pts < end (in `format.time_base`), decoded from the
        # keyframe at or before `start`; other streams are then not read (a segmented job copies them once).
        self._start, self._end = start, end
        self._want_packets = passthrough
        self.stats = ReaderStats()
        self._container: InputContainer = open_input(path)
        try:
            self._stream = main_video_stream(self._container, path)
            rotation, flagged, hdr = peek_frames(path, self._stream.index)
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = threads
            self.format = replace(_video_format(self._stream, rotation, path), hdr=hdr)
            field_order = FIELD_ORDERS.get(int(self._stream.codec_context.field_order or 0), "unknown")
            self._deinterlacer: Deinterlacer | None = None
            if wants_deinterlace(deinterlace, field_order, flagged):
                self._deinterlacer = Deinterlacer(
                    self._stream, field_order=field_order, field_rate=field_rate
                )
                rate = self.format.frame_rate
                self.format = replace(
                    self.format,
                    time_base=self._deinterlacer.time_base,
                    frame_rate=rate * 2 if rate is not None and field_rate else rate,
                )
        except BaseException:
            self._container.close()
            raise
        # "yuv": planar 4:2:0 at the source's depth for the device path; odd sizes have no 4:2:0 planes
        # that PyAV packs, so they stay rgb24 (the caller reads `layout` to know which it got).
        # "rgb": 16-bit RGB (rgb48le) for sources deeper than 8 bits, so the model sees their precision.
        even = self.format.width % 2 == 0 and self.format.height % 2 == 0
        deep = yuv_layout(self.format.pix_fmt) == "yuv420p10le"
        self.layout: PixelLayout = "rgb24"
        if layout == "yuv" and even:
            self.layout = yuv_layout(self.format.pix_fmt)
        elif layout == "rgb" and deep:
            self.layout = "rgb48le"
        self._letterbox = Letterbox(self.format.width, self.format.height)
        self._src_matrix = colour.sws_matrix(self.format.colorspace)
        self.passthrough: list[Stream] = [s for s in self._container.streams if s.type in PASSTHROUGH_TYPES]
        self._last_pts: int | None = None
        self._last_step = _ticks_per_frame(self._stream)

    @property
    def deinterlaced(self) -> bool:
        """Whether frames pass through bwdif (their pts are then in half the stream's time base)."""
        return self._deinterlacer is not None

    @property
    def container(self) -> InputContainer:
        """The open input container (metadata, chapters); valid only while the reader is open."""
        return self._container

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
        self._container.close()

    def __iter__(self) -> Iterator[Frame | av.Packet]:
        """Demux once, in file order: video packets come out as Frames, passthrough packets as they are."""
        video = self._stream.index
        keep = {s.index for s in self.passthrough} if self._want_packets else set()
        if self._start is not None:
            # Seek in the stream's own time base to the keyframe at or before the segment's start.
            ticks = self._start * self.format.time_base / self._stream.time_base
            self._container.seek(int(ticks), stream=self._stream, backward=True, any_frame=False)
        with _DamageLog(self._stream.codec_context.name) as damage:
            for item in self._demuxed(video, keep):
                self.stats.concealed += damage.count()
                if isinstance(item, Frame):
                    if self._start is not None and item.pts < self._start:
                        continue  # decoded only to reach the segment (or an open-GOP leftover of the last)
                    if self._end is not None and item.pts >= self._end:
                        break  # frames come out in pts order: everything before `end` has been seen
                yield item
            self.stats.concealed += damage.count()
        if self.stats.frames == 0 and self._start is None:
            raise BadInputError(f"{self.path}: no decodable video frames")

    def _demuxed(self, video: int, keep: set[int]) -> Iterator[Frame | av.Packet]:
        for packet in self._packets():
            index = packet.stream.index
            if index == video and packet.size:
                yield from self._decode(packet)
            elif index in keep and packet.size and packet.dts is not None:
                yield packet
        yield from self._decode(None)

    def _packets(self) -> Iterator[av.Packet]:
        try:
            yield from self._container.demux()
        except av.error.InvalidDataError:
            self.stats.truncated = True  # keep what was read; the caller sees it in stats

    def _decode(self, packet: av.Packet | None) -> Iterator[Frame]:
        try:
            decoded = self._stream.decode(packet)
        except av.error.InvalidDataError:
            self.stats.decode_errors += 1
            rejected, frames = self.stats.decode_errors, self.stats.frames
            if rejected > GIVE_UP_REJECTED and rejected > GIVE_UP_RATIO * frames:
                raise BadInputError(
                    f"{self.path}: too damaged: {rejected} video packets rejected against {frames} frames "
                    "decoded; giving up"
                ) from None
            return
        for picture in decoded:
            if (picture.width, picture.height) != (self.format.width, self.format.height):
                self.stats.resized[f"{picture.width}x{picture.height}"] += 1
                picture = self._letterbox.fit(picture)
            self._stamp(picture)
            if self._deinterlacer is None:
                yield self._to_frame(picture)
            else:
                yield from map(self._to_frame, self._deinterlacer.filter(picture))
        if packet is None and self._deinterlacer is not None:
            yield from map(self._to_frame, self._deinterlacer.filter(None))

    def _stamp(self, picture: av.VideoFrame) -> None:
        """Make sure the picture has a pts (in the stream's time base) before anything uses it."""
        if picture.pts is None:
            picture.pts = self._guess_pts(picture)
            self.stats.guessed_pts += 1
        if self._last_pts is not None and picture.pts > self._last_pts:
            self._last_step = picture.pts - self._last_pts
        self._last_pts = picture.pts

    def _to_frame(self, picture: av.VideoFrame) -> Frame:
        self.stats.frames += 1
        if self.stats.first_pts is None:
            self.stats.first_pts = picture.pts
        self.stats.last_pts = picture.pts
        if self.layout in ("rgb24", "rgb48le"):
            rgb = picture.reformat(
                format=self.layout, src_colorspace=self._src_matrix, src_color_range=self.format.color_range
            ).to_ndarray()
            return Frame(np.ascontiguousarray(rgb), picture.pts, self.layout)
        # Planar 4:2:0 as decoded (no conversion when the source already is), colour maths left to the GPU.
        planes = picture.reformat(format=self.layout).to_ndarray()
        return Frame(np.ascontiguousarray(planes), picture.pts, self.layout)

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

    Captures FFmpeg's log process-wide while a reader iterates (frame-threaded decoders log from their own
    threads) and keeps only error-level lines from the video decoder; the capture is drained at every
    count, so memory stays flat however damaged the input is. Nothing of it reaches stderr.
    """

    def __init__(self, decoder: str) -> None:
        self.decoder = decoder
        self._capture = av.logging.Capture(local=False)
        self._level: int | None = None

    def __enter__(self) -> _DamageLog:
        self._level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        self._logs = self._capture.__enter__()
        return self

    def count(self) -> int:
        logs, n = self._logs, 0
        while logs:
            level, name, _message = logs.pop()
            n += level <= av.logging.ERROR and name == self.decoder
        return n

    def __exit__(self, *exc: object) -> None:
        self._capture.__exit__(*exc)
        av.logging.set_level(self._level)


def _video_format(stream: VideoStream, rotation: int, path: Path) -> VideoFormat:
    ctx = stream.codec_context
    pix_fmt = ctx.pix_fmt or "yuv420p"
    if stream.time_base is None:
        raise BadInputError(f"{path}: video stream has no time base")
    return VideoFormat(
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
