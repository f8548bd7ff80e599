"""`UpscaleJob`: one input file through a chain of models into one output file, streaming.

decode thread ──Channel──► model thread ──Channel──► encode thread
(reader: frames + packets)   (backends, in order)    (writer: packets, then frames)

With a DevicePath the frames travel as the decoder's planar YUV and the model thread stages them through
pinned double buffers on CUDA streams (vsr.pipeline.staging); colour conversion happens on the device.

Memory stays bounded by the channel depths whatever the clip length. Packets of the streams that are
copied (audio, subtitles) travel with the batch during whose decoding they were demuxed, so the writer
sees them in file order and the muxer interleaves them with the encoded video.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np

from vsr.backends import Backend
from vsr.errors import StalledError, UsageError
from vsr.media import EncodeOptions, Frame, VideoReader, VideoWriter
from vsr.media.deinterlace import DeinterlaceMode
from vsr.pipeline.stages import Channel, StageGroup

if TYPE_CHECKING:
    from vsr.pipeline.device import DevicePath
    from vsr.pipeline.staging import DeviceStager

PROGRESS_EVERY_S = 0.2
STALL_GRACE_S = 10.0  # how long a stalled job's stages get to notice the stop before the error is raised


@dataclass(frozen=True)
class UpscaleRequest:
    """What to do: files, scale factor of the model chain, batching and encoding."""

    input: Path
    output: Path
    scale: int
    batch: int = 2
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

    def __post_init__(self) -> None:
        if self.batch < 1 or self.queue_depth < 1:
            raise UsageError("batch and queue depth must be at least 1")


@dataclass
class Progress:
    """State the caller polls; written only by the job's threads."""

    total_frames: int | None = None  # from the header; None when it does not say
    decoded: int = 0
    encoded: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def fps(self) -> float:
        """Frames encoded per second so far."""
        elapsed = time.perf_counter() - self.started
        return self.encoded / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class JobResult:
    """What the job did, for the summary line and --json."""

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

    def report(self, model: str, backend_reason: str) -> dict[str, Any]:
        """The JSON report of a file (--json, --report, a queue's NAME.vsr.json)."""
        return {"model": model, "backend_reason": backend_reason, **asdict(self)}

    @property
    def damaged(self) -> bool:
        """Complete, but with decode errors skipped or concealed: exit code 1."""
        return bool(self.decode_errors or self.concealed_errors)


@dataclass
class _Batch:
    pixels: np.ndarray  # (N, H, W, 3) uint8 RGB, or (N, H·3/2, W) packed 4:2:0 planes on the device path
    pts: list[int]
    packets: list[av.Packet]


def _reader_warnings(reader: VideoReader, width: int, height: int) -> list[str]:
    warnings = [
        f"{n} frames of {size} letterboxed into {width}x{height} (the picture size changes mid-stream)"
        for size, n in reader.stats.resized.items()
    ]
    if reader.stats.truncated:
        warnings.append("the input ends in unreadable data: everything before it was processed")
    return warnings


def span_difference(stats: Any, writer: VideoWriter, time_base: Any) -> float | None:
    """(last - first pts) of the output minus that of the input, in seconds; None when either is empty."""
    if None in (stats.first_pts, stats.last_pts, writer.first_pts, writer.last_pts):
        return None
    span_in = stats.last_pts - stats.first_pts
    span_out = writer.last_pts - writer.first_pts
    return round(float((span_out - span_in) * time_base), 6)


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
        raise UsageError(f"{dst.parent}: no such directory")


