"""The public library: upscale a file or a folder, load a model for your own frames, probe a file.

Typed options in, JobResult out, progress by callback. Nothing here prints or exits: errors are the typed
exceptions of vsr.errors, and the CLI (vsr.cli) is one consumer of these functions.

    import vsr
    result = vsr.upscale("in.mp4", "out.mkv", model="compact-x2")
    print(result.fps)
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import numpy as np

from vsr import compare_page as page
from vsr import quality
from vsr.backends import Backend, DeviceBackend
from vsr.backends.options import BACKENDS, PRECISIONS, BackendOptions, TensorRTOptions
from vsr.backends.select import Choice, choose, fallback, max_batch, open_backend
from vsr.backends.trt_plan import DEFAULT_PROFILE, CachedPlan, PlanKey, ShapeProfile, capped, make_profile  # noqa: F401  (public: CLI)
from vsr.cluster import ChainPool, ClusterSpec, RayPool
from vsr.compare_page import ComparePage
from vsr.degradations import Damage, h264_degrade, jpeg_degrade, noise_degrade
from vsr.errors import BackendUnavailableError, BadInputError, ModelError, PlanError, UsageError
from vsr.evaluate import (
    DENOISE_LEVELS,
    Score,
    SrSet,
    evaluate_denoise,
    flicker,
    load_eval_images,
    mean_scores,
)
from vsr.media import EncodeSettings, MediaInfo, VideoReader
from vsr.media import probe as _probe
from vsr.media.assess import SourceDamage, assess
from vsr.media.deinterlace import DeinterlaceMode
from vsr.media.geometry import FIT_MODES, TargetSize, place
from vsr.media.profiles import MATRICES, PROFILES, OutputProfile
from vsr.models import auto
from vsr.models.artefacts import ShippedModel, all_models, load_manifest, shipped_model, shipped_models
from vsr.models.auto import DEFAULT_MODELS
from vsr.models.importer import Imported
from vsr.models.registry import Degradation
from vsr.pipeline import JobResult, Progress, UpscaleJob, UpscaleRequest
from vsr.pipeline.folder import STATUS_FILE, Combined, FileOutcome, plan, run_folder
from vsr.pipeline.resume import DEFAULT_SEGMENT_SECONDS, ResumableJob
from vsr.pipeline.tiling import FixedTiles, OnePerCall, run_tiled
from vsr.quality import parse_metrics

# The vocabulary of the options, for callers that offer them as choices (the CLI's enums are built from it).
BACKEND_NAMES: tuple[str, ...] = ("auto", *BACKENDS)
PRECISION_NAMES: tuple[str, ...] = ("auto", *PRECISIONS)
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
COLORSPACE_NAMES: tuple[str, ...] = tuple(MATRICES)
DEINTERLACE_MODES: tuple[str, ...] = get_args(DeinterlaceMode)
DENOISE_LEVEL_KEYS: tuple[str, ...] = tuple(level.key for level in DENOISE_LEVELS)
DEGRADATION_NAMES: tuple[str, ...] = get_args(Degradation)

FIT_NAMES: tuple[str, ...] = FIT_MODES
AUTO = "auto"  # the model name that measures the source and picks the chain (`upscale`'s default)
CPU_BATCH = 2
Log = Callable[[str], None]
ProgressCallback = Callable[[Progress], None]


def _quiet(_message: str) -> None:
    pass


def _chain(model: str | None, scale: int | None, denoise: str | None) -> list[ShippedModel]:
    """The shipped models to run, in order: the denoiser (if any), then the upscaler or a cascade of them
    ("compact-x4+espcn-x2")."""
    if model == AUTO:
        raise UsageError("auto measures a video file before it chooses: name a model here")
    if model is None:
        scale = scale or 2
        if scale not in DEFAULT_MODELS:
            raise UsageError(f"no default model for scale {scale}; choose one of {sorted(DEFAULT_MODELS)}")
        model = DEFAULT_MODELS[scale]
    upscalers = [shipped_model(name.strip()) for name in model.split("+")]
    if len(upscalers) > 1 and (odd := [m.spec.name for m in upscalers if m.spec.task != "sr"]):
        raise UsageError(f"a cascade chains upscalers; {odd[0]} is not one (use --denoise)")
    factor = math.prod(m.spec.scale for m in upscalers)
    if scale is not None and factor != scale:
        raise UsageError(f"model {model} upscales ×{factor}, not ×{scale}")
    if denoise is None:
        return upscalers
    denoiser = shipped_model(denoise)
    if denoiser.spec.task != "denoise":
        raise UsageError(f"--denoise takes a denoiser; {denoise} is a {denoiser.spec.task} model")
    return [denoiser, *upscalers]


@dataclass(frozen=True)
class AutoDecision:
    """What `--model auto` measured on a source and the chain it picked, with the reason in words."""

    scale: int
    model: str
    denoise: str | None
    measured: SourceDamage
    level: str  # the calibrated level matched ("h264:crf=28 on clips"), "" when none was
    reason: str

    @property
    def chain(self) -> str:
        """ "dncnn-color → compact-x2"."""
        return auto.Candidate(self.model, self.denoise).label

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chain": self.chain, "summary": self.describe()}

    def describe(self) -> str:
        """The line the CLI prints: what was measured, what was chosen, why."""
        return f"auto: {self.measured.describe()} → {self.chain} ({self.reason})"


def choose_model(
    input: str | Path, *, scale: int = 2, denoise: str | None = None, measured: SourceDamage | None = None
) -> AutoDecision:
    """Measure `input` (quantiser, noise, bits per pixel on a few windows of frames; or take `measured`,
    an earlier decision's) and pick the shipped chain that the manifest's calibration found best for
    sources so damaged, at `scale` (see vsr.models.auto). Without a calibration for `scale` it falls back
    to the default model, and says so."""
    if scale not in DEFAULT_MODELS:
        raise UsageError(f"no model for scale {scale}; choose one of {sorted(DEFAULT_MODELS)}")
    measured = measured or assess(Path(input))
    try:
        pick = auto.choose(
            auto_calibration(), scale, shipped_models(), qp=measured.qp, qp_scale=measured.qp_scale,
            intra=measured.intra, noise=measured.noise, denoise=denoise,
        )  # fmt: skip
    except ModelError as error:
        reason = f"{error}; the ×{scale} default instead"
        return AutoDecision(scale, DEFAULT_MODELS[scale], denoise, measured, "", reason)
    candidate = pick.candidate
    return AutoDecision(scale, candidate.model, candidate.denoise, measured, pick.level, pick.reason)


def auto_table() -> dict[int, list[dict[str, Any]]]:
    """Per scale, the calibrated levels with the chain auto runs there ("auto") and the best ("best")."""
    models, calibration, table = shipped_models(), auto_calibration(), {}
    for scale in calibration.get("scales", {}):
        levels = auto.levels(calibration, int(scale))
        table[int(scale)] = [
            {
                **asdict(lv),
                "level": lv.label,
                "auto": lv.best(models).label,
                "best": max(lv.psnr, key=lv.psnr.__getitem__),
            }
            for lv in levels
        ]
    return table


def auto_calibration() -> dict[str, Any]:
    """The manifest's calibration of `--model auto`: per scale, the levels of damage with what was
    measured there and every candidate chain's Y-PSNR (see vsr.models.auto)."""
    return load_manifest().get("auto", {})


class Upscaler:
    """A loaded model chain: call it on numpy frames, (H, W, 3) or (N, H, W, 3), uint8 or uint16 RGB.

    A context manager that owns its runtimes; `tile` runs frames in overlapping tiles of that many input
    pixels (the output is the same; memory stays small).
    """

    def __init__(
        self, chain: Sequence[ShippedModel], choice: Choice, *, tile: int | None = None, log: Log = _quiet
    ) -> None:
        self.models = [m.spec.name for m in chain]
        self.tile = tile
        self.scale = math.prod(m.spec.scale for m in chain)
        self._chain, self._log = list(chain), log
        self._open(choice)

    def _open(self, choice: Choice) -> None:
        with contextlib.ExitStack() as stack:
            self.backends: list[Backend] = [
                stack.enter_context(_sized(open_backend(choice.options, m, log=self._log), m))
                for m in self._chain
            ]
            self._stack = stack.pop_all()
        self.choice = choice

    def reopen(self, choice: Choice) -> None:
        """Close the runtimes and load the chain again on `choice` (auto's next backend)."""
        self._stack.close()
        self._open(choice)

    @property
    def name(self) -> str:
        """The chain, "dncnn-color → espcn-x2"."""
        return " → ".join(self.models)

    @property
    def backend(self) -> str:
        """The runtimes, as they name themselves."""
        return " → ".join(b.name for b in self.backends)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Upscale RGB frames; returns the same type and layout, each side ×scale."""
        single = frames.ndim == 3
        batch = np.ascontiguousarray(frames[None] if single else frames)
        if batch.dtype not in (np.uint8, np.uint16) or batch.ndim != 4 or batch.shape[-1] != 3:
            raise UsageError(
                f"expected (H, W, 3) or (N, H, W, 3) uint8/uint16 RGB, got {frames.shape} {frames.dtype}"
            )
        for backend in self.backends:
            if batch.dtype not in backend.dtypes:
                raise UsageError(
                    f"{backend.name} takes {'/'.join(sorted(d.name for d in backend.dtypes))} frames"
                )
            if self.tile is None:
                batch = backend.run(batch)
            else:
                batch = run_tiled(backend.run, batch, scale=backend.scale, tile=self.tile, overlap=16)
        return batch[0] if single else batch

    def close(self) -> None:
        """Release every runtime."""
        self._stack.close()

    def __enter__(self) -> Upscaler:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _sized(backend: Backend, model: ShippedModel) -> Backend:
    """The backend, run one picture per call where the model's graph keeps its traced batch, and tile by
    tile where it takes one size only (imported models on ONNX Runtime or OpenVINO; torch rebuilds the
    network, which takes any batch and size)."""
    if isinstance(backend, DeviceBackend):
        return backend
    if model.entry.get("batch") == 1:
        backend = OnePerCall(backend)
    tile = model.entry.get("tile")
    return backend if tile is None else FixedTiles(backend, tile, model.entry["tile_overlap"])


def load_model(
    name: str | None = None,
    *,
    scale: int | None = None,
    denoise: str | None = None,
    backend: str | BackendOptions = "auto",
    precision: str | None = None,
    threads: int = 0,
    tile: int | None = None,
    torch_compile: bool = False,
    cuda_graphs: bool = False,
    log: Log = _quiet,
) -> Upscaler:
    """Load a shipped model (the default for `scale` when no name is given), optionally behind a denoiser,
    on a backend: "auto", "onnxruntime", "torch", "tensorrt", or an options object of vsr.backends.options."""
    chain = _chain(name, scale, denoise)
    choice = choose(
        backend, precision=precision, threads=threads, compile=torch_compile, cuda_graphs=cuda_graphs
    )
    if tile is not None and tile < 16:
        raise UsageError("a tile side must be at least 16 input pixels")
    while True:
        try:
            return Upscaler(chain, choice, tile=tile, log=log)
        except (ModelError, BackendUnavailableError) as error:
            # `auto` degrades gracefully (TensorRT → torch CUDA → ONNX Runtime); a named backend fails loudly.
            if (next_choice := fallback(choice, error)) is None:
                raise
            log(f"warning: {next_choice.reason}")
            choice = next_choice


def probe(path: str | Path) -> MediaInfo:
    """What a media file holds: container, streams, timing from packets, colour, fields, rotation."""
    return _probe(Path(path))


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


@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on a folder of images, beside the baseline it must beat."""

    model: str
    data: str
    protocol: str
    baseline: str  # "bicubic" (SR) or "input" (the degraded image, for a denoiser)
    scores: tuple[Score, ...]

    @property
    def mean(self) -> dict[str, float]:
        """Mean PSNR/SSIM of the model and of the baseline."""
        return mean_scores(self.scores)

    def to_dict(self) -> dict[str, object]:
        """The JSON record of `vsr eval --json`."""
        head = {"model": self.model, "data": self.data, "protocol": self.protocol, "baseline": self.baseline}
        return {**head, "mean": self.mean, "images": [asdict(s) for s in self.scores]}


def evaluate(
    model: str,
    data: str | Path,
    *,
    task: str | None = None,
    scale: int | None = None,
    sigma: float | None = None,
    jpeg_quality: int | None = None,
    h264_crf: int | None = None,
    degrade: str = "clean",
    backend: str | BackendOptions = "onnxruntime",
    precision: str | None = None,
    threads: int = 0,
    metrics: Sequence[str] = (),
) -> Evaluation:
    """PSNR/SSIM of a shipped model on the published protocol (../shared/data/README.md): Y on
    MATLAB-bicubic LR for SR; for a denoiser, exactly one degradation (RGB for Gaussian noise of σ, Y for
    JPEG or H.264 compression). `task` and `scale`, when given, must be the model's. The reference runtime
    is ONNX Runtime fp32 (the manifest's figures); `backend`/`precision` score another (OpenVINO bf16...).
    `metrics` adds vsr.quality's (vmaf, vmaf_neg, erqa) to an upscaler's scores."""
    chain, folder = _chain(model, None, None), Path(data)  # one model, or a cascade "A+B"
    model_task, factor = chain[0].spec.task, math.prod(m.spec.scale for m in chain)
    if task is not None and task != model_task:
        raise UsageError(f"{model} is a {model_task} model, not {task}")
    if scale is not None and scale != factor:
        raise UsageError(f"{model} works at ×{factor}, not ×{scale}")
    if model_task == "sr":
        damage, sr_set = Damage.parse(degrade), SrSet.load(folder)
        with load_model(model, backend=backend, precision=precision, threads=threads) as upscaler:
            scores = sr_set.scores(factor, upscaler, damage, metrics)
            protocol = f"Y-PSNR, ×{factor}, {sr_set.lr(damage)}, shave {factor}, {upscaler.backend}"
        return Evaluation(model, str(folder), protocol, "bicubic", tuple(scores))
    if metrics:
        raise UsageError("--metrics scores upscalers; a denoiser is scored by PSNR/SSIM")
    images = load_eval_images(folder)
    with load_model(model, backend=backend, precision=precision, threads=threads) as upscaler:
        runtime = upscaler.backend
        if degrade != "clean":
            raise UsageError(
                "--degrade damages an upscaler's LR; a denoiser takes --sigma, --jpeg-quality or --h264-crf"
            )
        levels = [
            (n, v) for n, v in (("sigma", sigma), ("jpeg", jpeg_quality), ("h264", h264_crf)) if v is not None
        ]
        if len(levels) != 1:
            raise UsageError("a denoiser is scored on exactly one of --sigma, --jpeg-quality, --h264-crf")
        kind, level = levels[0]
        degrade = {
            "sigma": lambda: noise_degrade(float(level)),
            "jpeg": lambda: jpeg_degrade(int(level)),
            "h264": lambda: h264_degrade(int(level)),
        }[kind]()
        on_y = kind != "sigma"
        scores = evaluate_denoise(images, degrade, upscaler, on_y=on_y)
    protocol = f"{'Y' if on_y else 'RGB'}-PSNR, {kind} {level}, {runtime}"
    return Evaluation(model, str(folder), protocol, "input", tuple(scores))


@dataclass(frozen=True)
class Comparison:
    """Bicubic and every shipped upscaler of one scale, side by side on one protocol (`vsr eval` without
    --model)."""

    data: str
    protocol: str
    means: dict[str, dict[str, float]]  # "bicubic" first, then each model: psnr, ssim and any extra metric

    def to_dict(self) -> dict[str, object]:
        """The JSON record."""
        return asdict(self)


def compare(
    data: str | Path,
    *,
    scale: int = 2,
    degrade: str = "clean",
    models: Sequence[str] | None = None,
    backend: str | BackendOptions = "onnxruntime",
    precision: str | None = None,
    threads: int = 0,
    metrics: Sequence[str] = (),
) -> Comparison:
    """Y-PSNR/SSIM of bicubic and of every shipped ×`scale` upscaler (or `models`: shipped, imported or
    chains "a+b") on the same LR: the MATLAB-bicubic downscale of each image in `data` (or each frame of
    its clips), damaged by `degrade` (clean, h264:crf=N, jpeg:q=N, noise:sigma=N; H.264 codes a clip as one
    inter-predicted stream) and scored against the clean HR. `metrics` adds vsr.quality's on RGB."""
    damage, folder = Damage.parse(degrade), Path(data)
    sr_set = SrSet.load(folder)
    names = (
        list(models)
        if models
        else [n for n, m in shipped_models().items() if m.spec.task == "sr" and m.spec.scale == scale]
    )
    means: dict[str, dict[str, float]] = {}
    for name in names:
        if (factor := math.prod(m.spec.scale for m in _chain(name, None, None))) != scale:
            raise UsageError(f"{name} works at ×{factor}, not ×{scale}")
    for name in names:
        with load_model(name, backend=backend, precision=precision, threads=threads) as upscaler:
            mean = mean_scores(sr_set.scores(scale, upscaler, damage, metrics))
            runtime = upscaler.backend
        baseline = {k.removeprefix("baseline_"): v for k, v in mean.items() if k.startswith("baseline_")}
        means.setdefault("bicubic", baseline)
        means[name] = {k: v for k, v in mean.items() if not k.startswith("baseline_")}
    if not means:
        raise UsageError(f"no shipped model upscales ×{scale}")
    protocol = f"Y-PSNR/SSIM, ×{scale}, {sr_set.lr(damage)}, shave {scale}, {runtime}"
    return Comparison(str(folder), protocol, means)


def compare_page(
    input: str | Path,
    out: str | Path | None = None,
    *,
    models: Sequence[str] = ("auto",),
    scale: int = 2,
    frames: int = 4,
    at: Sequence[float | str] | None = None,
    reference: str | Path | None = None,
    backend: str | BackendOptions = "auto",
    precision: str | None = None,
    threads: int = 0,
) -> ComparePage:
    """A self-contained HTML page of the same frames of `input` through bicubic and each of `models`
    (shipped, imported, chains "a+b", or "auto", which runs what `--model auto` would and says why):
    `frames` frames spread over the clip, or those at the moments of `at` (seconds, or "[HH:]MM:SS").
    Per-frame NIQE; PSNR, VMAF and ERQA against `reference` (the same video at the output size) when
    given. Written beside the input as NAME.compare.html unless `out` says where."""
    src = Path(input)
    if not src.is_file():
        raise BadInputError(f"{src}: no such file")
    if frames < 1 or frames > 32:
        raise UsageError("--frames takes 1 to 32 frames (each is inlined in the page)")
    decision = choose_model(src, scale=scale) if "auto" in models else None

    def load(name: str) -> Upscaler:
        if name == "auto" and decision is not None:
            return load_model(decision.model, denoise=decision.denoise, backend=backend, precision=precision,
                              threads=threads)  # fmt: skip
        if (factor := math.prod(m.spec.scale for m in _chain(name, None, None))) != scale:
            raise UsageError(f"{name} works at ×{factor}, not ×{scale}")
        return load_model(name, backend=backend, precision=precision, threads=threads)

    metrics = ["niqe"]
    if reference is not None:
        metrics += [m for m in ("vmaf", "erqa") if _available(m)]
    times = [page.parse_time(str(a)) for a in at] if at else None
    return page.compare_page(
        src, Path(out) if out else src.with_name(f"{src.stem}.compare.html"), models=models, load=load,
        scale=scale, times=times, frames=frames, reference=Path(reference) if reference else None,
        auto=decision.describe() if decision else None, metrics=metrics,
    )  # fmt: skip


def _available(metric: str) -> bool:
    """Whether the quality extra that `metric` needs is installed (the page leaves it out otherwise)."""
    try:
        parse_metrics(metric)
    except UsageError:
        return False
    return True


def stability(
    data: str | Path,
    *,
    scale: int = 2,
    crf: int = 28,
    models: Sequence[str] | None = None,
    backend: str | BackendOptions = "onnxruntime",
    precision: str | None = None,
    threads: int = 0,
) -> Comparison:
    """Flicker on a static scene, bicubic and every shipped ×`scale` upscaler (or `models`) side by side:
    each image of `data` downscaled, held for 2 s and coded by x264 at `crf` (vsr.evaluate.flicker); the
    mean per-pixel temporal standard deviation of the output's Y ("flicker", lower is steadier)."""
    images = load_eval_images(Path(data))
    names = list(models) if models else [n for n, m in shipped_models().items() if m.spec.task == "sr"]
    means: dict[str, dict[str, float]] = {}
    for name in names:
        if math.prod(m.spec.scale for m in _chain(name, None, None)) != scale:
            continue
        with load_model(name, backend=backend, precision=precision, threads=threads) as upscaler:
            model_std, base_std = flicker(images, scale, upscaler, crf)
        means.setdefault("bicubic", {"flicker": round(base_std, 4)})
        means[name] = {"flicker": round(model_std, 4), "vs_bicubic": round(model_std / base_std, 3)}
    if not means:
        raise UsageError(f"no shipped model upscales ×{scale}")
    protocol = f"flicker: Y std over 50 frames of a still, ×{scale} MATLAB bicubic LR, x264 CRF {crf}"
    return Comparison(str(data), protocol, means)


def profiles() -> dict[str, OutputProfile]:
    """The output profiles by name (`encode=EncodeSettings(profile=NAME)`; `vsr profiles` prints them)."""
    return dict(PROFILES)


def models(imported: bool = True) -> dict[str, ShippedModel]:
    """Every shipped model by name, with its manifest entry (parameters, GFLOPs, measured quality, recipe),
    then (unless imported=False) every model `import_model` put in the user's store."""
    return all_models() if imported else shipped_models()


def models_dir() -> Path:
    """The user's model store: $VSR_MODELS_DIR, else the platform's user data directory."""
    from vsr.models.store import models_dir as where

    return where()


def import_model(
    path: str | Path, *, name: str | None = None, scale: int | None = None
) -> Imported | list[Imported]:
    """Import a community checkpoint (.pth, .pt, .ckpt, .safetensors, through spandrel) or an ONNX file
    (float NCHW RGB) into the user's model store ($VSR_MODELS_DIR), where every command and backend finds
    it by `name` (default: the file's name). A folder imports each file in it and returns one result per
    file, refusals included; a single file's refusal raises (UsageError or BadInputError)."""
    from vsr.models.importer import import_file, import_folder

    source = Path(path)
    if source.is_dir():
        if name is not None or scale is not None:
            raise UsageError("--name and --scale apply to one file, not a folder")
        return import_folder(source)
    return import_file(source, name=name, scale=scale)


def build_engine(
    model: str | Path,
    *,
    precision: str = "fp16",
    profile: ShapeProfile = DEFAULT_PROFILE,
    workspace_mib: int = 4096,
    rebuild: bool = False,
    log: Log = _quiet,
) -> tuple[CachedPlan, PlanKey]:
    """Build (or find in the cache) the TensorRT plan of a shipped model, or of an ONNX file with float
    NCHW I/O (which builds in its own types: precision fp32). Needs TensorRT and a CUDA device.
    `make_profile(min, opt, max)` turns "NxHxW" strings into a profile; a shipped model's is cut to what
    its tensors allow (TensorRT's 2^31-1 elements; jobs tile beyond it). `vsr upscale` finds the plan
    whenever its profile takes the job's shapes."""
    options = TensorRTOptions(precision=precision, profile=profile, workspace_mib=workspace_mib)  # type: ignore[arg-type]
    from vsr.backends.tensorrt_backend import ensure_plan, onnx_for

    source = Path(model)
    if source.suffix == ".onnx":
        if not source.is_file():
            raise UsageError(f"{source}: no such file")
        if precision != "fp32":
            raise UsageError(
                "an ONNX file builds in its own types: export it in fp16/bf16, pass --precision fp32"
            )
        data = source.read_bytes()
        name, digest, onnx = source.stem, hashlib.sha256(data).hexdigest(), lambda: data
    else:
        shipped = shipped_model(str(model))
        name, digest = shipped.spec.name, shipped.entry["sha256"][shipped.weights.name]
        onnx = lambda: onnx_for(shipped, options.precision)  # noqa: E731  (built only on a cache miss)
        if (fitted := capped(profile, shipped.spec)) != profile:
            log(f"{name}: profile cut to {fitted.describe()} (TensorRT's 2^31-1 elements per tensor)")
            options = replace(options, profile=fitted)
    assert options.profile is not None
    return ensure_plan(
        name,
        digest,
        onnx,
        precision=options.precision,
        profile=options.profile,
        workspace_mib=options.workspace_mib,
        rebuild=rebuild,
        log=log,
    )
