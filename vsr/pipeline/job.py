"""`UpscaleJob`: one input file through a chain of models into one output file, streaming.

decode thread ──Channel──► model thread ──Channel──► encode thread
(reader: frames + packets)   (backends, in order)    (writer: packets, then frames)

Before the threads start, `negotiate` decides once which pixel layout the reader decodes to and the
writer receives; every batch then carries its layout. With a DevicePath the frames travel as the decoder's
planar YUV and the model thread stages them through pinned double buffers on CUDA streams
(vsr.pipeline.double_buffer); colour conversion happens on the device.

Memory stays bounded by the channel depths whatever the clip length. Packets of the streams that are
copied (audio, subtitles) travel with the batch during whose decoding they were demuxed, so the writer
sees them in file order and the muxer interleaves them with the encoded video.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np

from vsr.backends import UINT16, Backend
from vsr.errors import OutputError, StalledError, UsageError
from vsr.media import EncodeOptions, Frame, PixelLayout, ReaderStats, SourceFormat, VideoReader, VideoWriter
from vsr.media.deinterlace import DeinterlaceMode
from vsr.media.geometry import TargetSize, place
from vsr.media.planes import PLANAR
from vsr.media.reader import rgb_layout, yuv_layout
from vsr.pipeline.threads import Channel, StageGroup
from vsr.pipeline.tiling import run_tiled

if TYPE_CHECKING:
    from vsr.pipeline.device import DevicePath
    from vsr.pipeline.double_buffer import DeviceStager

PROGRESS_EVERY_S = 0.2
STALL_GRACE_S = 10.0  # how long a stalled job's stages get to notice the stop before the error is raised
TILE_OVERLAP = 16  # input pixels around each CPU tile: more than any shipped model's receptive radius


@dataclass(frozen=True)
class UpscaleRequest:
    """What to do: files, scale factor of the model chain, batching, tiling and encoding."""

    input: Path
    output: Path
    scale: int
    batch: int = 2
    tile: int | None = None  # CPU path: tile side in input pixels (the GPU path tiles per its DevicePath)
    queue_depth: int = 2  # batches waiting between stages
    decode_threads: int = 0
    deinterlace: DeinterlaceMode = "auto"
    field_rate: bool = False  # with deinterlacing: one output frame per field
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    overwrite: bool = False
    # One segment of a resumable job: frames with start_pts <= pts < end_pts, video only.
    start_pts: int | None = None
    end_pts: int | None = None
    video_only: bool = False
    # The watchdog: a job in which no frame is decoded or encoded for this long is stopped (StalledError).
    stall_seconds: float = 600.0
    square_pixels: bool = False  # resample anamorphic output to square pixels (width follows the SAR)
    target: TargetSize | None = None  # an exact output size (the model output is resampled, cropped, padded)

    def __post_init__(self) -> None:
        if self.batch < 1 or self.queue_depth < 1:
            raise UsageError("batch and queue depth must be at least 1")
        if self.tile is not None and self.tile < 16:
            raise UsageError("a tile side must be at least 16 input pixels")
        if self.target is not None and self.square_pixels:
            raise UsageError("a target size is in square pixels already; drop --square-pixels")
        if self.field_rate and self.deinterlace == "off":
            raise UsageError("--field-rate gives one frame per field: it needs deinterlacing (auto or on)")


@dataclass
class Progress:
    """State the caller polls; written only by the job's threads."""

    total_frames: int | None = None  # from the header; None when it does not say
    decoded: int = 0
    encoded: int = 0
    resumed: int = 0  # frames an earlier run of a resumed job encoded: counted in `encoded`, not in `fps`
    started: float = field(default_factory=time.perf_counter)

    @property
    def fps(self) -> float:
        """Frames encoded per second so far by this run."""
        elapsed = time.perf_counter() - self.started
        return (self.encoded - self.resumed) / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class JobResult:
    """What a job did: the summary line, --json and the reports of a folder are all drawn from it."""

    input: str
    output: str
    frames: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    seconds: float
    fps: float
    backend: str
    decode_errors: int
    streams_copied: int
    deinterlaced: bool
    warnings: tuple[str, ...]
    concealed_errors: int = 0  # damage the decoder concealed and logged (slices, macroblocks)
    frames_in: int = 0  # frames the reader handed out (after deinterlacing); frames_out is `frames`
    partial: bool = False  # the input ended in unreadable data: everything before it was processed
    streams_dropped: tuple[str, ...] = ()
    # Output video span minus input video span (first to last pts), seconds: 0 unless frames were lost.
    duration_difference_s: float | None = None
    model: str = ""  # the chain, "dncnn-color → espcn-x2"
    backend_reason: str = ""  # why this backend ran
    auto: dict[str, Any] | None = None  # with --model auto: what was measured, what was chosen and why
    quality: dict[str, Any] | None = None  # with --reference: VMAF, VMAF NEG, Y-PSNR of the whole output

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of a file (--json, --report, a folder's NAME.vsr.json)."""
        return asdict(self)

    @property
    def damaged(self) -> bool:
        """Complete, but with decode errors skipped or concealed."""
        return bool(self.decode_errors or self.concealed_errors)

    @classmethod
    def of(
        cls,
        request: UpscaleRequest,
        fmt: SourceFormat,
        stats: ReaderStats,
        writer: VideoWriter,
        *,
        output_size: tuple[int, int],
        started: float,
        models: Sequence[Backend],
        deinterlaced: bool,
        streams_kept: int,
        warnings: Sequence[str] = (),
    ) -> JobResult:
        """The result of a finished job, from what its reader counted and its writer wrote: the one place
        a result is built, for plain, segmented and resumed jobs alike."""
        elapsed = time.perf_counter() - started
        resized = [
            f"{n} frames of {size} letterboxed into {fmt.width}x{fmt.height} (the picture size changes "
            "mid-stream)"
            for size, n in stats.resized.items()
        ]
        truncated = ["the input ends in unreadable data: everything before it was processed"]
        return cls(
            input=str(request.input),
            output=str(request.output),
            frames=writer.frames_written,
            input_size=(fmt.width, fmt.height),
            output_size=output_size,
            seconds=round(elapsed, 3),
            fps=round(writer.frames_written / elapsed, 3) if elapsed > 0 else 0.0,
            backend=" → ".join(m.name for m in models),
            decode_errors=stats.decode_errors,
            concealed_errors=stats.concealed,
            streams_copied=streams_kept - len(writer.dropped),
            deinterlaced=deinterlaced,
            warnings=(*warnings, *writer.warnings, *resized, *(truncated if stats.truncated else [])),
            frames_in=stats.frames,
            partial=stats.truncated,
            streams_dropped=tuple(writer.dropped),
            duration_difference_s=_span_difference(stats, writer, fmt),
        )


def _span_difference(stats: ReaderStats, writer: VideoWriter, fmt: SourceFormat) -> float | None:
    """(last - first pts) of the output minus that of the input, in seconds; None when either is empty."""
    if None in (stats.first_pts, stats.last_pts, writer.first_pts, writer.last_pts):
        return None
    span_in = stats.last_pts - stats.first_pts  # type: ignore[operator]
    span_out = writer.last_pts - writer.first_pts  # type: ignore[operator]
    return round(float((span_out - span_in) * fmt.time_base), 6)


# Bytes per output pixel of the encoders whose files grow with the picture (lossless or intra-only), for
# the pre-flight check: bench/lossless_size.py measured FFV1 4:2:0 0.41, Ut Video 4:2:0 0.65 and ProRes
# 422 HQ 0.51 on samples/sample.mp4 upscaled to 1280x720, times 1.5 here for noisier footage.
BYTES_PER_PIXEL = {"ffv1": 0.6, "utvideo": 1.0, "prores_ks": 0.8}


def _room_warning(request: UpscaleRequest, frames: int, size: tuple[int, int]) -> str | None:
    """A warning when a lossless or intra-only output will not fit the free space of its disk."""
    per_pixel = BYTES_PER_PIXEL.get(request.encode.codec)
    if per_pixel is None or not frames:
        return None
    need = frames * size[0] * size[1] * per_pixel
    free = shutil.disk_usage(request.output.parent).free
    if need <= free:
        return None
    return (
        f"{request.encode.codec} output of {frames} frames at {size[0]}x{size[1]} needs about "
        f"{need / 2**30:.1f} GiB; {request.output.parent} has {free / 2**30:.1f} GiB free"
    )


def check_paths(request: UpscaleRequest) -> None:
    """Refuse, before any work, outputs that would overwrite the input or an existing file."""
    src, dst = request.input, request.output
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise UsageError(f"{dst}: the output would overwrite the input")
    if dst.is_dir():
        raise UsageError(f"{dst}: is a directory")
    if dst.exists() and not request.overwrite:
        raise UsageError(f"{dst}: exists (use --overwrite to replace it)")
    if not dst.parent.is_dir():
        raise OutputError(f"{dst.parent}: no such directory for the output")


@dataclass(frozen=True)
class Layouts:
    """The pixel layouts of a job: what the reader decodes to, and what the writer receives."""

    decode: PixelLayout
    encode: PixelLayout
    warnings: tuple[str, ...] = ()


def negotiate(fmt: SourceFormat, models: Sequence[Backend], *, device: bool, encoder_pix_fmt: str) -> Layouts:
    """The layouts for a source and a model chain, decided once before any thread starts.

    The device path takes the decoder's planes at the source's chroma resolution and depth (4:2:0, 4:2:2
    or 4:4:4) and returns planes in the encoder's (a size without whole chroma samples, an RGB source and an
    RGB encoder take the RGB path). The CPU path decodes
    to RGB, 16-bit for sources deeper than 8 bits when every model of the chain takes uint16; otherwise
    such a source runs at 8 bits, and the job says so.
    """
    rgb_out = av.video.format.VideoFormat(encoder_pix_fmt).is_rgb  # RGB outputs take RGB frames
    rgb_in = av.video.format.VideoFormat(fmt.pix_fmt).is_rgb
    if device and not (rgb_in or rgb_out):
        decode, encode = yuv_layout(fmt.pix_fmt), yuv_layout(encoder_pix_fmt)
        # The output is the input ×scale (the writer's resample or placement refuses planes anyway).
        if PLANAR[decode].divides(fmt.width, fmt.height) and PLANAR[encode].divides(fmt.width, fmt.height):
            return Layouts(decode, encode)
    layout = rgb_layout(fmt.pix_fmt)
    shallow = [m.name for m in models if UINT16 not in m.dtypes]
    if layout == "rgb48le" and shallow:
        warning = f"the {fmt.bits}-bit source runs at 8 bits: {', '.join(shallow)} take 8-bit frames only"
        return Layouts("rgb24", "rgb24", (warning,))
    return Layouts(layout, layout)


@dataclass
class _Batch:
    pixels: np.ndarray  # (N, H, W, 3) RGB, or (N, rows, W) packed planes on the device path
    pts: list[int]
    packets: list[av.Packet]
    layout: PixelLayout
    release: Callable[[], None] | None = None  # gives a pooled (pinned) buffer back once encoded


class UpscaleJob:
    """Runs one request through `models` (applied in order); poll `progress`, call `abort()` to stop.

    `source` lends an open reader of the input (a resumable job reads every segment from one); without
    it the job opens and closes its own.
    """

    def __init__(
        self,
        request: UpscaleRequest,
        models: Sequence[Backend],
        *,
        device_path: DevicePath | None = None,
        source: VideoReader | None = None,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        if not models:
            raise UsageError("no model to run")
        self.request = request
        self.models = list(models)
        self.device_path = device_path  # models must then be DeviceBackends (torch, tensorrt)
        self.progress = Progress()
        self.stats = ReaderStats()  # the reader's counts, once the job has run
        self._source = source
        self._log = log  # one-off messages before the work starts (a disk that will not hold the output)
        self._group = StageGroup()
        self._stager: DeviceStager | None = None
        self._batch = request.batch

    def abort(self) -> None:
        """Ask every stage to stop; run() then raises KeyboardInterrupt and leaves no output behind."""
        self._group.stop.set()

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> JobResult:
        """Process the whole file; calls on_progress from the calling thread a few times a second."""
        req = self.request
        check_paths(req)
        if self._source is not None:
            return self._run(self._source, on_progress)
        with VideoReader(
            req.input, threads=req.decode_threads, deinterlace=req.deinterlace, field_rate=req.field_rate
        ) as reader:
            return self._run(reader, on_progress)

    def _run(self, reader: VideoReader, on_progress: Callable[[Progress], None] | None) -> JobResult:
        req, fmt = self.request, reader.format
        frame_w, frame_h = fmt.width * req.scale, fmt.height * req.scale
        out_w, out_h = frame_w, frame_h
        sar = fmt.sample_aspect_ratio
        if req.square_pixels and sar is not None and sar != 1:
            out_w = max(2, round(frame_w * sar / 2) * 2)  # the height stays; the width shows the DAR
        placement = None
        if req.target is not None:
            placement = place(fmt.width, fmt.height, sar, fmt.rotation, req.target, [req.scale])
            out_w, out_h = placement.size
        per_frame = 2 if reader.deinterlaced and req.field_rate else 1  # bwdif: one frame per field
        self.progress.total_frames = (reader.frames_expected or 0) * per_frame or None
        warnings = []
        if req.field_rate and not reader.deinterlaced:
            warnings.append("--field-rate: the source is progressive, so it was not deinterlaced")
        streams = None if req.video_only else reader.streams
        with VideoWriter(
            req.output,
            source=fmt,
            streams=streams,
            width=out_w,
            height=out_h,
            options=req.encode,
            frame_size=(frame_w, frame_h),
            placement=placement,
        ) as writer:
            if (room := _room_warning(req, reader.frames_expected, (out_w, out_h))) is not None:
                warnings.append(room)
                self._log(f"warning: {room}")
            layouts = negotiate(
                fmt, self.models, device=self.device_path is not None, encoder_pix_fmt=writer.pix_fmt
            )
            if layouts.decode.startswith("yuv"):
                self._stager = self._device_stager(fmt, layouts, writer.matrix)
            frames = reader.read(
                layouts.decode, start=req.start_pts, end=req.end_pts, passthrough=streams is not None
            )
            try:
                self._run_stages(frames, writer, on_progress)
            finally:
                if self._stager is not None:
                    self._stager.close()
            writer.commit()
        self.stats = reader.stats
        return JobResult.of(
            req,
            fmt,
            reader.stats,
            writer,
            output_size=(out_w, out_h),
            started=self.progress.started,
            models=self.models,
            deinterlaced=reader.deinterlaced,
            streams_kept=len(streams.kept) if streams else 0,
            warnings=(*warnings, *layouts.warnings),
        )

    def _device_stager(self, fmt: SourceFormat, layouts: Layouts, matrix: int) -> DeviceStager:
        from vsr.pipeline.device import yuv_chain
        from vsr.pipeline.double_buffer import DeviceStager
        from vsr.pipeline.yuv import YuvSpec

        assert self.device_path is not None
        path, batch = self.device_path.planned(fmt.height, fmt.width, self.request.scale, self.request.batch)
        self.device_path, self._batch = path, batch
        for model, (low, high) in zip(self.models, path.shapes(fmt.height, fmt.width, batch), strict=True):
            model.prepare(low, high)  # type: ignore[attr-defined]  (device models: TensorRT plans here)
        source = YuvSpec.of(fmt, layouts.decode)
        target = YuvSpec.of(fmt, layouts.encode, matrix=matrix)
        run = yuv_chain(self.models, fmt.height, source, target, self.device_path)  # type: ignore[arg-type]
        self._encode_layout = layouts.encode
        return DeviceStager(run, self.device_path.device, slots=self.device_path.slots)

    def _run_stages(
        self, frames: Any, writer: VideoWriter, on_progress: Callable[[Progress], None] | None
    ) -> None:
        group, depth = self._group, self.request.queue_depth
        decoded, inferred = group.channel(depth), group.channel(depth)
        group.spawn("decode", lambda: self._decode(frames, decoded))
        group.spawn("model", lambda: self._infer(decoded, inferred))
        group.spawn("encode", lambda: self._encode(inferred, writer))
        moved, last_move = (-1, -1), time.monotonic()
        try:
            while group.alive():
                group.join(PROGRESS_EVERY_S)
                if on_progress is not None:
                    on_progress(self.progress)
                now, state = time.monotonic(), (self.progress.decoded, self.progress.encoded)
                if state != moved:
                    moved, last_move = state, now
                elif now - last_move > (limit := self.request.stall_seconds):
                    raise StalledError(
                        f"{self.request.input}: no frame decoded or encoded for {limit:g} s "
                        f"(after {state[0]} decoded, {state[1]} encoded); stopped"
                    )
        except StalledError:
            group.stop.set()
            group.join(STALL_GRACE_S)  # a stage stuck inside FFmpeg or a runtime may never return
            raise
        except BaseException:  # Ctrl-C lands here, in the calling thread: stop the stages, then clean up
            group.stop.set()
            group.join()
            raise
        if group.error is not None:
            raise group.error
        if group.stop.is_set():  # abort() without an error
            raise KeyboardInterrupt
        if on_progress is not None:
            on_progress(self.progress)

    def _decode(self, items: Any, out: Channel) -> None:
        size, frames, pts, packets = self._batch, [], [], []
        layout: PixelLayout = "rgb24"
        stager = self._stager
        buffer: np.ndarray | None = None  # on the device path frames go straight into a pinned batch

        def batch() -> _Batch:
            if buffer is not None:
                pixels = buffer[: len(pts)]
            else:
                pixels = np.stack(frames) if frames else np.empty((0, 0, 0, 3), np.uint8)
            return _Batch(pixels, pts, packets, layout)

        for item in items:
            if isinstance(item, Frame):
                if stager is not None:
                    if buffer is None:
                        buffer = stager.host_batch((size, *item.pixels.shape), item.pixels.dtype)
                    buffer[len(pts)] = item.pixels
                else:
                    frames.append(item.pixels)
                pts.append(item.pts)
                layout = item.format
                self.progress.decoded += 1
                if len(pts) == size:
                    out.put(batch())
                    frames, pts, packets, buffer = [], [], [], None
            else:
                packets.append(item)
        if pts or packets:
            out.put(batch())
        out.close()

    def _infer(self, inp: Channel, out: Channel) -> None:
        if self._stager is not None:
            self._infer_staged(self._stager, inp, out)
            return
        tile = self.request.tile
        for batch in inp:
            if batch.pts:
                for model in self.models:
                    if tile is None:
                        batch.pixels = model.run(batch.pixels)
                    else:
                        batch.pixels = run_tiled(
                            model.run, batch.pixels, scale=model.scale, tile=tile, overlap=TILE_OVERLAP
                        )
            out.put(batch)
        out.close()

    def _infer_staged(self, stager: DeviceStager, inp: Channel, out: Channel) -> None:
        # Batches leave in the order they came; packet-only batches wait behind frames still on the device.
        waiting: deque[_Batch] = deque()

        def emit_oldest() -> None:
            batch = waiting.popleft()
            pixels, _ = stager.collect()  # the oldest submitted is the oldest waiting with frames
            batch.pixels, batch.layout = pixels, self._encode_layout
            batch.release = lambda: stager.release(pixels)
            out.put(batch)

        for batch in inp:
            if batch.pts:
                if stager.full:
                    emit_oldest()
                stager.submit(batch.pixels)
            waiting.append(batch)
            while waiting and not waiting[0].pts:
                out.put(waiting.popleft())
        while waiting:
            if waiting[0].pts:
                emit_oldest()
            else:
                out.put(waiting.popleft())
        out.close()

    def _encode(self, inp: Channel, writer: VideoWriter) -> None:
        for batch in inp:
            for packet in batch.packets:
                writer.write_packet(packet)
            for picture, pts in zip(batch.pixels, batch.pts, strict=True):
                writer.write_frame(picture, pts, batch.layout)
                self.progress.encoded += 1
            if batch.release is not None:
                batch.release()
