"""TensorRT plans as cached files: optimisation profiles, cache keys and sidecars. No TensorRT import here.

A serialized plan only runs on the GPU model, TensorRT version and shapes it was built for, so the cache
key holds all of them together with the ONNX graph's hash; the JSON sidecar repeats the fields in clear,
and a plan whose sidecar disagrees with the present machine is never loaded (it is rebuilt instead).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from vsr.errors import UsageError
from vsr.files import atomic_write
from vsr.models.registry import ModelSpec

TrtPrecision = Literal["fp32", "fp16", "bf16"]
Shape = tuple[int, int, int]  # N, H, W of the (N, 3, H, W) float input
# Bump when the sidecar's or the graph's meaning changes. 2: plans of float NCHW graphs (fp16 I/O for fp16,
# float32 otherwise) exported from the shipped weights, keyed by the weights' hash.
PLAN_FORMAT = 2
# TensorRT's limit on the elements of any one tensor (its volume is a signed 32-bit integer; NVIDIA/
# TensorRT#4408, #4123): a profile whose largest shape makes a wider tensor fails to build.
TENSOR_LIMIT = 2**31 - 1

_SHAPE = re.compile(r"^(\d+)x(\d+)x(\d+)$")


def parse_shape(text: str) -> Shape:
    """'4x1080x1920' → (4, 1080, 1920); UsageError for anything else."""
    match = _SHAPE.match(text.strip().lower())
    if match is None:
        raise UsageError(f"shape {text!r}: expected NxHxW, e.g. 1x1080x1920")
    n, h, w = (int(g) for g in match.groups())
    if min(n, h, w) < 1:
        raise UsageError(f"shape {text!r}: every dimension must be at least 1")
    return n, h, w


@dataclass(frozen=True)
class ShapeProfile:
    """One TensorRT optimisation profile of the input: shapes from min to max, tuned for opt."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        for axis, label in enumerate("NHW"):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise UsageError(f"profile: {label} must satisfy min <= opt <= max ({self.describe()})")
        if min(self.min) < 1:
            raise UsageError(f"profile: every dimension must be at least 1 ({self.describe()})")

    def covers(self, shape: Shape) -> bool:
        """Whether an input of `shape` can run on a plan built with this profile."""
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def describe(self) -> str:
        """'1x32x32..4x1080x1920..4x2160x3840'."""
        return "..".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))

    @classmethod
    def parse(cls, text: str) -> ShapeProfile:
        """The inverse of describe(); UsageError for anything else."""
        parts = text.split("..")
        if len(parts) != 3:
            raise UsageError(f"profile {text!r}: expected MIN..OPT..MAX")
        return cls(*(parse_shape(p) for p in parts))

    @classmethod
    def around(cls, low: Shape, high: Shape) -> ShapeProfile:
        """The narrow profile of a job: from its smallest input (a short last batch, an edge tile) to its
        largest, tuned for the largest (the shape nearly every call has)."""
        return cls(low, high, high)


# SD to 4K inputs in one plan, tuned for 1080p batches, so users never rebuild per resolution. The batch
# maximum bounds the activation memory TensorRT reserves (a 48-channel fp16 activation at 4 × 4K is 3 GB).
DEFAULT_PROFILE = ShapeProfile(min=(1, 32, 32), opt=(4, 1080, 1920), max=(4, 2160, 3840))


def widest_tensor(spec: ModelSpec, shape: Shape) -> int:
    """The elements of the widest tensor `spec`'s graph holds for an input of `shape` (N, H, W): its
    widest activation at the size it works at (the output size for pre-upsampling models), or the
    sub-pixel layer's 3·s² channels, on the input grown by the edge margin. tests/test_trt_rules.py checks
    it against ONNX shape inference of every graph."""
    n, h, w = shape
    m, s = spec.edge_margin, spec.scale
    if spec.family == "pre-upsampling":
        return n * spec.widest_features * (h + 2 * m) * s * (w + 2 * m) * s
    return n * max(spec.widest_features, 3 * s * s) * (h + 2 * m) * (w + 2 * m)


def fits(spec: ModelSpec, shape: Shape) -> bool:
    """Whether every tensor of `spec`'s graph stays within TensorRT's element limit at `shape`."""
    return widest_tensor(spec, shape) <= TENSOR_LIMIT


def capped(profile: ShapeProfile, spec: ModelSpec) -> ShapeProfile:
    """`profile` with its largest shape cut to what `spec` can build: first fewer frames, then (when one
    frame is already too wide) fewer rows. Inputs beyond it are tiled by the GPU path."""
    n, h, w = profile.max
    while n > 1 and not fits(spec, (n, h, w)):
        n -= 1
    while h > 1 and not fits(spec, (n, h, w)):
        h -= 1
    if (n, h, w) == profile.max:
        return profile
    low = tuple(min(a, b) for a, b in zip(profile.min, (n, h, w), strict=True))
    opt = tuple(min(a, b) for a, b in zip(profile.opt, (n, h, w), strict=True))
    return ShapeProfile(low, opt, (n, h, w))  # type: ignore[arg-type]


