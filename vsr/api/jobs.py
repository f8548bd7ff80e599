"""File jobs: `upscale` (one video file) and `upscale_folder` (every video of a folder, as a resumable
queue). The keywords become a `_Job`, a `_Runner` runs the requests on one loaded chain (falling back to
the next backend when a plan fails to build), and with a cluster the keyframe segments go to a Ray pool."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vsr import quality
from vsr.api.choice import choose_model
from vsr.api.frames import AUTO, Log, Upscaler, _chain, _quiet, load_model
from vsr.backends.options import BackendOptions, TensorRTOptions
from vsr.backends.select import fallback, max_batch
from vsr.cluster import ChainPool, ClusterSpec, RayPool
from vsr.errors import PlanError, UsageError
from vsr.media import EncodeSettings, VideoReader
from vsr.media import probe as _probe
from vsr.media.deinterlace import DeinterlaceMode
from vsr.media.geometry import TargetSize, place
from vsr.models.artefacts import shipped_model
from vsr.models.auto import DEFAULT_MODELS
from vsr.pipeline import JobResult, Progress, UpscaleJob, UpscaleRequest
from vsr.pipeline.folder import STATUS_FILE, Combined, FileOutcome, plan, run_folder
from vsr.pipeline.resume import DEFAULT_SEGMENT_SECONDS, ResumableJob

CPU_BATCH = 2
ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class _Job:
    """Everything of a job beyond its files and models (the keywords of `upscale`, checked together)."""

    batch: int | None = None
    tile: int | None = None
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    deinterlace: DeinterlaceMode = "auto"
    field_rate: bool = False
    square_pixels: bool = False
    overwrite: bool = False
    resume: bool = False
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    parts_dir: Path | None = None
    stall_timeout: float = 600.0
    target: TargetSize | None = None

    def __post_init__(self) -> None:
        if self.parts_dir is not None and not self.resume:
            raise UsageError("--parts-dir keeps the segments of --resume or --cluster; add one or drop it")
        if self.parts_dir is not None and self.parts_dir.exists() and not self.parts_dir.is_dir():
            raise UsageError(f"--parts-dir {self.parts_dir}: not a folder")

    def request(self, src: Path, dst: Path, scale: int) -> UpscaleRequest:
        """The request for one file (the encoder settings resolve against its extension)."""
        return UpscaleRequest(
            input=src,
            output=dst,
            scale=scale,
            batch=self.batch or CPU_BATCH,
            tile=self.tile,
            deinterlace=self.deinterlace,
            field_rate=self.field_rate,
            encode=self.encode.resolve(dst.suffix),
            overwrite=self.overwrite,
            stall_seconds=self.stall_timeout,
            square_pixels=self.square_pixels,
            target=self.target,
        )


def _target(
    size: str | tuple[int, int] | None, width: int | None, height: int | None, fit: str
) -> TargetSize | None:
    """The target size asked for, if any: `size` ("1920x1080" or a tuple) or `width` and/or `height`."""
    if size is not None and (width is not None or height is not None):
        raise UsageError("give a size, or a width and/or a height, not both")
    if size is not None:
        if isinstance(size, str):
            return TargetSize.parse(size, fit)
        return TargetSize(*size, fit)  # type: ignore[arg-type]
    if width is None and height is None:
        if fit != "pad":
            raise UsageError("--fit applies to a target size (--size WxH)")
        return None
    return TargetSize(width, height, fit)  # type: ignore[arg-type]


def _scale_for(input: Path, target: TargetSize) -> int:
    """The smallest default factor whose output reaches `target` from `input`'s frames."""
    video = _probe(input).video  # BadInputError, as the job would raise, for a file without video
    sar, turned = video.sample_aspect_ratio, video.rotation
    return place(video.width, video.height, sar, turned, target, sorted(DEFAULT_MODELS)).scale


def _check_batch(batch: int | None, backend: str | BackendOptions) -> None:
    """Refuse, before any plan is built, a batch larger than a TensorRT plan's profile takes."""
    options = TensorRTOptions() if backend == "tensorrt" else backend
    limit = None if isinstance(options, str) else max_batch(options)
    if batch is not None and limit is not None and batch > limit:
        raise UsageError(
            f"--batch {batch} is over the TensorRT plan's profile (at most {limit}); use a smaller --batch "
            "or a TensorRTOptions profile whose max takes it"
        )


