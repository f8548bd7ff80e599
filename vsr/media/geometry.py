"""Target output sizes: which model factor reaches them and how the picture lands in the frame.

A target is what the viewer sees, in square pixels: the source's display aspect (storage size × sample
aspect ratio, rotation applied) is kept unless `fit="stretch"`. The smallest model factor whose output
covers the target runs, then one Lanczos resample (in swscale, with the colour conversion the writer does
anyway) takes it to the exact size; `pad` centres it between black bars, `crop` trims the model output to
the target's aspect first. Offsets are even, so 4:2:0 chroma stays aligned. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from vsr.errors import UsageError

FitMode = Literal["pad", "crop", "stretch"]
FIT_MODES: tuple[str, ...] = ("pad", "crop", "stretch")


def _even(value: Fraction | float) -> int:
    return max(2, round(value / 2) * 2)


@dataclass(frozen=True)
class TargetSize:
    """An output size: width and height (with a fit), or one of them (the other follows the aspect)."""

    width: int | None = None
    height: int | None = None
    fit: FitMode = "pad"

    def __post_init__(self) -> None:
        if self.width is None and self.height is None:
            raise UsageError("a target size needs a width, a height or both")
        for side in (self.width, self.height):
            if side is not None and (side < 16 or side % 2):
                raise UsageError(f"target sides must be even and at least 16 pixels, got {side}")
        if self.fit not in FIT_MODES:
            raise UsageError(f"unknown fit {self.fit!r}; choose {', '.join(FIT_MODES)}")

    @classmethod
    def parse(cls, size: str, fit: str = "pad") -> TargetSize:
        """ "1920x1080" → TargetSize(1920, 1080, fit)."""
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", size)
        if match is None:
            raise UsageError(f"a size is WIDTHxHEIGHT (1920x1080), not {size!r}")
        return cls(int(match[1]), int(match[2]), fit)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Placement:
    """How a model's output becomes the target frame (all in stored, unrotated pixels)."""

    scale: int  # the model chain's factor
    crop: tuple[int, int, int, int] | None  # x, y, width, height of the model output kept (None: all)
    inner: tuple[int, int]  # width, height the kept picture is resampled to
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # black bars: left, top, right, bottom

    @property
    def size(self) -> tuple[int, int]:
        """The encoded frame: width, height."""
        left, top, right, bottom = self.pad
        return self.inner[0] + left + right, self.inner[1] + top + bottom


def place(
    width: int,
    height: int,
    sar: Fraction | None,
    rotation: int,
    target: TargetSize,
    scales: Sequence[int],
) -> Placement:
    """The placement of a `width`×`height` source (sample aspect `sar`, displayed rotated by `rotation`
    degrees) in `target`, with the smallest of `scales` that reaches it. UsageError when the target is no
    larger than the source or larger than the largest factor reaches."""
    turned = rotation % 180 == 90  # the target is what the viewer sees; the pixels are stored unturned
    t_w, t_h = (target.height, target.width) if turned else (target.width, target.height)
    dar = Fraction(width) * (sar or 1) / height  # display aspect of the stored picture
    region_w, region_h = Fraction(width), Fraction(height)  # the part of the source that is shown
    if t_w is None or t_h is None:  # one side given: the other follows the display aspect
        inner = (t_w, _even(t_w / dar)) if t_w is not None else (_even(t_h * dar), t_h)  # type: ignore[operator]
        pad = (0, 0, 0, 0)
    elif target.fit == "stretch":
        inner, pad = (t_w, t_h), (0, 0, 0, 0)
    elif target.fit == "pad":
        inner = (_even(t_h * dar), t_h) if Fraction(t_w, t_h) > dar else (t_w, _even(t_w / dar))
        inner = (min(inner[0], t_w), min(inner[1], t_h))
        left, top = (t_w - inner[0]) // 4 * 2, (t_h - inner[1]) // 4 * 2
        pad = (left, top, t_w - inner[0] - left, t_h - inner[1] - top)
    else:  # crop: keep the middle of the source at the target's aspect
        inner, pad = (t_w, t_h), (0, 0, 0, 0)
        if Fraction(t_w, t_h) > dar:
            region_h = region_w * (sar or 1) * t_h / t_w
        else:
            region_w = region_h * t_w / t_h / (sar or 1)
    need = max(inner[0] / region_w, inner[1] / region_h)
    if need <= 1:
        raise UsageError(
            f"the target picture {inner[0]}x{inner[1]} is no larger than the {width}x{height} source; "
            "vsr upscales"
        )
    fitting = [s for s in sorted(scales) if s >= need]
    if not fitting:
        raise UsageError(f"the target needs ×{float(need):.2f}; the largest factor here is ×{max(scales)}")
    scale = fitting[0]
    crop = None
    if region_w < width or region_h < height:
        full_w, full_h = width * scale, height * scale
        crop_w, crop_h = min(_even(region_w * scale), full_w), min(_even(region_h * scale), full_h)
        crop = ((full_w - crop_w) // 4 * 2, (full_h - crop_h) // 4 * 2, crop_w, crop_h)
    return Placement(scale, crop, inner, pad)