class UpscaleJob:
    """Runs one request through `models` (applied in order); poll `progress`, call `abort()` to stop."""

    def __init__(
        self, request: UpscaleRequest, models: Sequence[Backend], *, device_path: DevicePath | None = None
    ) -> None:
        if not models:
            raise UsageError("no model to run")
        self.request = request
        self.models = list(models)
        self.device_path = device_path  # models must then also offer run_float (torch, tensorrt)
        self.progress = Progress()
        self._group = StageGroup()
        self._stager: DeviceStager | None = None
        self._out_layout = "rgb24"
        self._batch = request.batch

    def abort(self) -> None:
        """Ask every stage to stop; run() then raises KeyboardInterrupt and leaves no output behind."""
        self._group.stop.set()

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> JobResult:
        """Process the whole file; calls on_progress from the calling thread a few times a second."""
        req = self.request
        check_paths(req)
        reader_options: dict[str, Any] = {"deinterlace": req.deinterlace, "field_rate": req.field_rate}
        deep = all(getattr(m, "supports_deep", False) for m in self.models)
        reader_options["layout"] = "yuv" if self.device_path is not None else ("rgb" if deep else "rgb24")
        reader_options.update(start=req.start_pts, end=req.end_pts, passthrough=not req.video_only)
        with VideoReader(req.input, threads=req.decode_threads, **reader_options) as reader:
            fmt = reader.format
            frame_w, frame_h = fmt.width * req.scale, fmt.height * req.scale
            out_w, out_h = frame_w, frame_h
            sar = fmt.sample_aspect_ratio
            if req.square_pixels and sar is not None and sar != 1:
                out_w = max(2, round(frame_w * sar / 2) * 2)  # the height stays; the width shows the DAR
            stream = reader.video_stream
            per_frame = 2 if reader.deinterlaced and req.field_rate else 1  # bwdif: one frame per field
            self.progress.total_frames = stream.frames * per_frame or None
            with VideoWriter(
                req.output,
                source=reader,
                width=out_w,
                height=out_h,
                options=req.encode,
                passthrough=not req.video_only,
                frame_size=(frame_w, frame_h),
            ) as writer:
                self._out_layout = reader.layout
                if reader.layout.startswith("yuv"):
                    assert self.device_path is not None
                    self.device_path, batch = self.device_path.planned(fmt.height, fmt.width, req.scale)
                    self._batch = batch or req.batch
                    self._stager = self._device_stager(reader, writer)
                try:
                    self._run_stages(reader, writer, on_progress)
                finally:
                    if self._stager is not None:
                        self._stager.close()
                writer.commit()
            elapsed = time.perf_counter() - self.progress.started
            return JobResult(
                input=str(req.input),
                output=str(req.output),
                frames=writer.frames_written,
                input_size=(fmt.width, fmt.height),
                output_size=(out_w, out_h),
                seconds=round(elapsed, 3),
                fps=round(writer.frames_written / elapsed, 3) if elapsed > 0 else 0.0,
                backend=" → ".join(m.name for m in self.models),
                decode_errors=reader.stats.decode_errors,
                concealed_errors=reader.stats.concealed,
                streams_copied=len(reader.passthrough) - len(writer.dropped),
                deinterlaced=reader.deinterlaced,
                warnings=tuple(writer.warnings) + tuple(_reader_warnings(reader, fmt.width, fmt.height)),
                frames_in=reader.stats.frames,
                partial=reader.stats.truncated,
                streams_dropped=tuple(writer.dropped),
                duration_difference_s=span_difference(reader.stats, writer, fmt.time_base),
            )

    def _device_stager(self, reader: VideoReader, writer: VideoWriter) -> DeviceStager:
        from vsr.media.reader import yuv_layout
        from vsr.pipeline.device import yuv_chain
        from vsr.pipeline.staging import DeviceStager
        from vsr.pipeline.yuv import YuvSpec

        assert self.device_path is not None
        fmt = reader.format
        self._out_layout = yuv_layout(writer.pix_fmt)
        source = YuvSpec.of(fmt, reader.layout)
        target = YuvSpec.of(fmt, self._out_layout, matrix=writer.matrix)
        run = yuv_chain(self.models, fmt.height, source, target, self.device_path)  # type: ignore[arg-type]
        return DeviceStager(run, self.device_path.device, slots=self.device_path.slots)

    def _run_stages(
        self, reader: VideoReader, writer: VideoWriter, on_progress: Callable[[Progress], None] | None
    ) -> None:
        group, depth = self._group, self.request.queue_depth
        decoded, inferred = group.channel(depth), group.channel(depth)
        group.spawn("decode", lambda: self._decode(reader, decoded))
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

    def _decode(self, reader: VideoReader, out: Channel) -> None:
        size, frames, pts, packets = self._batch, [], [], []
        for item in reader:
            if isinstance(item, Frame):
                frames.append(item.pixels)
                pts.append(item.pts)
                self.progress.decoded += 1
                if len(frames) == size:
                    out.put(_Batch(np.stack(frames), pts, packets))
                    frames, pts, packets = [], [], []
            else:
                packets.append(item)
        if frames or packets:
            pixels = np.stack(frames) if frames else np.empty((0, 0, 0, 3), np.uint8)
            out.put(_Batch(pixels, pts, packets))
        out.close()

    def _infer(self, inp: Channel, out: Channel) -> None:
        if self._stager is not None:
            self._infer_staged(self._stager, inp, out)
            return
        for batch in inp:
            if batch.pts:
                for model in self.models:
                    batch.pixels = model.run(batch.pixels)
            out.put(batch)
        out.close()

    def _infer_staged(self, stager: DeviceStager, inp: Channel, out: Channel) -> None:
        # Batches leave in the order they came; packet-only batches wait behind frames still on the device.
        waiting: deque[_Batch] = deque()

        def emit_oldest() -> None:
            batch = waiting.popleft()
            batch.pixels, _ = stager.collect()  # the oldest submitted is the oldest waiting with frames
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
            pixels = batch.pixels.view(np.uint16) if batch.pixels.dtype == np.int16 else batch.pixels
            for picture, pts in zip(pixels, batch.pts, strict=True):
                writer.write_frame(picture, pts, self._out_layout)  # type: ignore[arg-type]
                self.progress.encoded += 1