class _Runner:
    """Runs requests with one loaded chain: the CPU path, or the CUDA path with its staging plan."""

    def __init__(self, upscaler: Upscaler, job: _Job, on_progress: ProgressCallback | None, log: Log) -> None:
        self.upscaler, self.job, self.on_progress, self.log = upscaler, job, on_progress, log
        self.pool: Any = None  # a vsr.cluster.RayPool: the segments of resumable jobs run there
        self._plan()

    def _plan(self) -> None:
        """The CUDA staging plan of the loaded chain (None on the CPU)."""
        upscaler, job = self.upscaler, self.job
        self.device_path = None
        if upscaler.choice.device == "cuda":
            from vsr.pipeline.device import DevicePath

            specs = [shipped_model(n).spec for n in upscaler.models]
            auto = job.batch is None and job.tile is None
            options = upscaler.choice.options
            limit = max_batch(options) or 8
            if job.batch is not None and job.batch > limit:  # `auto` chose TensorRT: its profile decides
                raise UsageError(f"--batch {job.batch} is over the TensorRT plan's profile (at most {limit})")
            profile = getattr(options, "profile", None)  # a plan asked for: batches and tiles fit into it
            box = None if profile is None else (profile.max[1], profile.max[2])
            device = upscaler.backends[0].device  # type: ignore[attr-defined]  (device backends: torch, tensorrt)
            self.device_path = DevicePath.for_chain(
                device, specs, tile=job.tile, auto=auto, max_batch=limit, max_box=box
            )

    def make_job(self, request: UpscaleRequest, source: VideoReader | None = None) -> UpscaleJob:
        """A job on this chain; the device path tiles on the GPU, so the CPU tiling is then off."""
        tile = None if self.device_path is not None else request.tile
        request = replace(request, tile=tile)
        backends, path = self.upscaler.backends, self.device_path
        return UpscaleJob(request, backends, device_path=path, source=source, log=self.log)

    def __call__(self, request: UpscaleRequest) -> JobResult:
        if self.job.resume:
            job: UpscaleJob | ResumableJob = ResumableJob(
                request,
                self.upscaler.backends,
                segment_seconds=self.job.segment_seconds,
                job_factory=self.make_job,
                pool=self.pool,
                parts_root=self.job.parts_dir,
                log=self.log,
            )
        else:
            job = self.make_job(request)
        try:
            result = job.run(self.on_progress)
        except PlanError as error:
            # `auto` degrades gracefully at the job too: a plan that fails to build for the job's shapes
            # sends the job (its output never written) to the next backend; a named backend fails loudly.
            if (next_choice := fallback(self.upscaler.choice, error)) is None:
                raise
            self.log(f"warning: {next_choice.reason}")
            self.upscaler.reopen(next_choice)
            self._plan()
            return self(request)
        return replace(result, model=self.upscaler.name, backend_reason=self.upscaler.choice.reason)


