"""HDR static metadata: mastering display colour volume and content light level, read from the decoder's
frame side data and handed to encoders that can write them (x265)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av

from vsr.media._input import side_data

PQ, HLG = 16, 18  # AVCOL_TRC of SMPTE ST 2084 and ARIB STD-B67


@dataclass(frozen=True, slots=True)
class HdrMetadata:
    """SMPTE ST 2086 mastering display (CIE 1931 xy, cd/m²) and CTA-861.3 content light levels."""

    primaries: tuple[tuple[Fraction, Fraction], ...] | None  # R, G, B
    white_point: tuple[Fraction, Fraction] | None
    luminance: tuple[Fraction, Fraction] | None  # min, max
    max_cll: int | None
    max_fall: int | None

    def x265_params(self) -> str:
        """The x265-params that write this metadata into the HEVC stream's SEI."""
        params = []
        if self.primaries and self.white_point and self.luminance:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            chroma = lambda v: round(v * 50000)  # noqa: E731  (x265 units: 0.00002)
            lo, hi = self.luminance
            params.append(
                f"master-display=G({chroma(gx)},{chroma(gy)})B({chroma(bx)},{chroma(by)})"
                f"R({chroma(rx)},{chroma(ry)})WP({chroma(self.white_point[0])},{chroma(self.white_point[1])})"
                f"L({round(hi * 10000)},{round(lo * 10000)})"
            )
        if self.max_cll is not None:
            params.append(f"max-cll={self.max_cll},{self.max_fall or 0}")
        return ":".join(params)


def _rationals(data: bytes, count: int) -> list[Fraction]:
    values = struct.unpack(f"<{2 * count}i", data[: 8 * count])
    return [Fraction(n, d) if d else Fraction(0) for n, d in zip(values[::2], values[1::2], strict=True)]


def from_frame(frame: av.VideoFrame) -> HdrMetadata | None:
    """The HDR static metadata a decoded frame carries, or None."""
    mastering = cll = None
    for side in side_data(frame):
        kind = str(side.type).rsplit(".", 1)[-1]
        if kind == "MASTERING_DISPLAY_METADATA":
            mastering = bytes(side)
        elif kind == "CONTENT_LIGHT_LEVEL":
            cll = bytes(side)
    if mastering is None and cll is None:
        return None
    primaries = white = luminance = None
    if mastering is not None and len(mastering) >= 88:
        # AVMasteringDisplayMetadata: display_primaries[3][2], white_point[2], min, max (AVRationals),
        # then has_primaries and has_luminance (ints).
        values = _rationals(mastering, 10)
        has_primaries, has_luminance = struct.unpack("<2i", mastering[80:88])
        if has_primaries:
            primaries = ((values[0], values[1]), (values[2], values[3]), (values[4], values[5]))
            white = (values[6], values[7])
        if has_luminance:
            luminance = (values[8], values[9])
    max_cll = max_fall = None
    if cll is not None and len(cll) >= 8:
        max_cll, max_fall = struct.unpack("<2I", cll[:8])
    return HdrMetadata(primaries, white, luminance, max_cll, max_fall)
