"""Planar Y'CbCr ⇄ RGB on the device, in torch: the colour conversion the GPU path keeps off the CPU.

Planes arrive packed as vsr.media.planes lays them out, (N, rows, W): Y (H, W), then U and V (H/sh, W/sw
each), flattened one after the other, for 4:2:0, 4:2:2 and 4:4:4 alike, so a source's chroma resolution
survives the GPU path. 8-bit (uint8) and 10-bit (uint16) sources are converted with the source's own matrix
and range, in float32, so 10-bit precision survives to the model and back.

Chroma is upsampled from where the source says its samples sit (the decoder's chroma location: left,
centre, top-left...; left when it says nothing, as FFmpeg's swscale assumes) and written back left-sited
(horizontally co-sited with even luma columns, vertically centred), the siting MPEG-2, H.264 and HEVC
decoders assume of an untagged 4:2:0 stream: a [1, 2, 1]/4 filter on even columns, rows averaged in pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from vsr.media.colour import CHROMA_LEFT, RANGE_FULL
from vsr.media.planes import PLANAR, Planar
from vsr.media.reader import SourceFormat

# (Kr, Kb) of each FFmpeg AVCOL_SPC matrix the pipeline converts with (see vsr.media.colour).
_KR_KB = {
    1: (0.2126, 0.0722),  # bt709
    4: (0.30, 0.11),  # fcc
    5: (0.299, 0.114),  # bt470bg (BT.601)
    6: (0.299, 0.114),  # smpte170m (BT.601)
    7: (0.212, 0.087),  # smpte240m
    9: (0.2627, 0.0593),  # bt2020nc
    10: (0.2627, 0.0593),  # bt2020c: treated as non-constant luminance, as swscale does
}


@dataclass(frozen=True)
class YuvSpec:
    """How the planes' codes map to colour: matrix (AVCOL_SPC), range, bit depth, chroma siting and
    subsampling."""

    matrix: int
    full_range: bool
    bits: int  # 8 or 10
    chroma_location: int = CHROMA_LEFT  # AVCHROMA_LOC_*; 0 (unspecified) is read as left
    layout: str = "yuv420p"  # the planar layout (vsr.media.planes): its subsampling

    @classmethod
    def of(cls, fmt: SourceFormat, layout: str, matrix: int | None = None) -> YuvSpec:
        """The spec of `layout` planes of a source `fmt` (sited where the source says); with `matrix`, the
        output's spec: that matrix, left-sited chroma."""
        bits = PLANAR[layout].bits
        full = fmt.color_range == RANGE_FULL
        if matrix is not None:
            return cls(matrix, full, bits, CHROMA_LEFT, layout)
        return cls(fmt.colorspace, full, bits, fmt.chroma_location or CHROMA_LEFT, layout)

    @property
    def planar(self) -> Planar:
        """Subsampling and depth of the layout."""
        return PLANAR[self.layout]

    @property
    def siting(self) -> tuple[Phase, Phase]:
        """(horizontal, vertical) phase of the chroma samples against the luma grid."""
        return _SITING.get(self.chroma_location, _SITING[CHROMA_LEFT])

    @property
    def coefficients(self) -> tuple[float, float]:
        """(Kr, Kb) of the matrix."""
        return _KR_KB[self.matrix]

    def _levels(self) -> tuple[float, float, float, float]:
        """(Y offset, Y span, C centre, C span) in code values of this bit depth."""
        step = float(1 << (self.bits - 8))
        if self.full_range:
            top = float((1 << self.bits) - 1)
            return 0.0, top, float(1 << (self.bits - 1)), top
        return 16 * step, 219 * step, 128 * step, 224 * step


def split_planes(
    planes: Tensor, height: int, planar: Planar = PLANAR["yuv420p"]
) -> tuple[Tensor, Tensor, Tensor]:
    """(N, rows, W) packed planes → Y (N, H, W), U and V (N, H/sh, W/sw); views, no copy."""
    n, _, w = planes.shape
    flat = planes.reshape(n, -1)
    ch, cw = height // planar.sub_h, w // planar.sub_w
    luma, chroma = height * w, ch * cw
    y = flat[:, :luma].reshape(n, height, w)
    u = flat[:, luma : luma + chroma].reshape(n, ch, cw)
    v = flat[:, luma + chroma :].reshape(n, ch, cw)
    return y, u, v


# Where a chroma sample sits along one axis: on the even luma sample, halfway to the next, or on the odd.
Phase = Literal["even", "mid", "odd"]
# AVCHROMA_LOC_* → (horizontal, vertical) phase.
_SITING: dict[int, tuple[Phase, Phase]] = {
    1: ("even", "mid"),  # left: MPEG-2, H.264, HEVC 4:2:0
    2: ("mid", "mid"),  # center: MPEG-1, JPEG
    3: ("even", "even"),  # topleft: BT.2020 / UHD Blu-ray, DV 4:2:0
    4: ("mid", "even"),  # top
    5: ("even", "odd"),  # bottomleft
    6: ("mid", "odd"),  # bottom
}