def upscale(
    input: str | Path,
    output: str | Path,
    *,
    model: str | None = None,
    scale: int | None = None,
    denoise: str | None = None,
    backend: str | BackendOptions = "auto",
    precision: str | None = None,
    threads: int = 0,
    batch: int | None = None,
    tile: int | None = None,
    encode: EncodeSettings | None = None,
    deinterlace: DeinterlaceMode = "auto",
    field_rate: bool = False,
    square_pixels: bool = False,
    size: str | tuple[int, int] | None = None,
    width: int | None = None,
    height: int | None = None,
    fit: str = "pad",
    overwrite: bool = False,
    resume: bool = False,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    parts_dir: str | Path | None = None,
    stall_timeout: float = 600.0,
    torch_compile: bool = False,
    cuda_graphs: bool = False,
    cluster: str | ClusterSpec | None = None,
    reference: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    log: Log = _quiet,
) -> JobResult:
    """Upscale (and, with `denoise`, first restore) one video file into `output`, keeping every other
    stream, every timestamp and the colour tags. The output appears only when complete.

    reference: the same video at the output size (a master still held at full size): the result's
    `quality` then carries VMAF, VMAF NEG and Y-PSNR of the whole output against it (the quality extra).

    cluster: "local", "auto", "ray://HOST:PORT" or a ClusterSpec: the job's keyframe segments are encoded by
    a pool of Ray actors (models loaded once per actor) and assembled here exactly as `resume` does, with
    the same manifest, so the same call continues after a crash of the driver. parts_dir: where `resume`
    and `cluster` keep the segments and manifest (default: a hidden folder beside `output`); with a
    cluster, name a folder every node sees, and the workers write their parts straight into it instead of
    sending them through Ray's object store.

    model: a shipped model or cascade, or "auto" (the default, also None): measure the input and run the
    chain calibrated best for sources so damaged (`choose_model`; the result's `auto` says what and why),
    with `denoise` it only picks among chains that start with that denoiser.
    scale/denoise/backend/precision/threads/torch_compile/cuda_graphs choose the chain as `load_model`
    does. batch: frames per inference call (default 2 on the CPU, from free memory on CUDA);
    tile: tile side in input pixels for large frames; encode: the encoder request (default H.264 CRF 18 in
    the input's chroma family); deinterlace: "auto" (interlaced sources), "on" or "off", with field_rate for
    one frame per field; square_pixels resamples anamorphic sources; size ("1920x1080"), width and/or
    height ask for an exact output size in square pixels (the display aspect kept; `fit` "pad", "crop" or
    "stretch" when both sides are given), reached by the smallest default factor unless `model`/`scale`
    name one, then a Lanczos resample; resume works in keyframe segments
    recorded beside `output`, so the same call continues after a crash; stall_timeout stops a job in which
    no frame moves. on_progress gets a Progress a few times a second; log gets one-off messages.
    """
    spec = ClusterSpec(cluster) if isinstance(cluster, str) else cluster
    job = _Job(
        batch=batch,
        tile=tile,
        encode=encode or EncodeSettings(),
        deinterlace=deinterlace,
        field_rate=field_rate,
        square_pixels=square_pixels,
        overwrite=overwrite,
        resume=resume or spec is not None,
        segment_seconds=segment_seconds,
        parts_dir=None if parts_dir is None else Path(parts_dir),
        stall_timeout=stall_timeout,
        target=_target(size, width, height, fit),
    )
    measure = model in (None, AUTO)
    if job.target is not None and measure and scale is None and Path(input).is_file():
        scale = _scale_for(Path(input), job.target)
    factor = math.prod(m.spec.scale for m in _chain(None if measure else model, scale, denoise))
    request = job.request(Path(input), Path(output), factor)  # checked before any model loads
    _check_batch(batch, backend)
    if reference is not None:  # refused now rather than after the job: a reference that cannot be scored
        quality.ffmpeg()
        _probe(Path(reference))
    decision = None
    if measure:
        decision = choose_model(input, scale=factor, denoise=denoise)
        model, denoise = decision.model, decision.denoise
    asked = {
        "backend": backend,
        "precision": precision,
        "threads": threads,
        "torch_compile": torch_compile,
        "cuda_graphs": cuda_graphs,
    }
    with contextlib.ExitStack() as stack:
        pool = None if spec is None else stack.enter_context(_open_pool(spec, job, backend, log))
        upscaler = stack.enter_context(_load_here(model, scale, denoise, asked, pool, log))
        _check_target(job.target, "cuda" if pool is not None and pool.on_gpu else upscaler.choice.device)
        runner = _Runner(upscaler, job, on_progress, log)
        runner.pool = _for_chain(pool, upscaler, model, scale, denoise, asked)
        result = runner(request)
    result = replace(result, auto=decision.to_dict() if decision else None)
    if reference is not None:
        result = replace(result, quality=quality.video_quality(Path(result.output), Path(reference)))
    return result


@contextlib.contextmanager
def _open_pool(spec: ClusterSpec, job: _Job, backend: str | BackendOptions, log: Log) -> Iterator[RayPool]:
    """A Ray pool for the call's jobs, its workers on GPUs where the cluster has them and `backend` can
    use them; closed (its workers let go) at the end of the call."""
    if job.parts_dir is not None and spec.shared_parts is None:  # a folder the user says every node sees
        spec = replace(spec, shared_parts=True)
    on_gpu = (
        backend in ("auto", "torch", "tensorrt")
        if isinstance(backend, str)
        else isinstance(backend, TensorRTOptions) or getattr(backend, "device", "cpu") == "cuda"
    )
    pool = RayPool(spec, _segment_runner, job, gpu_backend=on_gpu, log=log)
    try:
        yield pool
    finally:
        pool.close()


