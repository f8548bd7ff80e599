"""Encode RGB frames with their exact pts, stream-copy the kept packets, and publish the file atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.container import OutputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from vsr.errors import BadInputError, OutputError, UsageError
from vsr.files import discard, temporary_beside
from vsr.media import colour
from vsr.media.geometry import Placement
from vsr.media.hdr import HLG, PQ
from vsr.media.planes import PLANAR, unpack
from vsr.media.reader import PixelLayout, SourceFormat, SourceStreams

# Tags the muxer writes itself; copying the source's would describe the source, not the output.
MUXER_TAGS = frozenset({"duration", "encoder", "major_brand", "minor_version", "compatible_brands"})

# Encoders that take x264-style crf/preset options.
CRF_CODECS = frozenset({"libx264", "libx264rgb", "libx265"})
RGB_MATRIX = 0  # AVCOL_SPC_RGB: the identity "matrix" of RGB (GBR) pixel formats
# What the machine, not the request, can refuse: a full disk, a quota, a read-only or missing folder.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.ENOENT}
)


def environment_error(target: Path, exc: OSError) -> OutputError | None:
    """The OutputError an OSError means for writing `target`, or None when it is something else."""
    if exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return OutputError(f"{target}: no space left for the output ({os.strerror(exc.errno)})")
    return OutputError(f"{target.parent}: cannot write the output there ({os.strerror(exc.errno)})")


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """How the video is encoded; pix_fmt None keeps the source's chroma family (and >8 bits if it can)."""

    codec: str = "libx264"
    crf: int = 18
    # x264 "faster": at CRF 18 on upscaled 720p it writes the bits of "medium" within 1 % and 0.13 dB, at
    # 1.6x the speed, so the encoder stops holding back a CPU model stage (bench/encode_presets.py).
    preset: str = "faster"
    pix_fmt: str | None = None
    threads: int = 0
    codec_options: dict[str, str] = field(default_factory=dict)  # passed to the encoder as they are
    colorspace: int | None = None  # AVCOL_SPC matrix to convert to (e.g. 1, BT.709); None keeps the source's
    container_options: dict[str, str] = field(default_factory=dict)  # to the muxer (e.g. movflags)

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 63:
            raise UsageError(f"crf must be within 0..63, got {self.crf}")


def encoder_pix_fmt(codec: str, source_pix_fmt: str) -> str:
    """The encoder pixel format closest to the source: same chroma family, 10-bit for deeper sources."""
    source = av.video.format.VideoFormat(source_pix_fmt)
    family = "420"
    if source.is_rgb or "444" in source_pix_fmt:
        family = "444"
    elif "422" in source_pix_fmt:
        family = "422"
    candidates = [f"yuv{family}p", "yuv420p"]
    if colour.bit_depth(source_pix_fmt) > 8:
        candidates.insert(0, f"yuv{family}p10le")
    supported = av.codec.Codec(codec, "w").video_formats
    if not supported:
        return candidates[0]
    names = [f.name for f in supported]
    return next((c for c in candidates if c in names), names[0])


