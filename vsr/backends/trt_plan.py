"""TensorRT plans as cached files: optimisation profiles, cache keys and sidecars. No TensorRT import here.

A serialized plan only runs on the GPU model, TensorRT version and shapes it was built for, so the cache
key holds all of them together with the ONNX graph's hash; the JSON sidecar repeats the fields in clear,
and a plan whose sidecar disagrees with the present machine is never loaded (it is rebuilt instead).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from vsr.errors import UsageError
from vsr.files import atomic_write

TrtPrecision = Literal["fp32", "fp16", "bf16"]
Shape = tuple[int, int, int]  # N, H, W of the (N, H, W, 3) uint8 input
PLAN_FORMAT = 1  # bump when the sidecar's meaning changes

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

    def covers(self, shape: Shape) -> bool:
        """Whether an input of `shape` can run on a plan built with this profile."""
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def describe(self) -> str:
        """'1x32x32..4x1080x1920..4x2160x3840'."""
        return "..".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))


# SD to 4K inputs in one plan, tuned for 1080p batches, so users never rebuild per resolution. The batch
# maximum bounds the activation memory TensorRT reserves (a 48-channel fp16 activation at 4 × 4K is 3 GB).
DEFAULT_PROFILE = ShapeProfile(min=(1, 32, 32), opt=(4, 1080, 1920), max=(4, 2160, 3840))


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

    onnx_sha256: str
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
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
        return f"{safe}-{self.precision}-{self.digest()[:12]}"


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
