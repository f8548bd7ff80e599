"""`UpscaleJob`: one input file through a chain of models into one output file, streaming.

decode thread ──Channel──► model thread ──Channel──► encode thread
(reader: frames + packets)   (backends, in order)    (writer: packets, then frames)

Memory stays bounded by the channel depths whatever the clip length. Packets of the streams that are
copied (audio, subtitles) travel with the batch during whose decoding they were demuxed, so the writer
sees them in file order and the muxer interleaves them with the encoded video.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vsr.backends import Backend
from vsr.errors import UsageError
from vsr.media import EncodeOptions, Frame, VideoReader, VideoWriter
from vsr.media.deinterlace import DeinterlaceMode
from vsr.pipeline.stages import Channel, StageGroup

PROGRESS_EVERY_S = 0.2


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


@dataclass
class _Batch:
    pixels: np.ndarray  # (N, H, W, 3) uint8
    pts: list[int]
    packets: list[av.Packet]


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

    def __init__(self, request: UpscaleRequest, models: Sequence[Backend]) -> None:
        if not models:
            raise UsageError("no model to run")
        self.request = request
        self.models = list(models)
        self.progress = Progress()
        self._group = StageGroup()

    def abort(self) -> None:
        """Ask every stage to stop; run() then raises KeyboardInterrupt and leaves no output behind."""
        self._group.stop.set()

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> JobResult:
        """Process the whole file; calls on_progress from the calling thread a few times a second."""
        req = self.request
        check_paths(req)
        reader_options = {"deinterlace": req.deinterlace, "field_rate": req.field_rate}
        with VideoReader(req.input, threads=req.decode_threads, **reader_options) as reader:
            fmt = reader.format
            out_w, out_h = fmt.width * req.scale, fmt.height * req.scale
            stream = reader.video_stream
            per_frame = 2 if reader.deinterlaced and req.field_rate else 1  # bwdif: one frame per field
            self.progress.total_frames = stream.frames * per_frame or None
            with VideoWriter(
                req.output, source=reader, width=out_w, height=out_h, options=req.encode
            ) as writer:
                self._run_stages(reader, writer, on_progress)
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
                streams_copied=len(reader.passthrough),
                deinterlaced=reader.deinterlaced,
                warnings=tuple(writer.warnings),
            )

    def _run_stages(
        self, reader: VideoReader, writer: VideoWriter, on_progress: Callable[[Progress], None] | None
    ) -> None:
        group, depth = self._group, self.request.queue_depth
        decoded, inferred = group.channel(depth), group.channel(depth)
        group.spawn("decode", lambda: self._decode(reader, decoded))
        group.spawn("model", lambda: self._infer(decoded, inferred))
        group.spawn("encode", lambda: self._encode(inferred, writer))
        try:
            while group.alive():
                group.join(PROGRESS_EVERY_S)
                if on_progress is not None:
                    on_progress(self.progress)
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
        size, frames, pts, packets = self.request.batch, [], [], []
        for item in reader:
            if isinstance(item, Frame):
                frames.append(item.rgb)
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
        for batch in inp:
            if batch.pts:
                for model in self.models:
                    batch.pixels = model.run(batch.pixels)
            out.put(batch)
        out.close()

    def _encode(self, inp: Channel, writer: VideoWriter) -> None:
        for batch in inp:
            for packet in batch.packets:
                writer.write_packet(packet)
            for rgb, pts in zip(batch.pixels, batch.pts, strict=True):
                writer.write_frame(rgb, pts)
                self.progress.encoded += 1
