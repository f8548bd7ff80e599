"""Planar Y'CbCr frames as one array: the layout the GPU path uploads and gets back.

A frame of a planar layout travels as its planes' rows one after another, each plane without the line
padding FFmpeg adds: Y (H, W), then Cb and Cr (H/sh, W/sw each), flattened into (rows, W). For 4:2:0 that
is (H·3/2, W), as PyAV's own to_ndarray packs it; 4:2:2 is (2H, W) and 4:4:4 (3H, W). PyAV converts only
some of these formats to arrays (not yuv444p10le, and yuv422p10le not as planes), so the planes are copied
here, through the buffer protocol of each plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np


@dataclass(frozen=True)
class Planar:
    """A planar layout: chroma subsampling (sw, sh) and bit depth."""

    sub_w: int
    sub_h: int
    bits: int

    @property
    def dtype(self) -> type:
        return np.uint8 if self.bits == 8 else np.uint16

    def divides(self, width: int, height: int) -> bool:
        """Whether a frame of this size has whole chroma samples (the packing needs them)."""
        return width % self.sub_w == 0 and height % self.sub_h == 0

    def rows(self, height: int) -> int:
        """Rows of the packed (rows, W) array of a frame `height` tall."""
        return height + 2 * height // (self.sub_w * self.sub_h)


PLANAR: dict[str, Planar] = {
    "yuv420p": Planar(2, 2, 8),
    "yuv420p10le": Planar(2, 2, 10),
    "yuv422p": Planar(2, 1, 8),
    "yuv422p10le": Planar(2, 1, 10),
    "yuv444p": Planar(1, 1, 8),
    "yuv444p10le": Planar(1, 1, 10),
}


def planar_layout(pix_fmt: str) -> str:
    """The planar layout that keeps a format's chroma resolution and precision: 4:2:0, 4:2:2 or 4:4:4
    (4:1:1 goes to 4:2:2, which keeps its full vertical chroma; anything else to 4:2:0), 10-bit for anything
    deeper than 8 bits."""
    fmt = av.video.format.VideoFormat(pix_fmt)
    deep = max(c.bits for c in fmt.components) > 8
    if fmt.is_rgb or len(fmt.components) < 3:
        family = "444" if fmt.is_rgb else "420"
    else:
        sw, sh = 64 // fmt.chroma_width(64), 64 // fmt.chroma_height(64)
        family = {(1, 1): "444", (2, 1): "422", (4, 1): "422"}.get((sw, sh), "420")
    return f"yuv{family}p" + ("10le" if deep else "")


def pack(frame: av.VideoFrame) -> np.ndarray:
    """The planes of a planar frame as one (rows, W) array (a copy)."""
    layout = PLANAR[frame.format.name]
    parts = []
    for plane in frame.planes:
        itemsize = np.dtype(layout.dtype).itemsize
        rows = np.frombuffer(plane, layout.dtype).reshape(plane.height, plane.line_size // itemsize)
        parts.append(rows[:, : plane.width].reshape(-1))
    return np.concatenate(parts).reshape(-1, frame.width)


def unpack(pixels: np.ndarray, layout: str, width: int, height: int) -> av.VideoFrame:
    """A frame of `layout` holding the packed planes `pixels` ((rows, W), as pack() returns)."""
    spec = PLANAR[layout]
    if pixels.shape != (spec.rows(height), width) or pixels.dtype != spec.dtype:
        raise ValueError(
            f"expected {layout} planes {(spec.rows(height), width)}, got {pixels.shape} {pixels.dtype}"
        )
    frame = av.VideoFrame(width, height, layout)
    flat = pixels.reshape(-1)
    start = 0
    for plane in frame.planes:
        n = plane.width * plane.height
        itemsize = np.dtype(spec.dtype).itemsize
        target = np.frombuffer(plane, spec.dtype).reshape(plane.height, plane.line_size // itemsize)
        target[:, : plane.width] = flat[start : start + n].reshape(plane.height, plane.width)
        start += n
    return frame