def _load_here(
    model: str | None, scale: int | None, denoise: str | None, asked: dict[str, Any], pool: RayPool | None,
    log: Log,
) -> Upscaler:  # fmt: skip
    """The chain this process loads. With GPU workers, a copy on ONNX Runtime for the job's bookkeeping
    (model names, checks) only: this process may have no GPU, and runs no segment."""
    chain = {"backend": "onnxruntime"} if pool is not None and pool.on_gpu else asked
    return load_model(model, scale=scale, denoise=denoise, log=log, **chain)


def _for_chain(
    pool: RayPool | None, upscaler: Upscaler, model: str | None, scale: int | None, denoise: str | None,
    asked: dict[str, Any],
) -> ChainPool | None:  # fmt: skip
    """The pool as a job on this chain sees it. CPU workers load exactly the CPU runtime this process
    chose, so every segment is what this process would have made; GPU workers (and CPU workers of a
    driver that chose its own GPU) resolve the backend as asked on their own devices."""
    if pool is None:
        return None
    load = {"name": model, "scale": scale, "denoise": denoise}
    own = pool.on_gpu or upscaler.choice.device == "cuda"
    return pool.for_chain({**load, **asked} if own else {**load, "backend": upscaler.choice.options})


def _segment_runner(load: dict[str, Any], job: _Job) -> _Runner:
    """What a cluster worker runs segments with: the chain loaded once, the job's settings."""
    return _Runner(load_model(**load), job, None, _quiet)


def _check_target(target: TargetSize | None, device: str) -> None:
    """Bars and crops are drawn on RGB pictures, which the CUDA path does not hand the writer."""
    both = target is not None and target.width is not None and target.height is not None
    if both and target.fit != "stretch" and device == "cuda":  # type: ignore[union-attr]
        raise UsageError("--fit pad/crop runs on the CPU; on CUDA use --fit stretch, --width or --height")


@dataclass(frozen=True)
class FolderResult:
    """What became of every file of a folder, and where its status is kept."""

    files: tuple[FileOutcome, ...]
    status_file: Path
    model: str
    backend_reason: str

    @property
    def done(self) -> int:
        """Files done, now or by an earlier run."""
        return sum(f.status != "failed" for f in self.files)


def upscale_folder(
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    ext: str = ".mkv",
    on_file: Callable[[int, int, FileOutcome], None] = lambda _k, _n, _outcome: None,
    **upscale_options: Any,
) -> FolderResult:
    """Upscale every video directly in `input_dir` into `output_dir`/NAME`ext`, loading the models once;
    takes every keyword of `upscale`.

    A file that fails is recorded and the rest go on; OUTDIR/vsr-queue.json keeps every file's status, so
    the same call after a crash skips the files done and retries the others. Each file gets a report,
    OUTDIR/NAME.vsr.json. on_file(k, n, outcome) is called after the k-th of n files. With `cluster`, as
    many files run at once as the pool has workers: on_file then comes from their threads (one at a time)
    as each file ends, and on_progress gets one Progress summed over the files started.
    """
    indir, outdir = Path(input_dir), Path(output_dir)
    if not indir.is_dir():
        raise UsageError(f"{indir}: not a folder")
    job_keys = {f.name for f in fields(_Job)}
    unknown = (
        set(upscale_options)
        - job_keys
        - _CHAIN_KEYS
        - {"on_progress", "model", "fit", "cluster", *_TARGET_KEYS}
    )
    if unknown:
        raise TypeError(f"upscale_folder() got unexpected keywords: {', '.join(sorted(unknown))}")
    size, width, height = (upscale_options.pop(k, None) for k in _TARGET_KEYS)
    target = _target(size, width, height, upscale_options.pop("fit", "pad"))
    job_options = {k: v for k, v in upscale_options.items() if k in job_keys and v is not None}
    cluster = upscale_options.pop("cluster", None)
    spec = ClusterSpec(cluster) if isinstance(cluster, str) else cluster
    if spec is not None:  # each file's keyframe segments go to the pool, as with one file
        job_options["resume"] = True
    job = _Job(**job_options, target=target)
    chain = {k: v for k, v in upscale_options.items() if k in _CHAIN_KEYS}
    model = upscale_options.get("model")
    measure = model in (None, AUTO)
    if target is not None and measure and chain.get("scale") is None:
        raise UsageError("a folder's files differ in size: give --scale or --model with a target size")
    named = None if measure else model
    factor = math.prod(m.spec.scale for m in _chain(named, chain.get("scale"), chain.get("denoise")))
    requests = [job.request(src, dst, factor) for src, dst in plan(indir, outdir, ext)]
    _check_batch(job.batch, chain.get("backend", "auto"))
    on_progress = upscale_options.get("on_progress")
    with _PerFile(job, chain, on_progress, None if measure else model, spec) as runner:
        status = outdir / STATUS_FILE
        outcomes = run_folder(requests, runner, status, on_file=on_file, parallel=runner.parallel)
        name = runner.name or AUTO
        return FolderResult(tuple(outcomes), outdir / STATUS_FILE, name, runner.reason)