def make_profile(min_: str | None, opt: str | None, max_: str | None) -> ShapeProfile:
    """The default profile with any of its three shapes replaced."""
    d = DEFAULT_PROFILE
    return ShapeProfile(
        min=parse_shape(min_) if min_ else d.min,
        opt=parse_shape(opt) if opt else d.opt,
        max=parse_shape(max_) if max_ else d.max,
    )


@dataclass(frozen=True)
class PlanKey:
    """Everything a serialized plan depends on; two plans with equal keys are interchangeable."""

    weights_sha256: str  # the shipped weights the graph is exported from (or an ONNX file's own hash)
    gpu: str  # device name, e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "9.0"
    tensorrt: str  # tensorrt.__version__
    precision: TrtPrecision
    profile: str  # ShapeProfile.describe()
    workspace_mib: int
    format: int = PLAN_FORMAT

    def digest(self) -> str:
        """Stable hex digest of the key (canonical JSON, sorted keys)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def gpu_digest(self) -> str:
        """Digest of the machine part alone (GPU, capability, TensorRT): names the shared timing cache."""
        machine = f"{self.gpu}|{self.compute_capability}|{self.tensorrt}"
        return hashlib.sha256(machine.encode()).hexdigest()[:12]

    def file_stem(self, model: str) -> str:
        """'compact-x2-fp16-1a2b3c4d5e6f': readable, and unique through the digest."""
        return f"{_safe(model)}-{self.precision}-{self.digest()[:12]}"


def _safe(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model)


def cache_dir() -> Path:
    """Where built plans live: $VSR_CACHE_DIR, else $XDG_CACHE_HOME/vsr/engines, else ~/.cache/vsr/engines."""
    if explicit := os.environ.get("VSR_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vsr" / "engines"


@dataclass(frozen=True)
class CachedPlan:
    """A plan file and its sidecar."""

    plan: Path
    sidecar: Path

    @classmethod
    def for_key(cls, key: PlanKey, model: str, root: Path | None = None) -> CachedPlan:
        """The paths a plan of `key` has (whether or not it exists yet)."""
        stem = key.file_stem(model)
        root = root or cache_dir()
        return cls(root / f"{stem}.plan", root / f"{stem}.json")

    @classmethod
    def covering(
        cls, key: PlanKey, model: str, low: Shape, high: Shape, root: Path | None = None
    ) -> CachedPlan | None:
        """A valid cached plan of `key` but for its profile and workspace, whose profile takes every shape
        from `low` to `high` (as `vsr build-engine` made, or an earlier job); the narrowest if several."""
        root = root or cache_dir()
        found: list[tuple[int, CachedPlan]] = []
        for sidecar in root.glob(f"{_safe(model)}-{key.precision}-*.json"):
            try:
                recorded = PlanKey(**json.loads(sidecar.read_text())["key"])
                profile = ShapeProfile.parse(recorded.profile)
            except (OSError, ValueError, TypeError, KeyError, UsageError):
                continue  # a foreign, older or damaged sidecar is not ours to use
            same = dataclasses.replace(recorded, profile=key.profile, workspace_mib=key.workspace_mib) == key
            plan = cls(sidecar.with_suffix(".plan"), sidecar)
            if same and profile.covers(low) and profile.covers(high) and plan.valid_for(recorded):
                found.append((profile.max[0] * profile.max[1] * profile.max[2], plan))
        return min(found, key=lambda f: f[0])[1] if found else None

    def key(self) -> PlanKey:
        """The key its sidecar records."""
        return PlanKey(**json.loads(self.sidecar.read_text())["key"])

    def valid_for(self, key: PlanKey) -> bool:
        """True only if both files exist, the sidecar records exactly `key`, and the plan's hash matches."""
        if not (self.plan.is_file() and self.sidecar.is_file()):
            return False
        try:
            record = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return False
        if record.get("key") != asdict(key):
            return False
        return record.get("plan_sha256") == hashlib.sha256(self.plan.read_bytes()).hexdigest()

    def store(self, key: PlanKey, plan: bytes, extra: dict | None = None) -> None:
        """Write plan then sidecar, each atomically, so a crash never leaves a valid-looking pair."""
        self.plan.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.plan, plan)
        record = {"key": asdict(key), "plan_sha256": hashlib.sha256(plan).hexdigest(), **(extra or {})}
        atomic_write(self.sidecar, json.dumps(record, indent=1))
