"""`--model auto`: the shipped chain that measured best on sources damaged like this one.

The manifest's "auto" table (written by `vsr export --calibrate-auto`, see vsr.train.calibrate) holds, per
scale, levels of the protocol (clean, Gaussian noise, x264 at several CRFs, MPEG-2 and MPEG-4 Part 2 at
several qscales, and soft twins of some of them: the same damage after a blur): the damage measured on
those sources exactly as `vsr.media.assess` measures a user's file, and every candidate chain's Y-PSNR
there. A source is matched to the nearest sharp level, on the quantiser when its codec exposes one
calibrated here (the damage is then the codec's) and on the noise estimate otherwise; the choice is that
level's cheapest candidate within TOLERANCE_DB of its best. Nothing here is a guessed threshold: the
boundaries between choices fall where the measurements put them.

The soft twins are calibrated and shown, not matched: a blurred source reads low in noise, so matching it
by noise would send clean masters there, and the nearest mean softness misjudged three of Set5's five
clean pictures as soft (smooth content reads soft: 0.32-0.35 against the levels' 0.28 and 0.34), which
cost 0.46 dB there. Choosing by softness waits for a boundary calibrated per picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from vsr.errors import ModelError
from vsr.models.artefacts import ShippedModel

# The model per scale where there is no file to measure (`load_model` without a name) or no calibration for
# `auto`: the fastest shipped one, so a CPU-only machine gets a usable speed. ×8 is a
# cascade ("A+B" runs A, then B): compact-x4 then espcn-x2 scores 26.09 dB on Set5 ×8 against bicubic's
# 24.39, within 0.02 dB of compact-x4 then compact-x2 at a fifth of the compute (README, "×8").
DEFAULT_MODELS = {2: "espcn-x2", 3: "espcn-x3", 4: "compact-x4", 8: "compact-x4+espcn-x2"}
# Within this many dB of a level's best, the cheaper chain wins: the difference is below what the sets
# can tell apart, and the default must stay fast on a CPU.
TOLERANCE_DB = 0.1


@dataclass(frozen=True)
class Candidate:
    """A chain auto may pick: an upscaler or cascade ("compact-x4+espcn-x2"), after an optional denoiser."""

    model: str
    denoise: str | None = None

    @property
    def label(self) -> str:
        """ "dncnn-color → compact-x2", as the chain is named everywhere else."""
        return " → ".join([*([self.denoise] if self.denoise else []), self.model])

    @property
    def names(self) -> list[str]:
        """The shipped models it runs, in order: the denoiser, then each upscaler of the cascade."""
        return [*([self.denoise] if self.denoise else []), *self.model.split("+")]

    @classmethod
    def from_label(cls, label: str) -> Candidate:
        *denoise, model = label.split(" → ")
        return cls(model, denoise[0] if denoise else None)

    def gflops(self, models: dict[str, ShippedModel]) -> float:
        """Compute per 1080p input frame: each stage runs at the size its predecessors left."""
        total, area = 0.0, 1
        for name in self.names:
            entry = models[name].entry
            total += entry["gflops_1080p"] * area
            area *= entry["scale"] ** 2
        return total


def candidates(scale: int, default: str, models: dict[str, ShippedModel]) -> list[Candidate]:
    """Every shipped faithful upscaler of `scale`, alone and after every shipped denoiser. A scale no
    single model has runs the default cascade with each shipped faithful upscaler of its first stage's
    scale in that stage (compact-x4+espcn-x2, real-compact-x4+espcn-x2): the same cost, and the
    damage-trained model where the source is damaged."""
    upscalers = _upscalers(models, scale)
    denoisers = [n for n, m in models.items() if m.spec.task == "denoise"]
    if not upscalers:
        first, rest = default.split("+", 1)
        firsts = _upscalers(models, models[first].spec.scale) if first in models else [first]
        upscalers = [f"{n}+{rest}" for n in firsts]
    return [Candidate(u, d) for d in (None, *denoisers) for u in upscalers]


def _upscalers(models: dict[str, ShippedModel], scale: int) -> list[str]:
    """The faithful upscalers of `scale`: auto never chooses the restoring look for the user."""
    return [
        n
        for n, m in models.items()
        if m.spec.task == "sr" and m.spec.scale == scale and m.spec.look == "faithful"
    ]


@dataclass(frozen=True)
class Level:
    """One calibrated level: its damage ("h264:crf=28") on one kind of source ("stills": single images
    coded alone; "clips": short inter-coded sequences), the damage measured there, and each candidate's
    mean Y-PSNR (with bicubic's)."""

    name: str
    source: str
    qp: float | None
    qp_scale: str | None
    intra: bool
    noise: float
    psnr: dict[str, float]
    bicubic: float
    softness: float | None = None  # None in a table calibrated before softness was measured

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Level:
        return cls(d["level"], d["source"], d["qp"], d["qp_scale"], d["intra"], d["noise"], d["psnr"],
                   d["bicubic"], d.get("softness"))  # fmt: skip

    @property
    def label(self) -> str:
        """ "h264:crf=28 on clips"."""
        return f"{self.name} on {self.source}"

    @property
    def sharp(self) -> str:
        """The damage without the blur of a soft twin: "h264:crf=28" for "blur:sigma=1.0,h264:crf=28",
        "clean" for "blur:sigma=1.0"."""
        if not self.name.startswith("blur:"):
            return self.name
        return self.name.partition(",")[2] or "clean"

    def best(self, models: dict[str, ShippedModel], twins: Sequence[Level] = ()) -> Candidate:
        """The cheapest candidate within TOLERANCE_DB of the best here and, of those, within TOLERANCE_DB
        of the best on each soft twin: softness does not choose (a smooth picture reads soft), so a
        sharp level's chain must also hold up on the soft version of its damage. (Without that, the light
        real-espcn-x2, within 0.1 dB of the best on sharp x264 CRF 23 stills, ran on the soft ones too and
        lost 0.66 dB there.)"""
        shipped = {
            k: v for k, v in self.psnr.items() if all(n in models for n in Candidate.from_label(k).names)
        }
        if not shipped:
            raise ModelError(f"auto: no candidate of level {self.label} is shipped")
        top = max(shipped.values())
        near = [k for k, v in shipped.items() if v >= top - TOLERANCE_DB]
        for twin in twins:
            scored = [k for k in near if k in twin.psnr]
            if scored:
                twin_top = max(twin.psnr[k] for k in scored)
                near = [k for k in scored if twin.psnr[k] >= twin_top - TOLERANCE_DB]
        return min((Candidate.from_label(k) for k in near), key=lambda c: (c.gflops(models), c.label))

    def twins(self, table: Sequence[Level]) -> list[Level]:
        """The soft twins of this sharp level in `table`: the same damage on the same source, blurred."""
        return [
            lv for lv in table if lv.name != self.name and lv.sharp == self.name and lv.source == self.source
        ]


@dataclass(frozen=True)
class AutoChoice:
    """What auto picked and why: the chain, the level it matched, and the sentence the CLI prints."""

    candidate: Candidate
    level: str
    reason: str


def levels(calibration: dict[str, Any], scale: int) -> list[Level]:
    """The calibrated levels of `scale`; ModelError when the manifest has none (a package built without
    running the calibration)."""
    table = calibration.get("scales", {}).get(str(scale))
    if not table:
        raise ModelError(
            f"auto: the manifest has no calibration for ×{scale}; name a model (--model) or run "
            "`vsr export --calibrate-auto`"
        )
    return [Level.from_dict(d) for d in table]


def choose(
    calibration: dict[str, Any],
    scale: int,
    models: dict[str, ShippedModel],
    *,
    qp: float | None,
    qp_scale: str | None,
    intra: bool,
    noise: float,
    denoise: str | None = None,
) -> AutoChoice:
    """The chain for a source of measured `qp` (on `qp_scale`; `intra` when every frame measured was
    intra-coded) and `noise`, at `scale`; with `denoise`, only chains that start with that denoiser."""
    table = levels(calibration, scale)
    sharp = [lv for lv in table if lv.sharp == lv.name]
    scaled = [lv for lv in sharp if qp is not None and lv.qp_scale == qp_scale]
    if coded := [lv for lv in scaled if lv.intra == intra] or scaled:
        level = min(coded, key=lambda lv: abs(lv.qp - qp))  # type: ignore[operator]
        by = f"quantiser {qp:.1f} nearest to {level.label} ({level.qp:.1f})"
    else:
        plain = [lv for lv in sharp if lv.qp_scale is None]
        level = min(plain, key=lambda lv: abs(lv.noise - noise))
        why = "no quantiser in the stream" if qp is None else f"no calibration for {qp_scale} quantisers"
        by = f"{why}; noise σ {noise:.2f} nearest to {level.label} ({level.noise:.2f})"
    if denoise is not None:
        kept = {k: v for k, v in level.psnr.items() if Candidate.from_label(k).denoise == denoise}
        if not kept:
            raise ModelError(f"auto: no calibrated chain starts with {denoise}; name a model (--model)")
        level = replace(level, psnr=kept)
    pick = level.best(models, level.twins(table))
    gain = level.psnr[pick.label] - level.bicubic
    reason = f"{by}, where {pick.label} measured {gain:+.2f} dB over bicubic"
    return AutoChoice(pick, level.label, reason)