class VideoWriter:
    """Owns the output container: writes to a hidden temporary file beside `target`, renamed on commit()."""

    def __init__(
        self,
        target: Path,
        *,
        source: SourceFormat,
        width: int,
        height: int,
        streams: SourceStreams | None = None,
        options: EncodeOptions | None = None,
        video_from: VideoStream | None = None,
        frame_size: tuple[int, int] | None = None,
        placement: Placement | None = None,
    ) -> None:
        """A width x height video of `source`'s timing and colour, with `streams`' kept streams, tags and
        chapters copied (None writes the video alone: a segment). video_from copies an already encoded video
        stream instead of encoding (packets go in through write_encoded); frame_size (width, height) of the
        pictures given to write_frame when they must be resampled to width x height; `placement` (a target
        size) crops them, resamples them to its inner size and pads them with black bars."""
        options = options or EncodeOptions()
        if streams is not None and target.resolve() == streams.path.resolve():
            raise UsageError(f"{target}: the output would overwrite the input")
        if not target.parent.is_dir():
            raise OutputError(f"{target.parent}: no such directory for the output")
        self.target = target
        self.warnings: list[str] = []
        self.dropped: list[str] = []  # input streams not in the output, each with its reason
        self.frames_written = 0
        self.first_pts: int | None = None  # of the video written, in the source time base
        self.last_pts: int | None = None
        self._fmt = source
        # The Y'CbCr matrix of the output: the source's, or the one asked for (SD BT.601 → HD BT.709). Only
        # the matrix changes; primaries and transfer stay the source's, tags and pixels alike.
        self.matrix = options.colorspace or source.colorspace
        self._size = (height, width) if frame_size is None else (frame_size[1], frame_size[0])
        self._resample = frame_size is not None and frame_size != (width, height)
        # Crop and pad need the picture as RGB; a placement without them is a plain resample.
        self._placement = placement if placement and (placement.crop or any(placement.pad)) else None
        self._square = self._resample or placement is not None  # a target size is in square pixels
        self._committed = False
        self._closed = False
        self._last_pts: int | None = None  # of the frames encoded, in the encoder's time base
        self._encoder_tb = source.time_base
        self._pts_bumped = 0
        # Same extension so the muxer is chosen by it; hidden so nobody mistakes it for the result.
        self._tmp = temporary_beside(target)
        try:
            self._container: OutputContainer = av.open(
                str(self._tmp), mode="w", options=dict(options.container_options)
            )
        except OSError as exc:
            discard(self._tmp)
            raise environment_error(target, exc) or UsageError(f"{target}: cannot write it ({exc})") from exc
        except (ValueError, av.error.FFmpegError) as exc:
            discard(self._tmp)
            raise UsageError(f"{target}: cannot write this kind of file ({exc})") from exc
        self._copy_dts: dict[int, int] = {}  # last dts muxed per copied input stream
        self._copy_skipped: dict[int, int] = {}  # packets skipped per input stream (dts going backwards)
        try:
            if video_from is None:
                self._video = self._add_video(width, height, options)
            else:
                self._video = self._copy_video(video_from)
            self._copies = self._add_passthrough(streams) if streams is not None else {}
            if streams is not None:
                self._copy_container_info(streams)
            self._start()
        except BaseException:
            self._abort()
            raise

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._committed:
            self._abort()

    def write_encoded(self, packet: av.Packet) -> None:
        """Mux one packet of the copied video stream (see video_from), with its pts and dts as they are."""
        if packet.pts is not None:
            self._span(int(packet.pts * packet.time_base / self._fmt.time_base))
        packet.stream = self._video
        self._mux(packet)
        self.frames_written += 1

    def _start(self) -> None:
        """Open the encoder and write the header now, before any frame is decoded: a request the encoder or
        the container cannot take is refused here, with what would work, not after minutes of work."""
        try:
            self._container.start_encoding()
        except OSError as exc:
            if (error := environment_error(self.target, exc)) is not None:
                raise error from exc
            raise self._refusal(exc) from exc
        except (ValueError, av.error.FFmpegError) as exc:
            raise self._refusal(exc) from exc

    def _refusal(self, exc: Exception) -> UsageError:
        ctx = self._video.codec_context
        if ctx.name.endswith("_nvenc"):  # before the container check: every test stream would fail alike
            return UsageError(
                f"{self.target}: {ctx.name} needs an NVIDIA GPU with NVENC and its driver, and none answered "
                f"({_reason(exc)}); the H100/H200 have no NVENC: use --codec libx264 or --profile web"
            )
        fits = _containers_for(ctx.name, ctx.pix_fmt)
        if fits and self.target.suffix.lower() not in fits:
            return self._no_container(ctx.name, ctx.pix_fmt, fits)
        what = f"{ctx.width}x{ctx.height} {ctx.pix_fmt} at {self._fmt.frame_rate} fps"
        return UsageError(f"{self.target}: {ctx.name} cannot encode {what}: {_reason(exc)}")

    def _no_container(self, codec: str, pix_fmt: str, fits: list[str] | None = None) -> UsageError:
        """The refusal of a container that cannot hold `codec`, naming those that can."""
        fits = _containers_for(codec, pix_fmt) if fits is None else fits
        where = f"write {' or '.join(fits)}" if fits else "no container here takes it"
        return UsageError(f"{self.target}: {self.target.suffix or 'this'} files cannot hold {codec}; {where}")

    def _mux(self, packets: av.Packet | list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except OSError as exc:
            if (error := environment_error(self.target, exc)) is None:
                raise
            raise error from exc
        except (av.error.ArgumentError, av.error.InvalidDataError) as exc:
            # The muxer refuses what the input carried (a damaged stream's parameters or timestamps).
            raise BadInputError(f"{self.target}: the output cannot be written: {exc}") from exc

    def _span(self, pts: int) -> None:
        self.first_pts = pts if self.first_pts is None else min(self.first_pts, pts)
        self.last_pts = pts if self.last_pts is None else max(self.last_pts, pts)

    def write_packet(self, packet: av.Packet) -> None:
        """Stream-copy one passthrough packet, untouched; packets of dropped streams are ignored."""
        index = packet.stream.index
        out = self._copies.get(index)
        if out is None:
            return
        last = self._copy_dts.get(index)
        if packet.dts is not None and last is not None and packet.dts <= last:
            # Damaged timestamps in a copied stream: the muxer would refuse the whole file for one packet.
            self._copy_skipped[index] = self._copy_skipped.get(index, 0) + 1
            return
        if packet.dts is not None:
            self._copy_dts[index] = packet.dts
        packet.stream = out
        self._mux(packet)

    @property
    def pix_fmt(self) -> str:
        """The encoder's pixel format."""
        return str(self._video.codec_context.pix_fmt)

    def write_frame(self, pixels: np.ndarray, pts: int, layout: PixelLayout = "rgb24") -> None:
        """Encode one picture at `pts` (source time base units).

        rgb24/rgb48le: (height, width, 3) uint8/uint16, converted with the output's matrix and the source's
        range. Planar yuv layouts (vsr.media.planes):
        PyAV's packed planes, already in the source's matrix and range (the GPU path converts there).
        Pictures come at `frame_size`; one that differs from the encoder's size is resampled (Lanczos).
        """
        ctx = self._video.codec_context
        h, w = self._size
        rgb = layout in ("rgb24", "rgb48le")
        planar = PLANAR.get(layout)
        if rgb:
            dtype = np.uint8 if layout == "rgb24" else np.uint16
            if pixels.shape != (h, w, 3) or pixels.dtype != dtype:
                raise ValueError(f"expected {(h, w, 3)} {dtype.__name__}, got {pixels.shape} {pixels.dtype}")
            if not self._resample and not self._placement and (h, w) != (ctx.height, ctx.width):
                # odd sizes: crop the last row/column
                pixels = np.ascontiguousarray(pixels[: ctx.height, : ctx.width])
        elif planar is None or pixels.shape != (planar.rows(h), w):
            raise ValueError(f"expected {layout} planes of size {self._size}, got {pixels.shape}")
        elif self._placement is not None:
            raise ValueError("a crop or pad placement takes RGB pictures")
        resample = self._resample
        if self._placement is not None:
            pixels, resample = _place(pixels, layout, self._placement)
        self._span(pts)
        # In the encoder's time base (the source's, or a legal rate's for MPEG-1/2); encoders and muxers
        # reject repeated pts, and one tick later is the smallest change that passes.
        tick = round(pts * self._fmt.time_base / self._encoder_tb)
        if self._last_pts is not None and tick <= self._last_pts:
            tick = self._last_pts + 1
            self._pts_bumped += 1
        self._last_pts = tick
        frame = av.VideoFrame.from_ndarray(pixels, format=layout) if rgb else unpack(pixels, layout, w, h)
        size = {"width": ctx.width, "height": ctx.height, "interpolation": "LANCZOS"} if resample else {}
        if rgb and self.matrix != RGB_MATRIX:
            frame = frame.reformat(
                format=ctx.pix_fmt,
                dst_colorspace=colour.sws_matrix(self.matrix),
                dst_color_range=self._fmt.color_range,
                **size,
            )
        elif layout != ctx.pix_fmt or size:  # depth, chroma layout or size only: the matrix stays
            frame = frame.reformat(format=ctx.pix_fmt, **size)
        frame.pts = tick
        frame.time_base = self._encoder_tb
        self._mux(self._video.encode(frame))
        self.frames_written += 1

    def commit(self) -> Path:
        """Flush the encoder, close the file and rename it onto the target."""
        self._mux(self._video.encode(None))
        for index, n in self._copy_skipped.items():
            self.warnings.append(f"stream #{index}: {n} packets with timestamps going backwards skipped")
        if self._pts_bumped:
            self.warnings.append(
                f"{self._pts_bumped} frames had non-increasing pts; each moved one tick later"
            )
        self._closed = True
        try:
            self._container.close()  # the trailer: the last write, where a full disk shows too
            os.replace(self._tmp, self.target)
        except OSError as exc:
            discard(self._tmp)
            if (error := environment_error(self.target, exc)) is None:
                raise
            raise error from exc
        self._committed = True
        return self.target

    def _abort(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                self._container.close()
        discard(self._tmp)

    def _hdr_options(self, codec: str, pix_fmt: str, codec_options: dict[str, str]) -> dict[str, str]:
        """Carry HDR static metadata where the encoder can write it; say so where it cannot."""
        fmt = self._fmt
        deep = colour.bit_depth(pix_fmt) > 8
        if fmt.color_trc in (PQ, HLG) and not deep:
            self.warnings.append(f"HDR ({'PQ' if fmt.color_trc == PQ else 'HLG'}) source encoded at 8 bits")
        if fmt.hdr is None:
            return codec_options
        if codec == "libx265" and deep:
            extra = fmt.hdr.x265_params()
            params = codec_options.get("x265-params")
            return {**codec_options, "x265-params": f"{params}:{extra}" if params else extra}
        self.warnings.append(
            f"HDR mastering-display/content-light metadata not carried: {codec} {pix_fmt} output cannot "
            "hold it here (use --profile hevc10)"
        )
        return codec_options

    def _copy_video(self, template: VideoStream) -> VideoStream:
        stream = self._container.add_stream_from_template(template)
        stream.time_base = template.time_base
        if self._fmt.rotation:  # stream side data does not travel with the template
            stream.set_display_rotation(self._fmt.rotation)
        return stream  # type: ignore[return-value]

    def _add_video(self, width: int, height: int, options: EncodeOptions) -> VideoStream:
        fmt = self._fmt
        pix_fmt = options.pix_fmt or encoder_pix_fmt(options.codec, fmt.pix_fmt)
        if av.video.format.VideoFormat(pix_fmt).is_rgb:
            if options.colorspace:
                raise UsageError(f"--colorspace converts a Y'CbCr matrix; {pix_fmt} output is RGB")
            self.matrix = RGB_MATRIX  # tagged as RGB (GBR, full range), so every decoder shows its colours
        self._encoder_tb = _encoder_time_base(options.codec, fmt)
        # AVI counts frames instead of storing timestamps: its time base must be one frame, and encoders
        # whose packets carry a decoding delay come back a frame late from it.
        frame_indexed = self._container.format.name == "avi" and fmt.frame_rate is not None
        if self._container.format.name == "avi" and options.codec in AVI_UNTIMED:
            raise UsageError(
                f"{self.target}: AVI cannot keep the timing of {options.codec} (it stores no timestamps); "
                "write .mkv or .mov, or use an intra codec (ffv1, utvideo) in AVI"
            )
        if frame_indexed:
            self._encoder_tb = 1 / fmt.frame_rate  # type: ignore[operator]
        codec_options = {}
        if options.codec in CRF_CODECS:
            codec_options = {"crf": str(options.crf), "preset": options.preset}
        codec_options.update(options.codec_options)
        codec_options = self._hdr_options(options.codec, pix_fmt, codec_options)
        codec_options = {**_QUIET.get(options.codec, {}), **codec_options}
        if self._container.format.name == "avi":
            # AVI stores no presentation timestamps: reordered (B) frames would come out at the wrong times.
            codec_options.setdefault("bf", "0")
        try:
            stream = self._container.add_stream(options.codec, rate=fmt.frame_rate, options=codec_options)
        except ValueError as exc:  # "'matroska' format does not support 'utvideo' codec"
            raise self._no_container(options.codec, pix_fmt) from exc
        if not isinstance(stream, VideoStream):
            raise UsageError(f"{options.codec!r} is not a video encoder")
        even_w, even_h = _encodable_size(width, height, pix_fmt)
        if (even_w, even_h) != (width, height):
            self.warnings.append(f"{width}x{height} cropped to {even_w}x{even_h}: {pix_fmt} needs even sizes")
        ctx = stream.codec_context
        stream.width, stream.height, stream.pix_fmt = even_w, even_h, pix_fmt
        # Frames keep the source's pts in the source's time base (MPEG-1/2: a legal rate's, which a CFR
        # source at that rate maps onto exactly); the rate above only steers rate control.
        ctx.time_base = self._encoder_tb
        stream.time_base = self._encoder_tb if frame_indexed else fmt.time_base
        ctx.thread_count = options.threads
        ctx.color_primaries = fmt.color_primaries
        ctx.color_trc = fmt.color_trc
        ctx.colorspace = self.matrix
        ctx.color_range = colour.RANGE_FULL if self.matrix == RGB_MATRIX else fmt.color_range
        # Resampled output (--square-pixels, a target size) is square by definition; otherwise keep the
        # display aspect.
        sar = Fraction(1) if self._square else _output_sar(fmt, even_w, even_h)
        if sar is not None:
            ctx.sample_aspect_ratio = sar
        if fmt.rotation:
            stream.set_display_rotation(fmt.rotation)
        return stream

    def _drop(self, reason: str) -> None:
        self.dropped.append(reason)
        self.warnings.append(reason)

    def _add_passthrough(self, source: SourceStreams) -> dict[int, Stream]:
        copies: dict[int, Stream] = {}
        for stream in source.streams:
            what = f"stream #{stream.index} ({stream.type}, {_codec_name(stream)})"
            if stream.index == source.video_index:
                continue
            if stream.index not in source.kept:
                self._drop(f"{what} not copied: only audio, subtitles and attachments are")
                continue
            ctx = stream.codec_context
            if stream.type == "audio" and not (ctx is not None and ctx.sample_rate and ctx.channels):
                # An empty or broken track (no packets were ever probed): muxers refuse it in the header.
                self._drop(f"{what} dropped: no sample rate or channels (an empty or broken track)")
                continue
            if isinstance(stream, av.stream.AttachmentStream) and self._container.format.name != "matroska":
                # Other muxers accept the stream and then fail to write the header.
                self._drop(f"{what} dropped: only mkv holds attachments")
                continue
            try:
                if isinstance(stream, av.stream.AttachmentStream):
                    self._container.add_attachment(
                        stream.metadata.get("filename", f"attachment{stream.index}"),
                        stream.mimetype or "application/octet-stream",
                        stream.data,
                    )
                    continue
                refused = _header_refuses(
                    self.target.suffix, lambda out, s=stream: out.add_stream_from_template(s)
                )
                if refused:  # "Unsupported audio codec" of MPEG-PS shows only when the header is written
                    self._drop(f"{what} dropped: {self.target.suffix} files cannot hold it ({refused})")
                    continue
                out = self._container.add_stream_from_template(stream)
            except (ValueError, av.error.FFmpegError) as exc:  # "'mp4' format does not support 'srt' codec"
                self._drop(f"{what} dropped: {exc}")
                continue
            out.metadata.update(_copyable(stream.metadata))
            out.disposition = stream.disposition
            copies[stream.index] = out
        return copies

    def _copy_container_info(self, source: SourceStreams) -> None:
        self._container.metadata.update(_copyable(source.metadata))
        chapters = list(source.chapters)
        if chapters:
            try:
                self._container.set_chapters(chapters)
            except (ValueError, av.error.FFmpegError) as exc:
                self.warnings.append(f"{len(chapters)} chapters dropped: {exc}")


def _encoder_time_base(codec: str, fmt: SourceFormat) -> Fraction:
    """The source's time base, or 1/rate for encoders that take only certain rates (MPEG-1/2), when the
    source's rate is one of them; UsageError naming the rates otherwise."""
    try:
        legal = av.codec.Codec(codec, "w").frame_rates
    except ValueError:  # unknown encoder: add_stream says so in its own words
        return fmt.time_base
    if not legal:
        return fmt.time_base
    rates = [Fraction(r.numerator, r.denominator) for r in legal]
    rate = fmt.frame_rate
    best = min(rates, key=lambda r: abs(r - rate)) if rate else None
    if best is None or rate is None or abs(best - rate) > rate / 1000:
        common = ", ".join(str(r) for r in rates if r in _STANDARD_RATES)
        raise UsageError(
            f"{codec} takes only standard frame rates ({common}); this source runs at {rate} fps"
        )
    return 1 / best


_STANDARD_RATES = frozenset(
    Fraction(n, d)
    for n, d in ((24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (50, 1), (60000, 1001), (60, 1))
)


# Encoders whose output AVI's frame counting cannot time: their decoders report a delay, and the frames of
# an AVI come back one late (found by tests/test_output_contract.py's matrix).
AVI_UNTIMED = frozenset(
    {"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libvpx", "libsvtav1", "libaom-av1", "mpeg2video"}
)

# Encoders that print their banner to stderr unless told not to (their own logger, not FFmpeg's).
_QUIET = {"libx265": {"x265-params": "log-level=error"}}

# The containers a refusal suggests, in the order media teams reach for them.
CONTAINERS = (".mkv", ".mp4", ".mov", ".mxf", ".avi", ".nut", ".ts", ".mpg", ".webm")


def _reason(exc: Exception) -> str:
    """FFmpeg's own last words on a failure where it logged them, else the exception's message."""
    log = getattr(exc, "log", None)
    if log and len(log) == 3 and log[2]:
        return str(log[2]).strip()
    return getattr(exc, "strerror", None) or str(exc)


def _containers_for(codec: str, pix_fmt: str) -> list[str]:
    """The containers that hold `codec`: those where a small test stream starts, else (an encoder that
    wants particular sizes or rates, like DNxHD) those whose muxer lists the codec."""

    started = [
        s for s in CONTAINERS if not _header_refuses(s, lambda out: _scratch_video(out, codec, pix_fmt))
    ]
    return started or [s for s in CONTAINERS if _muxer_lists(s, codec)]


def _muxer_lists(suffix: str, codec: str) -> bool:
    with (
        tempfile.TemporaryDirectory(prefix="vsr-probe-") as tmp,
        av.open(str(Path(tmp) / f"p{suffix}"), "w") as out,
    ):
        try:
            out.add_stream(codec, rate=25)
        except ValueError:
            return False
    return True


def _scratch_video(out: OutputContainer, codec: str, pix_fmt: str) -> None:
    stream = out.add_stream(codec, rate=25, options=_QUIET.get(codec, {}))
    stream.width, stream.height, stream.pix_fmt = 64, 64, pix_fmt
    stream.codec_context.time_base = Fraction(1, 25)


def _header_refuses(suffix: str, add: Callable[[OutputContainer], object]) -> str | None:
    """Why a `suffix` file with the stream that `add` puts in it cannot be started, or None when it can:
    some muxers (MPEG-PS, MPEG-TS) accept any stream and refuse it only when the header is written."""
    with tempfile.TemporaryDirectory(prefix="vsr-probe-") as tmp:
        try:
            with av.open(str(Path(tmp) / f"probe{suffix}"), "w") as out:
                add(out)
                out.start_encoding()
        except (ValueError, av.error.FFmpegError) as exc:
            return _reason(exc)
    return None


def _codec_name(stream: Stream) -> str:
    ctx = stream.codec_context
    return ctx.name if ctx is not None else "unknown codec"


def _copyable(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.lower() not in MUXER_TAGS}


def _encodable_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """The size rounded down to what the pixel format's chroma subsampling allows."""
    desc = av.video.format.VideoFormat(pix_fmt)
    sub_w = 2 if desc.chroma_width(2) < 2 else 1
    sub_h = 2 if desc.chroma_height(2) < 2 else 1
    return width - width % sub_w, height - height % sub_h


def _place(pixels: np.ndarray, layout: str, placement: Placement) -> tuple[np.ndarray, bool]:
    """Crop an RGB picture to the placement and, when it has bars, resample and pad it here (black, in
    RGB, so the bars take the output's matrix and range like the picture). Returns the picture and
    whether it still needs resampling to the encoder's size (done with the colour conversion)."""
    if placement.crop is not None:
        x, y, w, h = placement.crop
        pixels = np.ascontiguousarray(pixels[y : y + h, x : x + w])
    if not any(placement.pad):
        return pixels, (pixels.shape[1], pixels.shape[0]) != placement.inner
    inner_w, inner_h = placement.inner
    if (pixels.shape[1], pixels.shape[0]) != placement.inner:
        frame = av.VideoFrame.from_ndarray(pixels, format=layout)
        pixels = frame.reformat(width=inner_w, height=inner_h, interpolation="LANCZOS").to_ndarray()
    left, top, right, bottom = placement.pad
    return np.pad(pixels, ((top, bottom), (left, right), (0, 0))), False


def _output_sar(fmt: SourceFormat, width: int, height: int) -> Fraction | None:
    """The SAR that keeps the source's display aspect ratio at the output size."""
    sar = fmt.sample_aspect_ratio or Fraction(1)
    out = sar * Fraction(fmt.width * height, fmt.height * width)
    if fmt.sample_aspect_ratio is None and out == 1:
        return None
    return out
