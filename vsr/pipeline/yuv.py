"""Y'CbCr 4:2:0 ⇄ RGB on the device, in torch: the colour conversion the GPU path keeps off the CPU.

Planes arrive exactly as PyAV packs them, (N, H·3/2, W): Y (H, W), then U and V (H/2, W/2 each), flattened
one after the other. 8-bit (uint8) and 10-bit (uint16, yuv420p10le) sources are converted with the
source's own matrix and range, in float32, so 10-bit precision survives to the model and back.
Chroma is MPEG-2 sited (left, vertically centred), as FFmpeg's swscale assumes for 4:2:0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vsr.media.colour import RANGE_FULL
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
    """How the source's codes map to colour: matrix (AVCOL_SPC), range and bit depth."""

    matrix: int
    full_range: bool
    bits: int  # 8 or 10

    @classmethod
    def of(cls, fmt: SourceFormat, layout: str, matrix: int | None = None) -> YuvSpec:
        """The spec of `layout` planes of a source `fmt`; `matrix` overrides its matrix (for the output)."""
        return cls(
            matrix or fmt.colorspace, fmt.color_range == RANGE_FULL, 10 if layout == "yuv420p10le" else 8
        )

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


def split_planes(planes: Tensor, height: int) -> tuple[Tensor, Tensor, Tensor]:
    """(N, H·3/2, W) packed planes → Y (N, H, W), U and V (N, H/2, W/2); views, no copy."""
    n, _, w = planes.shape
    flat = planes.reshape(n, -1)
    luma, chroma = height * w, (height // 2) * (w // 2)
    y = flat[:, :luma].reshape(n, height, w)
    u = flat[:, luma : luma + chroma].reshape(n, height // 2, w // 2)
    v = flat[:, luma + chroma :].reshape(n, height // 2, w // 2)
    return y, u, v


def _upsample_chroma(c: Tensor) -> Tensor:
    # Left-sited horizontally (co-sited with even luma columns), centred vertically: a linear filter that
    # puts each chroma sample on even columns, and between rows.
    n, h, w = c.shape
    x = c[:, None]
    x = F.interpolate(x, size=(2 * h, w), mode="bilinear", align_corners=False)  # vertical: centred
    right = torch.cat([x[..., 1:], x[..., -1:]], dim=-1)
    out = torch.stack([x, (x + right) / 2], dim=-1).reshape(n, 1, 2 * h, 2 * w)  # horizontal: co-sited
    return out[:, 0]


def yuv420_to_rgb(planes: Tensor, height: int, spec: YuvSpec) -> Tensor:
    """Packed 4:2:0 planes (integer codes) → (N, 3, H, W) float32 RGB in 0..1 (not clamped)."""
    y, u, v = (p.float() for p in split_planes(planes, height))
    y_off, y_span, c_mid, c_span = spec._levels()
    luma = (y - y_off) / y_span
    cb = _upsample_chroma((u - c_mid) / c_span)
    cr = _upsample_chroma((v - c_mid) / c_span)
    kr, kb = spec.coefficients
    kg = 1.0 - kr - kb
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return torch.stack([r, g, b], dim=1)


def rgb_to_yuv420(rgb: Tensor, spec: YuvSpec) -> Tensor:
    """(N, 3, H, W) float RGB 0..1 → packed 4:2:0 planes (uint8, or int16-held 10-bit codes as uint16's bits).

    Chroma is averaged from the two co-sited-and-right columns and the two rows of each 2×2 block, the
    inverse siting of yuv420_to_rgb.
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
        return F.avg_pool2d(c[:, None], 2)[:, 0]

    planes = torch.cat(
        [
            code(luma, y_off, y_span).reshape(n, -1),
            code(subsample(cb), c_mid, c_span).reshape(n, -1),
            code(subsample(cr), c_mid, c_span).reshape(n, -1),
        ],
        dim=1,
    ).reshape(n, h * 3 // 2, w)
    # 10-bit codes fit int16; torch has no uint16 arithmetic on every device, and the bits are the same.
    return planes.to(torch.uint8 if spec.bits == 8 else torch.int16)
