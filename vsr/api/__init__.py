"""The public library: upscale a file or a folder, load a model for your own frames, probe a file.

Typed options in, JobResult out, progress by callback. Nothing here prints or exits: errors are the typed
exceptions of vsr.errors, and the CLI (vsr.cli) is one consumer of these functions.

    import vsr
    result = vsr.upscale("in.mp4", "out.mkv", model="compact-x2")
    print(result.fps)

This module is the facade: the option vocabularies, the small functions (`probe`, `profiles`, `models`,
`models_dir`, `import_model`, `build_engine`) and every public name, re-exported from where it lives:

    frames.py      load_model → Upscaler (a model chain for your own numpy frames)
    choice.py      --model auto: choose_model, auto_table, auto_calibration
    jobs.py        upscale, upscale_folder (file jobs, resumable, on a cluster)
    evaluation.py  evaluate, compare, stability, compare_page
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import get_args

from vsr.api.choice import AutoDecision, auto_calibration, auto_table, choose_model  # noqa: F401  (public)
from vsr.api.evaluation import Comparison, Evaluation, compare, compare_page, evaluate, stability  # noqa: F401  (public)
from vsr.api.frames import AUTO, Log, Upscaler, _quiet, load_model  # noqa: F401  (public)
from vsr.api.jobs import (  # noqa: F401  (public; _Job, _segment_runner: cluster workers in tests, bench)
    CPU_BATCH,
    FolderResult,
    ProgressCallback,
    _Job,
    _segment_runner,
    upscale,
    upscale_folder,
)
from vsr.backends import Backend  # noqa: F401  (public: Upscaler.backends)
from vsr.backends.options import BACKENDS, PRECISIONS, BackendOptions, TensorRTOptions  # noqa: F401  (public)
from vsr.backends.select import Choice  # noqa: F401  (public: Upscaler.choice)
from vsr.backends.trt_plan import DEFAULT_PROFILE, CachedPlan, PlanKey, ShapeProfile, capped, make_profile  # noqa: F401  (public: CLI)
from vsr.cluster import ClusterSpec  # noqa: F401  (public)
from vsr.compare_page import ComparePage  # noqa: F401  (public)
from vsr.errors import BackendUnavailableError, BadInputError, ModelError, PlanError, UsageError  # noqa: F401  (public)
from vsr.evaluate import DENOISE_LEVELS, Score  # noqa: F401  (public)
from vsr.media import EncodeSettings, MediaInfo  # noqa: F401  (public)
from vsr.media import probe as _probe
from vsr.media.assess import SourceDamage  # noqa: F401  (public: AutoDecision.measured)
from vsr.media.deinterlace import DeinterlaceMode
from vsr.media.geometry import FIT_MODES
from vsr.media.profiles import MATRICES, PROFILES, OutputProfile
from vsr.models.artefacts import ShippedModel, all_models, shipped_model, shipped_models
from vsr.models.auto import DEFAULT_MODELS  # noqa: F401  (public: CLI)
from vsr.models.importer import Imported
from vsr.models.registry import Degradation
from vsr.pipeline import JobResult, Progress  # noqa: F401  (public)
from vsr.pipeline.folder import STATUS_FILE, FileOutcome  # noqa: F401  (public)
from vsr.pipeline.resume import DEFAULT_SEGMENT_SECONDS  # noqa: F401  (public)
from vsr.quality import parse_metrics  # noqa: F401  (public: CLI)

# The vocabulary of the options, for callers that offer them as choices (the CLI's enums are built from it).
BACKEND_NAMES: tuple[str, ...] = ("auto", *BACKENDS)
PRECISION_NAMES: tuple[str, ...] = ("auto", *PRECISIONS)
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
COLORSPACE_NAMES: tuple[str, ...] = tuple(MATRICES)
DEINTERLACE_MODES: tuple[str, ...] = get_args(DeinterlaceMode)
DENOISE_LEVEL_KEYS: tuple[str, ...] = tuple(level.key for level in DENOISE_LEVELS)
DEGRADATION_NAMES: tuple[str, ...] = get_args(Degradation)

FIT_NAMES: tuple[str, ...] = FIT_MODES


def probe(path: str | Path) -> MediaInfo:
    """What a media file holds: container, streams, timing from packets, colour, fields, rotation."""
    return _probe(Path(path))


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