class _PerFile:
    """Runs a folder's requests: with one named chain, loaded once; with auto, each file measured and run
    with its chain, each chain loaded on first use and kept for the files after. With a cluster, one pool
    serves every chain, and as many files run at once as it has workers (thread-safe)."""

    def __init__(
        self,
        job: _Job,
        chain: dict[str, Any],
        on_progress: ProgressCallback | None,
        model: str | None,
        cluster: ClusterSpec | None = None,
    ) -> None:
        self.job, self.chain, self.on_progress, self.model = job, chain, on_progress, model
        self.cluster = cluster
        self.log: Log = chain.get("log", _quiet)
        self.runners: dict[str, _Runner] = {}
        self.stack = contextlib.ExitStack()
        self.pool: RayPool | None = None
        self.lock = threading.Lock()
        self.name, self.reason = model or "", ""

    @property
    def parallel(self) -> int:
        """Files run at once: one per worker of the pool (each then has a file to take segments from)."""
        return self.pool.size.workers if self.pool is not None else 1

    def _runner(self, model: str, denoise: str | None) -> _Runner:
        key = f"{denoise}/{model}"
        with self.lock:
            if key not in self.runners:
                asked = {k: v for k, v in self.chain.items() if k not in ("scale", "denoise", "log")}
                scale = self.chain.get("scale")
                here = _load_here(model, scale, denoise, asked, self.pool, self.log)
                upscaler = self.stack.enter_context(here)
                on_gpu = self.pool is not None and self.pool.on_gpu
                _check_target(self.job.target, "cuda" if on_gpu else upscaler.choice.device)
                runner = self.runners[key] = _Runner(upscaler, self.job, self.on_progress, self.log)
                runner.pool = _for_chain(self.pool, upscaler, model, scale, denoise, asked)
                self.reason = upscaler.choice.reason
                if self.model is not None:
                    self.name = upscaler.name
            return self.runners[key]

    def __enter__(self) -> _PerFile:
        if self.cluster is not None:
            backend = self.chain.get("backend", "auto")
            self.pool = self.stack.enter_context(_open_pool(self.cluster, self.job, backend, self.log))
            if self.parallel > 1 and self.on_progress is not None:  # the files at once, as one Progress
                self.on_progress = Combined(self.on_progress)
        if self.model is not None:  # a named chain loads (and fails) before any file is touched
            self._runner(self.model, self.chain.get("denoise"))
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stack.close()

    def __call__(self, request: UpscaleRequest) -> JobResult:
        if self.model is not None:
            return self._runner(self.model, self.chain.get("denoise"))(request)
        decision = choose_model(request.input, scale=request.scale, denoise=self.chain.get("denoise"))
        self.log(f"{request.input.name}: {decision.describe()}")
        result = self._runner(decision.model, decision.denoise)(request)
        return replace(result, auto=decision.to_dict())


_TARGET_KEYS = ("size", "width", "height")
# The keywords of `load_model` that `upscale` and `upscale_folder` pass through to it.
_CHAIN_KEYS = frozenset(
    {"scale", "denoise", "backend", "precision", "threads", "torch_compile", "cuda_graphs", "log"}
)
