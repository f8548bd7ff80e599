"""Resumable jobs: the video cut at keyframes into segments, each encoded to its own file and recorded in a
manifest beside the output; the result assembled by stream copy.

    OUT.parent/.OUT.name.vsr-parts/manifest.json     input identity, settings, boundaries, finished segments
                                   seg-00000.nut ...  the encoded video of each finished segment

A crash (Ctrl-C, SIGTERM, SIGKILL, power loss) loses at most the segment in flight: segments are written to
a temporary file and renamed, then recorded; the manifest is replaced atomically. Running the same command
again checks that input and settings are unchanged, skips the recorded segments and continues. Segments
are NUT files because NUT keeps any time base and each packet's pts and dts exactly; the final file gets
those packets by stream copy, with the audio, subtitles and metadata copied from the input, so it holds
the same frames with the same timestamps whether or not the job was interrupted.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import heapq
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av

from vsr.backends import Backend
from vsr.errors import BadInputError, OutputError
from vsr.files import atomic_write
from vsr.media import ReaderStats, VideoReader, VideoWriter
from vsr.pipeline.job import JobResult, Progress, UpscaleJob, UpscaleRequest, check_paths

MANIFEST_VERSION = 2
DEFAULT_SEGMENT_SECONDS = 30.0
JobFactory = Callable[[UpscaleRequest, VideoReader], UpscaleJob]


def parts_dir(output: Path, root: Path | None = None) -> Path:
    """The folder that holds a resumable job's manifest and segments: hidden beside `output`, or in `root`
    (--parts-dir: scratch space, or storage every node of a cluster sees) under a name that the output's
    full path makes unique."""
    if root is None:
        return output.with_name(f".{output.name}.vsr-parts")
    digest = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:12]
    return root / f"{output.name}.{digest}.vsr-parts"


def _input_identity(path: Path) -> dict[str, Any]:
    # Size, mtime and a hash of the first and last MiB: cheap, and any re-encode or edit changes them.
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, stat.st_size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256_ends": digest.hexdigest()}


def _settings(request: UpscaleRequest, models: Sequence[Backend], segment_seconds: float) -> dict[str, Any]:
    # Everything that changes the encoded video; a different value means the segments cannot be reused.
    return {
        "scale": request.scale,
        "tile": request.tile,
        "models": [m.name for m in models],
        "encode": dataclasses.asdict(request.encode),
        "deinterlace": request.deinterlace,
        "field_rate": request.field_rate,
        "segment_seconds": segment_seconds,
    }


def segment_starts(reader: VideoReader, seconds: float) -> list[int]:
    """Keyframe pts (in the reader's time base) where segments start, at least `seconds` apart.

    The first segment starts at the first keyframe; only packets are read (no decoding), so this is fast.
    """
    starts: list[int] = []
    tb = reader.format.time_base
    for pts in reader.keyframes():
        if not starts or (pts - starts[-1]) * tb >= seconds:
            starts.append(pts)
    if not starts:
        raise BadInputError(f"{reader.path}: no keyframe with a timestamp to start from")
    return sorted(set(starts))


def segment_request(req: UpscaleRequest, parts: Path, starts: Sequence[int], k: int) -> UpscaleRequest:
    """The request that encodes segment `k` (from keyframe starts[k] to the next) into its NUT part file."""
    end = starts[k + 1] if k + 1 < len(starts) else None
    # The output's muxer options are not the segments'. NUT would shift every timestamp to make the
    # B-frame delay's negative dts positive; disabled, the pts stay the source's exactly.
    nut = dataclasses.replace(req.encode, container_options={"avoid_negative_ts": "disabled"})
    return dataclasses.replace(
        req,
        output=parts / f"seg-{k:05d}.nut",
        start_pts=None if k == 0 else starts[k],  # the first segment also takes what precedes its keyframe
        end_pts=end,
        video_only=True,
        overwrite=True,
        encode=nut,
    )


def segment_entry(job: UpscaleJob, result: JobResult, sub: UpscaleRequest) -> dict[str, Any]:
    """What the manifest records of a finished segment (its index and start are added by the caller)."""
    return {
        "end": sub.end_pts,
        "frames": result.frames,
        "file": sub.output.name,
        "stats": job.stats.to_dict(),
        "deinterlaced": result.deinterlaced,
        "warnings": result.warnings,
        "backend": result.backend,  # what ran it: on a cluster, the worker's runtime, not the driver's
    }


class SegmentPool(Protocol):
    """Runs segment requests elsewhere (vsr.cluster): yields (index, manifest entry) as each finishes, and
    tells `on_frames` now and then how many frames its segments in flight have encoded."""

    def run(
        self, segments: Sequence[tuple[int, UpscaleRequest]], on_frames: Callable[[int], None] | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]: ...


class ResumableJob:
    """An UpscaleJob cut into segments; `run` continues whatever an earlier run of the same job left.

    One reader owns the input for the whole run: the keyframe scan, every segment and the assembly seek it.
    """

    def __init__(
        self,
        request: UpscaleRequest,
        models: Sequence[Backend],
        *,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
        job_factory: JobFactory | None = None,
        pool: SegmentPool | None = None,
        parts_root: Path | None = None,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.request = request
        self.models = list(models)
        self.segment_seconds = segment_seconds
        self.progress = Progress()
        self._make_job = job_factory or (lambda r, reader: UpscaleJob(r, self.models, source=reader))
        self.parts = parts_dir(request.output, parts_root)
        self.resumed_segments = 0
        self.pool = pool  # None: the segments run here, one after another
        self._log = log

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> JobResult:
        """Encode the segments not done yet, then assemble the output; the parts folder is then removed."""
        req = self.request
        check_paths(req)
        with VideoReader(
            req.input, threads=req.decode_threads, deinterlace=req.deinterlace, field_rate=req.field_rate
        ) as reader:
            self.progress.total_frames = reader.frames_expected
            result = self._run(reader, on_progress)
        shutil.rmtree(self.parts, ignore_errors=True)
        return result

    def _run(self, reader: VideoReader, on_progress: Callable[[Progress], None] | None) -> JobResult:
        req = self.request
        manifest = self._manifest(reader)
        starts = manifest["starts"]
        done = {s["index"]: s for s in manifest["segments"]}
        self.resumed_segments = len(done)
        if done:
            self._log(f"resuming: {len(done)} of {len(starts)} segments were done earlier")
        self.progress.encoded = self.progress.decoded = sum(s["frames"] for s in done.values())
        self.progress.resumed = self.progress.encoded
        pending = [k for k in range(len(starts)) if k not in done]
        if self.pool is not None:  # segments on other processes or machines, finished in any order
            subs = [(k, segment_request(req, self.parts, starts, k)) for k in pending]
            finished = self.progress.encoded

            def in_flight(frames: int) -> None:
                self.progress.decoded = self.progress.encoded = finished + frames
                if on_progress is not None:
                    on_progress(self.progress)

            for k, entry in self.pool.run(subs, in_flight):
                manifest["segments"].append({"index": k, **entry, "start": starts[k]})
                self._save(manifest)
                finished += entry["frames"]
            return self._assemble(manifest, reader)
        for k in pending:
            sub = segment_request(req, self.parts, starts, k)
            job = self._make_job(sub, reader)
            base = self.progress.encoded

            def forward(p: Progress, base: int = base) -> None:
                self.progress.decoded, self.progress.encoded = base + p.decoded, base + p.encoded
                if on_progress is not None:
                    on_progress(self.progress)

            entry = segment_entry(job, job.run(forward), sub)
            manifest["segments"].append({"index": k, **entry, "start": starts[k]})
            self._save(manifest)
        return self._assemble(manifest, reader)

    def _manifest(self, reader: VideoReader) -> dict[str, Any]:
        identity = _input_identity(self.request.input)
        settings = _settings(self.request, self.models, self.segment_seconds)
        path = self.parts / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
            fresh = (
                manifest.get("version") == MANIFEST_VERSION
                and manifest.get("input") == identity
                and manifest.get("settings") == settings
            )
        except (OSError, ValueError):
            fresh = False
        if fresh:
            # Keep only segments whose file is really there (a crash can precede the manifest write).
            manifest["segments"] = [s for s in manifest["segments"] if (self.parts / s["file"]).is_file()]
            return manifest
        shutil.rmtree(self.parts, ignore_errors=True)  # another input or other settings: start over
        try:
            self.parts.mkdir(parents=True)
        except OSError as exc:  # --parts-dir on storage that refuses it
            raise OutputError(f"{self.parts}: cannot make the parts folder ({exc.strerror})") from None
        starts = segment_starts(reader, self.segment_seconds)
        manifest = {
            "version": MANIFEST_VERSION,
            "input": identity,
            "settings": settings,
            "starts": starts,
            "segments": [],
        }
        self._save(manifest)
        return manifest

    def _save(self, manifest: dict[str, Any]) -> None:
        atomic_write(self.parts / "manifest.json", json.dumps(manifest, indent=1))

    def _assemble(self, manifest: dict[str, Any], reader: VideoReader) -> JobResult:
        """Stream-copy every segment's video and the input's other streams into the output, in time order."""
        req = self.request
        segments = sorted(manifest["segments"], key=lambda s: s["index"])
        files = [self.parts / s["file"] for s in segments]
        with av.open(str(files[0])) as first:
            template = first.streams.video[0]
            w, h = template.codec_context.width, template.codec_context.height
            with VideoWriter(
                req.output,
                source=reader.format,
                streams=reader.streams,
                width=w,
                height=h,
                options=req.encode,
                video_from=template,
            ) as writer:
                for kind, packet in _merged(_segment_packets(req.output, files), reader.packets_to_copy()):
                    if kind == 0:
                        writer.write_encoded(packet)
                    else:
                        writer.write_packet(packet)
                writer.commit()
        stats = functools.reduce(
            ReaderStats.merged, (ReaderStats.from_dict(s["stats"]) for s in segments), ReaderStats()
        )
        # Each segment's own warnings (size changes, truncation) are counted again from the merged stats.
        result = JobResult.of(
            req,
            reader.format,
            stats,
            writer,
            output_size=(w, h),
            started=self.progress.started,
            models=self.models,
            deinterlaced=any(s["deinterlaced"] for s in segments),
            streams_kept=len(reader.streams.kept),
        )
        ran = sorted({s["backend"] for s in segments if s.get("backend")})  # the workers' runtimes
        fresh = result.frames - self.progress.resumed  # the rate is this run's: earlier runs' frames aside
        fps = round(fresh / result.seconds, 3) if result.seconds > 0 else 0.0
        return dataclasses.replace(result, fps=fps, backend="; ".join(ran) or result.backend)


def _segment_packets(output: Path, files: Sequence[Path]) -> Iterator[av.Packet]:
    """Every segment's video packets in order, each with a dts that rises, as a muxer requires."""
    last: int | None = None
    for packet in _with_dts(files):
        if last is not None and packet.dts <= last:
            # Segments encoded apart can meet with equal dts under VFR; decode order is unchanged, and the
            # muxer only needs dts to rise and to stay at or below pts.
            packet.dts = last + 1
            if packet.pts is not None and packet.dts > packet.pts:
                raise BadInputError(
                    f"{output}: segments cannot be joined (dts {packet.dts} > pts {packet.pts})"
                )
        last = packet.dts
        yield packet


def _with_dts(files: Sequence[Path]) -> Iterator[av.Packet]:
    """Every segment's video packets in order, each with a dts.

    NUT stores pts only and its demuxer derives dts from the reordering, which it cannot do for the first
    packets of a stream with B-frames (dts None). Those get dts spread evenly between the previous
    segment's last dts and the first known one: increasing, and below their own pts, as a muxer requires.
    """
    last_dts: int | None = None
    for path in files:
        with av.open(str(path)) as container:
            pending: list[av.Packet] = []
            for packet in container.demux(container.streams.video[0]):
                if not packet.size:
                    continue
                if packet.dts is None:
                    pending.append(packet)
                    continue
                if pending:
                    _fill_dts(pending, last_dts, packet.dts)
                    yield from pending
                    pending = []
                last_dts = packet.dts
                yield packet
            if pending:  # a segment too short for its reordering delay
                _fill_dts(pending, last_dts, min(int(p.pts) for p in pending) + 1)
                yield from pending
                last_dts = pending[-1].dts


def _fill_dts(packets: list[av.Packet], after: int | None, before: int) -> None:
    n = len(packets)
    low = after if after is not None else before - 2 * (n + 1)
    step = (before - low) / (n + 1)
    for i, packet in enumerate(packets, 1):
        packet.dts = int(low + i * step)


def _merged(video: Iterator[av.Packet], other: Iterator[av.Packet]) -> Iterator[tuple[int, av.Packet]]:
    """Both packet streams in order of decode time, so the muxer never has to buffer much."""

    def keyed(kind: int, packets: Iterator[av.Packet]) -> Iterator[tuple[Fraction, int, int, av.Packet]]:
        for n, p in enumerate(packets):
            yield (p.dts if p.dts is not None else p.pts or 0) * p.time_base, kind, n, p

    for _t, kind, _n, packet in heapq.merge(keyed(0, video), keyed(1, other)):
        yield kind, packet