def _shifted(x: Tensor, step: int, dim: int) -> Tensor:
    """x moved by one sample along `dim` (step -1: each place holds its left/upper neighbour), with the
    edge sample repeated."""
    n = x.shape[dim]
    if step < 0:
        return torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, 0, n - 1)], dim=dim)
    return torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim=dim)


def _upsample(c: Tensor, dim: int, phase: Phase) -> Tensor:
    """Linear interpolation ×2 along `dim` from samples at `phase`: each output sample weighs the chroma
    samples around its own position."""
    if phase == "even":  # sample k at 2k: copy it, and average with k+1 for 2k+1
        even, odd = c, (c + _shifted(c, 1, dim)) / 2
    elif phase == "odd":  # sample k at 2k+1
        even, odd = (_shifted(c, -1, dim) + c) / 2, c
    else:  # sample k at 2k+½: three quarters of it and one of the nearer neighbour
        even, odd = 0.75 * c + 0.25 * _shifted(c, -1, dim), 0.75 * c + 0.25 * _shifted(c, 1, dim)
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


def _downsample(x: Tensor, dim: int, phase: Phase) -> Tensor:
    """Halve `dim`, each chroma sample the average of the luma-grid samples around its `phase` position:
    [1, 2, 1]/4 centred on co-sited samples, [1, 1]/2 for samples between two."""
    even, odd = x.unflatten(dim, (x.shape[dim] // 2, 2)).unbind(dim + 1)
    if phase == "even":
        return (_shifted(odd, -1, dim) + 2 * even + odd) / 4
    if phase == "odd":
        return (even + 2 * odd + _shifted(even, 1, dim)) / 4
    return (even + odd) / 2


def _upsample_chroma(c: Tensor, spec: YuvSpec) -> Tensor:
    """(N, H/sh, W/sw) chroma → (N, H, W), from where its samples sit (only subsampled axes are filtered)."""
    (h_phase, v_phase), planar = spec.siting, spec.planar
    if planar.sub_w == 2:
        c = _upsample(c, 2, h_phase)
    return _upsample(c, 1, v_phase) if planar.sub_h == 2 else c


def _downsample_chroma(c: Tensor, spec: YuvSpec) -> Tensor:
    """(N, H, W) chroma → (N, H/sh, W/sw), sited at the spec's siting."""
    (h_phase, v_phase), planar = spec.siting, spec.planar
    if planar.sub_w == 2:
        c = _downsample(c, 2, h_phase)
    return _downsample(c, 1, v_phase) if planar.sub_h == 2 else c


def yuv_to_rgb(planes: Tensor, height: int, spec: YuvSpec) -> Tensor:
    """Packed planes (integer codes) → (N, 3, H, W) float32 RGB in 0..1 (not clamped)."""
    y, u, v = (p.float() for p in split_planes(planes, height, spec.planar))
    y_off, y_span, c_mid, c_span = spec._levels()
    luma = (y - y_off) / y_span
    cb = _upsample_chroma((u - c_mid) / c_span, spec)
    cr = _upsample_chroma((v - c_mid) / c_span, spec)
    kr, kb = spec.coefficients
    kg = 1.0 - kr - kb
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return torch.stack([r, g, b], dim=1)


def rgb_to_yuv(rgb: Tensor, spec: YuvSpec) -> Tensor:
    """(N, 3, H, W) float RGB 0..1 → packed planes of the spec's layout (uint8, or int16-held 10-bit codes
    as uint16's bits).

    Chroma is filtered to the spec's siting (left for every output: see the module's note).
    """
    rgb = rgb.float().clamp(0.0, 1.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    kr, kb = spec.coefficients
    luma = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - luma) / (2 * (1 - kb))
    cr = (r - luma) / (2 * (1 - kr))
    y_off, y_span, c_mid, c_span = spec._levels()
    n, h, w = luma.shape
    top = float((1 << spec.bits) - 1)

    def code(x: Tensor, offset: float, span: float) -> Tensor:
        return (x * span + offset).round().clamp(0.0, top)

    def subsample(c: Tensor) -> Tensor:
        return _downsample_chroma(c, spec)

    planes = torch.cat(
        [
            code(luma, y_off, y_span).reshape(n, -1),
            code(subsample(cb), c_mid, c_span).reshape(n, -1),
            code(subsample(cr), c_mid, c_span).reshape(n, -1),
        ],
        dim=1,
    ).reshape(n, spec.planar.rows(h), w)
    # 10-bit codes fit int16; torch has no uint16 arithmetic on every device, and the bits are the same.
    return planes.to(torch.uint8 if spec.bits == 8 else torch.int16)
