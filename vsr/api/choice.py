"""`--model auto`: measure a source (`choose_model`) and pick the shipped chain the manifest's calibration
found best for sources so damaged; `auto_table` and `auto_calibration` show that calibration."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vsr.errors import ModelError, UsageError
from vsr.media.assess import SourceDamage, assess
from vsr.models import auto
from vsr.models.artefacts import load_manifest, shipped_models
from vsr.models.auto import DEFAULT_MODELS


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
    """Measure `input` (quantiser, noise, softness, bits per pixel on a few windows of frames; or take
    `measured`, an earlier decision's) and pick the shipped chain that the manifest's calibration found
    best for sources so damaged, at `scale` (see vsr.models.auto). Without a calibration for `scale` it
    falls back to the default model, and says so."""
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
    """Per scale, the calibrated levels with the chain auto runs there ("auto"; None for a soft twin, which
    auto measures but never matches) and the best ("best")."""
    models, calibration, table = shipped_models(), auto_calibration(), {}
    for scale in calibration.get("scales", {}):
        levels = auto.levels(calibration, int(scale))
        table[int(scale)] = [
            {
                **asdict(lv),
                "level": lv.label,
                "auto": lv.best(models, lv.twins(levels)).label if lv.sharp == lv.name else None,
                "best": max(lv.psnr, key=lv.psnr.__getitem__),
            }
            for lv in levels
        ]
    return table


def auto_calibration() -> dict[str, Any]:
    """The manifest's calibration of `--model auto`: per scale, the levels of damage with what was
    measured there and every candidate chain's Y-PSNR (see vsr.models.auto)."""
    return load_manifest().get("auto", {})
